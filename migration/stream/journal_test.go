package stream_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"tlcvm/migration/stream"
)

// prevState reads a mapped-ram file's verified layout (what an incremental checkpoint
// starts from) and the offset where its checkpoint ends.
func prevState(t *testing.T, f *os.File) ([]*stream.MappedData, uint64) {
	t.Helper()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rd := stream.NewFileReader(f, 0)
	var n int
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind == stream.RAMBlocks {
			n = len(rec.Blocks)
		}
	}
	var out []*stream.MappedData
	for i := range n {
		d, err := rd.MappedData(f, i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out, rd.FileEnd()
}

// TestJournal: an incremental checkpoint through a Journal writes only the changed pages,
// and the file is the old checkpoint until the commit, the new one from the commit on
// (whether or not the apply ran), never a mix.
func TestJournal(t *testing.T) {
	for _, stop := range []string{"before commit", "after commit", "applied", "corrupt journal"} {
		t.Run(stop, func(t *testing.T) {
			m := newMachine(11, 2<<20, 8192)
			path := writeMapped(t, m, 0)
			old := [][]byte{bytes.Clone(m.mem[0]), bytes.Clone(m.mem[1])}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			prev, end := prevState(t, f)
			// The guest changes three pages: one gets new data, one a page that held data
			// becomes zero, one that was zero gets data.
			var dataPage, zeroed, filled uint64 = 3, 0, 0
			for p := uint64(1); p < 512; p++ {
				if zeroed == 0 && prev[0].Present(p) && p != dataPage {
					zeroed = p
				}
				if filled == 0 && !prev[0].Present(p) {
					filled = p
				}
			}
			m.mem[0][dataPage*4096+9] ^= 0xff
			clear(m.page(0, zeroed*4096))
			m.mem[0][filled*4096+4000] = 0x42
			m.devices[1].state = []byte(`{"ns":987654321,"longer":true}`)

			j, err := stream.NewJournal(f, end+16<<20)
			if err != nil {
				t.Fatal(err)
			}
			w := stream.NewMappedWriterFrom(j, 0, m.typ, prev)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(w.Begin())
			must(w.RAMSetup(m.blocks))
			must(w.RAMIterBegin())
			for _, p := range []uint64{dataPage, zeroed, filled} {
				must(w.RAMPage("pc.ram", p*4096, m.page(0, p*4096)))
			}
			must(w.RAMIterEnd())
			must(w.RAMComplete())
			must(w.RAMIterEnd())
			var descs []stream.DeviceDesc
			for _, d := range m.devices {
				must(w.Device(d.idstr, d.instance, d.version, d.state))
				descs = append(descs, stream.DeviceDesc{Name: d.idstr, Instance: d.instance, Version: d.version})
			}
			must(w.Finish(descs))
			if j.Bytes() > 64<<10 {
				t.Errorf("journaled %d bytes for three pages", j.Bytes())
			}
			newEnd := w.FileEnd()
			want := old
			switch stop {
			case "before commit":
			case "after commit":
				must(j.Commit(newEnd))
				want = m.mem
			case "applied":
				must(j.Commit(newEnd))
				must(j.Apply())
				want = m.mem
			case "corrupt journal":
				must(j.Commit(newEnd))
				fi, _ := f.Stat()
				b := []byte{0}
				_, _ = f.ReadAt(b, fi.Size()-200)
				b[0] ^= 1
				_, _ = f.WriteAt(b, fi.Size()-200)
			}
			ok, err := stream.RecoverJournal(f)
			switch stop {
			case "corrupt journal":
				if !errors.Is(err, stream.ErrIntegrity) {
					t.Fatalf("RecoverJournal: %v %v", ok, err)
				}
			case "after commit":
				if !ok || err != nil {
					t.Fatalf("RecoverJournal: %v %v", ok, err)
				}
			default:
				if ok || err != nil {
					t.Fatalf("RecoverJournal: %v %v", ok, err)
				}
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			l, _, err := loadMappedFrom(f, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if !bytes.Equal(l.mem[i], want[i]) {
					t.Errorf("block %d is neither wholly old nor wholly new as expected (%s)", i, stop)
				}
			}
			if fi, _ := f.Stat(); stop != "corrupt journal" && stop != "before commit" && uint64(fi.Size()) != newEnd {
				t.Errorf("file of %d bytes after recovery, checkpoint ends at %d", fi.Size(), newEnd)
			}
			if stop == "applied" || stop == "after commit" {
				if string(l.devices[1].state) != string(m.devices[1].state) {
					t.Errorf("device state %s", l.devices[1].state)
				}
			}
		})
	}
}

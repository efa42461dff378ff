package stream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"tlcvm/migration/stream"
)

// postcopyStream writes a stream as a postcopy source does: header, OPEN_RETURN_PATH,
// PING 1, ADVISE, the RAM setup, a PART, DISCARD, PACKAGED (LISTEN, a device, PING 3,
// RUN), another PART, the END and the end of the stream. It returns the package too.
func postcopyStream(t testing.TB) ([]byte, []byte) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var pkgBuf bytes.Buffer
	pw := stream.NewPackageWriter(&pkgBuf)
	must(pw.Command(stream.CmdPostcopyListen, nil))
	must(pw.Device("serial0", 0, 1, []byte(`{"lsr":96}`)))
	must(pw.Ping(3))
	must(pw.Command(stream.CmdPostcopyRun, nil))
	must(pw.FinishPackage())
	pkg := pkgBuf.Bytes()

	var buf bytes.Buffer
	w := stream.NewWriter(&buf, "pc-i440fx-7.2")
	page := bytes.Repeat([]byte{7}, stream.PageSize)
	must(w.Begin())
	must(w.Command(stream.CmdOpenReturnPath, nil))
	must(w.Ping(1))
	must(w.Command(stream.CmdPostcopyAdvise, stream.AdviseData()))
	must(w.RAMSetup([]stream.Block{{Name: "pc.ram", Size: 1 << 20}}))
	must(w.RAMIterBegin())
	must(w.RAMPage("pc.ram", 0, page))
	must(w.RAMIterEnd())
	for _, d := range stream.DiscardCommands("pc.ram", []stream.Range{{Start: 4096, Length: 8192}}) {
		must(w.Command(stream.CmdPostcopyRAMDiscard, d))
	}
	must(w.Packaged(pkg))
	must(w.RAMIterBegin())
	must(w.RAMPage("pc.ram", 4096, page))
	must(w.RAMIterEnd())
	must(w.RAMComplete())
	must(w.RAMPage("pc.ram", 8192, page))
	must(w.RAMIterEnd())
	must(w.Finish(nil))
	return buf.Bytes(), pkg
}

// TestCommands reads a postcopy source's stream back: every command in its place with
// its data, the package verified and read by its own reader.
func TestCommands(t *testing.T) {
	data, pkg := postcopyStream(t)
	r := stream.NewReader(bytes.NewReader(data))
	r.ReportSectionEnd()
	var got []string
	each(t, r, func(rec stream.Record) {
		s := rec.Kind.String()
		if rec.Kind == stream.Command {
			s = rec.Cmd.String()
			switch rec.Cmd {
			case stream.CmdPing:
				s += ":" + string(rune('0'+binary.BigEndian.Uint32(rec.Data)))
			case stream.CmdPostcopyAdvise:
				if err := stream.ParseAdvise(rec.Data); err != nil {
					t.Fatal(err)
				}
			case stream.CmdPostcopyRAMDiscard:
				name, ranges, err := stream.ParseDiscard(rec.Data)
				if err != nil || name != "pc.ram" || !reflect.DeepEqual(ranges, []stream.Range{{Start: 4096, Length: 8192}}) {
					t.Fatalf("discard %q %v %v", name, ranges, err)
				}
			case stream.CmdPackaged:
				if !bytes.Equal(rec.Data, pkg) {
					t.Fatal("package changed on the way")
				}
			}
		}
		got = append(got, s)
	})
	want := "config OPEN_RETURN_PATH PING:1 POSTCOPY_ADVISE ram-blocks page section-end POSTCOPY_RAM_DISCARD PACKAGED page section-end page section-end end"
	if strings.Join(got, " ") != want {
		t.Fatalf("records\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	got = nil
	each(t, stream.NewPackageReader(pkg), func(rec stream.Record) {
		s := rec.Kind.String()
		switch rec.Kind {
		case stream.Command:
			s = rec.Cmd.String()
		case stream.Device:
			s += ":" + rec.IDStr
		}
		got = append(got, s)
	})
	if want := "POSTCOPY_LISTEN device:serial0 PING POSTCOPY_RUN end"; strings.Join(got, " ") != want {
		t.Fatalf("package records\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// each calls f with every record of r up to io.EOF; any error fails the test.
func each(t *testing.T, r *stream.Reader, f func(stream.Record)) {
	t.Helper()
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		f(rec)
	}
}

// TestPackageDamage: every flipped byte and every cut of a package is refused before its
// End, so no device state of a damaged package is applied.
func TestPackageDamage(t *testing.T) {
	_, pkg := postcopyStream(t)
	for i := range pkg {
		bad := bytes.Clone(pkg)
		bad[i] ^= 0x20
		if readPackage(bad) == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	for n := 0; n < len(pkg); n++ {
		if err := readPackage(pkg[:n]); !stream.IsStreamError(err) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	if err := readPackage(append(bytes.Clone(pkg), 0)); !errors.Is(err, stream.ErrFormat) {
		t.Fatalf("trailing byte: %v", err)
	}
}

func readPackage(pkg []byte) error {
	r := stream.NewPackageReader(pkg)
	for {
		rec, err := r.Next()
		if err != nil {
			return err
		}
		if rec.Kind == stream.End {
			_, err := r.Next()
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// TestResume: a stream broken in the middle of a PART continues on a new channel after
// Resume on both ends; what follows reads and verifies.
func TestResume(t *testing.T) {
	page := bytes.Repeat([]byte{9}, stream.PageSize)
	var first, second bytes.Buffer
	w := stream.NewWriter(&first, "pc")
	for _, err := range []error{w.Begin(), w.RAMSetup([]stream.Block{{Name: "pc.ram", Size: 1 << 20}}),
		w.RAMIterBegin(), w.RAMPage("pc.ram", 0, page), w.Flush(), w.RAMPage("pc.ram", 4096, page)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	w.Resume(&second) // the second page was buffered, never written: lost with the link
	for _, err := range []error{w.Command(stream.CmdPostcopyResume, nil), w.RAMIterBegin(),
		w.RAMPage("pc.ram", 4096, page), w.RAMIterEnd(), w.RAMComplete(), w.RAMIterEnd(), w.Finish(nil)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	r := stream.NewReader(bytes.NewReader(first.Bytes()))
	var pages []uint64
	for {
		rec, err := r.Next()
		if err != nil {
			if !errors.Is(err, stream.ErrTruncated) {
				t.Fatalf("broken channel: %v", err)
			}
			break
		}
		if rec.Kind == stream.Page {
			pages = append(pages, rec.Offset)
		}
	}
	r.Resume(bytes.NewReader(second.Bytes()))
	var cmds []stream.Cmd
	end := false
	each(t, r, func(rec stream.Record) {
		switch rec.Kind {
		case stream.Page:
			pages = append(pages, rec.Offset)
		case stream.Command:
			cmds = append(cmds, rec.Cmd)
		case stream.End:
			end = true
		}
	})
	if !end || !reflect.DeepEqual(pages, []uint64{0, 4096}) || !reflect.DeepEqual(cmds, []stream.Cmd{stream.CmdPostcopyResume}) {
		t.Fatalf("end %v pages %v commands %v", end, pages, cmds)
	}
}

// TestReturnPath writes every message and reads it back; REQ_PAGES names its block only
// when it changes, and a bitmap's size is checked against the block's.
func TestReturnPath(t *testing.T) {
	var buf bytes.Buffer
	rw := stream.NewRPWriter(&buf)
	bm := []uint64{0xff, 1 << 63}
	msgs := []stream.RPMessage{
		{Type: stream.RPPong, Value: 1},
		{Type: stream.RPReqPages, Block: "pc.ram", Start: 4096, Len: 8192},
		{Type: stream.RPReqPages, Block: "pc.ram", Start: 1 << 20, Len: 4096},
		{Type: stream.RPReqPages, Block: "vga.vram", Start: 0, Len: 4096},
		{Type: stream.RPRecvBitmap, Block: "pc.ram", Bitmap: bm, Pages: 128},
		{Type: stream.RPResumeAck, Value: stream.ResumeAckValue},
		{Type: stream.RPShut, Value: 0},
	}
	for _, m := range msgs {
		if err := rw.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	pages := func(b string) (uint64, bool) { return 128, b == "pc.ram" }
	rr := stream.NewRPReader(bytes.NewReader(buf.Bytes()), pages)
	wantTypes := []stream.RPType{stream.RPPong, stream.RPReqPagesID, stream.RPReqPages, stream.RPReqPagesID,
		stream.RPRecvBitmap, stream.RPResumeAck, stream.RPShut}
	for i, want := range msgs {
		got, err := rr.Next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got.Type != wantTypes[i] {
			t.Fatalf("message %d: type %s, want %s", i, got.Type, wantTypes[i])
		}
		want.Type = got.Type
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("message %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	if _, err := rr.Next(); err != io.EOF {
		t.Fatalf("after the last message: %v", err)
	}
	bad := stream.NewRPReader(bytes.NewReader(buf.Bytes()), func(string) (uint64, bool) { return 64, true })
	var err error
	for err == nil {
		_, err = bad.Next()
	}
	if !strings.Contains(err.Error(), "ramblock 'pc.ram' bitmap size mismatch (0x10 != 0x8)") {
		t.Fatalf("bitmap of a smaller block: %v", err)
	}
}

// TestMultifdPackets: init and page packets round-trip; QEMU's checks refuse the rest.
func TestMultifdPackets(t *testing.T) {
	uuid := [16]byte{1, 2, 3}
	in, err := stream.ParseMultifdInit(stream.MultifdInit{UUID: uuid, ID: 2}.Encode(), uuid, 4)
	if err != nil || in.ID != 2 {
		t.Fatal(in, err)
	}
	if _, err := stream.ParseMultifdInit(stream.MultifdInit{UUID: uuid, ID: 2}.Encode(), [16]byte{}, 4); err == nil ||
		!strings.Contains(err.Error(), "received uuid '01020300-0000-0000-0000-000000000000' and expected uuid '00000000-0000-0000-0000-000000000000' for channel 2") {
		t.Fatalf("uuid mismatch: %v", err)
	}
	data := bytes.Repeat([]byte{5}, 2*stream.PageSize)
	p := stream.MultifdPacket{Flags: stream.MultifdFlagSync, Normal: 2, PacketNum: 7, Block: "pc.ram", Offsets: []uint64{0, 8192}}
	enc := p.Encode(data)
	if len(enc) != stream.MultifdPacketSize {
		t.Fatalf("packet of %d bytes", len(enc))
	}
	size := func(b string) (uint64, bool) { return 1 << 20, b == "pc.ram" }
	got, err := stream.ParseMultifdPacket(enc, size)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.CheckData(data); err != nil {
		t.Fatal(err)
	}
	got.CRC, got.HasCRC = 0, false
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("\n got %+v\nwant %+v", got, p)
	}
	data[100] ^= 1
	if err := (stream.MultifdPacket{}).CheckData(data); !errors.Is(err, stream.ErrIntegrity) {
		t.Fatalf("packet without CRC: %v", err)
	}
	for _, c := range []struct {
		off  int
		v    uint32
		want string
	}{
		{0, 1, "received packet magic 1 and expected magic 11223344"},
		{12, 129, "received packet with 129 pages and expected maximum pages are 128"},
		{16, 100, "next packet size"},
	} {
		bad := bytes.Clone(enc)
		binary.BigEndian.PutUint32(bad[c.off:], c.v)
		if _, err := stream.ParseMultifdPacket(bad, size); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("byte %d = %d: %v, want %q", c.off, c.v, err, c.want)
		}
	}
	if _, err := stream.ParseMultifdPacket(enc, func(string) (uint64, bool) { return 4096, true }); err == nil ||
		!strings.Contains(err.Error(), "multifd: offset too long 8192 (max 1000)") {
		t.Fatalf("offset beyond the block: %v", err)
	}
}

// FuzzPackageReader: any package reads to a verified End or fails with a stream error.
func FuzzPackageReader(f *testing.F) {
	_, pkg := postcopyStream(f)
	f.Add(pkg)
	f.Add(pkg[:len(pkg)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := readPackage(data); err != nil && !stream.IsStreamError(err) {
			t.Fatalf("error %v wraps none of the sentinels", err)
		}
	})
}

// FuzzRPReader: return-path messages of any bytes are read or refused, never a panic;
// a bitmap is never larger than the block it names.
func FuzzRPReader(f *testing.F) {
	var buf bytes.Buffer
	rw := stream.NewRPWriter(&buf)
	_ = rw.Send(stream.RPMessage{Type: stream.RPReqPages, Block: "pc.ram", Start: 4096, Len: 4096})
	_ = rw.Send(stream.RPMessage{Type: stream.RPRecvBitmap, Block: "pc.ram", Bitmap: []uint64{3}, Pages: 64})
	_ = rw.Send(stream.RPMessage{Type: stream.RPShut})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		rr := stream.NewRPReader(bytes.NewReader(data), func(b string) (uint64, bool) { return 64, b == "pc.ram" })
		for {
			m, err := rr.Next()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, stream.ErrFormat) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if len(m.Bitmap) > 1 {
				t.Fatalf("bitmap of %d words for a 64-page block", len(m.Bitmap))
			}
		}
	})
}

// FuzzMultifd: init and page packet headers of any bytes are decoded or refused.
func FuzzMultifd(f *testing.F) {
	f.Add(stream.MultifdInit{ID: 1}.Encode())
	f.Add(stream.MultifdPacket{Normal: 1, Block: "pc.ram", Offsets: []uint64{4096}}.Encode(make([]byte, stream.PageSize)))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = stream.ParseMultifdInit(data, [16]byte{}, 8)
		p, err := stream.ParseMultifdPacket(data, func(b string) (uint64, bool) { return 1 << 20, b == "pc.ram" })
		if err == nil && (int(p.Normal) != len(p.Offsets) || p.Normal > stream.MultifdPagesPerPacket) {
			t.Fatalf("accepted %+v", p)
		}
		for _, off := range p.Offsets {
			if off >= 1<<20 || off%stream.PageSize != 0 {
				t.Fatalf("offset %d accepted", off)
			}
		}
	})
}

// FuzzCommandData: the decoders of command data refuse what they cannot decode.
func FuzzCommandData(f *testing.F) {
	for _, d := range stream.DiscardCommands("pc.ram", []stream.Range{{Start: 0, Length: 4096}}) {
		f.Add(d)
	}
	f.Add(stream.AdviseData())
	f.Add(stream.BlockNameData("pc.ram"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if name, ranges, err := stream.ParseDiscard(data); err == nil && (len(name) > 255 || len(ranges) == 0) {
			t.Fatalf("discard %q %v", name, ranges)
		}
		_ = stream.ParseAdvise(data)
		if name, err := stream.ParseBlockName(data); err == nil && len(name) != len(data)-1 {
			t.Fatalf("block name %q from %d bytes", name, len(data))
		}
	})
}

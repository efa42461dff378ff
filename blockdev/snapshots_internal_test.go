package blockdev

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestReadSnapshots reads the snapshot tables qemu-img writes and compares them with what
// qemu-img info says of them.
func TestReadSnapshots(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed (Debian: qemu-utils)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "s.qcow2")
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command("qemu-img", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
		return out
	}
	run("create", "-q", "-f", "qcow2", img, "16M")
	for _, name := range []string{"first", "a-much-longer-snapshot-name-than-sixteen", "third"} {
		run("snapshot", "-c", name, img)
	}
	run("snapshot", "-d", "first", img)
	var info struct {
		Snapshots []struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			VMStateSize uint64 `json:"vm-state-size"`
			DateSec     int64  `json:"date-sec"`
			DateNsec    int64  `json:"date-nsec"`
			VMClockSec  uint64 `json:"vm-clock-sec"`
			VMClockNsec uint64 `json:"vm-clock-nsec"`
			ICount      *int64 `json:"icount"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal(run("info", "--output=json", img), &info); err != nil {
		t.Fatal(err)
	}
	g := New(Config{})
	defer g.Close()
	n, err := g.Add(&Options{Driver: DriverQcow2, NodeName: "q", File: &Ref{Options: &Options{Driver: DriverFile, Filename: img}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := n.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(info.Snapshots) || len(got) != 2 {
		t.Fatalf("%d snapshots, qemu-img %d", len(got), len(info.Snapshots))
	}
	for i, w := range info.Snapshots {
		g := got[i]
		ic := int64(-1)
		if w.ICount != nil {
			ic = *w.ICount
		}
		if g.ID != w.ID || g.Name != w.Name || g.VMStateSize != w.VMStateSize || g.DateSec != w.DateSec ||
			g.DateNsec != w.DateNsec || g.VMClockNsec != w.VMClockSec*1e9+w.VMClockNsec || g.ICount != ic {
			t.Errorf("snapshot %d: %+v, qemu-img %+v", i, g, w)
		}
	}
}

// snapshotEntry encodes one table entry as qcow2 lays it out.
func snapshotEntry(id, name string, extra []byte) []byte {
	b := make([]byte, 40)
	be := binary.BigEndian
	be.PutUint16(b[12:], uint16(len(id)))
	be.PutUint16(b[14:], uint16(len(name)))
	be.PutUint32(b[16:], 1700000000)
	be.PutUint64(b[24:], 3723_004_000_000)
	be.PutUint32(b[32:], 4096)
	be.PutUint32(b[36:], uint32(len(extra)))
	b = append(append(append(b, extra...), id...), name...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// Damaged tables give errors, never a panic or a huge allocation.
func TestReadSnapshotsDamaged(t *testing.T) {
	good := append(snapshotEntry("1", "one", make([]byte, 24)), snapshotEntry("2", "two", nil)...)
	list, _, err := readSnapshots(bytes.NewReader(good), 2, 0)
	if err != nil || len(list) != 2 || list[0].ICount != 0 || list[1].ICount != -1 || list[1].VMStateSize != 4096 {
		t.Fatalf("good table: %+v, %v", list, err)
	}
	for name, c := range map[string]struct {
		b     []byte
		count uint32
	}{
		"truncated":    {good[:len(good)-9], 2},
		"too many":     {good, maxSnapshots + 1},
		"huge extra":   {func() []byte { b := append([]byte(nil), good...); b[36] = 0xff; return b }(), 1},
		"past the end": {good, 3},
	} {
		if _, _, err := readSnapshots(bytes.NewReader(c.b), c.count, 0); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzReadSnapshots feeds arbitrary snapshot tables to the parser.
func FuzzReadSnapshots(f *testing.F) {
	f.Add(append(snapshotEntry("1", "one", make([]byte, 24)), snapshotEntry("2", "two", nil)...), uint32(2))
	f.Add([]byte{}, uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, count uint32) {
		list, _, err := readSnapshots(bytes.NewReader(b), count%1024, 0)
		if err == nil && len(list) != int(count%1024) {
			t.Fatalf("%d snapshots for a count of %d", len(list), count%1024)
		}
	})
}

package tests_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// The geometry disk devices guess at realize from the image's partition table
// (hd_geometry_guess reading sector 0), against QEMU 7.2: qom-get of cyls, heads, secs
// and bios-chs-trans of ide-hd, and of the geometry of virtio-blk and scsi-hd.

// mbrImage writes a raw image of size bytes whose first partition ends on endHead and
// endSector.
func mbrImage(t *testing.T, path string, size int64, endHead, endSector byte) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 512)
	b[510], b[511] = 0x55, 0xaa
	p := b[0x1be:]
	p[5], p[6] = endHead, endSector
	binary.LittleEndian.PutUint32(p[12:], 2048)
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// runGeometry makes the images (each binary its own: QEMU may still hold its locks) and
// returns the devices' geometry properties.
func runGeometry(t *testing.T, bin string) string {
	dir := shortDir(t)
	mbrImage(t, filepath.Join(dir, "h4.raw"), 10<<20, 3, 32)
	mbrImage(t, filepath.Join(dir, "h255.raw"), 100<<20, 254, 63)
	mbrImage(t, filepath.Join(dir, "h255big.raw"), 8<<30, 254, 63)
	mbrImage(t, filepath.Join(dir, "plain.raw"), 10<<20, 3, 32)
	args := []string{"-machine", "pc", "-accel", "tcg", "-S", "-device", "virtio-scsi-pci,id=scsi0"}
	names := []string{"h4", "h255", "h255big", "plain"}
	for i, n := range names {
		dev := "ide-hd,bus=ide.0,unit=0"
		switch i {
		case 1:
			dev = "ide-hd,bus=ide.0,unit=1"
		case 2:
			dev = "virtio-blk-pci"
		case 3:
			dev = "scsi-hd,bus=scsi0.0"
		}
		args = append(args, "-drive", fmt.Sprintf("if=none,id=d%d,format=raw,file=%s", i, filepath.Join(dir, n+".raw")),
			"-device", fmt.Sprintf("%s,drive=d%d,id=%s", dev, i, n))
	}
	_, q, _ := startVM(t, bin, args...)
	var b strings.Builder
	for _, n := range names {
		props := []string{"cyls", "heads", "secs"}
		if strings.HasPrefix(n, "h4") || n == "h255" {
			props = append(props, "bios-chs-trans")
		}
		for _, p := range props {
			v := execOK(t, q, "qom-get", map[string]any{"path": "/machine/peripheral/" + n, "property": p})
			fmt.Fprintf(&b, "%s %s %s\n", n, p, v.String())
		}
	}
	return b.String()
}

func TestDiskGeometryFromMBRLikeQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := requireReference(t)
	parallel(t)
	want, got := runGeometry(t, ref), runGeometry(t, bin)
	if d := harness.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); d != "" {
		t.Errorf("geometry differs from QEMU 7.2's (- QEMU, + tlcvm):\n%s", d)
	}
	if !strings.Contains(want, "h4 heads 4") {
		t.Errorf("QEMU did not take the partition table's geometry:\n%s", want)
	}
}

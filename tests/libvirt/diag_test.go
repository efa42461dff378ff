package libvirt_test

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/dump"
	lv "tlcvm/internal/libvirttest"
)

// TestQ35Diagnostics is the story of issue 11's diagnostic operations on anchor2's q35
// domain (virtio-vga, VNC, serial console): virsh send-key (Linux key names, numbers,
// hold time) reaches the guest's keyboard handler, virsh screenshot saves the display,
// virsh dump --memory-only writes ELF and every kdump format libvirt offers.
func TestQ35Diagnostics(t *testing.T) {
	need(t)
	d, dir := newDomain(t, lv.Q35, workload)
	name := d.Name
	top := t
	var con *console

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"define", func(t *testing.T) {
			if err := virsh.Define(d, dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"start", func(t *testing.T) {
			mustRun(t, "start", "--paused", name)
			con = openConsole(t, top, name)
			mustRun(t, "resume", name)
			con.waitFor(t, banner, serialDeadline)
		}},
		{"send-key", func(t *testing.T) {
			mustRun(t, "send-key", name, "KEY_A")
			con.waitFor(t, "tlcvm guest: key 1e press", serialDeadline)
			con.waitFor(t, "tlcvm guest: key 9e release", serialDeadline)
			mustRun(t, "send-key", name, "--holdtime", "50", "KEY_LEFTCTRL", "KEY_LEFTALT", "KEY_DELETE")
			con.waitFor(t, "tlcvm guest: key 1d press\r\ntlcvm guest: key 38 press\r\ntlcvm guest: key e0 53 press\r\n"+
				"tlcvm guest: key e0 d3 release\r\ntlcvm guest: key b8 release\r\ntlcvm guest: key 9d release", serialDeadline)
			mustRun(t, "send-key", name, "--codeset", "xt", "0x2c")
			con.waitFor(t, "tlcvm guest: key 2c press", serialDeadline)
		}},
		{"screenshot", func(t *testing.T) {
			path := filepath.Join(dir, "screen")
			out := mustRun(t, "screenshot", name, path)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (virsh said %q)", err, out)
			}
			// libvirt asks for PNG when the schema offers screendump's format.
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("not a PNG (%v): virsh said %q", err, out)
			}
			if r := img.Bounds(); r.Dx() != 640 || r.Dy() != 480 {
				t.Errorf("screenshot is %v", r)
			}
		}},
		{"dump", func(t *testing.T) {
			path := filepath.Join(dir, "core.elf")
			mustRun(t, "dump", "--memory-only", name, path)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			c, err := dump.ReadELF(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			if c.Machine != 62 || len(c.Notes) != 4 || len(c.Phdrs) < 3 {
				t.Errorf("ELF core: machine %d, %d notes, %d program headers", c.Machine, len(c.Notes), len(c.Phdrs))
			}
			wantState(t, name, "running", "unpaused")
		}},
		{"dump kdump", func(t *testing.T) {
			for _, format := range []string{"kdump-zlib", "kdump-lzo", "kdump-snappy"} {
				path := filepath.Join(dir, "core."+format)
				mustRun(t, "dump", "--memory-only", "--format", format, name, path)
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				img, err := dump.Unflatten(f, 1<<34)
				f.Close()
				if err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				k, err := dump.ReadKdump(img)
				if err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				if k.NrCPUs != 2 || k.MaxMapnr != 0x100000 {
					t.Errorf("%s: %d CPUs, max_mapnr %#x", format, k.NrCPUs, k.MaxMapnr)
				}
				if _, err := k.Page(0x10); err != nil {
					t.Errorf("%s: %v", format, err)
				}
				os.Remove(path)
			}
		}},
		{"dump while paused stays paused", func(t *testing.T) {
			mustRun(t, "suspend", name)
			mustRun(t, "dump", "--memory-only", name, filepath.Join(dir, "core2.elf"))
			wantState(t, name, "paused", "user")
			mustRun(t, "resume", name)
		}},
		{"destroy", func(t *testing.T) {
			mustRun(t, "destroy", name)
			_ = lv.Poll(30*time.Second, 100*time.Millisecond, "shut off", func() (bool, error) {
				out, err := virsh.Run("domstate", name)
				return strings.Contains(out, "shut off"), err
			})
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			t.FailNow()
		}
	}
}

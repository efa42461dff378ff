package tests_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/dump"
	"tlcvm/tests/harness"
)

// headTail serves the first and the last bytes of a stream too long to keep.
type headTail struct {
	head, tail []byte
	size       int64
}

func (h headTail) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case off+int64(len(p)) <= int64(len(h.head)):
		return copy(p, h.head[off:]), nil
	case off >= h.size-int64(len(h.tail)) && off+int64(len(p)) <= h.size:
		return copy(p, h.tail[off-(h.size-int64(len(h.tail))):]), nil
	}
	return 0, fmt.Errorf("offset %d not kept", off)
}

// dumpPipe runs dump-guest-memory into a pipe (fd: protocol with getfd, as libvirt
// does), so that a dump of gigabytes of zeros costs no disk: it keeps the first keep
// bytes and the last 64.
func (v *mvm) dumpPipe(format string, paging bool, keep int) headTail {
	v.t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		v.t.Fatal(err)
	}
	done := make(chan headTail)
	go func() {
		var h headTail
		buf := make([]byte, 1<<20)
		for {
			n, err := r.Read(buf)
			b := buf[:n]
			if k := keep - len(h.head); k > 0 {
				h.head = append(h.head, b[:min(k, n)]...)
			}
			if n >= 64 {
				h.tail = append(h.tail[:0], b[n-64:]...)
			} else if h.tail = append(h.tail, b...); len(h.tail) > 64 {
				h.tail = append([]byte(nil), h.tail[len(h.tail)-64:]...)
			}
			h.size += int64(n)
			if err != nil {
				break
			}
		}
		r.Close()
		done <- h
	}()
	_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 1<<20) // fewer wake-ups: QEMU writes a page at a time
	v.doFiles("getfd", map[string]any{"fdname": "dump"}, w)
	w.Close()
	// Detached, as libvirt does: a dump of gigabytes takes longer than one QMP reply may;
	// the dump closes the pipe when it ends.
	args := map[string]any{"paging": paging, "protocol": "fd:dump", "detach": true}
	if format != "" {
		args["format"] = format
	}
	v.do("dump-guest-memory", args)
	select {
	case h := <-done:
		st, _ := v.do("query-dump", nil).Get("status")
		for st.Str() == "active" { // the fd is closed just before the status is set
			time.Sleep(5 * time.Millisecond)
			st, _ = v.do("query-dump", nil).Get("status")
		}
		if st.Str() != "completed" {
			v.t.Fatalf("dump %s", st.Str())
		}
		return h
	case <-time.After(5 * time.Minute):
		v.t.Fatal("the dump's pipe was not closed")
	}
	return headTail{}
}

// dumpTo runs dump-guest-memory to path (format "" is elf) and returns the file.
func (v *mvm) dumpTo(path, format string, paging bool) []byte {
	v.t.Helper()
	args := map[string]any{"paging": paging, "protocol": "file:" + path}
	if format != "" {
		args["format"] = format
	}
	v.do("dump-guest-memory", args)
	b, err := os.ReadFile(path)
	if err != nil {
		v.t.Fatal(err)
	}
	return b
}

// elfShape is what must be equal between QEMU's and tlcvm's ELF cores: the headers, the
// program headers (p_offset included) and the notes' names, types and sizes. Memory
// contents differ (QEMU's guest is SeaBIOS).
func elfShape(t *testing.T, h headTail) string {
	t.Helper()
	c, err := dump.ReadELF(h, h.size)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "class64=%v machine=%d ehsize=%d phoff=%d shoff=%d shnum=%d shstrndx=%d shstrtab=%q size=%d\n",
		c.Class64, c.Machine, c.Ehsize, c.Phoff, c.Shoff, c.Shnum, c.Shstrnd, c.Shstrtab, h.size)
	for _, p := range c.Phdrs {
		fmt.Fprintf(&sb, "type=%d offset=%#x vaddr=%#x paddr=%#x filesz=%#x memsz=%#x\n", p.Type, p.Offset, p.Vaddr, p.Paddr, p.Filesz, p.Memsz)
	}
	for _, n := range c.Notes {
		fmt.Fprintf(&sb, "note %s type=%d size=%d\n", n.Name, n.Type, len(n.Desc))
	}
	return sb.String()
}

// kdumpShape is the kdump file's headers, notes and bitmaps (the page data differs).
func kdumpShape(t *testing.T, b []byte) string {
	t.Helper()
	img, err := dump.Unflatten(bytes.NewReader(b), 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	k, err := dump.ReadKdump(img)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "class64=%v version=%d machine=%q status=%d block=%d subhdr=%d bitmap=%d maxmapnr=%#x cpus=%d level=%d note=%#x+%d\n",
		k.Class64, k.HeaderVersion, k.Machine, k.Status, k.BlockSize, k.SubHdrSize, k.BitmapBlocks, k.MaxMapnr, k.NrCPUs, k.DumpLevel, k.OffsetNote, k.NoteSize)
	for _, n := range k.Notes {
		fmt.Fprintf(&sb, "note %s type=%d size=%d\n", n.Name, n.Type, len(n.Desc))
	}
	fmt.Fprintf(&sb, "bitmaps equal=%v dumpable:", bytes.Equal(k.Bitmap1, k.Bitmap2))
	run := int64(-1)
	for pfn := uint64(0); pfn <= k.MaxMapnr; pfn++ {
		on := pfn < k.MaxMapnr && k.Dumpable(pfn)
		switch {
		case on && run < 0:
			run = int64(pfn)
		case !on && run >= 0:
			fmt.Fprintf(&sb, " %#x-%#x", run, pfn)
			run = -1
		}
	}
	return sb.String()
}

// TestDumpLayoutBesideQEMU: for the same machine, memory size and vCPUs, stopped before
// the firmware runs (-S), tlcvm's ELF and kdump files have QEMU 7.2's structure: the
// same headers, program headers (offsets included), notes, bitmaps and size.
func TestDumpLayoutBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	for _, c := range []struct {
		name      string
		args      []string
		kdumpOnly bool // a big ELF (QEMU writes it a page per write) costs minutes under load
	}{
		{"pc-256M", []string{"-machine", "pc", "-m", "256"}, false},
		{"pc-256M-vga", []string{"-machine", "pc", "-m", "256", "-vga", "std"}, false},
		{"q35-2880M-smp2", []string{"-machine", "q35", "-m", "2880", "-smp", "2"}, false},               // 2 GiB low, 832 MiB above 4 GiB
		{"pc-3.5G-virtio-vga", []string{"-machine", "pc", "-m", "3584", "-device", "virtio-vga"}, true}, // 3 GiB low, 512 MiB above
	} {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			shapes := map[string][2]string{}
			for _, b := range []struct{ name, bin string }{{"qemu", ref}, {"tlcvm", bin}} {
				v := startMigVM(t, b.bin, dir, b.name, append([]string{"-S"}, c.args...)...)
				elf := ""
				if !c.kdumpOnly {
					elf = elfShape(t, v.dumpPipe("", false, 64<<10))
				}
				kd := v.dumpPipe("kdump-zlib", false, 1<<30)
				shapes[b.name] = [2]string{elf, kdumpShape(t, kd.head)}
				v.quit()
			}
			if q, tl := shapes["qemu"], shapes["tlcvm"]; q != tl {
				t.Errorf("ELF:\nQEMU:\n%s\ntlcvm:\n%s\nkdump:\nQEMU:\n%s\ntlcvm:\n%s", q[0], tl[0], q[1], tl[1])
			}
		})
	}
}

// loadLayout is the (paddr, memsz) of each PT_LOAD: what must match between a running
// QEMU (SeaBIOS has run) and a running tlcvm (its firmware has run), whose vCPUs are in
// different modes (so the notes, and the offsets after them, differ).
func loadLayout(t *testing.T, h headTail) string {
	c, err := dump.ReadELF(h, h.size)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, p := range c.Phdrs[1:] {
		fmt.Fprintf(&sb, "%#x+%#x ", p.Paddr, p.Memsz)
	}
	return sb.String()
}

// TestDumpRunningLayoutBesideQEMU: once the firmware has run (PAM regions turned to RAM,
// the VGA's video RAM mapped), tlcvm's PT_LOADs are QEMU's.
func TestDumpRunningLayoutBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	for _, c := range []struct {
		name string
		args []string
		bar  string // the video RAM's PT_LOAD once the firmware has assigned the BARs
	}{
		{"pc-256M", []string{"-machine", "pc", "-m", "256"}, ""},
		{"q35-256M-vga", []string{"-machine", "q35", "-m", "256", "-vga", "std"}, "0xfd000000+0x1000000 "},
		{"pc-512M-vga", []string{"-machine", "pc", "-m", "512", "-vga", "std"}, "0xfd000000+0x1000000 "},
	} {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			got := map[string]string{}
			for _, b := range []struct{ name, bin string }{{"qemu", ref}, {"tlcvm", bin}} {
				v := startMigVM(t, b.bin, dir, b.name, c.args...)
				// The firmware has run once pc.rom (128 KiB at 0xc0000) is gone and the
				// video RAM mapped: dump until then (a deadline, no timing assumption).
				// SeaBIOS passes through intermediate maps (shadowing its ROM): wait for
				// the same final map twice in a row.
				deadline := time.Now().Add(60 * time.Second)
				last := ""
				for {
					l := loadLayout(t, v.dumpPipe("", false, 64<<10))
					final := !strings.Contains(l, "0xc0000+0x20000 ") && strings.Contains(l, c.bar)
					if final && l == last || time.Now().After(deadline) {
						got[b.name] = l
						break
					}
					last = l
					time.Sleep(20 * time.Millisecond)
				}
				v.quit()
			}
			if got["qemu"] != got["tlcvm"] {
				t.Errorf("PT_LOADs after the firmware:\nQEMU:  %s\ntlcvm: %s", got["qemu"], got["tlcvm"])
			}
		})
	}
}

// TestDumpCoreInGDB: gdb opens tlcvm's ELF dump of a running guest as a core: one thread
// per vCPU, the registers of NT_PRSTATUS (the workload's RIP and vCPU index), and guest
// memory at its physical address (the page tables' first entry).
func TestDumpCoreInGDB(t *testing.T) {
	bin := requireCandidate(t)
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		t.Skip("gdb is not installed")
	}
	parallel(t)
	dir := shortDir(t)
	v := startMigVM(t, bin, dir, "vm", "-machine", "q35", "-m", "128", "-smp", "2")
	defer v.quit()
	wants := []string{"LWP 1", "LWP 2", "r14            0x1 ", "r15            0x2 ", "0x10000:\t0x0000000000011003"}
	// Until both vCPUs have run the workload's start (a busy host may not have scheduled
	// them yet) the dump holds reset state: dump again, within a deadline.
	deadline := time.Now().Add(60 * time.Second)
	for try := 1; ; try++ {
		v.do("stop", nil)
		path := filepath.Join(dir, fmt.Sprintf("core%d", try))
		v.dumpTo(path, "", false)
		regs := v.do("human-monitor-command", map[string]any{"command-line": "info registers"}).Str()
		out, err := exec.Command(gdb, "-nx", "-batch", "-ex", "set architecture i386:x86-64", "-ex", "core-file "+path,
			"-ex", "info threads", "-ex", "thread 2", "-ex", "info registers rip r14 r15", "-ex", "x/gx 0x10000").CombinedOutput()
		if err != nil {
			t.Fatalf("gdb: %v\n%s", err, out)
		}
		os.Remove(path)
		s := string(out)
		var missing []string
		for _, want := range wants {
			if !strings.Contains(s, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().Before(deadline) {
			t.Logf("try %d: the dump lacks %q (a vCPU not started yet?); again", try, missing)
			v.do("cont", nil)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		t.Fatalf("gdb output lacks %q:\n%s\n(info registers of vCPU 0:\n%s)", missing, s, regs)
	}
}

// TestDumpKdumpMakedumpfile: makedumpfile (the format's own tool) rearranges every
// kdump format tlcvm writes and reads its headers back; our reader decompresses every
// page and finds the guest's memory (the page tables at 0x10000).
func TestDumpKdumpMakedumpfile(t *testing.T) {
	bin := requireCandidate(t)
	mdf, err := exec.LookPath("makedumpfile")
	if err != nil {
		t.Skip("makedumpfile is not installed (scripts/deps.sh installs it)")
	}
	parallel(t)
	dir := shortDir(t)
	v := startMigVM(t, bin, dir, "vm", "-machine", "pc", "-m", "64")
	waitBooted(t, v.q) // in long mode: its page tables are written (a busy host may not have run it yet)
	v.do("stop", nil)
	for _, f := range []string{"kdump-zlib", "kdump-lzo", "kdump-snappy"} {
		flat := filepath.Join(dir, f+".flat")
		v.dumpTo(flat, f, false)
		std := filepath.Join(dir, f+".std")
		cmd := exec.Command(mdf, "-R", std)
		in, _ := os.Open(flat)
		cmd.Stdin = in
		out, err := cmd.CombinedOutput()
		in.Close()
		if err != nil {
			t.Fatalf("%s: makedumpfile -R: %v\n%s", f, err, out)
		}
		info := filepath.Join(dir, "vmcoreinfo")
		_ = os.WriteFile(info, []byte("OSRELEASE=0\nPAGESIZE=4096\n"), 0o644)
		out, _ = exec.Command(mdf, "--message-level", "31", "-d", "1", "-i", info, std, filepath.Join(dir, "out")).CombinedOutput()
		for _, want := range []string{"signature        : KDUMP", "header_version   : 6", "block_size       : 4096",
			"nr_cpus          : 1", "dump_level       : 1", "max_mapnr_64     : 0x100000"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: makedumpfile's header dump lacks %q:\n%s", f, want, out)
			}
		}
		img, err := os.ReadFile(std)
		if err != nil {
			t.Fatal(err)
		}
		k, err := dump.ReadKdump(img)
		if err != nil {
			t.Fatal(err)
		}
		compressed := 0
		for pfn := uint64(0); pfn < k.MaxMapnr; pfn++ {
			if !k.Dumpable(pfn) {
				continue
			}
			p, err := k.Page(pfn)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if d, _ := k.Desc(pfn); d.Flags != 0 {
				compressed++
			}
			if pfn == 0x10 && !bytes.Equal(p[:8], []byte{0x03, 0x10, 0x01, 0, 0, 0, 0, 0}) {
				t.Errorf("%s: PML4[0] is % x", f, p[:8])
			}
		}
		if compressed == 0 {
			t.Errorf("%s: no page compressed", f)
		}
	}
	v.quit()
}

// TestDumpBlocksMigration: while a detached dump runs (here held by a pipe nobody reads
// yet), migrate fails with QEMU's blocker text, cont with QEMU's "There is a dump in
// process", query-dump says active and the VM is in save-vm; once the pipe drains the
// dump completes and the VM runs again.
func TestDumpBlocksMigration(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	v := startMigVM(t, bin, dir, "vm", "-machine", "pc", "-m", "256")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	v.doFiles("getfd", map[string]any{"fdname": "dump"}, w)
	w.Close()
	v.do("dump-guest-memory", map[string]any{"paging": false, "protocol": "fd:dump", "detach": true})
	m, err := v.q.Execute("migrate", map[string]any{"uri": "exec:cat >/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.Raw), "Live migration disabled: dump-guest-memory in progress") {
		t.Errorf("migrate during a dump: %s", m.Raw)
	}
	if s := v.do("query-dump", nil).String(); !strings.Contains(s, `"status": "active"`) {
		t.Errorf("query-dump %s", s)
	}
	if s := v.status(); s != "save-vm" {
		t.Errorf("status %s during the dump", s)
	}
	// QEMU 7.2's qmp_cont refuses too (checked against the binary): the dump reads guest
	// RAM while the vCPUs are stopped.
	if m, err := v.q.Execute("cont", nil); err != nil || !strings.Contains(string(m.Raw), "There is a dump in process, please wait.") {
		t.Errorf("cont during a dump: %s (%v)", m.Raw, err)
	}
	if s := v.status(); s != "save-vm" {
		t.Errorf("status %s after cont during the dump", s)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(harness.DefaultTimeout)
	for v.status() != "running" {
		if time.Now().After(deadline) {
			t.Fatalf("still %s after the dump", v.status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := v.do("query-dump", nil).String(); !strings.Contains(s, `"status": "completed"`) {
		t.Errorf("query-dump %s", s)
	}
	v.quit()
}

// TestDumpLongModeBesideQEMU: with a QEMU guest in long mode on tlcvm's own page tables
// (testdata/longmode.bin, a boot sector: PML4 at 0x10000, 2 MiB pages over the first GiB),
// both binaries write the same x86_64 core: EM_X86_64, an x86_64 NT_PRSTATUS and a QEMU
// note per vCPU, and, with paging=true, the PT_LOADs of the page-table walk (virtual
// addresses 0xffff…, merged, clamped to RAM).
func TestDumpLongModeBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	parallel(t)
	dir := shortDir(t)
	mbr, _ := filepath.Abs("testdata/longmode.bin")
	img := filepath.Join(dir, "disk.img")
	b, err := os.ReadFile(mbr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, append(b, make([]byte, 1<<20-len(b))...), 0o644); err != nil {
		t.Fatal(err)
	}
	shapes := map[string]string{}
	for _, s := range []struct{ name, bin string }{{"qemu", ref}, {"tlcvm", bin}} {
		v := startMigVM(t, s.bin, dir, s.name, "-machine", "pc", "-m", "128", "-smp", "2",
			"-drive", "file="+img+",format=raw,if=ide")
		deadline := time.Now().Add(60 * time.Second)
		var shape string
		for {
			shape = elfShape(t, v.dumpPipe("", true, 64<<10))
			if strings.Contains(shape, "machine=62 ") || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		shapes[s.name] = shape + elfShape(t, v.dumpPipe("", false, 64<<10))
		v.quit()
	}
	if shapes["qemu"] != shapes["tlcvm"] {
		t.Errorf("long-mode cores differ:\nQEMU:\n%s\ntlcvm:\n%s", shapes["qemu"], shapes["tlcvm"])
	}
	if !strings.Contains(shapes["tlcvm"], "vaddr=0xffff000000000000 paddr=0x0 filesz=0x8000000 memsz=0x8000000") {
		t.Errorf("no page-table mapping in:\n%s", shapes["tlcvm"])
	}
}

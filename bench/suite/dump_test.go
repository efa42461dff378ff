package suite_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"tlcvm/bench/suite"
)

// dumpResult is a made-up run: tlcvm's ELF dump fast and sparse, its kdump slower than QEMU's,
// QEMU's third kdump failed.
func dumpResult() *suite.DumpResult {
	o := suite.DumpOptions{MemMiB: 4096, WSMiB: 64, Formats: []string{suite.DumpELF, suite.DumpKdumpZlib}, Reps: 3}
	res := &suite.DumpResult{Opts: o, Guests: map[string]*suite.DumpGuest{
		suite.CkTLCVM: {Side: suite.CkTLCVM, NonZeroBytes: 64 << 20},
		suite.CkQEMU:  {Side: suite.CkQEMU, NonZeroBytes: 66 << 20},
	}}
	add := func(side, f string, ms float64, size, disk int64, err string) {
		res.Dumps = append(res.Dumps, suite.DumpRecord{Side: side, Format: f, MS: ms, CPUMS: ms / 2, Size: size, DiskBytes: disk,
			Err: err})
	}
	for _, ms := range []float64{40, 50, 45} {
		add(suite.CkTLCVM, suite.DumpELF, ms, 4<<30, 65<<20, "")
		add(suite.CkQEMU, suite.DumpELF, ms*150, 4<<30, 4<<30, "")
		add(suite.CkTLCVM, suite.DumpKdumpZlib, ms*50, 43<<20, 43<<20, "")
	}
	add(suite.CkQEMU, suite.DumpKdumpZlib, 1700, 47<<20, 47<<20, "")
	add(suite.CkQEMU, suite.DumpKdumpZlib, 1800, 47<<20, 47<<20, "")
	add(suite.CkQEMU, suite.DumpKdumpZlib, 0, 0, 0, "GenericError: boom")
	return res
}

func dumpRow(t *testing.T, rows []suite.DumpRow, prefix string) suite.DumpRow {
	t.Helper()
	for _, r := range rows {
		if strings.HasPrefix(r.Metric, prefix) {
			return r
		}
	}
	t.Fatalf("no row %q in %+v", prefix, rows)
	return suite.DumpRow{}
}

func TestDumpRows(t *testing.T) {
	rows := suite.DumpRows(dumpResult())
	for _, c := range []struct {
		prefix      string
		tlcvm, qemu float64
		ratio       float64
		judged, met bool
	}{
		{"elf: dump-guest-memory", 45, 6750, 45.0 / 6750, true, true},
		{"elf: apparent", 4096, 4096, 1, false, false},
		{"elf: the emulator's CPU", 22.5, 3375, 22.5 / 3375, false, false},
		{"elf: blocks", 65, 4096, 65.0 / 64, true, true},
		{"kdump-zlib: dump-guest-memory", 2250, 1750, 2250.0 / 1750, true, false},
		{"kdump-zlib: blocks", 43, 47, 43.0 / 64, false, false},
		{"tlcvm's guest", 64, math.NaN(), 1, false, false},
		{"qemu's guest", math.NaN(), 66, 66.0 / 64, false, false},
	} {
		r := dumpRow(t, rows, c.prefix)
		same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) || math.Abs(a-b) < 1e-9 }
		if !same(r.TLCVM, c.tlcvm) || !same(r.QEMU, c.qemu) || !same(r.Ratio, c.ratio) || r.Judged != c.judged || r.Met != c.met {
			t.Errorf("%s: got %+v, want tlcvm %v qemu %v ratio %v judged %v met %v", c.prefix, r, c.tlcvm, c.qemu, c.ratio, c.judged, c.met)
		}
	}
	md := suite.DumpMarkdown(rows)
	for _, want := range []string{"| elf: dump-guest-memory → return, median (ms) | 45.00 | 6750 | 0.007 | QEMU |", "| **no** |",
		"| yes |"} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

func TestDumpRowsFailedSide(t *testing.T) {
	res := &suite.DumpResult{Opts: suite.DumpOptions{WSMiB: 64, Formats: []string{suite.DumpELF}},
		Guests: map[string]*suite.DumpGuest{suite.CkQEMU: {Err: "emu: exited"}}}
	res.Dumps = []suite.DumpRecord{{Side: suite.CkTLCVM, Format: suite.DumpELF, MS: 40, Size: 1, DiskBytes: 1}}
	r := dumpRow(t, suite.DumpRows(res), "elf: dump-guest-memory")
	if r.QE != "emu: exited" || r.Judged || !math.IsNaN(r.QEMU) {
		t.Fatalf("%+v", r)
	}
	if md := suite.DumpMarkdown(suite.DumpRows(res)); !strings.Contains(md, "failed: emu: exited") {
		t.Fatalf("table:\n%s", md)
	}
	if suite.DumpRows(nil) != nil {
		t.Fatal("rows of no result")
	}
}

func TestRunDumpOptions(t *testing.T) {
	for _, o := range []suite.DumpOptions{
		{},
		{TLCVM: "/bin/true", MemMiB: 64, WSMiB: 64, Dir: t.TempDir()},
	} {
		if _, err := suite.RunDump(context.Background(), o); !errors.Is(err, suite.ErrOptions) {
			t.Errorf("RunDump(%+v): %v, want ErrOptions", o, err)
		}
	}
}

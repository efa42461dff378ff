package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"tlcvm/bench/suite"
)

// Sections "tlcvm-bench dump" and "tlcvm-bench dirtyrate" own.
const (
	DumpSection      = "dump"
	DirtyRateSection = "dirtyrate"
)

// runDump is "tlcvm-bench dump [flags]": dump-guest-memory (ELF, kdump-zlib) of a 4 GiB guest
// that wrote 64 MiB, beside QEMU 7.2 in one run.
func runDump(argv []string) int {
	s := &sub{name: "tlcvm-bench dump", section: DumpSection}
	fs := flag.NewFlagSet(s.name, flag.ContinueOnError)
	var (
		o          suite.DumpOptions
		mem, ws    string
		formats    string
		minFreeGiB int
	)
	s.flags(fs)
	fs.StringVar(&o.Kernel, "kernel", envOr("DIRTY_ELF", "/tmp/tlcvm-bench/guest/dirty.elf"),
		"QEMU's guest, the kit's dirty.elf (env DIRTY_ELF); missing: QEMU is skipped")
	fs.StringVar(&o.Dir, "image-dir", "/tmp/tlcvm-bench/dump", "where the dumps go (each deleted after use)")
	fs.StringVar(&mem, "m", "4G", "guest RAM")
	fs.StringVar(&ws, "ws", "64M", "RAM the guest writes (its working set)")
	fs.StringVar(&formats, "formats", suite.DumpELF+","+suite.DumpKdumpZlib, "dump-guest-memory formats")
	fs.IntVar(&o.Reps, "reps", 3, "dumps per side and format (the median is shown)")
	fs.DurationVar(&o.Cap, "cap", 300*time.Second, "limit of one step (start, fill, dump)")
	fs.IntVar(&minFreeGiB, "min-free", 12, "refuse to start with less free space (GiB) under -image-dir")
	if st := s.parse(fs, argv); st != 0 {
		return st
	}
	var err error
	if o.MemMiB, err = suite.ParseMiB(mem); err == nil {
		o.WSMiB, err = suite.ParseMiB(ws)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
		return 2
	}
	o.Formats = strings.Split(formats, ",")
	if st := prepareDir(s.name, o.Dir, minFreeGiB); st != 0 {
		return st
	}
	o.TLCVM, o.QEMU = s.tlcvm, s.qemu
	head := fmt.Sprintf("- guests: `-machine pc -m %s -nodefaults -display none`; tlcvm's workload `ws=%s,,rate=%s` "+
		"(one pass a second, so that what is dumped is the same run to run), "+
		"QEMU's guest `-kernel %s -append \"ws=%d delay=0\"` (TCG); each waits for its pass counter (0x500) to reach 1 "+
		"(working set filled and rewritten once), then `stop`\n"+
		"- each dump `dump-guest-memory` with `paging: false`, `protocol: file:…` under `%s` (the page cache, nothing "+
		"fsynced; syncfs before each dump, outside the timed interval), synchronous (the reply follows "+
		"`DUMP_COMPLETED`); %d per side and format, sides in turns; the time is the command sent → its return\n",
		mem, ws, ws, o.Kernel, o.WSMiB, o.Dir, o.Reps)
	return s.run(head, func(ctx context.Context, record func(any) error, progress *os.File) (string, map[string]any, error) {
		o.Record = record
		if progress != nil {
			o.Progress = progress
		}
		res, err := suite.RunDump(ctx, o)
		return suite.DumpMarkdown(suite.DumpRows(res)), nil, err
	})
}

// runDirtyRate is "tlcvm-bench dirtyrate [flags]": calc-dirty-rate against the workload's
// configured rate, in every mode tlcvm offers.
func runDirtyRate(argv []string) int {
	s := &sub{name: "tlcvm-bench dirtyrate", section: DirtyRateSection}
	fs := flag.NewFlagSet(s.name, flag.ContinueOnError)
	var (
		o            suite.DrOptions
		rates, calcs string
	)
	s.flags(fs)
	fs.StringVar(&rates, "rates", "1,10,100,1000", "configured rates (MiB/s, the workload's rate=NM)")
	fs.StringVar(&calcs, "calc-times", "", "calc-time per rate, s (default: 10 below 100 MiB/s, else 2)")
	fs.IntVar(&o.Reps, "reps", 3, "measurements per rate and mode")
	fs.IntVar(&o.SMP, "smp", 1, "vCPUs of each guest")
	fs.IntVar(&o.SamplePages, "sample-pages", 16384, "page-sampling's sample-pages per GiB")
	fs.IntVar(&o.RingSize, "ring", 4096, "x-dirty-ring-size of the dirty-ring guest (-1: leave dirty-ring out)")
	fs.IntVar(&o.CeilingWSMiB, "ceiling-ws", 1024, "working set (MiB) of the rate=max guest that shows the host's ceiling (-1: leave it out)")
	fs.DurationVar(&o.Cap, "cap", 120*time.Second, "limit of one step (start, fill, one measurement past its calc-time)")
	if st := s.parse(fs, argv); st != 0 {
		return st
	}
	var err error
	if o.Rates, err = ints(rates); err == nil && calcs != "" {
		o.CalcTimes, err = ints(calcs)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
		return 2
	}
	o.TLCVM = s.tlcvm
	head := fmt.Sprintf("- each rate R MiB/s with calc-time T: `-machine pc -smp %d -m WS+512M -fw_cfg "+
		"name=opt/tlcvm/workload,string=ws=WS,,rate=RM`, WS = max(16, 1.5·R·T) MiB (a page rewritten within one "+
		"period counts once, as in QEMU); page-sampling (`sample-pages` %d) and dirty-bitmap in turns on one guest, "+
		"dirty-ring on a second one with `-accel tcg,x-dirty-ring-size=%d` (QEMU allows dirty-ring only with a "+
		"dirty ring, and then refuses dirty-bitmap); %d measurements per rate and mode, after the working set was "+
		"filled and rewritten twice (a guest that fell behind its pace during the fill catches up at full speed)\n"+
		"- QEMU reports whole MiB/s (`pages*4096>>20` MiB over the period, ×1000/ms, integer division), so at 1 MiB/s "+
		"a measurement reads 0, 1 or 2\n"+
		"- workload's counters: the harness reads each vCPU's pages-written counter (`xp 0x508`, published at the end "+
		"of every pass over the working set) every 20 ms throughout and divides the pages between the first and last "+
		"change it saw by the time between them: the rate the guest achieved, without the dirty log\n",
		o.SMP, o.SamplePages, o.RingSize, o.Reps)
	return s.run(head, func(ctx context.Context, record func(any) error, progress *os.File) (string, map[string]any, error) {
		o.Record = record
		if progress != nil {
			o.Progress = progress
		}
		res, err := suite.RunDirtyRate(ctx, o)
		return suite.DrMarkdown(suite.DrRows(res)) + suite.DrCeiling(res), nil, err
	})
}

// ints parses a comma-separated list of integers.
func ints(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

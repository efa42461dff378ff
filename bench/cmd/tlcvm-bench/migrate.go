package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"tlcvm/bench/suite"
)

// MigrateSection is the BENCHMARKS.md section "tlcvm-bench migrate" owns.
const MigrateSection = "migrate"

// multifd says how the runs' migrations use connections.
func multifd(n int) string {
	if n <= 0 {
		return "one connection (multifd off)"
	}
	return fmt.Sprintf("multifd on both ends, %d channels", n)
}

// runMigrate is "tlcvm-bench migrate [flags]": live migration over a veth pair between two
// network namespaces the benchmark creates (and deletes), tlcvm beside QEMU 7.2 running the
// peer kit's guest under TCG, interleaved, with the link's own TCP throughput in the same run.
// Needs root (ip netns).
func runMigrate(argv []string) int {
	s := &sub{name: "tlcvm-bench migrate", section: MigrateSection}
	fs := flag.NewFlagSet(s.name, flag.ContinueOnError)
	var (
		o                 suite.MigOptions
		mems, scen, sides string
	)
	s.flags(fs)
	fs.StringVar(&o.Kernel, "kernel", envOr("DIRTY_ELF", "/tmp/tlcvm-bench/guest/dirty.elf"), "QEMU's guest: the kit's dirty.elf (env DIRTY_ELF)")
	fs.StringVar(&mems, "mems", "1G,4G", "comma-separated guest RAM sizes")
	fs.StringVar(&scen, "scenarios", "idle,written,ws64,ws512", "comma-separated: idle (never started), written (all RAM written, then stopped) or wsN (N MiB rewritten continuously)")
	fs.IntVar(&o.PostcopyWS, "postcopy-ws", 512, "also a postcopy try for the wsN scenarios with this N (0 = none)")
	fs.StringVar(&sides, "sides", "", "comma-separated subset of: tlcvm,qemu")
	fs.IntVar(&o.Reps, "reps", 1, "tries per side, scenario and mode")
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "guest runs this long before migrate")
	fs.DurationVar(&o.Cap, "cap", 60*time.Second, "a migration not completed by then is cancelled and counts as not converged")
	fs.Int64Var(&o.MaxBandwidth, "max-bandwidth", 100<<30, "migrate-set-parameters max-bandwidth on the source, bytes/s")
	fs.IntVar(&o.Multifd, "multifd", 0, "multifd-channels on both ends, the multifd capability on (0: off, one connection)")
	fs.DurationVar(&o.LinkFor, "link-for", 3*time.Second, "length of each measurement of the link's own TCP throughput")
	if st := s.parse(fs, argv, &o.Kernel); st != 0 {
		return st
	}
	var err error
	if o.Scenarios, err = suite.ParseMigScenarios(mems, scen); err == nil {
		var m map[string]bool
		if m, err = set(sides, suite.QEMU, suite.TLCVM); m != nil {
			for _, x := range []string{suite.QEMU, suite.TLCVM} {
				if m[x] {
					o.Sides = append(o.Sides, x)
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
		return 2
	}
	o.TLCVM, o.QEMU = s.tlcvm, s.qemu
	n := suite.DefaultMigNet
	head := fmt.Sprintf("- QEMU's guest: `%s` (the peer kit's dirty.elf, `ws=N delay=0`) under TCG; tlcvm's: "+
		"`-fw_cfg name=opt/tlcvm/workload,string=ws=NM,,rate=max` (idle: `idle`, never started); written: `ws=` RAM − 2 MiB "+
		"on both (dirty.elf stops at the RAM below 4 GiB: 3070 MiB at 4 GiB), the guest stopped (`stop`) once the pass counter "+
		"at 0x500 (HMP `xp`) shows a whole pass done, then `migrate`\n"+
		"- link: veth pair between network namespaces %s (%s/30) and %s (%s/30), created by the run and deleted after; "+
		"source in the first, destination (`-incoming defer`, `migrate-incoming tcp:%s:PORT`) in the second\n"+
		"- %d tries per side, scenario and mode, interleaved; warm-up %v; source max-bandwidth %d B/s, downtime-limit "+
		"left at the default (300 ms); %s; cap %v (then `migrate_cancel`: not converged); postcopy: `postcopy-ram` on both "+
		"ends, `migrate-start-postcopy` once query-migrate's dirty-sync-count reaches 2 (the first pass is over)\n"+
		"- total time, downtime and RAM transferred are query-migrate's (source) at the end; throughput is RAM "+
		"transferred ÷ total time; first pass and stage 3 are tlcvm's stage 1 (guest running) and stage 3 (guest "+
		"stopped) rates from query-migrate's x-tlc-stages; the link's own TCP throughput is one Go connection across "+
		"the pair for %v, before and after the migrations (the table uses the mean), each followed by the rate at which "+
		"the host makes 1 GiB of fresh memory present and the link's throughput into fresh memory (the same connection "+
		"carrying 1 GiB, read straight into a fresh 1 GiB mapping populated 4 MiB ahead of the reader, as a destination "+
		"without a copy of its own would place pages: the most a destination can receive on this host); CPU is utime + stime of both processes (source from migrate to "+
		"its end, destination until it left inmigrate) per MB transferred: the migration's own where the guest does not "+
		"run, a hot guest's vCPU included in the source's\n",
		o.Kernel, n.Src, n.SrcAddr, n.Dst, n.DstAddr, n.DstAddr, o.Reps, o.Warmup, o.MaxBandwidth, multifd(o.Multifd), o.Cap, o.LinkFor)
	return s.run(head, func(ctx context.Context, record func(any) error, progress *os.File) (string, map[string]any, error) {
		o.Record = record
		if progress != nil {
			o.Progress = progress
		}
		recs, links, err := suite.RunMigrate(ctx, o)
		var sum float64
		var parts, pops, fresh []string
		var cnt int
		for _, l := range links {
			if l.Err == "" {
				sum += l.MBs
				cnt++
			}
			parts = append(parts, fmt.Sprintf("%s %.0f MB/s", l.When, l.MBs))
			if l.PopulateMBs > 0 {
				pops = append(pops, fmt.Sprintf("%s %.0f MB/s", l.When, l.PopulateMBs))
			}
			if l.FreshMBs > 0 {
				fresh = append(fresh, fmt.Sprintf("%s %.0f MB/s (%.0f %% of the link measured with it)", l.When, l.FreshMBs, 100*l.FreshMBs/max(l.MBs, 1)))
			}
		}
		link := 0.0
		if cnt > 0 {
			link = sum / float64(cnt)
		}
		table := fmt.Sprintf("Link's own TCP throughput: %s (mean %.0f MB/s).\n\n", strings.Join(parts, ", "), link)
		if len(pops) > 0 {
			table += fmt.Sprintf("Fresh memory made present (1 GiB, `MADV_POPULATE_WRITE`, what a destination's pages land in): %s.\n\n",
				strings.Join(pops, ", "))
		}
		if len(fresh) > 0 {
			table += fmt.Sprintf("The link into fresh memory (1 GiB read straight into a fresh mapping, populated ahead): %s.\n\n",
				strings.Join(fresh, ", "))
		}
		rows := suite.MigRows(recs, link)
		return table + suite.MigMarkdown(rows), map[string]any{"link_mb_s": link}, err
	})
}

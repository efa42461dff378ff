package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"tlcvm/bench/suite"
)

// BlockJobsSection is the BENCHMARKS.md section "tlcvm-bench blockjobs" owns.
const BlockJobsSection = "blockjobs"

// runBlockJobs is "tlcvm-bench blockjobs [flags]": mirror, commit and stream of a 4 GiB
// qcow2 holding 1 GiB beside dd, full and incremental backups, NBD reads beside qemu-nbd;
// tlcvm and QEMU 7.2 on the same images.
func runBlockJobs(argv []string) int {
	s := &sub{name: "tlcvm-bench blockjobs", section: BlockJobsSection}
	fs := flag.NewFlagSet(s.name, flag.ContinueOnError)
	var (
		o    suite.BJOptions
		only string
	)
	s.flags(fs)
	fs.StringVar(&only, "only", "", "comma-separated subset of: mirror,commit,stream,backup,nbd")
	fs.StringVar(&o.Dir, "image-dir", envOr("BENCH_WORK", os.TempDir())+"/blockjobs", "scratch directory for the images (~8 GB)")
	fs.IntVar(&o.Reps, "n", 3, "measurements per side and row (the median is shown)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "limit per job")
	if st := s.parse(fs, argv); st != 0 {
		return st
	}
	var err error
	if o.Only, err = set(only, "mirror", "commit", "stream", "backup", "nbd"); err != nil {
		fmt.Fprintf(os.Stderr, "%s: -only: %v\n", s.name, err)
		return 2
	}
	o.TLCVM, o.QEMU = s.tlcvm, s.qemu
	defer os.RemoveAll(o.Dir)
	head := fmt.Sprintf("- images under `%s` (syncfs before each timed interval); %d measurements per side and row, medians; "+
		"a job's dd is the median of the dd run right before each of its repetitions\n", o.Dir, o.Reps)
	return s.run(head, func(ctx context.Context, record func(any) error, progress *os.File) (string, map[string]any, error) {
		o.Record = record
		if progress != nil {
			o.Progress = io.Writer(progress)
		}
		rows, err := suite.RunBlockJobs(ctx, o)
		recs := make([]map[string]any, 0, len(rows))
		for _, r := range rows {
			recs = append(recs, map[string]any{"metric": r.Metric, "unit": r.Unit, "tlcvm": num(r.TLCVM), "qemu": num(r.QEMU), "base": num(r.Base)})
		}
		return suite.BJMarkdown(rows), map[string]any{"rows": recs}, err
	})
}

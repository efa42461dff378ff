package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"tlcvm/bench/suite"
)

// DensitySection is the BENCHMARKS.md section "tlcvm-bench density" owns.
const DensitySection = "density"

// runDensity is "tlcvm-bench density [flags]": hundreds of VMs on one host, prelaunched (-S)
// and running, beside QEMU 7.2 up to what fits.
func runDensity(argv []string) int {
	s := &sub{name: "tlcvm-bench density", section: DensitySection}
	fs := flag.NewFlagSet(s.name, flag.ContinueOnError)
	var (
		o           suite.DOptions
		only, sides string
	)
	s.flags(fs)
	fs.IntVar(&o.Prelaunched, "prelaunched", 500, "tlcvm VMs started with -S")
	fs.IntVar(&o.Running, "running", 200, "tlcvm VMs running the default workload")
	fs.IntVar(&o.QEMUMax, "qemu-max", 500, "QEMU VMs at most per phase (-min-avail stops it first)")
	fs.IntVar(&o.MinAvailMiB, "min-avail", 6144, "stop starting VMs once MemAvailable is below this (MiB)")
	fs.DurationVar(&o.Settle, "settle", 5*time.Second, "pause after the last start, before measuring")
	fs.DurationVar(&o.Window, "window", 20*time.Second, "CPU measurement window of the running phase")
	fs.DurationVar(&o.IdleWindow, "idle-window", 130*time.Second, "CPU measurement window of the prelaunched phase (a Go runtime forces a GC every 2 minutes)")
	fs.IntVar(&o.Sweeps, "sweeps", 5, "query-status sweeps over the running VMs")
	fs.StringVar(&only, "only", "", "comma-separated subset of: prelaunched,running,running-idle")
	fs.StringVar(&sides, "sides", "", "comma-separated subset of: tlcvm,qemu")
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "limit per launch and per reply")
	if st := s.parse(fs, argv); st != 0 {
		return st
	}
	var err error
	if o.Only, err = set(only, suite.DPhasePrelaunched, suite.DPhaseRunning, suite.DPhaseIdleGuests); err == nil {
		o.Sides, err = set(sides, suite.TLCVM, suite.QEMU)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
		return 2
	}
	o.TLCVM, o.QEMU = s.tlcvm, s.qemu
	head := fmt.Sprintf("- every VM: `-machine pc -m 1G -smp 2 -nodefaults -display none -qmp unix:…`, its QMP connection "+
		"open and negotiated, as libvirt keeps it; settle %v, CPU window %v prelaunched, %v running; QEMU stops starting "+
		"VMs below %d MiB MemAvailable (or at %d)\n", o.Settle, o.IdleWindow, o.Window, o.MinAvailMiB, o.QEMUMax)
	return s.run(head, func(ctx context.Context, record func(any) error, progress *os.File) (string, map[string]any, error) {
		o.Record = record
		if progress != nil {
			o.Progress = progress
		}
		recs, err := suite.RunDensity(ctx, o)
		return suite.DMarkdown(suite.DRows(recs), recs), nil, err
	})
}

// Package dirtyrate measures how fast the guest dirties its memory and limits it, as QEMU
// 7.2's migration/dirtyrate.c (calc-dirty-rate, query-dirty-rate) and softmmu/dirtylimit.c
// (set-vcpu-dirty-limit, cancel-vcpu-dirty-limit, query-vcpu-dirty-limit) do. It reads the
// machine through the small Machine interface (the composition root adapts
// machine.Machine) and never imports machine, qmp or hmp.
//
// # Measurement
//
// One measurement at a time, on its own goroutine (QEMU's "get_dirtyrate" thread). Status
// goes through one transition function:
//
//	           Calc (not while measuring)            goroutine starts      done
//	unstarted ──────────────────────────> unstarted ─────────────> measuring ───> measured
//	measured  ──────────────────────────> unstarted                    (Calc refused:
//	                                                                "already being measured")
//
// Modes, each over calc-time seconds (1..60), rates in MB/s (MiB, integer division as
// QEMU's: pages*4096>>20 MB, *1000/ms):
//
//	page-sampling  sample-pages (128..16384, default 512) per GiB of each RAM block of at
//	               least 128 KiB, at random pages; each is hashed, hashed again after the
//	               period; rate = changed * blockMB * 1000 / (sampled * ms). Pages the guest
//	               never wrote are not read. No page sampled: the rate stays -1 (QEMU too).
//	dirty-bitmap   sync the dirty log (discarded), wait, sync; rate = pages the syncs took
//	               meanwhile (Machine.DirtyPagesHarvested: a checkpoint's syncs count too,
//	               as QEMU's total_dirty_pages counts them).
//	dirty-ring     per vCPU: pages it dirtied over the period (Machine.DirtiedPages), the
//	               log synced every second meanwhile as KVM's dirty-ring reaper does;
//	               vcpu-dirty-rate lists them, dirty-rate is their sum.
//
// Which modes are enabled follows QEMU: dirty-ring only with a dirty ring (QEMU: KVM with
// -accel kvm,dirty-ring-size=N), dirty-bitmap only without one ("mode X is not enabled,
// use other method instead."). Under TCG QEMU 7.2 crashes (SIGSEGV in
// kvm_dirty_ring_enabled) on both; tlcvm answers as QEMU does once that is fixed (9.1) and
// measures dirty-bitmap for real, where QEMU under TCG, whose count is fed by KVM's log
// only, would report 0.
//
// # Dirty limits
//
// With a dirty ring, set-vcpu-dirty-limit starts QEMU's dirty-limit thread: every second
// it measures each vCPU's dirty rate (as dirty-ring mode, over 1 s) and adjusts the vCPU's
// sleep per full ring (QEMU's throttle_us_per_full, dirtylimit_set_throttle: no change
// within 25 MB/s of the quota, a linear step when off by more than 50 %, else a tenth of
// a ring's fill time, at most 99 rings' fill time). The machine's vCPU loop sleeps that
// long each time the vCPU has dirtied a ring's worth of pages. Without a dirty ring,
// set-vcpu-dirty-limit fails with QEMU's text and cancel does nothing.
package dirtyrate

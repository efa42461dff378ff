// Package libvirt is the libvirt end-to-end suite (issue 5): libvirt 9.0's
// libvirtd and virsh drive tlcvm as a domain's <emulator>, through every
// flow of the issue (domcapabilities, define, start, dominfo, domstate,
// domstats, domblklist, domblkinfo, qemu-monitor-command QMP and HMP,
// console, suspend, resume, save, restore, managedsave, external live
// snapshot, reset, reboot, shutdown, destroy, undefine, libvirtd restart), and
// issue 11's statistics: domstats (every group) and go-libvirt's GetAllDomainStats
// beside QEMU 7.2, domdirtyrate-calc with domstats --dirtyrate.
//
// TestFlows is the differential flow suite: one domain under QEMU 7.2 and one under tlcvm
// go through the same story of some 200 virsh commands (every domain command group of
// `virsh help`, device hotplug of every class, qemu-img on the domain's images while it runs
// and after, virt-install --import, and the libvirt API calls virsh has no twin for, through
// go-libvirt and libvirt's Python binding), and each
// flow's outcome (same, different, failing) must be the one docs/libvirt.md's flow table
// records; -update rewrites the table.
//
// TestMain needs root. It starts virtlogd and libvirtd with
// scripts/libvirt-setup.sh when they are not running (installing libvirt
// when missing) and stops only what it started; without root the suite
// skips with the reason. The binary under test is $TLCVM_BIN, else built
// from ./cmd/qemu-system-x86_64 into a fresh temporary directory (a new
// path, so libvirt probes it), else bin/qemu-system-x86_64.
//
//	go test ./tests/libvirt ──exec──▶ virsh ──▶ libvirtd ──exec──▶ tlcvm
//	        └───────────── reads the pty from `virsh ttyconsole` ◀── serial
package libvirt

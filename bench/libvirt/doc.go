// Package libvirt is the libvirt benchmark: it times libvirt's probe of a
// new emulator binary and virsh start, save, restore and destroy of the same
// domain with tlcvm and with QEMU 7.2, interleaved, and turns the samples
// into BENCHMARKS.md rows (bench/libvirt-bench). Domains, disks and virsh
// come from internal/libvirttest, which the end-to-end suite (tests/libvirt)
// shares.
package libvirt

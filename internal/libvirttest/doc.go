// Package libvirttest drives libvirt's virsh against a qemu-system-x86_64
// binary (tlcvm or QEMU 7.2): it renders test domain XMLs (anchor1's pc, anchor2's q35,
// and anchor2's devices on a pc, with room for vCPU and PCIe hotplug), creates their
// disks, runs virsh with the qemu:///system URI (timed; Exec keeps the exit status, stdout
// and stderr apart for the differential flows), parses the few
// virsh outputs the end-to-end suite (tests/libvirt) and the libvirt
// benchmark (bench/libvirt) need, and holds the host-wide lock that keeps
// the two apart. It sits under internal/ so that both may import it while
// tests/ depends on nothing of bench/.
//
// Who talks to whom:
//
//	test / bench ──exec──▶ virsh -c qemu:///system ──RPC──▶ libvirtd
//	                                                      │ exec (domain) / -daemonize (probe)
//	                                                      ▼
//	                                   qemu-system-x86_64 (tlcvm or QEMU)
//	                                   QMP over unix:…/monitor.sock, "\r\n" framed
//
// virsh outputs parsed here:
//
//	domstate --reason   "running (booted)\n\n"            → State{"running","booted"}
//	dominfo, domblkinfo "Key:            value\n" lines    → map[Key]value
//	domblklist          " Target   Source\n----…\n vda  /p" → map[target]source
//	domstats            "Domain: 'n'\n  key=value\n"       → map[key]value
//	domcapabilities     XML                               → Caps (machines, CPU models, devices)
package libvirttest

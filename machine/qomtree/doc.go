// Package qomtree is QEMU 7.2's QOM composition tree as HMP info qom-tree prints it
// (qom/qom-hmp-cmds.c hmp_info_qom_tree): every object with its child<> objects, each
// line "/name (type)" indented two spaces per level, the children of an object sorted by
// name (strcmp), starting from /machine or from the path given.
//
// The tree is tlcvm's QOM objects (the machine, its vCPUs, -device and -object objects,
// chardevs: what qom-list sees) with what QEMU's boards add beside them (Augment):
//
//	/machine (pc-i440fx-7.2-machine)
//	├─ fw_cfg, i440fx|q35 (with ioapic, mch, the PCI root bus)   board objects
//	├─ unattached: device[N]   the board's devices, numbered in creation order
//	│    with their buses, IRQ pins and child objects (lapic, ps2kbd)
//	├─ peripheral, peripheral-anon: the -device objects
//	└─ <owner>/<name>[k] (memory-region)   each memory region of package memtree under
//	     its owner (an ownerless one under /machine/unattached), numbered per name
//	/objects/<id>/<id>[0] (memory-region)   a memory back-end's RAM
package qomtree

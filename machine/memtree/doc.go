// Package memtree is the memory region model of tlcvm's pc and q35 boards, as QEMU 7.2's
// memory API builds it (softmmu/memory.c), and its renderings: info mtree, with -D
// (disabled regions), -f (flat views) and -o (owners); and info ramblock's RAM block lines
// with find_ram_offset's offsets (ramblock.go).
//
// A Region is a MemoryRegion: RAM, ROM, device registers (IO), a container, or an alias
// of part of another region. Add is memory_region_add_subregion_overlap, which keeps a
// parent's list by priority, the newest first among equals; the printers walk that list
// as QEMU does, so ties print in QEMU's order. Build lays a Board out in QEMU's creation
// order for a machine before its firmware ran (the state -S shows and tlcvm keeps:
// tlcvm's guest programs no BAR, PAM or SMRAM register):
//
//	address-space: memory, cpu-memory-N   system (2^64)
//	                                        ├─ ram-below-4g → pc.ram        [0, below)
//	                                        ├─ pci (prio -1)                 pc.bios, isa-bios, pc.rom, vga-lowmem,
//	                                        │                                bridge windows (empty at reset)
//	                                        ├─ smram-region → pci, pam-* ×4 ×13 (PCI enabled), q35: SMRAM/TSEG
//	                                        ├─ ioapic, hpet, apic-msi (prio 4096)
//	                                        ├─ ram-above-4g → pc.ram        [4G, 4G+above)
//	                                        └─ device-memory                 DIMMs, named after their memdev
//	address-space: I/O                    io (64 KiB)  legacy ports, ACPI, hotplug registers
//	address-space: cpu-smm-N              memory: smram (prio 1) over all of system
//	address-space: <PCI type>             bus master container: bus master → system (disabled)
//
// Every region has its owner (Owner; nil: none, and QEMU parents it to /machine/unattached):
// the board's devices are numbered in /machine/unattached as pc_init1 and pc_q35_init create
// them (boardOwners: boot CPUs and kvmvapic first, then the south bridge, DMA, PICs, …), the
// others come from the Board (a -device's id or path, a back-end under /objects).
//
// QEMU prints the address-space groups (and hence the memory-region list, in the order its
// aliases are met) in the order of a hash table of pointers, which changes from run to
// run; tlcvm prints them in creation order. SortGroups gives the order-free form both
// compare in.
package memtree

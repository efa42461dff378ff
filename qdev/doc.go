// Package qdev is tlcvm's device tree, as QEMU 7.2's qdev builds it: the board's devices
// and buses, every -device and device_add device with its id, QOM path, bus and address,
// the buses each device provides, and the hot-plug rules. It knows devices by the
// catalogue's types (machine/catalog: names, aliases, bus types, properties, which types are
// hotpluggable) and gives them no behaviour itself: a Model registered for some types (NICs,
// disks, serial ports, DIMMs; wired by the composition root) checks, realizes and
// unrealizes them. It imports neither qmp nor machine.
//
// # The tree
//
//	main-system-bus
//	└── i440FX-pcihost (q35-pcihost)
//	    └── pci.0 (pcie.0)                     PCI root bus: slot.function addresses
//	        ├── board functions                see board.go
//	        ├── 05.0 ich9-ahci id=sata0        └── sata0.0 … sata0.5 (IDE, 1 unit each)
//	        ├── 02.0 pcie-root-port id=pci.1   └── pci.1 (PCIE, hotplug)
//	        │                                      └── 00.0 virtio-net-pci id=net0
//	        │                                          └── virtio-bus ─ virtio-net-device
//	        │                                              (/machine/peripheral/net0/virtio-backend)
//	        └── 03.0 virtio-serial-pci id=vs0  └── virtio-bus ─ virtio-serial-device ─ vs0.0
//	pc-dimm id=dimm0                           (no bus: memory hotplug)
//
// Bus names follow qbus_init: a name the device gives (a bridge takes its own id; virtio
// proxies name their back-end's bus "ID.0"), else "<parent id>.<n>", else the bus type in
// lower case and a count per type ("ide.2", "usb-bus.0"; pc's pci.0 takes "pci.0" itself,
// q35's "pcie.0" does not). A device without bus= goes to the first bus of its type that
// qbus_find_recursive meets: depth first, the newest device first and, among a device's
// buses, the last made first (QEMU inserts both at the head of their lists) — so an ide-cd
// lands on the last port of the newest AHCI controller.
//
// # Adding and removing
//
// Add follows qdev_device_add_from_qdict, with its errors in its order: id well-formed,
// device class (name or alias; abstract, not user-creatable, not hotpluggable), bus (named
// or found; its type; hotplug), duplicate id, properties (by the catalogue's types, QEMU's
// string-visitor texts for device_add and -device key=value, the QObject visitor's for
// -device JSON), the model's Check, the address (PCI slot and function with the
// multifunction rules of do_pci_register_device; IDE unit; floppy unit, as floppy_drive_realize gives it), the model's Realize.
//
// Del is device_del. Devices on PCI buses, and those whose model implements GuestUnplug
// (pc-dimm), leave only when the guest ejects them (ACPI PCI hotplug on pc, PCIe slots and
// ACPI on q35, ACPI memory hotplug): the request goes to the Guest, and completes on its
// callback. Devices on other hotpluggable buses (SCSI, USB, virtio-serial) leave at once.
// Leaving unrealizes the devices on the device's buses first (newest first), then its
// virtio back-end, then itself, reporting DEVICE_DELETED for each in that order.
//
// # Locking
//
// One mutex guards the tree; models run under it and must not call back into the tree.
// The Guest's eject callback takes it, so a guest must call it from a goroutine that holds
// nothing the tree's callers hold.
package qdev

package cmds

import (
	"tlcvm/qmp"
)

// Memory devices (pc-dimm) as QMP shows them: query-memory-devices,
// query-acpi-ospm-status, ACPI_DEVICE_OST, and query-memory-size-summary's plugged-memory.
// The board's memory hotplug block (the composition root's) supplies them.

// MemoryDevices is the board's memory hotplug block.
type MemoryDevices interface {
	// List is query-memory-devices: the plugged memory devices by address.
	List() []MemoryDeviceInfo
	// OSPM is query-acpi-ospm-status: one entry per DIMM slot; an error when the machine
	// has no ACPI device ("command is not supported, missing ACPI device").
	OSPM() ([]ACPIOSTInfo, error)
	// Plugged is the size of the memory devices plugged, in bytes.
	Plugged() uint64
}

// MemoryDeviceInfoKind is QAPI's MemoryDeviceInfoKind.
type MemoryDeviceInfoKind string

// EnumValues implements qmp.Enum.
func (MemoryDeviceInfoKind) EnumValues() []string {
	return []string{"dimm", "nvdimm", "virtio-pmem", "virtio-mem", "sgx-epc"}
}

// MemoryDeviceInfo is QAPI's MemoryDeviceInfo: a type and its wrapped data.
type MemoryDeviceInfo struct {
	Type    MemoryDeviceInfoKind `json:"type"`
	Variant any                  `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (MemoryDeviceInfo) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union (dimm and nvdimm share a type, as in QEMU's schema).
func (MemoryDeviceInfo) UnionVariants() map[string]any {
	return map[string]any{"dimm": PCDIMMDeviceInfoWrapper{}, "nvdimm": PCDIMMDeviceInfoWrapper{},
		"virtio-pmem": VirtioPMEMDeviceInfoWrapper{}, "virtio-mem": VirtioMEMDeviceInfoWrapper{},
		"sgx-epc": SgxEPCDeviceInfoWrapper{}}
}

// PCDIMMDeviceInfo is a DIMM's entry.
type PCDIMMDeviceInfo struct {
	qmp.QAPIOrder
	ID           *string `json:"id,omitempty"`
	Addr         uint64  `json:"addr"`
	Size         uint64  `json:"size"`
	Slot         int64   `json:"slot"`
	Node         int64   `json:"node"`
	Memdev       string  `json:"memdev"`
	Hotplugged   bool    `json:"hotplugged"`
	Hotpluggable bool    `json:"hotpluggable"`
}

// VirtioPMEMDeviceInfo is a virtio-pmem device's entry (tlcvm plugs none).
type VirtioPMEMDeviceInfo struct {
	qmp.QAPIOrder
	ID      *string `json:"id,omitempty"`
	Memaddr uint64  `json:"memaddr"`
	Size    uint64  `json:"size"`
	Memdev  string  `json:"memdev"`
}

// VirtioMEMDeviceInfo is a virtio-mem device's entry (tlcvm plugs none).
type VirtioMEMDeviceInfo struct {
	qmp.QAPIOrder
	ID            *string `json:"id,omitempty"`
	Memaddr       uint64  `json:"memaddr"`
	RequestedSize uint64  `json:"requested-size"`
	Size          uint64  `json:"size"`
	MaxSize       uint64  `json:"max-size"`
	BlockSize     uint64  `json:"block-size"`
	Node          int64   `json:"node"`
	Memdev        string  `json:"memdev"`
}

// SgxEPCDeviceInfo is an SGX EPC section's entry (tlcvm plugs none).
type SgxEPCDeviceInfo struct {
	qmp.QAPIOrder
	ID      *string `json:"id,omitempty"`
	Memaddr uint64  `json:"memaddr"`
	Size    uint64  `json:"size"`
	Node    int64   `json:"node"`
	Memdev  string  `json:"memdev"`
}

// The union's data wrappers.
type (
	PCDIMMDeviceInfoWrapper struct {
		Data PCDIMMDeviceInfo `json:"data"`
	}
	VirtioPMEMDeviceInfoWrapper struct {
		Data VirtioPMEMDeviceInfo `json:"data"`
	}
	VirtioMEMDeviceInfoWrapper struct {
		Data VirtioMEMDeviceInfo `json:"data"`
	}
	SgxEPCDeviceInfoWrapper struct {
		Data SgxEPCDeviceInfo `json:"data"`
	}
)

// ACPISlotType is QAPI's ACPISlotType.
type ACPISlotType string

// EnumValues implements qmp.Enum.
func (ACPISlotType) EnumValues() []string { return []string{"DIMM", "CPU"} }

// ACPIOSTInfo is a slot's last _OST: query-acpi-ospm-status's element, ACPI_DEVICE_OST's info.
type ACPIOSTInfo struct {
	qmp.QAPIOrder
	Device   *string      `json:"device,omitempty"`
	Slot     string       `json:"slot"`
	SlotType ACPISlotType `json:"slot-type"`
	Source   int64        `json:"source"`
	Status   int64        `json:"status"`
}

// ACPIDeviceOSTData is ACPI_DEVICE_OST's data.
type ACPIDeviceOSTData struct {
	Info ACPIOSTInfo `json:"info"`
}

// MemoryDeviceSizeChangeData is MEMORY_DEVICE_SIZE_CHANGE's data (virtio-mem only: tlcvm
// never emits it).
type MemoryDeviceSizeChangeData struct {
	qmp.QAPIOrder
	ID      *string `json:"id,omitempty"`
	Size    uint64  `json:"size"`
	QOMPath string  `json:"qom-path"`
}

func registerMemoryDevices(r *qmp.Registry, d *Deps) {
	md := d.MemoryDevices
	if md == nil {
		return
	}
	r.RegisterEvent("ACPI_DEVICE_OST", ACPIDeviceOSTData{})
	r.RegisterEvent("MEMORY_DEVICE_SIZE_CHANGE", MemoryDeviceSizeChangeData{})
	r.Register(
		qmp.Command{Name: "query-memory-devices", Returns: []MemoryDeviceInfo{},
			Run: func(*qmp.Call) (any, error) {
				l := md.List()
				if l == nil {
					l = []MemoryDeviceInfo{}
				}
				return l, nil
			}},
		qmp.Command{Name: "query-acpi-ospm-status", Returns: []ACPIOSTInfo{},
			Run: func(*qmp.Call) (any, error) {
				l, err := md.OSPM()
				if err == nil && l == nil {
					l = []ACPIOSTInfo{}
				}
				return l, err
			}},
	)
}

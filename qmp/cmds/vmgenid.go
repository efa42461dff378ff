package cmds

import "tlcvm/qmp"

// query-vm-generation-id (hw/acpi/vmgenid.c qmp_query_vm_generation_id): the guid of the
// machine's vmgenid device.

// GuidInfo is QAPI's GuidInfo.
type GuidInfo struct {
	GUID string `json:"guid"`
}

func registerVMGenID(r *qmp.Registry, d *Deps) {
	if d.Devices == nil {
		return
	}
	r.Register(qmp.Command{Name: "query-vm-generation-id", Returns: GuidInfo{},
		Run: func(*qmp.Call) (any, error) {
			for _, dev := range d.Devices.Peripherals() {
				if dev.Type == "vmgenid" {
					return GuidInfo{GUID: dev.PropString("guid")}, nil
				}
			}
			return nil, qmp.GenericError("VM Generation ID device not found")
		}})
}

package cmds

import "tlcvm/qmp"

// HumanReadableText is the return of QEMU 7.2's x-query-* commands (qapi/common.json).
type HumanReadableText struct {
	HumanReadableText string `json:"human-readable-text"`
}

// x-query-usb (hmp_info_usb's text): the USB buses' devices, ports and speeds, as package
// qdev places them.
func registerUSB(r *qmp.Registry, d *Deps) {
	if d.Devices == nil {
		return
	}
	r.Register(qmp.Command{Name: "x-query-usb", Returns: HumanReadableText{}, Features: []string{"unstable"},
		Run: func(*qmp.Call) (any, error) {
			text, err := d.Devices.USBInfo()
			if err != nil {
				return nil, err
			}
			return HumanReadableText{HumanReadableText: text}, nil
		}})
}

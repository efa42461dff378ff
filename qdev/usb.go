package qdev

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// USB as hw/usb/bus.c models it: each USB bus has a number (busnr, in creation order over
// the machine), its host controller's root ports, and two lists: the free ports and the
// used ones, in the order they were released and claimed. A device takes the port its
// "port" property names, else the first free one; when only one is left and the device is
// no hub, QEMU first plugs a usb-hub there (usb_claim_port), whose eight ports "N.1"…"N.8"
// join the free list. The device's speed is the fastest its descriptors and the port share
// (usb_desc_attach). The guest gives addresses; without one running they stay 0.
//
//	controller                    root ports  port speeds
//	qemu-xhci, nec-usb-xhci       max(p2,p3)  low, full, high (the first p2), super (the first p3)
//	*-uhci*                       2           low, full
//	usb-ehci, ich9-usb-ehci1/2    6           high
//	pci-ohci                      num-ports   low, full
//	usb-hub (downstream)          8           low, full

// USB speeds as bits of a speed mask (USB_SPEED_MASK_*).
const (
	usbLow = 1 << iota
	usbFull
	usbHigh
	usbSuper
)

// usbModel is what usb_desc_init and product_desc give a device type: its name and the
// speeds of its descriptors.
type usbModel struct {
	product string
	speeds  int
}

var usbModels = map[string]usbModel{
	"usb-tablet":  {"QEMU USB Tablet", usbFull | usbHigh},
	"usb-kbd":     {"QEMU USB Keyboard", usbFull | usbHigh},
	"usb-mouse":   {"QEMU USB Mouse", usbFull | usbHigh},
	"usb-hub":     {"QEMU USB Hub", usbFull},
	"usb-storage": {"QEMU USB MSD", usbFull | usbHigh | usbSuper},
}

// usbPort is one port of a USB bus.
type usbPort struct {
	path  string // "1", "4.1"
	speed int    // mask of the speeds it takes
	dev   *Device
}

// usbBus is a USB bus's ports.
type usbBus struct {
	free, used []*usbPort
}

// usbPorts registers a host controller's root ports on its new bus.
func (t *Tree) usbPorts(d *Device, b *Bus) {
	b.Number = t.usbBuses
	t.usbBuses++
	u := &usbBus{}
	b.usb = u
	n, speeds := 2, func(int) int { return usbLow | usbFull }
	switch d.Type {
	case "qemu-xhci", "nec-usb-xhci":
		p2, p3 := propInt(d, "p2", 4), propInt(d, "p3", 4)
		n = max(p2, p3)
		speeds = func(i int) int {
			s := 0
			if i < p2 {
				s |= usbLow | usbFull | usbHigh
			}
			if i < p3 {
				s |= usbSuper
			}
			return s
		}
	case "usb-ehci", "ich9-usb-ehci1", "ich9-usb-ehci2":
		n, speeds = 6, func(int) int { return usbHigh }
	case "pci-ohci":
		n = propInt(d, "num-ports", 3)
	}
	for i := 0; i < n; i++ {
		u.free = append(u.free, &usbPort{path: fmt.Sprint(i + 1), speed: speeds(i)})
	}
}

func propInt(d *Device, name string, def int) int {
	if v, ok := d.Props[name]; ok {
		var n int
		if json.Unmarshal(v, &n) == nil {
			return n
		}
	}
	return def
}

// usbSpeeds is a device's descriptor speeds (usb_version=1 drops high speed).
func usbSpeeds(d *Device) int {
	m, ok := usbModels[d.Type]
	if !ok {
		return usbFull | usbHigh // unknown: never refused for its speed
	}
	if string(d.Props["usb_version"]) == "1" {
		return m.speeds &^ usbHigh
	}
	return m.speeds
}

func usbProduct(typ string) string {
	if m, ok := usbModels[typ]; ok {
		return m.product
	}
	return typ
}

// placeUSB is usb_claim_port and usb_device_attach's speed check. A hub it plugs first is
// returned, to be linked onto the bus after d (QEMU realizes it inside d's realize, after
// d has joined the bus's children).
func (t *Tree) placeUSB(b *Bus, d *Device) (*Device, error) {
	u := b.usb
	var port *usbPort
	var hub *Device
	if want := d.PropString("port"); want != "" {
		i := slices.IndexFunc(u.free, func(p *usbPort) bool { return p.path == want })
		if i < 0 {
			return nil, errf(ErrAddress, "usb port %s (bus %s) not found (in use?)", want, b.Name)
		}
		port = u.free[i]
	} else {
		if len(u.free) == 1 && d.Type != "usb-hub" {
			hub = &Device{Type: "usb-hub", Devfn: -1, Unit: -1, Board: true, Props: map[string]json.RawMessage{}, Bus: b}
			if _, err := t.placeUSB(b, hub); err != nil {
				return nil, err
			}
		}
		if len(u.free) == 0 {
			return nil, errf(ErrAddress, "tried to attach usb device %s to a bus with no free ports", usbProduct(d.Type))
		}
		port = u.free[0]
	}
	speeds := usbSpeeds(d)
	if port.speed&speeds == 0 {
		return nil, errf(ErrAddress, "Warning: speed mismatch trying to attach usb device \"%s\" (%s speed) to bus \"%s\", port \"%s\" (%s speed)",
			usbProduct(d.Type), speedNames(speeds), b.Name, port.path, speedNames(port.speed))
	}
	u.free = slices.DeleteFunc(u.free, func(p *usbPort) bool { return p == port })
	u.used = append(u.used, port)
	port.dev = d
	d.usb = port
	if d.Type == "usb-hub" {
		for i := 1; i <= 8; i++ {
			u.free = append(u.free, &usbPort{path: fmt.Sprintf("%s.%d", port.path, i), speed: usbLow | usbFull})
		}
	}
	return hub, nil
}

// releaseUSB is usb_release_port: the port goes back to the end of the free list.
func (b *Bus) releaseUSB(d *Device) {
	u, port := b.usb, d.usb
	if u == nil || port == nil {
		return
	}
	u.used = slices.DeleteFunc(u.used, func(p *usbPort) bool { return p == port })
	port.dev, d.usb = nil, nil
	u.free = append(u.free, port)
}

// speedNames is usb_mask_to_str.
func speedNames(mask int) string {
	var out []string
	for i, n := range []string{"low", "full", "high", "super"} {
		if mask&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// fastest is the speed usb_desc_attach picks, as usb_speed prints it.
func fastest(mask int) string {
	switch {
	case mask&usbSuper != 0:
		return "5000"
	case mask&usbHigh != 0:
		return "480"
	case mask&usbFull != 0:
		return "12"
	case mask&usbLow != 0:
		return "1.5"
	}
	return "?"
}

func (d *Device) usbSpeed() string { return fastest(d.usb.speed & usbSpeeds(d)) }

// USBInfo is x-query-usb's text (hmp_info_usb): each USB bus's devices in the order they
// took their ports; ErrNoUSB when the machine has no USB bus.
func (t *Tree) USBInfo() (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var buses []*Bus
	var walk func(b *Bus)
	walk = func(b *Bus) {
		if b.usb != nil {
			buses = append(buses, b)
		}
		for _, d := range b.devs {
			for _, c := range d.Buses {
				walk(c)
			}
		}
	}
	walk(t.root)
	if len(buses) == 0 {
		return "", errf(ErrNoUSB, "USB support not enabled")
	}
	slices.SortFunc(buses, func(x, y *Bus) int { return x.Number - y.Number })
	var s strings.Builder
	for _, b := range buses {
		for _, p := range b.usb.used {
			id := ""
			if p.dev.ID != "" {
				id = ", ID: " + p.dev.ID
			}
			fmt.Fprintf(&s, "  Device %d.0, Port %s, Speed %s Mb/s, Product %s%s\n", b.Number, p.path,
				p.dev.usbSpeed(), usbProduct(p.dev.Type), id)
		}
	}
	return s.String(), nil
}

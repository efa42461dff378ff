package qdev

//go:generate go run ./gen

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"tlcvm/compat/optval"
	"tlcvm/machine/catalog"
)

// PCIIdentifier gives a PCI function's identity (class, ids, BARs) as query-pci shows it;
// ok false for a function it does not know.
type PCIIdentifier func(f PCIFunction) (catalog.PCIIdentity, bool)

// Qtree renders HMP info qtree (qdev_print and qbus_print, softmmu/qdev-monitor.c):
//
//	bus: NAME                        qbus_print
//	  type BUS-TYPE
//	  dev: TYPE, id "ID"             qdev_print, the bus's devices newest first
//	    gpio-in "NAME" N             its gpio lists
//	    PROP = VALUE                 qdev_print_props: its class's properties, then its parents'
//	    mmio ADDR/SIZE               sysbus_dev_print (sysbus devices)
//	    class DESC, addr BB:SS.F, …  pcibus_dev_print (PCI functions) and one line per BAR
//	    bus: …                       its buses, newest first
//
// Each type's own lines, with each property at its default, are captured from QEMU 7.2
// (zz_generated_qtree.go, go generate); a property the device has set (Device.Props: the
// command line's, device_add's, the board's and what models set, such as a NIC's MAC) prints
// its value in the form of the default (an integer as "N (0xN)", a size as "N (2 GiB)", a
// string quoted). A type not captured prints no property lines.
func (t *Tree) Qtree(pci PCIIdentifier) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	p := printer{w: &b, pci: pci}
	p.bus(t.root, 0)
	return b.String()
}

type printer struct {
	w   *strings.Builder
	pci PCIIdentifier
}

func (p printer) line(indent int, format string, a ...any) {
	p.w.WriteString(strings.Repeat(" ", indent))
	fmt.Fprintf(p.w, format, a...)
	p.w.WriteByte('\n')
}

func (p printer) bus(b *Bus, indent int) {
	p.line(indent, "bus: %s", b.Name)
	indent += 2
	p.line(indent, "type %s", b.Type)
	for i := len(b.devs) - 1; i >= 0; i-- { // QEMU inserts at the head
		p.dev(b.devs[i], indent)
	}
}

func (p printer) dev(d *Device, indent int) {
	p.line(indent, "dev: %s, id \"%s\"", d.Type, d.ID)
	indent += 2
	for _, l := range qtreeLines[d.Type] {
		name, def, isProp := strings.Cut(l, " = ")
		if !isProp {
			p.line(indent, "%s", l)
			continue
		}
		p.line(indent, "%s = %s", name, d.qtreeValue(name, def))
	}
	if d.Bus != nil && catalog.IsA(d.Bus.Type, "PCI") {
		p.pciFunction(d, indent)
	}
	if d.Bus != nil && d.Bus.Type == "virtio-serial-bus" { // virtser_bus_dev_print
		// No guest driver opens a port. A console is open on the host side as soon as it
		// has a chardev; a serial port only once its chardev reports a connection, which
		// tlcvm does not track here (so "off").
		host := "off"
		if d.Type == "virtconsole" && d.PropString("chardev") != "" {
			host = "on"
		}
		p.line(indent, "port %s, guest off, host %s, throttle off", d.Props["nr"], host)
	}
	if d.usb != nil { // usb_bus_dev_print
		p.line(indent, "addr %d.0, port %s, speed %s, name %s, attached", d.Bus.Number, d.usb.path, d.usbSpeed(), usbProduct(d.Type))
	}
	for _, c := range d.childBuses() {
		p.bus(c, indent)
	}
}

// pciFunction is pcibus_dev_print: the class line and the BARs, unmapped until firmware
// maps them (address -1, printed with the end it makes).
func (p printer) pciFunction(d *Device, indent int) {
	f := PCIFunction{Type: d.Type, ID: d.ID, Bus: d.Bus.Number, Devfn: d.Devfn, Express: d.Express(),
		NoMSIX: noMSIX(d)}
	if p.pci == nil {
		return
	}
	id, ok := p.pci(f)
	if !ok {
		return
	}
	desc := id.ClassDesc
	if desc == "" {
		desc = fmt.Sprintf("Class %04x", id.Class)
	}
	sv, sub := id.SubsystemVendor, id.Subsystem
	if sv < 0 {
		sv, sub = 0, 0
	}
	p.line(indent, "class %s, addr %02x:%02x.%x, pci id %04x:%04x (sub %04x:%04x)", desc, d.Bus.Number,
		d.Devfn>>3, d.Devfn&7, id.Vendor, id.Device, sv, sub)
	for _, bar := range id.BARs {
		kind := "mem"
		if bar.IO {
			kind = "i/o"
		}
		p.line(indent, "bar %d: %s at 0x%x [0x%x]", bar.N, kind, uint64(math.MaxUint64), uint64(bar.Size)-2)
	}
}

// noMSIX: a virtio device set to vectors=0 has no MSI-X table BAR (BAR 1).
func noMSIX(d *Device) bool {
	return strings.HasPrefix(d.Type, "virtio-") && string(d.Props["vectors"]) == "0"
}

var (
	intText  = regexp.MustCompile(`^-?[0-9]+ \(0x[0-9a-f]+\)$`)
	sizeText = regexp.MustCompile(`^[0-9]+ \([0-9.e+]+ [KMGTPE]?i?B\)$`)
)

// qtreeValue is a property's value as object_property_print(human) gives it, def being its
// printed default.
func (d *Device) qtreeValue(name, def string) string {
	switch {
	case name == "addr" && d.Devfn >= 0 && d.Bus != nil && catalog.IsA(d.Bus.Type, "PCI"):
		return fmt.Sprintf("%02x.%x", d.Devfn>>3, d.Devfn&7)
	case name == "unit" && d.Unit >= 0:
		return fmt.Sprintf("%d (0x%x)", d.Unit, d.Unit)
	case name == "serial" && d.Bus != nil && d.Bus.Type == "IDE" && d.Props[name] == nil:
		return fmt.Sprintf("\"QM%05d\"", d.Bus.serial+max(d.Unit, 0))
	case name == "disable-legacy" && d.Props[name] == nil && def == `"off"` && d.Express():
		return `"on"` // virtio_pci_realize: AUTO is on behind a PCIe port
	}
	raw, ok := d.Props[name]
	if !ok && d.Bus != nil && d.Bus.Parent != nil && d.Bus.Parent.Backend == d {
		// a virtio back-end's properties are set through its proxy (aliases)
		raw, ok = d.Bus.Parent.Props[name]
	}
	if !ok {
		return def
	}
	return formatLike(raw, def)
}

// formatLike prints a JSON value in the form of def, a value of the same property.
func formatLike(raw json.RawMessage, def string) string {
	switch {
	case intText.MatchString(def):
		if v, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return fmt.Sprintf("%d (0x%x)", v, uint64(v))
		}
		if v, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
			return fmt.Sprintf("%d (0x%x)", v, v)
		}
	case sizeText.MatchString(def):
		if v, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
			return fmt.Sprintf("%d (%s)", v, optval.SizeString(v))
		}
	case def == "true" || def == "false":
		return string(raw)
	case strings.HasPrefix(def, `"`):
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return `"` + s + `"`
		}
	}
	return string(raw)
}

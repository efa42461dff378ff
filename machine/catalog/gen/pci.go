package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// pciIdent is what query-pci shows of one PCI function before firmware has run: ids, class,
// interrupt pin, BARs (sizes only: addresses are unassigned) and, for bridges, the bridge's
// reset window.
type pciIdent struct {
	vendor, device, subVendor, sub int64 // subVendor, sub: -1 when absent (bridges)
	class                          int64
	desc                           string
	pin                            int64
	bars                           string // "BAR TYPE SIZE" items joined by ",": TYPE io, mem, mem64, mempref, mem64pref
	bridge                         string // the pci_bridge member's JSON, "" for none
}

// pciInfo is one PCI device type's identity on a conventional bus and behind a PCIe root
// port (where virtio devices drop their legacy interface); express is the zero value when
// not captured (the type is not hotpluggable, or the same as conventional).
type pciInfo struct {
	name               string
	conventional, expr pciIdent
}

const (
	pcArgv  = "-machine pc -accel tcg -nodefaults -display none -m 64 -S -qmp stdio"
	q35Argv = "-machine q35 -accel tcg -nodefaults -display none -m 64 -qmp stdio"
	// root ports for the PCIe capture: 8 functions of slots 2 to 4
	rootPorts = 24
)

// capturePCI asks QEMU for the query-pci identity of every PCI device type -device help
// lists: device_add each (hotpluggable types; -device for the others) into a slot of pc's
// pci.0 under -S, and, for hotpluggable ones, into a PCIe root port of a running q35 (whose
// firmware has numbered the buses, so that query-pci shows the devices behind the ports).
// Types QEMU cannot create bare (they need a back-end, a host device, …) get no identity.
func (c *catalog) capturePCI(_ *session, lg *log.Logger) error {
	var hot []string
	for _, d := range c.devices {
		if _, special := pciRecipes[d.name]; d.bus == "PCI" && d.hotpluggable && !special {
			hot = append(hot, d.name)
		}
	}
	conv := map[string]pciIdent{}
	for len(hot) > 0 {
		n := min(len(hot), 29) // slots 2 to 30
		got, err := c.pciBatch(strings.Fields(pcArgv), hot[:n], func(i int) map[string]any {
			return map[string]any{"bus": "pci.0", "addr": fmt.Sprintf("0x%x", i+2)}
		}, 0)
		if err != nil {
			return err
		}
		for k, v := range got {
			conv[k] = v
		}
		hot = hot[n:]
	}
	for _, d := range c.devices {
		if _, ok := conv[d.name]; ok || d.bus != "PCI" {
			continue
		}
		// not hotpluggable, not creatable bare, or one of a kind: one process each
		r, ok := pciRecipes[d.name]
		if !ok {
			r = pciRecipe{machine: "pc"}
		}
		argv := append(strings.Fields(pcArgv), r.argv...)
		bus := "pci.0"
		if r.machine == "q35" {
			argv, bus = append(strings.Fields(q35Argv), append([]string{"-S"}, r.argv...)...), "pcie.0"
		}
		argv = append(argv, "-device", joinOpts(d.name+",id=g0,bus="+bus+",addr=0x5", r.opts))
		if id, ok, err := c.pciSingle(argv, 0); err != nil {
			return err
		} else if ok {
			conv[d.name] = id
		}
	}
	expr := map[string]pciIdent{}
	var plugged []string
	for _, d := range c.devices {
		// bridges are left out: behind a port the firmware has numbered what they bridge
		if d.bus == "PCI" && d.hotpluggable && conv[d.name].vendor != 0 && conv[d.name].bridge == "" {
			plugged = append(plugged, d.name)
		}
	}
	for len(plugged) > 0 {
		n := min(len(plugged), rootPorts)
		argv := strings.Fields(q35Argv)
		for i := 0; i < rootPorts; i++ {
			opt := fmt.Sprintf("pcie-root-port,id=rp%d,bus=pcie.0,chassis=%d,addr=0x%x.0x%x", i, i+1, 2+i/8, i%8)
			if i%8 == 0 {
				opt += ",multifunction=on"
			}
			argv = append(argv, "-device", opt)
		}
		got, err := c.pciBatch(argv, plugged[:n], func(i int) map[string]any {
			return map[string]any{"bus": fmt.Sprintf("rp%d", i)}
		}, rootPorts)
		if err != nil {
			return err
		}
		for k, v := range got {
			if v != conv[k] {
				expr[k] = v
			}
		}
		plugged = plugged[n:]
	}
	for name, r := range pciRecipes {
		if r.machine != "pc" || conv[name].vendor == 0 || conv[name].bridge != "" {
			continue
		}
		argv := append(strings.Fields(q35Argv), r.argv...)
		argv = append(argv, "-device", "pcie-root-port,id=rp0,bus=pcie.0,chassis=1,addr=0x2",
			"-device", joinOpts(name+",id=g0,bus=rp0", r.opts))
		if id, ok, err := c.pciSingle(argv, 1); err != nil {
			return err
		} else if ok && id != conv[name] {
			expr[name] = id
		}
	}
	for _, d := range c.devices {
		if id, ok := conv[d.name]; ok {
			c.pci = append(c.pci, &pciInfo{name: d.name, conventional: id, expr: expr[d.name]})
		}
	}
	lg.Printf("%d PCI identities (%d differ behind a PCIe port)", len(c.pci), len(expr))
	if len(c.pci) < 50 {
		return fmt.Errorf("only %d PCI identities captured", len(c.pci))
	}
	return nil
}

// pciRecipe is how to create a PCI device type that QEMU will not create bare: on which
// machine (pcie.0 of a q35 for PCIe ports), with which extra arguments and properties.
type pciRecipe struct {
	machine string // "pc" or "q35"
	argv    []string
	opts    string
}

var pciRecipes = map[string]pciRecipe{
	"pci-bridge":                          {"pc", nil, "chassis_nr=1"},
	"pci-bridge-seat":                     {"pc", nil, "chassis_nr=1"},
	"pcie-root-port":                      {"q35", nil, "chassis=1"},
	"ioh3420":                             {"q35", nil, "chassis=1"},
	"virtio-blk-pci":                      {"pc", []string{"-blockdev", "driver=null-co,node-name=nb"}, "drive=nb"},
	"virtio-blk-pci-transitional":         {"pc", []string{"-blockdev", "driver=null-co,node-name=nb"}, "drive=nb"},
	"virtio-blk-pci-non-transitional":     {"pc", []string{"-blockdev", "driver=null-co,node-name=nb"}, "drive=nb"},
	"virtio-balloon-pci-transitional":     {"pc", nil, ""}, // one balloon per machine
	"virtio-balloon-pci-non-transitional": {"pc", nil, ""},
	"nvme":                                {"pc", nil, "serial=tlcvm"},
}

func joinOpts(a, b string) string {
	if b == "" {
		return a
	}
	return a + "," + b
}

// pciSingle starts QEMU with argv (whose device is "g0"), waits for firmware to number
// waitPorts root ports when asked, and reads g0's identity; ok is false when QEMU refuses.
func (c *catalog) pciSingle(argv []string, waitPorts int) (pciIdent, bool, error) {
	q, err := startQEMUArgs(c.bin, argv)
	if err != nil {
		return pciIdent{}, false, nil // QEMU cannot create it so
	}
	defer q.kill()
	r, err := waitFirmware(q, waitPorts)
	if err != nil {
		return pciIdent{}, false, err
	}
	id, ok := findPCI(r, "g0")
	return id, ok, nil
}

// waitFirmware polls query-pci until the firmware has given n root ports a secondary bus
// (n == 0: at once) and returns the last reply.
func waitFirmware(q *qemu, n int) (gjson.Result, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := q.call(20*time.Second, "query-pci", nil)
		if err != nil {
			return r, err
		}
		got := 0
		for _, d := range r.Get("0.devices").Array() {
			if d.Get("pci_bridge.bus.secondary").Int() != 0 {
				got++
			}
		}
		if got >= n {
			return r, nil
		}
		if time.Now().After(deadline) {
			return r, errors.New("firmware did not number the root ports' buses")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pciBatch starts QEMU with argv, waits until firmware has numbered waitPorts root ports
// (none: no wait), device_adds names[i] with place(i) as "gI", and reads their identities.
func (c *catalog) pciBatch(argv []string, names []string, place func(int) map[string]any, waitPorts int) (map[string]pciIdent, error) {
	q, err := startQEMUArgs(c.bin, argv)
	if err != nil {
		return nil, err
	}
	defer q.kill()
	if _, err := waitFirmware(q, waitPorts); err != nil {
		return nil, err
	}
	for i, name := range names {
		args := place(i)
		args["driver"], args["id"] = name, fmt.Sprintf("g%d", i)
		if _, err := q.call(20*time.Second, "device_add", args); errors.Is(err, errDied) {
			// a type that kills QEMU is left out; the batch starts again without it
			q.kill()
			return c.pciBatch(argv, append(names[:i:i], names[i+1:]...), place, waitPorts)
		}
	}
	r, err := q.call(20*time.Second, "query-pci", nil)
	if err != nil {
		return nil, err
	}
	out := map[string]pciIdent{}
	for i, name := range names {
		if id, ok := findPCI(r, fmt.Sprintf("g%d", i)); ok {
			out[name] = id
		}
	}
	return out, nil
}

// findPCI finds the function whose qdev_id is id on any bus of a query-pci reply.
func findPCI(r gjson.Result, id string) (pciIdent, bool) {
	var walk func(devs []gjson.Result) (pciIdent, bool)
	walk = func(devs []gjson.Result) (pciIdent, bool) {
		for _, d := range devs {
			if d.Get("qdev_id").String() == id && d.Get("function").Int() == 0 {
				return identOf(d), true
			}
			if got, ok := walk(d.Get("pci_bridge.devices").Array()); ok {
				return got, true
			}
		}
		return pciIdent{}, false
	}
	for _, bus := range r.Array() {
		if got, ok := walk(bus.Get("devices").Array()); ok {
			return got, true
		}
	}
	return pciIdent{}, false
}

func identOf(d gjson.Result) pciIdent {
	id := pciIdent{vendor: d.Get("id.vendor").Int(), device: d.Get("id.device").Int(), subVendor: -1, sub: -1,
		class: d.Get("class_info.class").Int(), desc: d.Get("class_info.desc").String(), pin: d.Get("irq_pin").Int()}
	if v := d.Get("id.subsystem-vendor"); v.Exists() {
		id.subVendor = v.Int()
	}
	if v := d.Get("id.subsystem"); v.Exists() {
		id.sub = v.Int()
	}
	var bars []string
	for _, b := range d.Get("regions").Array() {
		t := "io"
		if b.Get("type").String() == "memory" {
			t = "mem"
			if b.Get("mem_type_64").Bool() {
				t += "64"
			}
			if b.Get("prefetch").Bool() {
				t += "pref"
			}
		}
		bars = append(bars, fmt.Sprintf("%d %s %d", b.Get("bar").Int(), t, b.Get("size").Int()))
	}
	id.bars = strings.Join(bars, ",")
	if br := d.Get("pci_bridge"); br.Exists() {
		// before firmware: no bus number, no devices listed behind it
		id.bridge = compactJSON(br.Raw)
	}
	return id
}

func compactJSON(raw string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(raw)); err != nil {
		return raw
	}
	return b.String()
}

package main

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"tlcvm/chardev"
	"tlcvm/compat/qerror"
	"tlcvm/machine/catalog"
	"tlcvm/qdev"
	"tlcvm/qmp/cmds"
)

// feHandle is a device's use of a chardev that follows chardev-change (QEMU's
// chr_be_change): the serial port's output and input, a virtio-serial port's, move to the
// new back-end. Monitors hold their front ends directly and cannot be swapped, as in QEMU.
type feHandle struct {
	mu    sync.Mutex
	fe    *chardev.Frontend // nil once detached
	open  bool              // the front end's open state, carried over a swap
	input func([]byte)
}

func (h *feHandle) Write(p []byte) (int, error) {
	h.mu.Lock()
	fe := h.fe
	h.mu.Unlock()
	if fe == nil {
		return len(p), nil
	}
	return fe.Write(p)
}

// swap attaches to c and leaves the old front end.
func (h *feHandle) swap(c *chardev.Chardev) error {
	fe, err := c.Attach()
	if err != nil {
		return err
	}
	h.mu.Lock()
	old := h.fe
	h.fe = fe
	open, input := h.open, h.input
	h.mu.Unlock()
	fe.SetOpen(open)
	if input != nil {
		fe.SetInput(input)
	}
	if old != nil {
		old.Detach()
	}
	return nil
}

func (h *feHandle) detach() {
	h.mu.Lock()
	fe := h.fe
	h.fe = nil
	h.mu.Unlock()
	if fe != nil {
		fe.Detach()
	}
}

// chardevHotplug is chardev-add, -change, -remove and -send-break over the process's
// registry (cmds.ChardevHotplug), and the front-end model of the devices with a chardev
// property (serial ports, virtio-serial ports).
type chardevHotplug struct {
	v     *vm
	mu    sync.Mutex
	users map[string]*feHandle // chardev id → the swappable front end using it; +checklocks:mu
	// com1 is the chardev of the machine's first serial port (build attaches it), claimed
	// by the isa-serial device that names it.
	com1, com1Claimed string
}

var _ cmds.ChardevHotplug = (*chardevHotplug)(nil)

func newChardevHotplug(v *vm) *chardevHotplug {
	return &chardevHotplug{v: v, users: map[string]*feHandle{}}
}

func (h *chardevHotplug) opts(lookupFD func(string) (int, error)) chardev.Options {
	// A pty made over QMP prints nothing: QEMU's qemu_printf goes to the QMP monitor.
	return chardev.Options{Log: h.v.log, Stderr: h.v.stderr, Stdout: io.Discard, Prog: h.v.plan.cfg.Prog, LookupFD: lookupFD}
}

func ptyPath(c *chardev.Chardev) string {
	if c.Spec().Backend == chardev.BackendPty {
		return strings.TrimPrefix(c.Filename(), "pty:")
	}
	return ""
}

func (h *chardevHotplug) Add(s chardev.Spec, lookupFD func(string) (int, error)) (string, error) {
	c, err := h.v.chardevs.Open(s, h.opts(lookupFD))
	if err != nil {
		if errors.Is(err, chardev.ErrDuplicate) {
			return "", err
		}
		// the text only: a monitor's own error (a missing fd name) must not come through whole
		return "", qerror.Errorf(chardev.ErrInvalid, "Failed to add chardev '%s': %s", s.ID, err)
	}
	return ptyPath(c), nil
}

func (h *chardevHotplug) Change(s chardev.Spec, lookupFD func(string) (int, error)) (string, error) {
	old, ok := h.v.chardevs.Get(s.ID)
	if !ok {
		return "", qerror.Errorf(chardev.ErrNotFound, "Chardev '%s' does not exist", s.ID)
	}
	if old.Spec().Mux {
		return "", qerror.Errorf(chardev.ErrInvalid, "Mux device hotswap not supported yet")
	}
	h.mu.Lock()
	user := h.users[s.ID]
	h.mu.Unlock()
	if old.Busy() && user == nil {
		return "", qerror.Errorf(chardev.ErrInUse, "Chardev user does not support chardev hotswap")
	}
	c, err := chardev.OpenWith(s, h.opts(lookupFD))
	if err != nil {
		return "", err
	}
	if _, err := h.v.chardevs.Replace(c); err != nil {
		c.Close()
		return "", err
	}
	if user != nil {
		if err := user.swap(c); err != nil {
			return "", err
		}
	}
	old.Close()
	return ptyPath(c), nil
}

func (h *chardevHotplug) Remove(id string) error { return h.v.chardevs.Remove(id) }

func (h *chardevHotplug) SendBreak(id string) error {
	if _, ok := h.v.chardevs.Get(id); !ok {
		return qerror.Errorf(chardev.ErrNotFound, "Chardev '%s' not found", id)
	}
	return nil // no front end of tlcvm's acts on a break
}

// Lookup implements cmds.ChardevHotplug.
func (h *chardevHotplug) Lookup(id string) (*chardev.Chardev, bool) { return h.v.chardevs.Get(id) }

// register makes fe, which uses chardev id, follow chardev-change.
func (h *chardevHotplug) register(id string, fe *feHandle) {
	h.mu.Lock()
	h.users[id] = fe
	h.mu.Unlock()
}

// hasChardevProp reports whether a device type takes a chardev (serial ports, virtio-serial
// ports, …).
func hasChardevProp(typ string) bool {
	props, err := catalog.DeviceProperties(typ)
	if err != nil {
		return false
	}
	for _, p := range props {
		if p.Name == "chardev" {
			return true
		}
	}
	return false
}

// chardevOwner is the type QEMU names in a chardev property's errors: the UARTs' property
// is their "serial" state's.
func chardevOwner(typ string) string {
	switch typ {
	case "isa-serial", "pci-serial":
		return "serial"
	}
	return typ
}

// Check is the chardev property's setter: the chardev exists.
func (h *chardevHotplug) Check(d *qdev.Device) error {
	id := d.PropString("chardev")
	if id == "" {
		return nil
	}
	if _, ok := h.v.chardevs.Get(id); !ok {
		return qerror.Errorf(qdev.ErrProperty, "Property '%s.chardev' can't find value '%s'", chardevOwner(d.Type), id)
	}
	return nil
}

// Realize attaches the device's front end: a UART's is open, a virtio-serial port's stays
// closed until the guest opens the port (tlcvm's guest has no virtio-serial driver), a
// console's is open.
func (h *chardevHotplug) Realize(d *qdev.Device) error {
	if err := virtserialPortChecks(d); err != nil {
		return err
	}
	id := d.PropString("chardev")
	if id == "" {
		return nil
	}
	h.mu.Lock()
	com1 := d.Type == "isa-serial" && id == h.com1 && h.com1Claimed == ""
	if com1 {
		h.com1Claimed = d.Path // the machine's serial port: build attached it
	}
	h.mu.Unlock()
	if com1 {
		return nil
	}
	c, _ := h.v.chardevs.Get(id)
	fe, err := c.Attach()
	if err != nil {
		return qerror.Errorf(qdev.ErrProperty, "Property '%s.chardev' can't take value '%s': %v", chardevOwner(d.Type), id, err)
	}
	handle := &feHandle{fe: fe, open: d.Type != "virtserialport"}
	fe.SetOpen(handle.open)
	d.State = handle
	h.register(id, handle)
	return nil
}

func (h *chardevHotplug) Unrealize(d *qdev.Device) {
	handle, ok := d.State.(*feHandle)
	if !ok {
		return
	}
	handle.detach()
	h.mu.Lock()
	for id, u := range h.users {
		if u == handle {
			delete(h.users, id)
		}
	}
	h.mu.Unlock()
}

// virtserialPortChecks is virtser_port_device_realize's: a free port number (nr; the
// lowest free from 1, or 0 for the first console) below max_ports, a name no other port
// has.
func virtserialPortChecks(d *qdev.Device) error {
	if d.Type != "virtserialport" && d.Type != "virtconsole" {
		return nil
	}
	name := d.PropString("name")
	nr := uint64(1<<32 - 1)
	if v, ok := d.Prop("nr"); ok {
		nr, _ = strconv.ParseUint(string(v), 10, 64)
	}
	used := map[uint64]bool{0: true} // port 0 is kept for a console
	consoleAt0 := false
	if d.Bus != nil {
		for _, o := range d.Bus.Devices() {
			if v, ok := o.Prop("nr"); ok {
				n, _ := strconv.ParseUint(string(v), 10, 64)
				used[n] = true
				consoleAt0 = consoleAt0 || n == 0
			}
		}
	}
	if nr != 1<<32-1 && used[nr] && !(nr == 0 && !consoleAt0) {
		return qerror.Errorf(qdev.ErrProperty, "virtio-serial-bus: A port already exists at id %d", nr)
	}
	if name != "" && portNameTaken(d, name) {
		return qerror.Errorf(qdev.ErrProperty, "virtio-serial-bus: A port already exists by name %s", name)
	}
	if nr == 1<<32-1 {
		if d.Type == "virtconsole" && !consoleAt0 {
			nr = 0
		} else {
			for nr = 1; used[nr]; nr++ {
			}
		}
	}
	if max := uint64(31); nr >= max {
		return qerror.Errorf(qdev.ErrProperty, "virtio-serial-bus: Out-of-range port id specified, max. allowed: %d", max-1)
	}
	d.Props["nr"] = []byte(strconv.FormatUint(nr, 10))
	return nil
}

// portNameTaken looks at the ports of d's bus (QEMU's find_port_by_name looks at every
// virtio-serial device's; libvirt names its channels uniquely anyway).
func portNameTaken(d *qdev.Device, name string) bool {
	if d.Bus == nil || d.Bus.Parent == nil {
		return false
	}
	for _, o := range d.Bus.Devices() {
		if o != d && o.PropString("name") == name {
			return true
		}
	}
	return false
}

package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"

	"tlcvm/compat/qerror"
	"tlcvm/qdev"
)

// vmgenidModel is QEMU 7.2's vmgenid device (hw/acpi/vmgenid.c) as far as the monitor sees
// it: the guid property (a UUID, "auto" for a random one, stored and shown in lower case),
// at most one device, and a machine with fw_cfg DMA (pc and q35, not none). libvirt starts
// it for a domain's <genid>; query-vm-generation-id and HMP info vm-generation-id read the
// guid back (qom-get too). tlcvm's guest reads no ACPI, so the guid goes nowhere else.
type vmgenidModel struct {
	machine string // the machine type's name

	mu      sync.Mutex
	present *qdev.Device // +checklocks:mu
}

func isVMGenID(typ string) bool { return typ == "vmgenid" }

// Check is the guid property's setter (qdev_prop_uuid's set_uuid).
func (m *vmgenidModel) Check(d *qdev.Device) error {
	g := "auto"
	if _, ok := d.Prop("guid"); ok {
		g = d.PropString("guid")
	}
	var u [16]byte
	if g == "auto" {
		if _, err := rand.Read(u[:]); err != nil {
			return err
		}
		u[6] = u[6]&0x0f | 0x40 // qemu_uuid_generate: version 4
		u[8] = u[8]&0x3f | 0x80 // the RFC 4122 variant
	} else if !parseUUID(g, &u) {
		return qerror.Errorf(qdev.ErrProperty, "Property 'vmgenid.guid' doesn't take value '%s'", g)
	}
	s := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	raw, _ := json.Marshal(s)
	if d.Props == nil {
		d.Props = map[string]json.RawMessage{}
	}
	d.Props["guid"] = raw
	return nil
}

// Realize is vmgenid_realize's checks, in its order.
func (m *vmgenidModel) Realize(d *qdev.Device) error {
	if m.machine == "none" {
		return qerror.Errorf(qdev.ErrProperty, "vmgenid requires DMA write support in fw_cfg, which this machine type does not provide")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.present != nil {
		return qerror.Errorf(qdev.ErrProperty, "at most one vmgenid device is permitted")
	}
	m.present = d
	return nil
}

// Unrealize forgets the device.
func (m *vmgenidModel) Unrealize(d *qdev.Device) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.present == d {
		m.present = nil
	}
}

// parseUUID is qemu_uuid_parse: 36 characters, hex digits in the 8-4-4-4-12 layout,
// either case.
func parseUUID(s string, u *[16]byte) bool {
	if len(s) != 36 {
		return false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
			i++
			continue
		}
		hi, ok1 := hexDigit(s[i])
		lo, ok2 := hexDigit(s[i+1])
		if !ok1 || !ok2 {
			return false
		}
		u[j] = hi<<4 | lo
		i, j = i+2, j+1
	}
	return true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		return c | 0x20 - 'a' + 10, true
	}
	return 0, false
}

package main

import (
	"os"
	"strings"

	"tlcvm/chardev"
	"tlcvm/compat"
	"tlcvm/qtest"
)

// wireQTest puts the qtest protocol on -qtest's chardev ("qtest", or the one named by
// chardev:ID), logging to -qtest-log's file (stderr without one, as QEMU; "none": nothing).
// Serving starts with the monitors (v.serves).
func (v *vm) wireQTest() error {
	cfg := v.plan.cfg
	if cfg.QTest == "" {
		return nil
	}
	id := "qtest"
	if rest, ok := strings.CutPrefix(cfg.QTest, "chardev:"); ok {
		id = rest
	}
	c, ok := v.chardevs.Get(id)
	if !ok {
		return failf(cfg, "", "Failed to initialize device for qtest: \"%s\"", cfg.QTest)
	}
	log := v.stderr
	if cfg.HasQTestLog {
		log = nil
		if cfg.QTestLog != "none" {
			f, err := os.OpenFile(cfg.QTestLog, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
			if err == nil { // QEMU's fopen failing leaves the log off, silently
				v.qtestLog = f
				log = f
			}
		}
	}
	fe, err := c.Attach()
	if err != nil {
		return failf(cfg, "", "%v", err)
	}
	c.SetEcho(true)
	m := v.machine
	srv := qtest.New(qtest.Config{Machine: m, Resolve: v.qtestResolve, Log: log})
	v.serves = append(v.serves, func() { fe.Serve(func(conn chardev.Conn) { srv.Serve(conn) }) })
	return nil
}

// qtestResolve finds the device at a QOM path for the IRQ commands: the QOM tree's
// objects, and the board's I/O APIC, which QEMU puts under its host bridge
// (/machine/i440fx/ioapic, /machine/q35/ioapic) and tlcvm's tree does not list.
func (v *vm) qtestResolve(path string) qtest.Device {
	bridge := "i440fx"
	if strings.Contains(v.plan.machine.Name, "q35") {
		bridge = "q35"
	}
	if v.plan.machine.Name != "none" {
		switch path {
		case "ioapic", bridge + "/ioapic", "/machine/" + bridge + "/ioapic":
			return qtest.IOAPIC
		case bridge, "/machine/" + bridge:
			return qtest.OtherDevice
		}
	}
	if v.qom == nil {
		return qtest.NoDevice
	}
	if o := v.qom().Resolve(path); o != nil && o.Type != "container" {
		return qtest.OtherDevice
	}
	return qtest.NoDevice
}

// qtestChardevError is QEMU's report when -qtest's chardev cannot be opened: the
// chardev's own error, then qtest's line (both without a location).
func qtestChardevError(cfg *compat.Config, err error) error {
	return failf(cfg, "", "%s\n%s: Failed to initialize device for qtest: \"%s\"", err.Error(), cfg.Prog, cfg.QTest)
}

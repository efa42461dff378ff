package qdev

import (
	"errors"

	"tlcvm/compat/qerror"
)

// Sentinels. Every error of this package is a *qerror.Error with QEMU 7.2's text wrapping
// one of them (or a model's own error, passed through).
var (
	// ErrDeviceNotFound: device_del of an id or path that names no device (QMP class
	// DeviceNotFound).
	ErrDeviceNotFound = errors.New("device not found")
	// ErrBus: no such bus, no bus of the device's type, or the wrong type of bus.
	ErrBus = errors.New("no suitable bus")
	// ErrHotplug: the bus or the device does not support hot(un)plug.
	ErrHotplug = errors.New("hotplug not supported")
	// ErrID: a malformed or duplicate id.
	ErrID = errors.New("bad device id")
	// ErrProperty: an unknown property or a value it does not take.
	ErrProperty = errors.New("bad device property")
	// ErrAddress: no free PCI slot, or the one asked for is taken or not allowed.
	ErrAddress = errors.New("bad device address")
	// ErrNoUSB: a USB query on a machine without a USB bus.
	ErrNoUSB = errors.New("no USB bus")
)

func errf(kind error, format string, a ...any) error { return qerror.Errorf(kind, format, a...) }

package cmds

import (
	"tlcvm/qdev"
	"tlcvm/qmp"
)

// query-display-options (ui/console.c qmp_query_display_options: the -display options as
// parsed), query-mice (ui/input.c qmp_query_mice: the pointer devices the input layer knows)
// and dumpdtb (device_tree.c: x86 machines have no flattened device tree).

// DisplayType is QAPI's DisplayType, as QEMU 7.2 on Linux has it.
type DisplayType string

// EnumValues implements qmp.Enum.
func (DisplayType) EnumValues() []string {
	return []string{"default", "none", "gtk", "sdl", "egl-headless", "curses", "spice-app", "dbus"}
}

// DisplayGLMode is QAPI's DisplayGLMode.
type DisplayGLMode string

// EnumValues implements qmp.Enum.
func (DisplayGLMode) EnumValues() []string { return []string{"off", "on", "core", "es"} }

// DisplayOptions is QAPI's DisplayOptions, for the schema; the reply is built as a QDict
// from the command line's members (Deps.Display), in QEMU's key order.
type DisplayOptions struct {
	Type        DisplayType    `json:"type"`
	FullScreen  *bool          `json:"full-screen,omitempty"`
	WindowClose *bool          `json:"window-close,omitempty"`
	ShowCursor  *bool          `json:"show-cursor,omitempty"`
	GL          *DisplayGLMode `json:"gl,omitempty"`
	Variant     any            `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (DisplayOptions) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union.
func (DisplayOptions) UnionVariants() map[string]any {
	return map[string]any{"gtk": DisplayGTK{}, "curses": DisplayCurses{},
		"egl-headless": DisplayEGLHeadless{}, "dbus": DisplayDBus{}, "sdl": DisplaySDL{}}
}

// DisplayGTK is QAPI's DisplayGTK.
type DisplayGTK struct {
	GrabOnHover *bool `json:"grab-on-hover,omitempty"`
	ZoomToFit   *bool `json:"zoom-to-fit,omitempty"`
	ShowTabs    *bool `json:"show-tabs,omitempty"`
	ShowMenubar *bool `json:"show-menubar,omitempty"`
}

// DisplayCurses is QAPI's DisplayCurses.
type DisplayCurses struct {
	Charset *string `json:"charset,omitempty"`
}

// DisplayEGLHeadless is QAPI's DisplayEGLHeadless.
type DisplayEGLHeadless struct {
	Rendernode *string `json:"rendernode,omitempty"`
}

// DisplayDBus is QAPI's DisplayDBus.
type DisplayDBus struct {
	Rendernode *string `json:"rendernode,omitempty"`
	Addr       *string `json:"addr,omitempty"`
	P2P        *bool   `json:"p2p,omitempty"`
	Audiodev   *string `json:"audiodev,omitempty"`
}

// HotKeyMod is QAPI's HotKeyMod.
type HotKeyMod string

// EnumValues implements qmp.Enum.
func (HotKeyMod) EnumValues() []string { return []string{"lctrl-lalt", "lshift-lctrl-lalt", "rctrl"} }

// DisplaySDL is QAPI's DisplaySDL.
type DisplaySDL struct {
	GrabMod *HotKeyMod `json:"grab-mod,omitempty"`
}

// MouseInfo is QAPI's MouseInfo, in QEMU's key order.
type MouseInfo struct {
	Index    int64  `json:"index"`
	Name     string `json:"name"`
	Current  bool   `json:"current"`
	Absolute bool   `json:"absolute"`
}

// DumpdtbArgs is dumpdtb's arguments.
type DumpdtbArgs struct {
	Filename string `json:"filename"`
}

// inputDevice is what QEMU's input layer knows of a -device model that registers an input
// handler when it is realised: the handler's name, and whether it is a pointer
// (absolute or relative) at all.
type inputDevice struct {
	name              string
	pointer, absolute bool
}

var inputDevices = map[string]inputDevice{
	"usb-mouse":           {"QEMU HID Mouse", true, false},
	"usb-tablet":          {"QEMU HID Tablet", true, true},
	"usb-wacom-tablet":    {"QEMU PenPartner Tablet", true, true},
	"usb-kbd":             {"QEMU HID Keyboard", false, false},
	"virtio-mouse-pci":    {"QEMU Virtio Mouse", true, false},
	"virtio-tablet-pci":   {"QEMU Virtio Tablet", true, true},
	"virtio-keyboard-pci": {"QEMU Virtio Keyboard", false, false},
}

// firstDeviceHandler is the input handler id the first -device input model gets on pc and
// q35: the board's PS/2 keyboard and mouse (id 2, QEMU's "QEMU PS/2 Mouse") come first.
const firstDeviceHandler = 3

// mice is qmp_query_mice. QEMU keeps its handlers in a list where the last activated comes
// first and the others in registration order, and builds the reply by prepending, so the
// reply is that list reversed. The PS/2 mouse is active from reset (it is the "current"
// one) and stays so: tlcvm's guest drives no USB or virtio input device, so none of them
// ever activates its handler.
func mice(ps2 bool, devs []*qdev.Device) []MouseInfo {
	out := []MouseInfo{}
	if ps2 {
		out = append(out, MouseInfo{Index: 2, Name: "QEMU PS/2 Mouse", Current: true})
	}
	id := int64(firstDeviceHandler)
	for _, d := range devs {
		in, ok := inputDevices[d.Type]
		if !ok {
			continue
		}
		if in.pointer {
			out = append(out, MouseInfo{Index: id, Name: in.name, Absolute: in.absolute})
		}
		id++
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// displayOptions is qmp_query_display_options: the -display options given (type "none"
// when there was none: tlcvm opens no window, as QEMU on a host without a GUI falls back to).
func displayOptions(d *Deps) *qmp.Value {
	o := qmp.Object()
	if len(d.Display.Members) == 0 {
		o.Set("type", qmp.String("none"))
		return o
	}
	for _, m := range d.Display.Members {
		if m.IsBool {
			o.Set(m.Key, qmp.Bool(m.Bool))
		} else {
			o.Set(m.Key, qmp.String(m.Value))
		}
	}
	return o
}

func registerDisplayInfo(r *qmp.Registry, d *Deps) {
	r.Register(
		qmp.Command{Name: "query-display-options", Returns: DisplayOptions{},
			Run: func(*qmp.Call) (any, error) { return displayOptions(d), nil }},
		qmp.Command{Name: "dumpdtb", Args: &DumpdtbArgs{},
			Run: func(*qmp.Call) (any, error) {
				return nil, qmp.GenericError("This machine doesn't have a FDT")
			}},
	)
	r.Register(qmp.Command{Name: "query-mice", Returns: []MouseInfo{},
		Run: func(*qmp.Call) (any, error) {
			var devs []*qdev.Device
			if d.Devices != nil {
				devs = d.Devices.Peripherals()
			}
			return mice(d.MachineType != "none", devs), nil
		}})
}

package cmds

import (
	"slices"

	"tlcvm/input"
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

// MouseSetArgs is HMP mouse_set's argument, the handler's index.
type MouseSetArgs struct {
	Index int64 `json:"index"`
}

// inputHandler is one handler of QEMU's input layer, with its id.
type inputHandler struct {
	id int64
	inputDevice
}

// inputHandlers is QEMU's handler list: the board's PS/2 keyboard (1) and mouse (2), then
// the devices' handlers in registration order, each activated one moved to the head (the
// PS/2 mouse at reset, then those mouse_set named, in that order).
func inputHandlers(ps2 bool, devs []*qdev.Device, activated []int64) []inputHandler {
	var hs []inputHandler
	if ps2 {
		hs = append(hs, inputHandler{1, inputDevice{name: "QEMU PS/2 Keyboard"}},
			inputHandler{2, inputDevice{name: "QEMU PS/2 Mouse", pointer: true}})
		activated = append([]int64{2}, activated...)
	}
	id := int64(firstDeviceHandler)
	for _, d := range devs {
		if in, ok := inputDevices[d.Type]; ok {
			hs = append(hs, inputHandler{id, in})
			id++
		}
	}
	for _, a := range activated {
		if i := slices.IndexFunc(hs, func(h inputHandler) bool { return h.id == a }); i >= 0 {
			h := hs[i]
			hs = slices.Insert(slices.Delete(hs, i, i+1), 0, h)
		}
	}
	return hs
}

// mice is qmp_query_mice: the pointers of the handler list, the first one current, built by
// prepending (so the reply is the list reversed).
func mice(hs []inputHandler) []MouseInfo {
	out := []MouseInfo{}
	current := true
	for _, h := range hs {
		if h.pointer {
			out = append(out, MouseInfo{Index: h.id, Name: h.name, Absolute: h.absolute, Current: current})
			current = false
		}
	}
	slices.Reverse(out)
	return out
}

// mouseSet is qemu_mouse_set (HMP mouse_set).
func mouseSet(hs []inputHandler, index int64, in *input.Router) error {
	for _, h := range hs {
		if h.id != index {
			continue
		}
		if !h.pointer {
			return qmp.GenericError("Input device '%s' is not a mouse", h.name)
		}
		in.ActivatePointer(index)
		return nil
	}
	return qmp.GenericError("Mouse at index '%d' not found", index)
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
	handlers := func() []inputHandler {
		var devs []*qdev.Device
		if d.Devices != nil {
			devs = d.Devices.Peripherals()
		}
		var act []int64
		if d.Input != nil {
			act = d.Input.PointerActivations()
		}
		return inputHandlers(d.MachineType != "none", devs, act)
	}
	r.Register(qmp.Command{Name: "query-mice", Returns: []MouseInfo{},
		Run: func(*qmp.Call) (any, error) { return mice(handlers()), nil }})
	if d.Input != nil {
		r.Register(qmp.Command{Name: "x-tlcvm-mouse-set", Internal: true, Args: &MouseSetArgs{},
			Run: func(c *qmp.Call) (any, error) {
				return nil, mouseSet(handlers(), c.Args.(*MouseSetArgs).Index, d.Input)
			}})
	}
}

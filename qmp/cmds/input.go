package cmds

import (
	"time"

	"tlcvm/input"
	"tlcvm/machine"
	"tlcvm/qmp"
)

// send-key and input-send-event (qapi/ui.json; ui/input-legacy.c qmp_send_key, ui/input.c
// qmp_input_send_event): events through the input router (Deps.Input) to the machine's
// PS/2 keyboard and mouse.

// QKeyCode is QAPI's QKeyCode.
type QKeyCode string

// EnumValues lists QAPI's values.
func (QKeyCode) EnumValues() []string { return input.QKeyCodes }

// KeyValueKind is QAPI's KeyValueKind.
type KeyValueKind string

// EnumValues lists QAPI's values.
func (KeyValueKind) EnumValues() []string { return []string{"number", "qcode"} }

// IntWrapper is QAPI's IntWrapper.
type IntWrapper struct {
	Data int64 `json:"data"`
}

// QKeyCodeWrapper is QAPI's QKeyCodeWrapper.
type QKeyCodeWrapper struct {
	Data QKeyCode `json:"data"`
}

// KeyValue is QAPI's KeyValue union: a key number or a qcode.
type KeyValue struct {
	Type    KeyValueKind `json:"type"`
	Variant any          `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (KeyValue) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union.
func (KeyValue) UnionVariants() map[string]any {
	return map[string]any{"number": IntWrapper{}, "qcode": QKeyCodeWrapper{}}
}

// qcode is qemu_input_key_value_to_qcode.
func (k *KeyValue) qcode() int {
	switch v := k.Variant.(type) {
	case *IntWrapper:
		return input.QCodeOfNum(v.Data)
	case *QKeyCodeWrapper:
		q, _ := input.QCode(string(v.Data))
		return q
	}
	return 0
}

// SendKeyArgs are send-key's arguments.
type SendKeyArgs struct {
	Keys     []KeyValue `json:"keys"`
	HoldTime *int64     `json:"hold-time,omitempty"`
}

// InputEventKind is QAPI's InputEventKind.
type InputEventKind string

// EnumValues lists QAPI's values.
func (InputEventKind) EnumValues() []string { return []string{"key", "btn", "rel", "abs"} }

// InputButton is QAPI's InputButton.
type InputButton string

// EnumValues lists QAPI's values.
func (InputButton) EnumValues() []string { return input.Buttons }

// InputAxis is QAPI's InputAxis.
type InputAxis string

// EnumValues lists QAPI's values.
func (InputAxis) EnumValues() []string { return input.Axes }

// InputKeyEvent is QAPI's InputKeyEvent.
type InputKeyEvent struct {
	Key  KeyValue `json:"key"`
	Down bool     `json:"down"`
}

// InputBtnEvent is QAPI's InputBtnEvent.
type InputBtnEvent struct {
	Button InputButton `json:"button"`
	Down   bool        `json:"down"`
}

// InputMoveEvent is QAPI's InputMoveEvent.
type InputMoveEvent struct {
	Axis  InputAxis `json:"axis"`
	Value int64     `json:"value"`
}

// InputKeyEventWrapper and the others are QAPI's wrappers of the InputEvent variants.
type InputKeyEventWrapper struct {
	Data InputKeyEvent `json:"data"`
}

// InputBtnEventWrapper wraps InputBtnEvent.
type InputBtnEventWrapper struct {
	Data InputBtnEvent `json:"data"`
}

// InputMoveEventWrapper wraps InputMoveEvent (rel and abs).
type InputMoveEventWrapper struct {
	Data InputMoveEvent `json:"data"`
}

// InputEvent is QAPI's InputEvent union.
type InputEvent struct {
	Type    InputEventKind `json:"type"`
	Variant any            `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (InputEvent) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union.
func (InputEvent) UnionVariants() map[string]any {
	return map[string]any{"key": InputKeyEventWrapper{}, "btn": InputBtnEventWrapper{},
		"rel": InputMoveEventWrapper{}, "abs": InputMoveEventWrapper{}}
}

func index(list []string, v string) int {
	for i, s := range list {
		if s == v {
			return i
		}
	}
	return 0
}

// event converts to the router's event.
func (e *InputEvent) event() input.Event {
	switch v := e.Variant.(type) {
	case *InputKeyEventWrapper:
		return input.Event{Kind: input.KindKey, QCode: v.Data.Key.qcode(), Down: v.Data.Down}
	case *InputBtnEventWrapper:
		return input.Event{Kind: input.KindBtn, Button: index(input.Buttons, string(v.Data.Button)), Down: v.Data.Down}
	case *InputMoveEventWrapper:
		k := input.KindRel
		if e.Type == "abs" {
			k = input.KindAbs
		}
		return input.Event{Kind: k, Axis: index(input.Axes, string(v.Data.Axis)), Value: v.Data.Value}
	}
	return input.Event{}
}

// InputSendEventArgs are input-send-event's arguments.
type InputSendEventArgs struct {
	Device *string      `json:"device,omitempty"`
	Head   *int64       `json:"head,omitempty"`
	Events []InputEvent `json:"events"`
}

// lookupConsole is qemu_console_lookup_by_device_name for a device argument (nil: none
// asked, nothing to check) and its head (nil: 0).
func (d *Deps) lookupConsole(id *string, head *int64) error {
	if id == nil {
		return nil
	}
	h := int64(0)
	if head != nil {
		h = *head
	}
	if !d.hasDevice(*id) {
		return qmp.DeviceNotFound(*id)
	}
	if d.Console == nil || d.Console.ID != *id || h != 0 {
		return qmp.Errorf("GenericError", "Device %s (head %d) is not bound to a QemuConsole", *id, h)
	}
	return nil
}

// hasDevice is qdev_find_recursive: a -device or device_add device has the id.
func (d *Deps) hasDevice(id string) bool {
	if d.Devices == nil {
		return false
	}
	_, ok := d.Devices.Lookup(id)
	return ok
}

func registerInput(r *qmp.Registry, d *Deps) {
	if d.Input == nil {
		return
	}
	in := d.Input
	r.Register(
		qmp.Command{Name: "send-key", Args: &SendKeyArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*SendKeyArgs)
				hold := time.Duration(0) // the default delay
				if a.HoldTime != nil && *a.HoldTime > 0 {
					hold = time.Duration(*a.HoldTime) * time.Millisecond
				}
				for i := range a.Keys {
					in.SendKey(a.Keys[i].qcode(), true)
					in.KeyDelay(hold)
				}
				for i := len(a.Keys) - 1; i >= 0; i-- {
					in.SendKey(a.Keys[i].qcode(), false)
					in.KeyDelay(hold)
				}
				return nil, nil
			}},
		qmp.Command{Name: "input-send-event", Args: &InputSendEventArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*InputSendEventArgs)
				if err := d.lookupConsole(a.Device, a.Head); err != nil {
					return nil, err
				}
				if st, _ := d.Machine.Status(); st != machine.StateRunning && st != machine.StateSuspended {
					return nil, qmp.GenericError("VM not running")
				}
				events := make([]input.Event, 0, len(a.Events))
				for i := range a.Events {
					e := a.Events[i].event()
					if !in.Has(e.Kind) {
						return nil, qmp.Errorf("GenericError", "Input handler not found for event type %s", e.Kind)
					}
					events = append(events, e)
				}
				in.Send(events...)
				return nil, nil
			}},
	)
}

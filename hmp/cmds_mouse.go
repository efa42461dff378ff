package hmp

import (
	"strconv"
	"strings"
	"sync"
)

// mouse_move and mouse_button: hmp_mouse_move and hmp_mouse_button, as pointer events
// through QMP input-send-event (QEMU queues the same events on its input layer). Like
// QEMU's, they print nothing: an event the machine does not take (the VM is not running,
// no pointer) is dropped. mouse_button sends only the buttons that changed since the last
// mouse_button of the process (QEMU's static mouse_button_state).

var mouseButtons struct {
	sync.Mutex
	state int64
}

func mouseCommands() []Command {
	return []Command{
		{Name: "mouse_move", Args: "dx_str:s,dy_str:s,dz_str:s?", Params: "dx dy [dz]",
			Help: "send mouse move events",
			Run: func(c *Call) {
				dx, _ := c.Args.Str("dx_str")
				dy, _ := c.Args.Str("dy_str")
				events := []any{relEvent("x", cStrtol(dx)), relEvent("y", cStrtol(dy))}
				var up []any
				if dz, ok := c.Args.Str("dz_str"); ok {
					if z := cStrtol(dz); z != 0 {
						b := "wheel-down"
						if z > 0 {
							b = "wheel-up"
						}
						events = append(events, btnEvent(b, true))
						up = []any{btnEvent(b, false)}
					}
				}
				_, _ = c.Execute("input-send-event", map[string]any{"events": events})
				if up != nil {
					_, _ = c.Execute("input-send-event", map[string]any{"events": up})
				}
			}},
		{Name: "mouse_button", Args: "button_state:i", Params: "state",
			Help: "change mouse button state (1=L, 2=M, 4=R)",
			Run: func(c *Call) {
				state, _ := c.Args.Int("button_state")
				mouseButtons.Lock()
				defer mouseButtons.Unlock()
				old := mouseButtons.state
				if old == state {
					return
				}
				// qemu_input_update_buttons over QEMU's legacy map: left, middle, right
				var events []any
				for _, b := range []struct {
					name string
					bit  int64
				}{{"left", 1}, {"middle", 4}, {"right", 2}} {
					if (old^state)&b.bit != 0 {
						events = append(events, btnEvent(b.name, state&b.bit != 0))
					}
				}
				if len(events) > 0 {
					_, _ = c.Execute("input-send-event", map[string]any{"events": events})
				}
				mouseButtons.state = state
			}},
	}
}

func relEvent(axis string, v int64) any {
	return map[string]any{"type": "rel", "data": map[string]any{"axis": axis, "value": v}}
}

func btnEvent(button string, down bool) any {
	return map[string]any{"type": "btn", "data": map[string]any{"button": button, "down": down}}
}

// cStrtol is strtol(s, NULL, 0) truncated to a C int: leading space, a sign, a 0x or 0
// prefix for the base, digits up to the first that is not one; 0 when there are none.
func cStrtol(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg, s = s[0] == '-', s[1:]
	}
	base := 10
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && strings.ContainsRune("0123456789abcdefABCDEF", rune(s[2])):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	end := 0
	for end < len(s) {
		if _, err := strconv.ParseUint(s[end:end+1], base, 8); err != nil {
			break
		}
		end++
	}
	v, err := strconv.ParseInt(s[:end], base, 64)
	if err != nil && end > 0 { // out of range: strtol saturates
		v = 1<<63 - 1
	}
	if neg {
		v = -v
	}
	return int64(int32(v)) // assigned to an int
}

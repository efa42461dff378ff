package hmp

import (
	"strconv"
	"strings"

	"tlcvm/input"
)

// sendkey: hmp_sendkey, through send-key.

type keyValue struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

type sendKeyArgs struct {
	Keys     []keyValue `json:"keys"`
	HoldTime *int64     `json:"hold-time,omitempty"`
}

// hmpSendkey is hmp_sendkey: keys joined by '-', each a QKeyCode name, "<" for less, or
// a 0x number; hold_ms optional.
func hmpSendkey(c *Call) {
	keys, _ := c.Args.Str("keys")
	var a sendKeyArgs
	if v, ok := c.Args.Int("hold-time"); ok {
		a.HoldTime = &v
	}
	for {
		name, rest, more := strings.Cut(keys, "-")
		if name == "<" {
			name = "less"
		}
		switch {
		case strings.HasPrefix(name, "0x"):
			n, err := strconv.ParseUint(name[2:], 16, 64)
			if err != nil {
				c.Printf("invalid parameter: %s\n", name)
				return
			}
			a.Keys = append(a.Keys, keyValue{Type: "number", Data: int64(int32(n))})
		case contains(input.QKeyCodes, name):
			a.Keys = append(a.Keys, keyValue{Type: "qcode", Data: name})
		default:
			c.Printf("invalid parameter: %s\n", name)
			return
		}
		if !more {
			break
		}
		keys = rest
	}
	c.Do("send-key", a)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func inputCommands() []Command {
	return []Command{
		{Name: "sendkey", Args: "keys:s,hold-time:i?", Params: "keys [hold_ms]",
			Help: "send keys to the VM (e.g. 'sendkey ctrl-alt-f1', default hold time=100 ms)", Run: hmpSendkey},
	}
}

package hmp

// HMP's removable-media commands, as QEMU 7.2's block/monitor/block-hmp-cmds.c hmp_eject
// and monitor/hmp-cmds.c hmp_change: `eject` is QMP eject, `change DEVICE FILE` is
// blockdev-change-medium, and `change vnc password` is change-vnc-password.

// changeReadOnlyModes are BlockdevChangeReadOnlyMode's values (qapi_enum_parse's table).
var changeReadOnlyModes = []string{"retain", "read-only", "read-write"}

func mediaCommands() []Command {
	return []Command{
		{Name: "eject", Args: "force:-f,device:B", Params: "[-f] device",
			Help: "eject a removable medium (use -f to force it)",
			Run: func(c *Call) {
				device, _ := c.Args.Str("device")
				c.Do("eject", map[string]any{"device": device, "force": c.Args.Bool("force")})
			}},
		{Name: "change", Args: "device:B,force:-f,target:F,arg:s?,read-only-mode:s?",
			Params: "device [-f] filename [format [read-only-mode]]",
			Help:   "change a removable medium, optional format, use -f to force the operation",
			Run:    change},
	}
}

// change is hmp_change: "vnc" selects the VNC password, anything else a block device.
func change(c *Call) {
	device, _ := c.Args.Str("device")
	target, _ := c.Args.Str("target")
	format, hasFormat := c.Args.Str("arg")
	mode, hasMode := c.Args.Str("read-only-mode")
	if device == "vnc" {
		switch {
		case hasMode:
			c.Print("Parameter 'read-only-mode' is invalid for VNC\n")
		case target != "passwd" && target != "password":
			c.Print("Expected 'password' after 'vnc'\n")
		case !hasFormat:
			c.ReadPassword(func(c *Call, password string) {
				// hmp_change_read_arg ignores the outcome.
				_, _ = c.Execute("change-vnc-password", map[string]any{"password": password})
			})
		default:
			c.Do("change-vnc-password", map[string]any{"password": format})
		}
		return
	}
	args := map[string]any{"device": device, "filename": target, "force": c.Args.Bool("force")}
	if hasFormat {
		args["format"] = format
	}
	if hasMode {
		ok := false
		for _, m := range changeReadOnlyModes {
			ok = ok || m == mode
		}
		if !ok {
			c.Printf("Error: invalid parameter value: %s\n", mode)
			return
		}
		args["read-only-mode"] = mode
	}
	c.Do("blockdev-change-medium", args)
}

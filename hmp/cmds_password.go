package hmp

// set_password and expire_password: hmp_set_password and hmp_expire_password over their
// QMP twins. HMP parses the protocol and the action itself (qapi_enum_parse: "invalid
// parameter value: X") before QMP sees anything.

func passwordCommands() []Command {
	return []Command{
		{Name: "set_password", Args: "protocol:s,password:s,display:-ds,connected:s?",
			Params: "protocol password [-d display] [action-if-connected]", Help: "set spice/vnc password",
			Run: func(c *Call) {
				protocol, _ := c.Args.Str("protocol")
				password, _ := c.Args.Str("password")
				args := map[string]any{"password": password}
				if conn, ok := c.Args.Str("connected"); ok {
					if !enumValue(c, conn, "keep", "fail", "disconnect") {
						return
					}
					args["connected"] = conn
				}
				if !displayProtocol(c, args, protocol) {
					return
				}
				if conn, ok := args["connected"]; protocol == "vnc" && (!ok || conn == "keep") {
					noPasswordAuthHint(c, args["display"])
				}
				c.Do("set_password", args)
			}},
		{Name: "expire_password", Args: "protocol:s,time:s,display:-ds",
			Params: "protocol time [-d display]", Help: "set spice/vnc password expire-time",
			Run: func(c *Call) {
				protocol, _ := c.Args.Str("protocol")
				when, _ := c.Args.Str("time")
				args := map[string]any{"time": when}
				if !displayProtocol(c, args, protocol) {
					return
				}
				c.Do("expire_password", args)
			}},
	}
}

// noPasswordAuthHint is what vnc_display_password prints on an HMP monitor
// (error_printf_unless_qmp) before failing for a display without password
// authentication.
func noPasswordAuthHint(c *Call, display any) {
	var servers []struct {
		ID   string `json:"id"`
		Auth string `json:"auth"`
	}
	if c.Query("query-vnc-servers", nil, &servers) != nil || len(servers) == 0 {
		return
	}
	s := servers[0] // vnc_display_find(NULL): the first display
	if id, ok := display.(string); ok {
		s.Auth = ""
		for _, x := range servers {
			if x.ID == id {
				s = x
			}
		}
	}
	if s.Auth == "none" {
		c.Print("If you want use passwords please enable password auth using '-vnc ${dpy},password'.\n")
	}
}

// displayProtocol parses the DisplayProtocol and, for vnc, adds -d's display.
func displayProtocol(c *Call, args map[string]any, protocol string) bool {
	if !enumValue(c, protocol, "vnc", "spice") {
		return false
	}
	args["protocol"] = protocol
	if d, ok := c.Args.Str("display"); ok && protocol == "vnc" {
		args["display"] = d
	}
	return true
}

// enumValue is qapi_enum_parse as HMP reports it.
func enumValue(c *Call, v string, values ...string) bool {
	for _, x := range values {
		if v == x {
			return true
		}
	}
	c.Printf("Error: invalid parameter value: %s\n", v)
	return false
}

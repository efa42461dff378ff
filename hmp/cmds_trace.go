package hmp

// trace-event and info trace-events: hmp_trace_event and hmp_info_trace_events
// (monitor/hmp-cmds.c), through trace-event-set-state and trace-event-get-state.

type traceEventInfo struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// traceVCPU is the HMP vcpu argument as QEMU reads it (an int from a 32-bit value): false
// after printing QEMU's complaint, without a newline, for a negative one.
func traceVCPU(c *Call, args map[string]any) bool {
	v, ok := c.Args.Int("vcpu")
	if !ok {
		return true
	}
	if int32(v) < 0 {
		c.Print("argument vcpu must be positive")
		return false
	}
	args["vcpu"] = int64(int32(v))
	return true
}

func traceCommands() []Command {
	return []Command{
		{Name: "trace-event", Args: "name:s,option:b,vcpu:i?", Params: "name on|off [vcpu]",
			Help: "changes status of a specific trace event (vcpu: vCPU to set, default is all)",
			Run: func(c *Call) {
				name, _ := c.Args.Str("name")
				args := map[string]any{"name": name, "enable": c.Args.Bool("option"), "ignore-unavailable": true}
				if !traceVCPU(c, args) {
					return
				}
				if _, err := c.Execute("trace-event-set-state", args); err != nil {
					c.Printf("%s\n", err) // error_report_err: no "Error: " prefix
				}
			}},
		{Info: true, Name: "trace-events", Args: "name:s?,vcpu:i?", Params: "[name] [vcpu]",
			Help: "show available trace-events & their state (name: event name pattern; vcpu: vCPU to query, default is any)",
			Run: func(c *Call) {
				name, ok := c.Args.Str("name")
				if !ok {
					name = "*"
				}
				args := map[string]any{"name": name}
				if !traceVCPU(c, args) {
					return
				}
				var events []traceEventInfo
				if err := c.Query("trace-event-get-state", args, &events); err != nil {
					c.Printf("%s\n", err)
					return
				}
				for _, e := range events {
					state := 0
					if e.State == "enabled" {
						state = 1
					}
					c.Printf("%s : state %d\n", e.Name, state)
				}
			}},
	}
}

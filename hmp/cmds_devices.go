package hmp

// HMP's device and network commands (hmp-commands.hx): device_add, device_del, netdev_add,
// netdev_del, set_link and `info network`, each through the QMP command that does the work.
// QEMU's HMP handlers call into qdev and net directly for what has no QMP twin (the help
// texts, `info network`, netdev_add's QemuOpts form); here those are tlcvm's internal QMP
// commands.

type textReply struct {
	Text string `json:"text"`
}

// optsArgs returns the 'O' argument's members as a JSON object of strings.
func optsArgs(a Args) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	return out
}

// NetdevHelp is show_netdevs' list of the back-ends this build of QEMU 7.2 has (`-netdev
// help`, `netdev_add help`).
const NetdevHelp = "Available netdev backend types:\nsocket\nstream\ndgram\nhubport\ntap\nuser\nl2tpv3\nvde\nbridge\nvhost-user\nvhost-vdpa\n"

// isHelp is QEMU's is_help_option.
func isHelp(s string) bool { return s == "help" || s == "?" }

func deviceCommands() []Command {
	return []Command{
		{Name: "device_add", Args: "device:O", Params: "driver[,prop=value][,...]",
			Help: "add device, like -device on the command line",
			Run: func(c *Call) {
				// qmp_device_add from HMP first offers qdev_device_help.
				driver, _ := c.Args.Str("driver")
				help := isHelp(driver)
				for k := range c.Args {
					help = help || isHelp(k)
				}
				if help {
					// qdev_device_help reports its error without hmp_handle_error's prefix
					var r textReply
					if err := c.Query("x-tlcvm-device-help", map[string]any{"driver": driver}, &r); err != nil {
						c.Printf("%s\n", err)
						return
					}
					c.Print(r.Text)
					return
				}
				c.Do("device_add", optsArgs(c.Args))
			}},
		{Name: "device_del", Args: "id:s", Params: "device", Help: "remove device",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				c.Do("device_del", map[string]any{"id": id})
			}},
		{Name: "netdev_add", Args: "netdev:O",
			Params: "[user|tap|socket|stream|dgram|vde|bridge|hubport|netmap|vhost-user],id=str[,prop=value][,...]",
			Help:   "add host network device",
			Run: func(c *Call) {
				if t, _ := c.Args.Str("type"); isHelp(t) {
					c.Print(NetdevHelp)
					return
				}
				c.Do("x-tlcvm-netdev-add-opts", optsArgs(c.Args))
			}},
		{Name: "netdev_del", Args: "id:s", Params: "id", Help: "remove host network device",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				c.Do("netdev_del", map[string]any{"id": id})
			}},
		{Name: "set_link", Args: "name:s,up:b", Params: "name on|off", Help: "change the link status of a network adapter",
			Run: func(c *Call) {
				name, _ := c.Args.Str("name")
				c.Do("set_link", map[string]any{"name": name, "up": c.Args.Bool("up")})
			}},
		{Name: "chardev-add", Args: "args:s", Params: "args", Help: "add chardev",
			Run: func(c *Call) {
				args, _ := c.Args.Str("args")
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-chardev-add-opts", map[string]any{"args": args}, &r)) {
					c.Print(r.Text)
				}
			}},
		{Name: "chardev-change", Args: "id:s,args:s", Params: "id args", Help: "change chardev",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				args, _ := c.Args.Str("args")
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-chardev-add-opts", map[string]any{"args": args, "id": id}, &r)) {
					c.Print(r.Text)
				}
			}},
		{Name: "chardev-remove", Args: "id:s", Params: "id", Help: "remove chardev",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				c.Do("chardev-remove", map[string]any{"id": id})
			}},
		{Name: "chardev-send-break", Args: "id:s", Params: "id", Help: "send a break on chardev",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				c.Do("chardev-send-break", map[string]any{"id": id})
			}},
		{Info: true, Name: "network", Params: "", Help: "show the network state",
			Run: func(c *Call) {
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-info-network", nil, &r)) {
					c.Print(r.Text)
				}
			}},
	}
}

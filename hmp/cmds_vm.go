package hmp

// Built-in commands that control the VM. Each calls its QMP twin and reports errors the
// way QEMU 7.2's hmp-cmds.c does (some of QEMU's handlers ignore errors: so do these).

// fdArgs are getfd's and closefd's QMP arguments.
type fdArgs struct {
	Fdname string `json:"fdname"`
}

// registerBuiltins registers every command this package implements.
func registerBuiltins(m *Monitor) {
	for _, cmds := range [][]Command{vmCommands(), infoCommands(), memoryCommands(), blockCommands(),
		mediaCommands(), jobCommands(), dirtyRateCommands(), snapshotCommands(), dumpCommands(), screenCommands(),
		inputCommands(), deviceCommands(), miceCommands(),
		vmgenidCommands(), qomCommands(), passwordCommands(), resizeCommands(),
		mouseCommands(), gvaCommands(), gpaCommands(), pageTableCommands(), traceCommands(), announceCommands(), userNetCommands(), qtreeCommands(), qdmCommands(), mtreeCommands(), qomTreeCommands(), ramBlockCommands(), usbCommands(), hostFwdCommands(), numaCommands(), snapshotBlkdevCommands(), driveDelCommands()} {
		for _, c := range cmds {
			m.Register(c)
		}
	}
	for _, c := range nbdCommands() {
		m.Register(c)
	}
}

func vmCommands() []Command {
	return []Command{
		{Name: "balloon", Args: "value:M", Params: "target", Help: "request VM to change its memory allocation (in MB)",
			Run: func(c *Call) {
				v, _ := c.Args.Int("value")
				c.Do("balloon", map[string]any{"value": v})
			}},
		{Name: "help|?", Args: "name:S?", Params: "[cmd]", Help: "show the help",
			Run: func(c *Call) {
				name, _ := c.Args.Str("name")
				c.m.help(c, name)
			}},
		{Name: "info", Args: "item:s?", Params: "[subcommand]",
			Help: "show various information about the system state",
			Run:  func(c *Call) { c.m.help(c, "info") }},
		{Name: "stop|s", Params: "", Help: "stop emulation",
			Run: func(c *Call) { _, _ = c.Execute("stop", nil) }}, // hmp_stop ignores errors
		{Name: "cont|c", Params: "", Help: "resume emulation",
			Run: func(c *Call) { c.Do("cont", nil) }},
		{Name: "system_reset", Params: "", Help: "reset the system",
			Run: func(c *Call) { _, _ = c.Execute("system_reset", nil) }}, // errors ignored, as QEMU
		{Name: "system_powerdown", Params: "", Help: "send system power down event",
			Run: func(c *Call) { _, _ = c.Execute("system_powerdown", nil) }}, // errors ignored, as QEMU
		{Name: "system_wakeup", Params: "", Help: "wakeup guest from suspend",
			Run: func(c *Call) { c.Do("system_wakeup", nil) }},
		{Name: "nmi", Params: "", Help: "inject an NMI",
			Run: func(c *Call) { c.Do("inject-nmi", nil) }},
		{Name: "watchdog_action", Args: "action:s", Params: "[reset|shutdown|poweroff|pause|debug|none]",
			Help: "change watchdog action",
			Run: func(c *Call) {
				// hmp_watchdog_action parses the WatchdogAction enum itself (its own text for a
				// bad value), then runs watchdog-set-action.
				a, _ := c.Args.Str("action")
				switch a {
				case "reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi":
					c.Do("watchdog-set-action", struct {
						Action string `json:"action"`
					}{a})
				default:
					c.Print("Error: invalid parameter value: " + a + "\n")
				}
			}},
		{Name: "quit|q", Params: "", Help: "quit the emulator",
			Run: func(c *Call) {
				c.Quit()
				_, _ = c.Execute("quit", nil)
			}},
		{Name: "cpu", Args: "index:i", Params: "index", Help: "set the default CPU",
			Run: func(c *Call) {
				idx, _ := c.Args.Int("index")
				if !c.SetCPU(int(int32(idx))) { // QEMU stores it in an int
					c.Print("invalid CPU index\n")
				}
			}},
		{Name: "getfd", Args: "fdname:s", Params: "getfd name",
			Help: "receive a file descriptor via SCM rights and assign it a name",
			Run: func(c *Call) {
				name, _ := c.Args.Str("fdname")
				c.Do("getfd", fdArgs{Fdname: name})
			}},
		{Name: "closefd", Args: "fdname:s", Params: "closefd name",
			Help: "close a file descriptor previously passed via SCM rights",
			Run: func(c *Call) {
				name, _ := c.Args.Str("fdname")
				c.Do("closefd", fdArgs{Fdname: name})
			}},
	}
}

// cpuInfo is one element of query-cpus-fast.
type cpuInfo struct {
	CPUIndex int64  `json:"cpu-index"`
	QOMPath  string `json:"qom-path"`
	ThreadID int64  `json:"thread-id"`
	Target   string `json:"target"`
}

// cpus returns query-cpus-fast.
func (c *Call) cpus() ([]cpuInfo, error) {
	var l []cpuInfo
	err := c.Query("query-cpus-fast", nil, &l)
	return l, err
}

// CPU returns the monitor's current CPU index (QEMU's mon_get_cpu): the one chosen with
// `cpu N` while it exists, else the first CPU. ok=false when the machine has none.
func (c *Call) CPU() (int, bool) {
	l, err := c.cpus()
	if err != nil || len(l) == 0 {
		return 0, false
	}
	for _, ci := range l {
		if int(ci.CPUIndex) == c.sess.cpu {
			return c.sess.cpu, true
		}
	}
	c.sess.cpu = int(l[0].CPUIndex)
	return c.sess.cpu, true
}

// SetCPU makes CPU idx current (QEMU's monitor_set_cpu); false if there is no such CPU.
func (c *Call) SetCPU(idx int) bool {
	l, err := c.cpus()
	if err != nil {
		return false
	}
	for _, ci := range l {
		if int(ci.CPUIndex) == idx {
			c.sess.cpu = idx
			c.regs = nil
			return true
		}
	}
	return false
}

package hmp

import (
	"strconv"
	"strings"
)

// The `info` subcommands, formatting QMP query results as QEMU 7.2's hmp-cmds.c does.

type statusInfo struct {
	Running    bool   `json:"running"`
	Singlestep bool   `json:"singlestep"`
	Status     string `json:"status"`
}

type nameInfo struct {
	Name *string `json:"name"`
}

type uuidInfo struct {
	UUID string `json:"UUID"`
}

type versionInfo struct {
	QEMU struct {
		Major int64 `json:"major"`
		Minor int64 `json:"minor"`
		Micro int64 `json:"micro"`
	} `json:"qemu"`
	Package string `json:"package"`
}

type kvmInfo struct {
	Enabled bool `json:"enabled"`
	Present bool `json:"present"`
}

type chardevInfo struct {
	Label        string `json:"label"`
	Filename     string `json:"filename"`
	FrontendOpen bool   `json:"frontend-open"`
}

type registersArgs struct {
	CPUIndex int `json:"cpu-index"`
}

type registersInfo struct {
	Text string `json:"text"`
}

func infoCommands() []Command {
	return []Command{
		{Info: true, Name: "status", Params: "", Help: "show the current VM status (running|paused)",
			Run: func(c *Call) {
				var s statusInfo
				if c.Fail(c.Query("query-status", nil, &s)) {
					return
				}
				state := "paused"
				if s.Running {
					state = "running"
				}
				step := ""
				if s.Singlestep {
					step = " (single step mode)"
				}
				c.Printf("VM status: %s%s", state, step)
				if !s.Running && s.Status != "paused" {
					c.Printf(" (%s)", s.Status)
				}
				c.Print("\n")
			}},
		{Info: true, Name: "name", Params: "", Help: "show the current VM name",
			Run: func(c *Call) {
				var n nameInfo
				if c.Fail(c.Query("query-name", nil, &n)) {
					return
				}
				if n.Name != nil {
					c.Printf("%s\n", *n.Name)
				}
			}},
		{Info: true, Name: "uuid", Params: "", Help: "show the current VM UUID",
			Run: func(c *Call) {
				var u uuidInfo
				if c.Fail(c.Query("query-uuid", nil, &u)) {
					return
				}
				c.Printf("%s\n", u.UUID)
			}},
		{Info: true, Name: "version", Params: "", Help: "show the version of QEMU",
			Run: func(c *Call) {
				var v versionInfo
				if c.Fail(c.Query("query-version", nil, &v)) {
					return
				}
				c.Printf("%d.%d.%d%s\n", v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro, v.Package)
			}},
		{Info: true, Name: "balloon", Params: "", Help: "show balloon information",
			Run: func(c *Call) {
				var b struct {
					Actual int64 `json:"actual"`
				}
				if c.Fail(c.Query("query-balloon", nil, &b)) {
					return
				}
				c.Printf("balloon: actual=%d\n", b.Actual>>20)
			}},
		{Info: true, Name: "vnc", Params: "", Help: "show the vnc server status", Run: hmpInfoVNC},
		{Info: true, Name: "hotpluggable-cpus", Params: "", Help: "Show information about hotpluggable CPUs",
			Run: hmpHotpluggableCPUs},
		{Info: true, Name: "kvm", Params: "", Help: "show KVM information",
			Run: func(c *Call) {
				var k kvmInfo
				if c.Fail(c.Query("query-kvm", nil, &k)) {
					return
				}
				c.Print("kvm support: ")
				switch {
				case !k.Present:
					c.Print("not compiled\n")
				case k.Enabled:
					c.Print("enabled\n")
				default:
					c.Print("disabled\n")
				}
			}},
		{Info: true, Name: "cpus", Params: "", Help: "show infos for each CPU",
			Run: func(c *Call) {
				l, err := c.cpus()
				if c.Fail(err) {
					return
				}
				cur, _ := c.CPU()
				for _, ci := range l {
					active := ' '
					if int(ci.CPUIndex) == cur {
						active = '*'
					}
					c.Printf("%c CPU #%d: thread_id=%d\n", active, ci.CPUIndex, ci.ThreadID)
				}
			}},
		{Info: true, Name: "chardev", Params: "", Help: "show the character devices",
			Run: func(c *Call) {
				var l []chardevInfo
				if c.Fail(c.Query("query-chardev", nil, &l)) {
					return
				}
				for _, ch := range l {
					c.Printf("%s: filename=%s\n", ch.Label, ch.Filename)
				}
			}},
		{Info: true, Name: "pci", Params: "", Help: "show PCI info",
			Run: func(c *Call) {
				var l []pciInfo
				if err := c.Query("query-pci", nil, &l); err != nil {
					c.Print("PCI devices not supported\n")
					return
				}
				for _, bus := range l {
					for i := range bus.Devices {
						printPCIDevice(c, &bus.Devices[i])
					}
				}
			}},
		{Info: true, Name: "history", Params: "", Help: "show the command line history",
			Run: func(c *Call) {
				if c.sess.rl == nil {
					return // human-monitor-command has no line editor, hence no history
				}
				for i, h := range c.sess.rl.history {
					c.Printf("%d: '%s'\n", i, h)
				}
			}},
		{Info: true, Name: "registers", Args: "cpustate_all:-a,vcpu:i?", Params: "[-a|vcpu]",
			Help: "show the cpu registers (-a: show register info for all cpus; vcpu: specific vCPU to query; show the current CPU's registers if no argument is specified)",
			Run:  infoRegisters},
	}
}

// infoRegisters is hmp_info_registers; the register dump itself comes ready-made from
// x-tlcvm-registers (QEMU's cpu_dump_state text).
func infoRegisters(c *Call) {
	dump := func(idx int) {
		var r registersInfo
		if c.Fail(c.Query("x-tlcvm-registers", registersArgs{CPUIndex: idx}, &r)) {
			return
		}
		c.Print(registersText(idx, r.Text))
	}
	if c.Args.Bool("cpustate_all") {
		l, err := c.cpus()
		if c.Fail(err) {
			return
		}
		for _, ci := range l {
			dump(int(ci.CPUIndex))
		}
		return
	}
	if v, ok := c.Args.Int("vcpu"); ok {
		idx := int(int32(v)) // QEMU reads it into an int
		if idx >= 0 {
			l, err := c.cpus()
			if c.Fail(err) {
				return
			}
			for _, ci := range l {
				if int(ci.CPUIndex) == idx {
					dump(idx)
					return
				}
			}
			c.Printf("CPU#%d not available\n", idx)
			return
		}
	}
	idx, ok := c.CPU()
	if !ok {
		c.Print("No CPU available\n")
		return
	}
	dump(idx)
}

// registersText puts QEMU's "\nCPU#N\n" header before a cpu_dump_state text, unless the
// text already carries it.
func registersText(idx int, text string) string {
	if strings.HasPrefix(text, "\nCPU#") {
		return text
	}
	if strings.HasPrefix(text, "CPU#") {
		return "\n" + text
	}
	return "\nCPU#" + strconv.Itoa(idx) + "\n" + text
}

// hmpHotpluggableCPUs is hmp_hotpluggable_cpus: query-hotpluggable-cpus, one block a slot.
func hmpHotpluggableCPUs(c *Call) {
	var l []struct {
		Type       string `json:"type"`
		VcpusCount int64  `json:"vcpus-count"`
		QOMPath    string `json:"qom-path"`
		Props      struct {
			NodeID   *int64 `json:"node-id"`
			SocketID *int64 `json:"socket-id"`
			DieID    *int64 `json:"die-id"`
			CoreID   *int64 `json:"core-id"`
			ThreadID *int64 `json:"thread-id"`
		} `json:"props"`
	}
	if c.Fail(c.Query("query-hotpluggable-cpus", nil, &l)) {
		return
	}
	c.Print("Hotpluggable CPUs:\n")
	for _, h := range l {
		c.Printf("  type: \"%s\"\n  vcpus_count: \"%d\"\n", h.Type, h.VcpusCount)
		if h.QOMPath != "" {
			c.Printf("  qom_path: \"%s\"\n", h.QOMPath)
		}
		c.Print("  CPUInstance Properties:\n")
		p := h.Props
		for _, f := range []struct {
			name string
			v    *int64
		}{{"node-id", p.NodeID}, {"socket-id", p.SocketID}, {"die-id", p.DieID}, {"core-id", p.CoreID}, {"thread-id", p.ThreadID}} {
			if f.v != nil {
				c.Printf("    %s: \"%d\"\n", f.name, *f.v)
			}
		}
	}
}

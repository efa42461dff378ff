package hmp

import "strings"

// maxArgs is QEMU's MAX_ARGS for help and completion parsing.
const maxArgs = 16

// parseCmdline is QEMU's parse_cmdline: up to 16 words (get_str rules); ok=false on a
// bad quoted string or too many words.
func parseCmdline(s string) ([]string, bool) {
	var args []string
	ap := &argParser{}
	for p := 0; ; {
		p = skipSpace(s, p)
		if p >= len(s) {
			return args, true
		}
		if len(args) >= maxArgs {
			return nil, false
		}
		w, np, ok := ap.getStr(s, p)
		if !ok {
			return nil, false
		}
		args = append(args, w)
		p = np
	}
}

// help prints QEMU's help_cmd output for name ("" for all commands).
func (m *Monitor) help(c *Call, name string) {
	var args []string
	if name != "" {
		// QEMU special-cases "help log" to list its -d log items; tlcvm has no log
		// command, so "help log" says so as for any unknown command.
		var ok bool
		if args, ok = parseCmdline(name); !ok {
			return
		}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.helpDump(c, m.cmds, args, 0)
}

// helpDump is QEMU's help_cmd_dump: args[idx] names the entry to show in table.
func (m *Monitor) helpDump(c *Call, table []*Command, args []string, idx int) {
	if idx >= len(args) {
		for _, cmd := range table {
			helpDumpOne(c, cmd, args[:idx])
		}
		return
	}
	if cmd := find(table, args[idx]); cmd != nil {
		if cmd.Name == "info" && !cmd.Info {
			m.helpDump(c, m.info, args, idx+1)
		} else {
			helpDumpOne(c, cmd, args[:idx])
		}
		return
	}
	c.Printf("unknown command: '%s'\n", strings.Join(args[:idx+1], " "))
}

func helpDumpOne(c *Call, cmd *Command, prefix []string) {
	for _, p := range prefix {
		c.Printf("%s ", p)
	}
	c.Printf("%s %s -- %s\n", cmd.Name, cmd.Params, cmd.Help)
}

package hmp

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"tlcvm/compat/qerror"
)

// Executor runs a QMP command by name. args is marshalled to JSON (a struct, a map, or nil
// for none); the result is the QMP "return" value, or an error whose Error() is the QMP
// error's desc (HMP prints it as "Error: <desc>").
type Executor interface {
	Execute(name string, args any) (json.RawMessage, error)
}

// ExecFunc adapts a function to Executor.
type ExecFunc func(name string, args any) ([]byte, error)

// Execute calls f.
func (f ExecFunc) Execute(name string, args any) (json.RawMessage, error) {
	raw, err := f(name, args)
	return json.RawMessage(raw), err
}

// Options configure a Monitor. The zero value is usable.
type Options struct {
	// Log receives a debug line per command; zerolog.Nop() when zero.
	Log zerolog.Logger
	// Version is printed in the banner; "7.2.22" when empty.
	Version string
}

// DefaultVersion is the QEMU version the banner names by default.
const DefaultVersion = "7.2.22"

// Command is one HMP command, described as in QEMU's hmp-commands.hx and
// hmp-commands-info.hx.
type Command struct {
	// Name is the command and its aliases separated by '|', e.g. "cont|c".
	Name string
	// Args is the args_type spec, e.g. "fmt:/,addr:l" or "cpustate_all:-a,vcpu:i?".
	// Types: s (word or quoted string), S (rest of line), F (file name), B (block device),
	// O (QemuOpts of the list named by the key), i (32-bit expression), l (expression),
	// M (expression in MiB), o (size, default unit MiB), T (seconds, with ms/us/ns),
	// b (on|off), / (x-style format), -x (flag), -xs (flag with a string value).
	// '?' after a type makes it optional; '.' after i/l/M makes it require a leading '.'.
	Args string
	// Params and Help are what `help` prints: "<name> <params> -- <help>".
	Params string
	Help   string
	// Info makes this an `info` subcommand.
	Info bool
	// Run executes the command. It must not be nil.
	Run func(c *Call)
}

// Monitor is one HMP monitor: the command table plus the state QEMU keeps per human
// monitor (line history, current CPU). It is safe for concurrent use: Run may be called
// from many goroutines while Serve runs.
type Monitor struct {
	exec    Executor
	log     zerolog.Logger
	version string

	mu   sync.RWMutex // guards cmds and info
	cmds []*Command   // sorted by Name (strcmp), as QEMU sorts hmp_cmds
	info []*Command   // sorted by Name

	fmtMu sync.Mutex // guards fmt
	fmt   fmtState   // the '/' defaults, shared by all sessions as QEMU's globals are

	serveMu sync.Mutex // held for the whole of Serve: one terminal client at a time
	term    *session   // the terminal's state; survives reconnection (QEMU's MonitorHMP)
}

// session is the per-monitor state a command sees.
type session struct {
	cpu int       // current CPU index (`cpu N`), -1 for the first CPU
	rl  *readline // the terminal's line editor; nil for human-monitor-command
	// password is set by Call.ReadPassword: the terminal's next line is a password for it.
	password func(c *Call, password string)
}

// New returns a monitor running commands through exec, with QEMU 7.2's built-in commands
// registered.
func New(exec Executor, o Options) *Monitor {
	m := &Monitor{
		exec:    exec,
		log:     o.Log,
		version: o.Version,
		fmt:     fmtState{format: 'x', size: 4},
		term:    &session{cpu: -1},
	}
	if m.version == "" {
		m.version = DefaultVersion
	}
	m.term.rl = newReadline(m)
	registerBuiltins(m)
	return m
}

// Register adds a command. It panics on an empty or duplicate name, a nil Run, or an
// args spec with an unknown type, since those are programming errors.
func (m *Monitor) Register(c Command) {
	if c.Name == "" || c.Run == nil {
		panic(fmt.Sprintf("hmp: command %q: name and Run are required", c.Name))
	}
	if err := checkSpec(c.Args); err != nil {
		panic(fmt.Sprintf("hmp: command %q: %v", c.Name, err))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	table := &m.cmds
	if c.Info {
		table = &m.info
	}
	for _, alias := range strings.Split(c.Name, "|") {
		if find(*table, alias) != nil {
			panic(fmt.Sprintf("hmp: command %q registered twice", alias))
		}
	}
	cp := c
	*table = append(*table, &cp)
	sort.Slice(*table, func(i, j int) bool { return (*table)[i].Name < (*table)[j].Name })
}

// checkSpec validates an args spec at registration.
func checkSpec(spec string) error {
	for t := 0; ; {
		key, tt, ok := keyGetInfo(spec, t)
		if !ok {
			if at(spec, t) != 0 {
				return fmt.Errorf("args spec %q: trailing %q", spec, spec[t:])
			}
			return nil
		}
		if key == "" {
			return fmt.Errorf("args spec %q: empty key", spec)
		}
		c := at(spec, tt)
		t = tt + 1
		switch c {
		case 's', 'S', 'F', 'B', 'o', 'T', 'i', 'l', 'M':
			if q := at(spec, t); q == '?' || (q == '.' && strings.IndexByte("ilM", c) >= 0) {
				t++
			}
		case 'O':
			if impliedKey(key) == "" {
				return fmt.Errorf("args spec %q: 'O' needs a known QemuOpts list, not %q", spec, key)
			}
		case '/', 'b':
		case '-':
			if at(spec, t) == 0 || at(spec, t) == ',' {
				return fmt.Errorf("args spec %q: '-' without a flag letter", spec)
			}
			t++
			if at(spec, t) == 's' {
				t++
			}
		default:
			return fmt.Errorf("args spec %q: unknown type %q", spec, c)
		}
		if c := at(spec, t); c != 0 && c != ',' {
			return fmt.Errorf("args spec %q: unexpected %q after key %q", spec, c, key)
		}
	}
}

// compareCmd is QEMU's hmp_compare_cmd: name equals one of the '|' separated aliases.
func compareCmd(name, list string) bool {
	for _, a := range strings.Split(list, "|") {
		if a == name {
			return true
		}
	}
	return false
}

func find(table []*Command, name string) *Command {
	for _, c := range table {
		if compareCmd(name, c.Name) {
			return c
		}
	}
	return nil
}

// Commands returns the registered top-level commands (info false) or info
// subcommands (info true), sorted as `help` lists them.
func (m *Monitor) Commands(info bool) []Command {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.cmds
	if info {
		t = m.info
	}
	out := make([]Command, len(t))
	for i, c := range t {
		out[i] = *c
	}
	return out
}

// Run executes one command line for human-monitor-command and returns its output with
// QEMU's "\r\n" line ends. Like QEMU, each call runs in a fresh monitor: no history, and
// the first CPU is current. exec runs the QMP commands; nil uses the monitor's Executor.
// The signature matches qmp/cmds.Human.
func (m *Monitor) Run(exec func(name string, args any) ([]byte, error), line string) string {
	e := m.exec
	if exec != nil {
		e = ExecFunc(exec)
	}
	out, _ := m.run(e, &session{cpu: -1}, line)
	return out
}

// RunOnCPU is Run with cpu as the current CPU (human-monitor-command's cpu-index).
func (m *Monitor) RunOnCPU(exec func(name string, args any) ([]byte, error), cpu int, line string) string {
	e := m.exec
	if exec != nil {
		e = ExecFunc(exec)
	}
	out, _ := m.run(e, &session{cpu: cpu}, line)
	return out
}

// RunLine is Run through the monitor's own Executor.
func (m *Monitor) RunLine(line string) string {
	out, _ := m.run(m.exec, &session{cpu: -1}, line)
	return out
}

// Parse parses a command line as the monitor would run it, without running it: the
// command, its arguments, or a *ParseError (wrapping ErrEmpty, ErrUnknownCommand or
// ErrArgs). Registers in expressions are read through the monitor's Executor, and a '/'
// format updates the remembered default format, as in QEMU.
func (m *Monitor) Parse(line string) (*Command, Args, error) {
	c := &Call{m: m, exec: m.exec, sess: &session{cpu: -1}}
	return m.parse(c, line)
}

// run executes one line and returns the output ("\r\n" line ends) and whether the
// command asked the session to end (quit).
func (m *Monitor) run(exec Executor, sess *session, line string) (string, bool) {
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i] // C string semantics
	}
	c := &Call{m: m, exec: exec, sess: sess}
	cmd, args, err := m.parse(c, line)
	m.log.Debug().Str("line", line).Err(err).Msg("hmp command")
	if err != nil {
		if pe, ok := err.(*ParseError); ok {
			if pe.Msg != "" {
				c.out.WriteString(pe.Msg)
				if !pe.noNewline {
					c.out.WriteByte('\n')
				}
			}
			if pe.Try != "" {
				fmt.Fprintf(&c.out, "Try \"help %s\" for more information\n", pe.Try)
			}
		}
		return crlf(c.out.String()), false
	}
	c.Cmd, c.Args = cmd, args
	cmd.Run(c)
	return crlf(c.out.String()), c.quit
}

// crlf turns every "\n" into "\r\n", as QEMU's monitor_puts does.
func crlf(s string) string {
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// getCommandName is QEMU's get_command_name: the word at s[p:] up to a blank or '/'.
func getCommandName(s string, p int) (string, int, bool) {
	p = skipSpace(s, p)
	if p >= len(s) {
		return "", p, false
	}
	start := p
	for p < len(s) && s[p] != '/' && !isSpace(s[p]) {
		p++
	}
	name := s[start:p]
	if len(name) > 255 {
		name = name[:255]
	}
	return name, p, true
}

// parse is handle_hmp_command's parsing half: monitor_parse_command (with the info
// subtable) and monitor_parse_arguments.
func (m *Monitor) parse(c *Call, line string) (*Command, Args, error) {
	m.mu.RLock()
	name, p, ok := getCommandName(line, 0)
	if !ok {
		m.mu.RUnlock()
		return nil, nil, &ParseError{Err: ErrEmpty}
	}
	cmd := find(m.cmds, name)
	if cmd != nil {
		p = skipSpace(line, p)
		if cmd.Name == "info" && p < len(line) {
			name, p, _ = getCommandName(line, p)
			cmd = find(m.info, name)
			if cmd != nil {
				p = skipSpace(line, p)
			}
		}
	}
	m.mu.RUnlock()
	if cmd == nil {
		return nil, nil, &ParseError{Msg: fmt.Sprintf("unknown command: '%s'", line[:p]), Err: ErrUnknownCommand}
	}
	cmdEnd := p
	m.fmtMu.Lock()
	ap := &argParser{cmd: cmd, fmt: &m.fmt, reg: c.register, warn: func(s string) {
		m.log.Warn().Str("cmd", cmd.Name).Msg(s)
	}}
	args, err := ap.parse(line, p)
	m.fmtMu.Unlock()
	if err != nil {
		pe := err.(*ParseError)
		end := cmdEnd
		for end > 0 && isSpace(line[end-1]) {
			end--
		}
		pe.Try = line[:end]
		return nil, nil, pe
	}
	return cmd, args, nil
}

// Call is one running command: its arguments, its output, and access to QMP.
type Call struct {
	Cmd  *Command
	Args Args

	m    *Monitor
	exec Executor
	sess *session
	out  strings.Builder
	quit bool
	regs map[string][]uint64 // the current CPU's register dump, read once per call
}

// Printf appends formatted output ("\n" line ends; they become "\r\n" on the wire).
func (c *Call) Printf(format string, a ...any) { fmt.Fprintf(&c.out, format, a...) }

// Print appends s.
func (c *Call) Print(s string) { c.out.WriteString(s) }

// Execute runs a QMP command.
func (c *Call) Execute(name string, args any) (json.RawMessage, error) {
	if c.exec == nil {
		return nil, fmt.Errorf("The command %s has not been found", name)
	}
	return c.exec.Execute(name, args)
}

// Query runs a QMP command and decodes its return value into result (may be nil).
func (c *Call) Query(name string, args, result any) error {
	raw, err := c.Execute(name, args)
	if err != nil {
		return err
	}
	if result == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("%s: malformed reply: %w", name, err)
	}
	return nil
}

// Fail prints err as QEMU's hmp_handle_error does ("Error: <desc>", then the error's hint
// lines, which QMP never sends) and reports whether there was an error.
func (c *Call) Fail(err error) bool {
	if err == nil {
		return false
	}
	c.Printf("Error: %s\n%s", err.Error(), qerror.Hint(err))
	return true
}

// Do runs a QMP command whose result HMP ignores, printing its error if any.
func (c *Call) Do(name string, args any) bool {
	_, err := c.Execute(name, args)
	return !c.Fail(err)
}

// ReadPassword is monitor_read_password: the terminal prompts "Password: " and hands its
// next line, echoed as stars and kept out of the history, to f. A monitor without a
// terminal (human-monitor-command) prints QEMU's refusal instead.
func (c *Call) ReadPassword(f func(c *Call, password string)) {
	if c.sess.rl == nil {
		c.Print("terminal does not support password prompting\n")
		return
	}
	c.sess.password = f
}

// readLine runs one finished line of the terminal: the command it is, or the password a
// command asked for (ReadPassword). It returns the output and whether to quit, and leaves
// the editor's prompt set for what the next line is.
func (m *Monitor) readLine(line string) (string, bool) {
	sess, rl := m.term, m.term.rl
	out, quit := "", false
	if f := sess.password; f != nil {
		sess.password = nil
		c := &Call{m: m, exec: m.exec, sess: sess}
		f(c, line)
		out = crlf(c.out.String())
	} else {
		out, quit = m.run(m.exec, sess, line)
	}
	rl.prompt, rl.password = "(qemu) ", sess.password != nil
	if rl.password {
		rl.prompt = "Password: "
	}
	return out, quit
}

// Quit ends the terminal session after this command (Serve returns).
func (c *Call) Quit() { c.quit = true }

// Monitor returns the monitor the command runs in.
func (c *Call) Monitor() *Monitor { return c.m }

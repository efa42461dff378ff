package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// ErrScript is wrapped by every script parsing failure.
var ErrScript = errors.New("harness: bad script")

// Ops of a Step.
const (
	OpComment  = "#"          // a comment or blank line, kept for golden files
	OpSend     = "->"         // send text, receive one reply
	OpRaw      = "send"       // send text, receive nothing
	OpRecv     = "recv"       // receive one reply
	OpHMP      = "hmp"        // human-monitor-command over QMP
	OpMonitor  = "(qemu)"     // a line on the HMP monitor
	OpWait     = "wait-event" // consume events up to the named one
	OpEvents   = "events"     // record the events set aside so far
	OpSignal   = "signal"     // send a signal to the process
	OpExit     = "expect-exit"
	OpClose    = "close"     // close the QMP connection
	OpConnect  = "reconnect" // close (if open) and connect again, reading the greeting
	OpNegotiat = "negotiate" // qmp_capabilities, reply recorded
	OpPoll     = "poll"      // resend until the reply matches the step's <- pattern
)

// Script is one test case: how to start the binary and what to do with it.
// The syntax (one directive a line; see tests/doc.go for the full list):
//
//	case: quit-emits-shutdown        starts a new case in the same file
//	args: -machine none -nodefaults  command line ($DIR is the case's dir)
//	qmp: socket|none                 QMP monitor added by the harness (default socket)
//	hmp-monitor: stdio|socket        where (qemu) lines go (default stdio)
//	scrub: REGEX [=> REPLACEMENT]    applied to every rendered line
//	skip: REASON
//	-> [@fd] [@shape[:N]] TEXT       send TEXT (templated), record one reply
//	send: TEXT                       send TEXT, no reply ("..." = Go-quoted, sent as is)
//	recv                             record one reply
//	<- PATTERN                       the last recorded message matches PATTERN
//	poll: TEXT                       resend TEXT until the reply matches the next <-
//	hmp: COMMAND LINE                human-monitor-command
//	(qemu) COMMAND LINE              a line typed at the HMP monitor
//	wait-event: NAME                 record events up to NAME
//	events                           record the events set aside so far
//	signal: TERM                     signal the process
//	expect-exit[: STATUS]            wait for exit; record the rest of QMP, status, stderr
//	reconnect | close | negotiate
type Script struct {
	Name       string
	File       string
	Line       int
	Args       []string
	QMP        string // "socket" or "none"
	HMPMonitor string // "stdio" or "socket"
	Scrubs     []Scrub
	Skip       string
	Greeting   *Value // pattern for the greeting: a <- before any step
	Steps      []Step
}

// Step is one directive of a script.
type Step struct {
	Line    int
	Op      string
	Source  string // the line as written (golden files keep it)
	Text    string // argument: text to send, event name, signal, command line
	FD      bool   // pass one descriptor (/dev/null) with SCM_RIGHTS
	Shape   int    // >0: record only the reply's shape to this depth
	Pattern *Value // expectations on the message this step records
	Golden  []string
}

// Scrub rewrites volatile text in rendered transcripts.
type Scrub struct {
	Re   *regexp.Regexp
	With string
}

var tmplFuncs = template.FuncMap{
	// repeat "[" 2000 → 2000 brackets: nesting and size limits.
	"repeat": func(s string, n int) string { return strings.Repeat(s, n) },
}

func expand(s string) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	tm, err := template.New("").Funcs(tmplFuncs).Parse(s)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := tm.Execute(&b, nil); err != nil {
		return "", err
	}
	return b.String(), nil
}

// ParseScriptFile parses a file of one or more cases. In golden mode, "<-",
// "|", "exit:", "stderr:" and similar lines are recorded output attached to
// the step before them rather than patterns.
func ParseScriptFile(path string, golden bool) ([]*Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrScript, err)
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return ParseScript(path, name, b, golden)
}

// outputPrefixes mark recorded output lines in golden files.
var outputPrefixes = []string{"<- ", "<-\t", "| ", "|\t", "exit: ", "stderr: ", "daemon: ", "closed: ", "raw: "}

// unquotedPlaceholder finds a placeholder as rendered in golden output, unquoted.
var unquotedPlaceholder = regexp.MustCompile(`([:\[,]\s*)<((?:re:)?[^<>"]*)>`)

func isOutput(line string) bool {
	if line == "|" {
		return true
	}
	for _, p := range outputPrefixes {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// ParseScript parses src (see Script). file and defName name the source.
func ParseScript(file, defName string, src []byte, golden bool) ([]*Script, error) {
	var scripts []*Script
	cur := &Script{Name: defName, File: file, Line: 1, QMP: "socket"}
	started := false
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s:%d: %s", ErrScript, file, n, fmt.Sprintf(format, a...))
	}
	for sc.Scan() {
		n++
		raw := sc.Text()
		line := strings.TrimRight(raw, " \t\r")
		if golden && isOutput(line) {
			if len(cur.Steps) == 0 {
				return nil, fail("output line before any step")
			}
			st := &cur.Steps[len(cur.Steps)-1]
			st.Golden = append(st.Golden, line)
			if st.Op == OpPoll && st.Pattern == nil && strings.HasPrefix(line, "<-") {
				// A poll's first recorded reply is also what it waits for.
				// Rendered placeholders are unquoted (<re:…>); quote them back.
				src := unquotedPlaceholder.ReplaceAllString(strings.TrimSpace(line[2:]), `$1"<$2>"`)
				pat, err := ParseJSON([]byte(src))
				if err != nil {
					return nil, fail("pattern: %v", err)
				}
				st.Pattern = &pat
			}
			continue
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			cur.Steps = append(cur.Steps, Step{Line: n, Op: OpComment, Source: line})
			continue
		}
		key, val, hasColon := strings.Cut(trimmed, ":")
		val = strings.TrimSpace(val)
		switch {
		case hasColon && key == "case":
			if started || hasSteps(cur) {
				scripts = append(scripts, cur)
				cur = &Script{File: file, QMP: "socket"}
			}
			cur.Name, cur.Line, started = val, n, true
		case hasColon && key == "args":
			args, err := SplitArgs(val)
			if err != nil {
				return nil, fail("%v", err)
			}
			cur.Args = append(cur.Args, args...)
		case hasColon && key == "qmp":
			if val != "socket" && val != "none" {
				return nil, fail("qmp: want socket or none, got %q", val)
			}
			cur.QMP = val
		case hasColon && key == "hmp-monitor":
			if val != "stdio" && val != "socket" {
				return nil, fail("hmp-monitor: want stdio or socket, got %q", val)
			}
			cur.HMPMonitor = val
		case hasColon && key == "skip":
			cur.Skip = val
		case hasColon && key == "scrub":
			s, err := ParseScrub(val)
			if err != nil {
				return nil, fail("%v", err)
			}
			cur.Scrubs = append(cur.Scrubs, s)
		case strings.HasPrefix(trimmed, "->"):
			st, err := parseSend(strings.TrimSpace(trimmed[2:]))
			if err != nil {
				return nil, fail("%v", err)
			}
			st.Line, st.Source = n, line
			cur.Steps = append(cur.Steps, st)
			continue
		case strings.HasPrefix(trimmed, "<-"):
			pat, err := ParseJSON([]byte(trimmed[2:]))
			if err != nil {
				return nil, fail("pattern: %v", err)
			}
			i := lastRecording(cur.Steps)
			if i < 0 && !hasRealSteps(cur) && cur.Greeting == nil {
				cur.Greeting = &pat // the greeting, recorded at start
				continue
			}
			if i < 0 {
				return nil, fail("<- before any step that records a message")
			}
			if cur.Steps[i].Pattern != nil {
				return nil, fail("second <- for one step")
			}
			cur.Steps[i].Pattern = &pat
			continue
		case strings.HasPrefix(trimmed, "(qemu)"):
			cur.Steps = append(cur.Steps, Step{Line: n, Op: OpMonitor, Source: line, Text: strings.TrimSpace(trimmed[6:])})
			continue
		case hasColon && key == OpPoll:
			st, err := parseSend(val)
			if err != nil {
				return nil, fail("%v", err)
			}
			st.Op, st.Line, st.Source = OpPoll, n, line
			cur.Steps = append(cur.Steps, st)
			continue
		case hasColon && key == "send":
			text, err := sendText(val)
			if err != nil {
				return nil, fail("%v", err)
			}
			cur.Steps = append(cur.Steps, Step{Line: n, Op: OpRaw, Source: line, Text: text})
			continue
		case hasColon && (key == OpHMP || key == OpWait || key == OpSignal):
			if val == "" {
				return nil, fail("%s: needs an argument", key)
			}
			if key == OpSignal {
				if _, err := ParseSignal(val); err != nil {
					return nil, fail("%v", err)
				}
			}
			cur.Steps = append(cur.Steps, Step{Line: n, Op: key, Source: line, Text: val})
			continue
		case trimmed == OpExit || (hasColon && key == OpExit):
			cur.Steps = append(cur.Steps, Step{Line: n, Op: OpExit, Source: line, Text: val})
			continue
		case trimmed == OpRecv || trimmed == OpClose || trimmed == OpConnect || trimmed == OpNegotiat || trimmed == OpEvents:
			cur.Steps = append(cur.Steps, Step{Line: n, Op: trimmed, Source: line})
			continue
		default:
			return nil, fail("unknown directive %q", trimmed)
		}
		// header directives are kept in golden files as comments
		cur.Steps = append(cur.Steps, Step{Line: n, Op: OpComment, Source: line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrScript, file, err)
	}
	if !golden {
		for _, s := range append(scripts, cur) {
			for _, st := range s.Steps {
				if st.Op == OpPoll && st.Pattern == nil {
					return nil, fmt.Errorf("%w: %s:%d: poll needs a <- pattern", ErrScript, file, st.Line)
				}
			}
		}
	}
	scripts = append(scripts, cur)
	for _, s := range scripts {
		if s.HMPMonitor == "" {
			s.HMPMonitor = "stdio"
		}
	}
	return scripts, nil
}

func hasRealSteps(s *Script) bool {
	for _, st := range s.Steps {
		if st.Op != OpComment {
			return true
		}
	}
	return false
}

func hasSteps(s *Script) bool {
	for _, st := range s.Steps {
		if st.Op != OpComment {
			return true
		}
	}
	return len(s.Args) > 0
}

// lastRecording is the index of the last step that records one message a
// pattern can apply to.
func lastRecording(steps []Step) int {
	for i := len(steps) - 1; i >= 0; i-- {
		switch steps[i].Op {
		case OpComment:
			continue
		case OpSend, OpRecv, OpHMP, OpWait, OpConnect, OpNegotiat, OpPoll:
			return i
		}
		return -1
	}
	return -1
}

func parseSend(s string) (Step, error) {
	st := Step{Op: OpSend}
	for strings.HasPrefix(s, "@") {
		word, rest, _ := strings.Cut(s, " ")
		switch {
		case word == "@fd":
			st.FD = true
		case word == "@shape":
			st.Shape = 1
		case strings.HasPrefix(word, "@shape:"):
			d, err := strconv.Atoi(strings.TrimPrefix(word, "@shape:"))
			if err != nil || d < 1 {
				return st, fmt.Errorf("bad %s", word)
			}
			st.Shape = d
		default:
			return st, fmt.Errorf("unknown option %s", word)
		}
		s = strings.TrimSpace(rest)
	}
	if s == "" {
		return st, errors.New("nothing to send")
	}
	text, err := expand(s)
	if err != nil {
		return st, err
	}
	st.Text = text + "\n"
	return st, nil
}

// sendText expands templates; a Go-quoted string is sent exactly as
// unquoted, anything else gets a trailing newline.
func sendText(s string) (string, error) {
	if s == "" {
		return "", errors.New("nothing to send")
	}
	if strings.HasPrefix(s, `"`) {
		u, err := strconv.Unquote(s)
		if err == nil {
			return expand(u)
		}
	}
	e, err := expand(s)
	if err != nil {
		return "", err
	}
	return e + "\n", nil
}

// ParseScrub parses "REGEX [=> REPLACEMENT]"; the default replacement is
// "<scrubbed>". Regular expressions are multi-line ((?m)).
func ParseScrub(s string) (Scrub, error) {
	re, with, ok := strings.Cut(s, " => ")
	if !ok {
		with = "<scrubbed>"
	}
	rx, err := regexp.Compile("(?m)" + strings.TrimSpace(re))
	if err != nil {
		return Scrub{}, err
	}
	return Scrub{Re: rx, With: with}, nil
}

// SplitArgs splits a command line like a POSIX shell would, for the subset
// we need: blanks separate words, '…' and "…" quote, \ escapes.
func SplitArgs(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%w: unterminated ' in %q", ErrScript, s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`, s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%w: unterminated \" in %q", ErrScript, s)
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// CmdlineCase is one line of testdata/cmdline.txt: a command line whose
// exit status and stderr (and optionally stdout) must be QEMU's.
//
//	ARGS [;; OPTION ...]
//
// Options: stdout (compare all of stdout), stdout-head=N (compare its first
// N lines), stdout-each=RE (every stdout line must match RE, on both sides),
// scrub=RE (replace matches of RE with <scrubbed>, in stderr and stdout).
// RE may not contain blanks (use \s).
type CmdlineCase struct {
	Line       int
	Source     string
	Args       []string
	Stdout     bool
	StdoutHead int
	StdoutEach *regexp.Regexp
	Scrubs     []Scrub
}

// Name is a sub-test name for the case.
func (c CmdlineCase) Name() string {
	n := strings.Join(c.Args, " ")
	if n == "" {
		n = "(no args)"
	}
	return fmt.Sprintf("L%d %s", c.Line, n)
}

// ParseCmdlines parses the cmdline corpus; # starts a comment line.
func ParseCmdlines(file string, src []byte) ([]CmdlineCase, error) {
	var out []CmdlineCase
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c := CmdlineCase{Line: n, Source: line}
		argText, opts, _ := strings.Cut(line, ";;")
		args, err := SplitArgs(strings.TrimSpace(argText))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		c.Args = args
		for _, o := range strings.Fields(opts) {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "stdout":
				c.Stdout = true
			case "stdout-head":
				h, err := strconv.Atoi(v)
				if err != nil || h < 1 {
					return nil, fmt.Errorf("%w: %s:%d: bad %s", ErrScript, file, n, o)
				}
				c.StdoutHead = h
			case "stdout-each":
				rx, err := regexp.Compile("^(?:" + v + ")$")
				if err != nil {
					return nil, fmt.Errorf("%w: %s:%d: %v", ErrScript, file, n, err)
				}
				c.StdoutEach = rx
			case "scrub":
				s, err := ParseScrub(v)
				if err != nil {
					return nil, fmt.Errorf("%w: %s:%d: %v", ErrScript, file, n, err)
				}
				c.Scrubs = append(c.Scrubs, s)
			default:
				return nil, fmt.Errorf("%w: %s:%d: unknown option %q", ErrScript, file, n, o)
			}
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// RunCmdline runs bin with the case's arguments and stdin at EOF, waits for
// it to exit, and renders what is compared: status, stderr, and stdout as
// the options say. Failures of stdout-each are returned separately.
func RunCmdline(t testing.TB, bin string, c CmdlineCase) (lines []string, failures []string, err error) {
	dir, err := os.MkdirTemp("", "tlcvm-cmdline-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = ExpandArg(a, dir)
	}
	p, err := StartProcess(t, Config{Bin: bin, Args: args, Dir: dir})
	if err != nil {
		return nil, nil, err
	}
	defer p.Kill()
	p.Stdin.Close()
	st, err := p.Wait(DefaultTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (a command-line case must exit by itself)", err)
	}
	stderr, err := p.Stderr.ReadAll(DefaultTimeout)
	if err != nil {
		return nil, nil, err
	}
	stdout, err := p.Stdout.ReadAll(DefaultTimeout)
	if err != nil {
		return nil, nil, err
	}
	scrub := func(s string) string {
		s = strings.ReplaceAll(s, dir, "TEST_DIR")
		for _, sc := range append(append([]Scrub{}, builtinScrubs...), c.Scrubs...) {
			s = sc.Re.ReplaceAllString(s, sc.With)
		}
		return s
	}
	lines = append(lines, "exit: "+st.String())
	for _, l := range splitLines(scrub(string(stderr))) {
		lines = append(lines, "stderr: "+l)
	}
	outLines := splitLines(scrub(string(stdout)))
	switch {
	case c.Stdout:
		for _, l := range outLines {
			lines = append(lines, "stdout: "+l)
		}
	case c.StdoutHead > 0:
		for i, l := range outLines {
			if i < c.StdoutHead {
				lines = append(lines, "stdout: "+l)
			}
		}
	}
	if c.StdoutEach != nil {
		for i, l := range outLines {
			if (c.StdoutHead == 0 || i >= c.StdoutHead) && !c.StdoutEach.MatchString(l) {
				failures = append(failures, fmt.Sprintf("stdout line %d %q does not match %s", i+1, l, c.StdoutEach))
			}
		}
		if len(outLines) <= c.StdoutHead {
			failures = append(failures, "stdout has no lines to match stdout-each")
		}
	}
	return lines, failures, nil
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	ls := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if !strings.HasSuffix(s, "\n") {
		ls = append(ls, `\ no newline at end`)
	}
	return ls
}

package hmp_test

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"tlcvm/hmp"
	"tlcvm/tests/harness"
)

// Golden files (testdata/golden/*.txt) pin HMP output to what QEMU 7.2 itself prints.
// `go test ./hmp -run TestGolden -update` re-records every QMP reply and every HMP
// output from the real /usr/bin/qemu-system-x86_64; the test then replays the recorded
// QMP replies through a fake Executor and requires our output to equal QEMU's, byte for
// byte. Read the diff before committing a re-recording.
//
//	# comment
//	qemu ARGS...           how to start QEMU when recording (-qmp stdio is added)
//	ram SIZE               guest RAM the fake serves at physical 0 (zeros)
//	pattern ADDR LEN       a known byte pattern at ADDR (QEMU: -device loader)
//	qmp NAME               record this QMP command's reply
//	regs                   record `info registers N` of every CPU as x-tlcvm-registers
//	<- KEY JSON|!desc      a recorded reply (written by -update)
//	$ LINE                 an HMP command line; its output follows as |-prefixed lines
//	\                      (after output lines) the output has no final newline
var update = flag.Bool("update", false, "re-record testdata/golden from the real QEMU 7.2")

const qemuBinary = "/usr/bin/qemu-system-x86_64"

// pattern is the guest memory image at a `pattern` address: every byte value first, so
// that x/c meets quotes, backslashes and control characters, then a scramble.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		if i < 256 {
			b[i] = byte(i)
		} else {
			b[i] = byte(i*37 + 11)
		}
	}
	return b
}

type golden struct {
	path    string
	head    []string          // directive and comment lines, kept on re-recording
	qemu    []string          // qemu args
	ram     uint64            // RAM size
	patAddr uint64            // pattern address
	patLen  int               // pattern length; 0 for none
	qmp     []string          // commands to record
	regs    bool              // record registers
	replies map[string]string // recorded replies
	order   []string          // reply keys in file order
	cmds    []goldenCmd
}

type goldenCmd struct {
	line string
	want string
}

func parseNum(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("bad number %q: %v", s, err)
	}
	return v
}

func readGolden(t *testing.T, path string) *golden {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g := &golden{path: path, replies: map[string]string{}}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		word, rest, _ := strings.Cut(l, " ")
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
			g.head = append(g.head, l)
		case word == "qemu":
			g.head = append(g.head, l)
			g.qemu = strings.Fields(rest)
		case word == "ram":
			g.head = append(g.head, l)
			g.ram = parseNum(t, rest)
		case word == "pattern":
			g.head = append(g.head, l)
			f := strings.Fields(rest)
			g.patAddr, g.patLen = parseNum(t, f[0]), int(parseNum(t, f[1]))
		case word == "qmp":
			g.head = append(g.head, l)
			g.qmp = append(g.qmp, rest)
		case l == "regs":
			g.head = append(g.head, l)
			g.regs = true
		case word == "<-":
			k, v, _ := strings.Cut(rest, " ")
			g.replies[k] = v
			g.order = append(g.order, k)
		case word == "$":
			c := goldenCmd{line: rest}
			var out []string
			eol := true
			for i+1 < len(lines) && (strings.HasPrefix(lines[i+1], "|") || lines[i+1] == `\`) {
				i++
				if lines[i] == `\` {
					eol = false
					continue
				}
				out = append(out, lines[i][1:])
			}
			if len(out) > 0 {
				c.want = strings.Join(out, "\r\n")
				if eol {
					c.want += "\r\n"
				}
			}
			g.cmds = append(g.cmds, c)
		default:
			t.Fatalf("%s:%d: unknown directive %q", path, i+1, l)
		}
	}
	return g
}

func (g *golden) write(t *testing.T) {
	t.Helper()
	var b strings.Builder
	for _, l := range g.head {
		b.WriteString(l + "\n")
	}
	for _, k := range g.order {
		fmt.Fprintf(&b, "<- %s %s\n", k, g.replies[k])
	}
	for _, c := range g.cmds {
		fmt.Fprintf(&b, "$ %s\n", c.line)
		out := c.want
		eol := strings.HasSuffix(out, "\r\n")
		out = strings.TrimSuffix(out, "\r\n")
		if c.want != "" {
			for _, l := range strings.Split(out, "\r\n") {
				b.WriteString("|" + l + "\n")
			}
			if !eol {
				b.WriteString("\\\n")
			}
		}
	}
	if err := os.WriteFile(g.path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// qemuSession drives a real QEMU over -qmp stdio.
type qemuSession struct {
	cmd *exec.Cmd
	in  *bufio.Writer
	dec *json.Decoder
}

func startQEMU(t *testing.T, args []string) *qemuSession {
	t.Helper()
	cmd := exec.Command(qemuBinary, append(args, "-qmp", "stdio")...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &qemuSession{cmd: cmd, in: bufio.NewWriter(stdin), dec: json.NewDecoder(stdout)}
	t.Cleanup(func() {
		_, _ = s.exec(t, "quit", nil)
		_ = cmd.Wait()
	})
	var greeting map[string]any
	if err := s.dec.Decode(&greeting); err != nil {
		t.Fatal(err)
	}
	if _, err := s.exec(t, "qmp_capabilities", nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *qemuSession) exec(t *testing.T, name string, args any) (json.RawMessage, error) {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"execute": name, "arguments": args})
	if args == nil {
		req, _ = json.Marshal(map[string]any{"execute": name})
	}
	s.in.Write(append(req, '\n'))
	s.in.Flush()
	for {
		var r struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Desc string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := s.dec.Decode(&r); err != nil {
			return nil, err
		}
		if r.Event != "" {
			continue
		}
		if r.Error != nil {
			return nil, &qmpError{r.Error.Desc}
		}
		return r.Return, nil
	}
}

func (s *qemuSession) hmp(t *testing.T, line string) string {
	t.Helper()
	raw, err := s.exec(t, "human-monitor-command", map[string]any{"command-line": line})
	if err != nil {
		t.Fatalf("human-monitor-command %q: %v", line, err)
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func compact(t *testing.T, raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// record re-records g from the real QEMU.
func (g *golden) record(t *testing.T) {
	harness.Reference(t)
	args := append([]string(nil), g.qemu...)
	if g.patLen > 0 {
		blob := filepath.Join(t.TempDir(), "pattern.bin")
		if err := os.WriteFile(blob, pattern(g.patLen), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-device", fmt.Sprintf("loader,file=%s,addr=%#x,force-raw=on", blob, g.patAddr))
	}
	s := startQEMU(t, args)
	g.replies, g.order = map[string]string{}, nil
	put := func(k, v string) {
		g.replies[k] = v
		g.order = append(g.order, k)
	}
	for _, name := range g.qmp {
		raw, err := s.exec(t, name, nil)
		if err != nil {
			put(name, "!"+err.Error())
			continue
		}
		put(name, compact(t, raw))
	}
	if g.regs {
		raw, err := s.exec(t, "query-cpus-fast", nil)
		if err != nil {
			t.Fatal(err)
		}
		var cpus []struct {
			Index int `json:"cpu-index"`
		}
		_ = json.Unmarshal(raw, &cpus)
		for _, c := range cpus {
			out := s.hmp(t, fmt.Sprintf("info registers %d", c.Index))
			text := strings.TrimPrefix(out, fmt.Sprintf("\r\nCPU#%d\r\n", c.Index))
			b, _ := json.Marshal(map[string]string{"text": strings.ReplaceAll(text, "\r\n", "\n")})
			put(fmt.Sprintf("x-tlcvm-registers/%d", c.Index), string(b))
		}
	}
	for i := range g.cmds {
		g.cmds[i].want = s.hmp(t, g.cmds[i].line)
	}
	g.write(t)
}

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.txt")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			g := readGolden(t, path)
			if *update {
				g.record(t)
				g = readGolden(t, path)
			}
			f := newFake()
			f.replies = g.replies
			f.ram = make([]byte, g.ram)
			copy(f.ram[g.patAddr:], pattern(g.patLen))
			m := hmp.New(f, hmp.Options{})
			for _, c := range g.cmds {
				if got := m.Run(nil, c.line); got != c.want {
					t.Errorf("%q:\n got %q\nwant %q", c.line, got, c.want)
				}
			}
		})
	}
}

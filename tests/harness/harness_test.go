package harness_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/tests/harness"
)

func TestJSONRoundTrip(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"return":{},"id":"x"}`, `{"return": {}, "id": "x"}`},
		{`{"b":1,"a":[1,2.5,-3e2,true,null]}`, `{"b": 1, "a": [1, 2.5, -3e2, true, null]}`},
		{`"é\u0001\n\"\\/"`, `"\u00E9\u0001\n\"\\/"`},
		{`"😀"`, `"\uD83D\uDE00"`},
		{`[]`, `[]`},
		{` {} `, `{}`},
	} {
		v, err := harness.ParseJSON([]byte(tc.in))
		if err != nil {
			t.Errorf("ParseJSON(%s): %v", tc.in, err)
			continue
		}
		if got := v.String(); got != tc.want {
			t.Errorf("ParseJSON(%s).String() = %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{``, `{`, `{"a"}`, `[1,]`, `{} {}`, `nul`, strings.Repeat("[", 20000) + strings.Repeat("]", 20000)} {
		if _, err := harness.ParseJSON([]byte(bad)); !errors.Is(err, harness.ErrBadJSON) {
			t.Errorf("ParseJSON(%.20q) = %v, want ErrBadJSON", bad, err)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, actual string
		ok              bool
	}{
		{`{"return": {}}`, `{"return": {}}`, true},
		{`{"return": "<any>"}`, `{"return": [1]}`, true},
		{`{"a": "<int>"}`, `{"a": 12}`, true},
		{`{"a": "<int>"}`, `{"a": 1.5}`, false},
		{`{"a": "<number>"}`, `{"a": 1.5}`, true},
		{`{"a": "<string>"}`, `{"a": 1}`, false},
		{`{"a": "<bool>", "b": "<null>"}`, `{"a": false, "b": null}`, true},
		{`{"a": "<array>"}`, `{"a": {}}`, false},
		{`{"a": "<object>"}`, `{"a": {"x": 1}}`, true},
		{`{"a": "<re:pty:/dev/pts/\\d+>"}`, `{"a": "pty:/dev/pts/3"}`, true},
		{`{"a": "<re:x>"}`, `{"a": "xx"}`, false},
		{`{"a": 1, "b": 2}`, `{"b": 2, "a": 1}`, false}, // order matters
		{`{"a": 1}`, `{"a": 1, "b": 2}`, false},
		{`[1, 2]`, `[1]`, false},
		{`"<unknown>"`, `"<unknown>"`, true}, // not a placeholder: literal
	} {
		err := harness.Match(harness.MustParseJSON(tc.pattern), harness.MustParseJSON(tc.actual))
		if (err == nil) != tc.ok {
			t.Errorf("Match(%s, %s) = %v, want ok=%v", tc.pattern, tc.actual, err, tc.ok)
		}
		if err != nil && !errors.Is(err, harness.ErrMismatch) {
			t.Errorf("Match error %v does not wrap ErrMismatch", err)
		}
	}
}

func TestMaskShapeRender(t *testing.T) {
	pat := harness.MustParseJSON(`{"return": {"fd": "<int>", "fdset-id": 1}}`)
	a := harness.MustParseJSON(`{"return": {"fd": 25, "fdset-id": 1}}`)
	b := harness.MustParseJSON(`{"return": {"fd": 31, "fdset-id": 1}}`)
	if x, y := harness.Mask(pat, a).String(), harness.Mask(pat, b).String(); x != y || x != `{"return": {"fd": <int>, "fdset-id": 1}}` {
		t.Errorf("Mask: %s vs %s", x, y)
	}
	ev := harness.MustParseJSON(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}`)
	if got := harness.RenderMessage(ev, nil, 0); got != `{"timestamp": {"seconds": TIMESTAMP, "microseconds": TIMESTAMP}, "event": "STOP"}` {
		t.Errorf("event render = %s", got)
	}
	ver := harness.MustParseJSON(`{"return": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "id": 1}`)
	if got := harness.RenderMessage(ver, nil, 0); got != `{"return": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": PACKAGE}, "id": 1}` {
		t.Errorf("version render = %s", got)
	}
	cpus := harness.MustParseJSON(`{"return": [{"thread-id": 4242, "props": {"thread-id": 0}, "cpu-index": 0}]}`)
	if got := harness.RenderMessage(cpus, nil, 0); got != `{"return": [{"thread-id": THREAD_ID, "props": {"thread-id": 0}, "cpu-index": 0}]}` {
		t.Errorf("cpus render = %s", got)
	}
	big := harness.MustParseJSON(`{"return": {"model": {"name": "host", "props": {"a": 1}}, "list": [1]}, "id": "l"}`)
	if got := harness.RenderMessage(big, nil, 3); got != `{"return": {"model": {"name": <string>, "props": <object>}, "list": <array>}, "id": "l"}` {
		t.Errorf("shape render = %s", got)
	}
	errReply := harness.MustParseJSON(`{"id": "l", "error": {"class": "GenericError", "desc": "x"}}`)
	if got := harness.RenderMessage(errReply, nil, 1); got != errReply.String() {
		t.Errorf("errors render in full under @shape, got %s", got)
	}
}

func TestScreen(t *testing.T) {
	// Bytes QEMU 7.2 wrote for "info status" typed at -monitor stdio.
	raw := "i\x1b[K\x1b[Din\x1b[K\x1b[D\x1b[Dinf\x1b[K\x1b[D\x1b[D\x1b[Dinfo\x1b[K\r\nVM status: running\r\n"
	got := harness.Screen(harness.Prompt, []byte(raw))
	want := []string{"(qemu) info", "VM status: running", ""}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Screen = %q, want %q", got, want)
	}
	if got := harness.ScreenText("", []byte("abc\x1b[2Dx\x1b[C\x1b[Cy\x1b[5D\x1b[K")); got != "" {
		t.Errorf("cursor moves: %q", got)
	}
	if got := harness.ScreenText("", []byte("ab\bc\x1b[?25h\x1b")); got != "ac" {
		t.Errorf("backspace and unknown escapes: %q", got)
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`-m 64 -name "a b"`, []string{"-m", "64", "-name", "a b"}},
		{`-name 'x,,y' -S`, []string{"-name", "x,,y", "-S"}},
		{`a\ b "q\"d" ""`, []string{"a b", `q"d`, ""}},
		{"  ", nil},
	} {
		got, err := harness.SplitArgs(tc.in)
		if err != nil || strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") || len(got) != len(tc.want) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`'x`, `"x`} {
		if _, err := harness.SplitArgs(bad); !errors.Is(err, harness.ErrScript) {
			t.Errorf("SplitArgs(%q) = %v, want ErrScript", bad, err)
		}
	}
}

func TestParseScript(t *testing.T) {
	src := `# leading comment
case: one
args: -machine none "-name" x
<- {"QMP": "<object>"}
negotiate
<- {"return": {}}
-> @fd @shape:2 {"execute": "getfd", "id": "{{repeat "a" 3}}"}
send: "raw\r\n"
send: {"partial":
hmp: info status
(qemu) info name
wait-event: STOP
signal: TERM
expect-exit: 0
case: two
qmp: none
hmp-monitor: socket
scrub: \d+ => N
(qemu) quit
`
	scripts, err := harness.ParseScript("t.txt", "t", []byte(src), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) != 2 || scripts[0].Name != "one" || scripts[1].Name != "two" {
		t.Fatalf("scripts = %+v", scripts)
	}
	one := scripts[0]
	if strings.Join(one.Args, " ") != "-machine none -name x" || one.Greeting == nil || one.QMP != "socket" || one.HMPMonitor != "stdio" {
		t.Errorf("header = %+v", one)
	}
	var ops []string
	for _, st := range one.Steps {
		if st.Op != harness.OpComment {
			ops = append(ops, st.Op)
		}
		if st.Op == harness.OpSend && (!st.FD || st.Shape != 2 || st.Text != `{"execute": "getfd", "id": "aaa"}`+"\n") {
			t.Errorf("send step = %+v", st)
		}
	}
	if got := strings.Join(ops, ","); got != "negotiate,->,send,send,hmp,(qemu),wait-event,signal,expect-exit" {
		t.Errorf("ops = %s", got)
	}
	if one.Steps[len(one.Steps)-1].Text != "0" {
		t.Errorf("expect-exit status = %q", one.Steps[len(one.Steps)-1].Text)
	}
	two := scripts[1]
	if two.QMP != "none" || two.HMPMonitor != "socket" || len(two.Scrubs) != 1 || two.Scrubs[0].With != "N" {
		t.Errorf("two = %+v", two)
	}

	for _, bad := range []string{
		"bogus directive",
		"<- {}",
		"-> {}\n<- {\n",
		"-> {}\n<- {}\n<- {}",
		"qmp: tcp",
		"hmp-monitor: pipe",
		"signal: NOPE",
		"wait-event:",
		"-> @nope {}",
		"-> @shape:x {}",
		"->",
		"scrub: (",
		"args: 'x",
		"-> {{repeat}}",
	} {
		if _, err := harness.ParseScript("bad.txt", "bad", []byte("args: -S\n-> {}\n"+bad), false); !errors.Is(err, harness.ErrScript) {
			if bad == "<- {}" && err == nil {
				continue // applies to the -> above
			}
			t.Errorf("ParseScript(%q) = %v, want ErrScript", bad, err)
		}
	}
}

func TestParseGolden(t *testing.T) {
	src := "args: -S\n<- {\"QMP\": {}}\n-> {\"execute\": \"x\"}\n<- {\"return\": {}}\n| out\nexit: exit 0\nstderr: e\n"
	scripts, err := harness.ParseScript("g.txt", "g", []byte(src), true)
	if err != nil {
		t.Fatal(err)
	}
	st := scripts[0].Steps
	if len(st) != 2 || len(st[0].Golden) != 1 || len(st[1].Golden) != 4 {
		t.Errorf("golden steps = %+v", st)
	}
	if _, err := harness.ParseScript("g.txt", "g", []byte("<- {}\n"), true); !errors.Is(err, harness.ErrScript) {
		t.Errorf("output before any step: %v", err)
	}
}

func TestParseCmdlines(t *testing.T) {
	src := "# c\n\n-m foo\n-version ;; stdout scrub=\\(.*\\)$\n-M help ;; stdout-head=1 stdout-each=\\S+\\s.*\n"
	cs, err := harness.ParseCmdlines("c.txt", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs[0].Line != 3 || strings.Join(cs[0].Args, " ") != "-m foo" || !cs[1].Stdout || len(cs[1].Scrubs) != 1 ||
		cs[2].StdoutHead != 1 || cs[2].StdoutEach == nil {
		t.Errorf("cases = %+v", cs)
	}
	for _, bad := range []string{"-m ;; nope", "-m ;; stdout-head=0", "-m ;; stdout-each=(", "'x"} {
		if _, err := harness.ParseCmdlines("c.txt", []byte(bad)); err == nil {
			t.Errorf("ParseCmdlines(%q) succeeded", bad)
		}
	}
}

func TestDiff(t *testing.T) {
	if d := harness.Diff([]string{"a", "b"}, []string{"a", "b"}); d != "" {
		t.Errorf("equal: %q", d)
	}
	d := harness.Diff([]string{"a", "b", "c"}, []string{"a", "x", "c"})
	if d != "  a\n- b\n+ x\n  c\n" && d != "  a\n+ x\n- b\n  c\n" {
		t.Errorf("diff = %q", d)
	}
}

// TestQMPClient drives the client against a scripted server on a unix
// socket: greeting after an early event, events set aside, SCM_RIGHTS.
func TestQMPClient(t *testing.T) {
	dir, err := os.MkdirTemp("", "tlcvm-h-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type got struct {
		cmd  string
		fds  int
		err  error
		done bool
	}
	res := make(chan got, 8)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			res <- got{err: err}
			return
		}
		defer c.Close()
		c.Write([]byte(`{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 0}}` + "\r\n"))
		c.Write([]byte(`{"QMP": {"version": {}, "capabilities": ["oob"]}}` + "\r\n"))
		buf, oob := make([]byte, 4096), make([]byte, 256)
		for i := 0; i < 3; i++ {
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			if err != nil {
				res <- got{err: err}
				return
			}
			fds := 0
			if oobn > 0 {
				msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
				for _, m := range msgs {
					rights, _ := unix.ParseUnixRights(&m)
					for _, fd := range rights {
						unix.Close(fd)
					}
					fds += len(rights)
				}
			}
			res <- got{cmd: strings.TrimSpace(string(buf[:n])), fds: fds}
			switch i {
			case 0:
				c.Write([]byte("{\"return\": {}}\r\n"))
			case 1:
				c.Write([]byte("{\"timestamp\": {\"seconds\": 2, \"microseconds\": 0}, \"event\": \"STOP\"}\r\n{\"return\": {}, \"id\": 2}\r\n"))
			case 2:
				c.Write([]byte("{\"return\": {\"big\": \"" + strings.Repeat("x", 100000) + "\"}}\r\n"))
			}
		}
		res <- got{done: true}
	}()
	q, err := harness.DialQMP(path, nil, harness.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if g := <-res; g.cmd != `{"execute":"qmp_capabilities"}` || g.fds != 0 {
		t.Errorf("server got %+v", g)
	}
	f, _ := os.Open(os.DevNull)
	defer f.Close()
	if err := q.SendWithFiles([]byte(`{"execute":"getfd","arguments":{"fdname":"x"},"id":2}`), f); err != nil {
		t.Fatal(err)
	}
	if g := <-res; g.fds != 1 {
		t.Errorf("server got %+v, want one descriptor", g)
	}
	r, err := q.Recv()
	if err != nil || r.Value.String() != `{"return": {}, "id": 2}` {
		t.Errorf("Recv = %s, %v", r.Raw, err)
	}
	r, err = q.Execute("query-big", nil)
	if err != nil || len(r.Raw) < 100000 {
		t.Errorf("big reply: %d bytes, %v", len(r.Raw), err)
	}
	<-res
	evs, err := q.WaitEvent("STOP")
	if err != nil || len(evs) != 1 || evs[0].Event() != "STOP" {
		t.Errorf("WaitEvent = %v, %v (the RESUME before the greeting is dropped)", evs, err)
	}
	if g := <-res; !g.done {
		t.Errorf("server: %+v", g)
	}
	rest, err := q.Drain()
	if err != nil || len(rest) != 0 {
		t.Errorf("Drain = %v, %v", rest, err)
	}
	if _, err := q.Recv(); !errors.Is(err, harness.ErrClosed) {
		t.Errorf("Recv after close = %v, want ErrClosed", err)
	}
}

func TestExecutable(t *testing.T) {
	if err := harness.Executable(""); !errors.Is(err, harness.ErrNoBinary) {
		t.Errorf("empty: %v", err)
	}
	if err := harness.Executable(os.DevNull); !errors.Is(err, harness.ErrNoBinary) {
		t.Errorf("/dev/null: %v", err)
	}
	if err := harness.Executable("/nonexistent/qemu"); !errors.Is(err, harness.ErrNoBinary) {
		t.Errorf("missing: %v", err)
	}
	if _, err := harness.ParseSignal("SIGTERM"); err != nil {
		t.Error(err)
	}
	if _, err := harness.ParseSignal("15"); err != nil {
		t.Error(err)
	}
}

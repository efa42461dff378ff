package qmp_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"

	"strings"
	"sync"
	"testing"
	"time"

	"tlcvm/qmp"
)

// readPretty reads one pretty message: lines up to a "}" at column 0.
func (c *client) readPretty() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.line()
		b.WriteString(l + "\n")
		if l == "}" {
			return b.String()
		}
	}
}

// TestPretty compares with QEMU 7.2's -qmp-pretty output (every "\n" sent as "\r\n").
func TestPretty(t *testing.T) {
	c := dial(t, newServer(t, optionsNone()), true)
	want := `{
    "QMP": {
        "version": {
            "qemu": {
                "micro": 22,
                "minor": 2,
                "major": 7
            },
            "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"
        },
        "capabilities": [
            "oob"
        ]
    }
}
`
	if got := c.readPretty(); got != want {
		t.Errorf("greeting:\n%s\nwant\n%s", got, want)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"execute":"qmp_capabilities"}`, "{\n    \"return\": {\n    }\n}\n"},
		{`{"execute":"query-status","id":{"a":[],"b":[1,{"c":{}}]}}`, `{
    "return": {
        "status": "running",
        "singlestep": false,
        "running": true
    },
    "id": {
        "a": [
        ],
        "b": [
            1,
            {
                "c": {
                }
            }
        ]
    }
}
`},
		{`{"execute":"stop"}`, `{
    "timestamp": {
        "seconds": 1700000000,
        "microseconds": 123456
    },
    "event": "STOP"
}
{
    "return": {
    }
}
`},
	} {
		c.send(tc.in)
		got := c.readPretty()
		if strings.Count(tc.want, "\n}\n") == 2 {
			got += c.readPretty()
		}
		if got != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.in, got, tc.want)
		}
	}
}

// Events reach every negotiated monitor and none that has not negotiated; the event a
// command emits comes before its reply.
func TestEventsFanOut(t *testing.T) {
	s := newServer(t, optionsNone())
	a, b, quiet := dial(t, s, false), dial(t, s, false), dial(t, s, false)
	a.negotiate()
	b.negotiate()
	quiet.line() // greeting only
	s.Emit("RESUME", nil)
	s.Emit("SHUTDOWN", struct {
		Guest  bool   `json:"guest"`
		Reason string `json:"reason"`
	}{false, "host-qmp-quit"})
	for _, c := range []*client{a, b} {
		if got := c.line(); got != `{"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "RESUME"}` {
			t.Errorf("got %s", got)
		}
		if got := c.line(); got != `{"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}` {
			t.Errorf("got %s", got)
		}
	}
	// The quiet monitor got nothing: its next line is the reply to its next command.
	quiet.send(`{"execute":"query-status","id":9}`)
	if got := quiet.line(); !strings.HasPrefix(got, `{"id": 9, "error"`) {
		t.Errorf("non-negotiated monitor saw %s", got)
	}
	// A command's events precede its reply, on the monitor that sent it and on others.
	a.send(`{"execute":"stop","id":"s"}`)
	if got := scrub(a.line()); got != `{"timestamp": {"seconds": TS, "microseconds": US}, "event": "STOP"}` {
		t.Errorf("got %s", got)
	}
	if got := a.line(); got != `{"return": {}, "id": "s"}` {
		t.Errorf("got %s", got)
	}
	if got := scrub(b.line()); !strings.Contains(got, `"event": "STOP"`) {
		t.Errorf("other monitor got %s", got)
	}
}

// Commands from many monitors and from Execute run one at a time (the race detector checks
// the unguarded counter) and every monitor gets its replies in order.
func TestSerialisedCommands(t *testing.T) {
	r := qmp.NewRegistry()
	counter := 0
	r.Register(qmp.Command{Name: "x-count", Returns: int64(0), Run: func(*qmp.Call) (any, error) {
		counter++
		return counter, nil
	}})
	s := qmp.NewServer(r, qmp.Options{Version: testVersion})
	t.Cleanup(func() { s.Close() })
	const monitors, each = 4, 50
	clients := make([]*client, monitors)
	for i := range clients {
		clients[i] = dial(t, s, false)
		clients[i].negotiate()
	}
	var wg sync.WaitGroup
	errs := make(chan string, monitors*each+each)
	for i, c := range clients {
		wg.Add(2)
		go func() { // writer: all commands in one go, several per write
			defer wg.Done()
			var b strings.Builder
			for j := 0; j < each; j++ {
				fmt.Fprintf(&b, `{"execute":"x-count","id":%d}`, j)
			}
			if _, err := c.conn.Write([]byte(b.String())); err != nil {
				errs <- err.Error()
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				l, err := c.r.ReadString('\n')
				if err != nil || !strings.HasSuffix(l, fmt.Sprintf(`, "id": %d}`+"\r\n", j)) {
					errs <- fmt.Sprintf("monitor %d reply %d: %q %v", i, j, l, err)
					return
				}
			}
		}()
	}
	sess := s.NewSession()
	for j := 0; j < each; j++ {
		if _, err := s.Execute(sess, "x-count", nil); err != nil {
			errs <- err.Error()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	var last int
	s.Do(func() { last = counter })
	if last != monitors*each+each {
		t.Errorf("counter %d, want %d", last, monitors*each+each)
	}
}

func TestExecute(t *testing.T) {
	s := newServer(t, optionsNone())
	sess := s.NewSession()
	raw, err := s.Execute(sess, "human-monitor-command", map[string]any{"command-line": "info status"})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if want := `info status {"status": "running", "singlestep": false, "running": true}`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name string
		args any
		want string
	}{
		{"nope", nil, "CommandNotFound: The command nope has not been found"},
		{"human-monitor-command", nil, "GenericError: Parameter 'command-line' is missing"},
		{"human-monitor-command", json.RawMessage(`{"command-line": 5}`), "GenericError: Invalid parameter type for 'command-line', expected: string"},
		{"human-monitor-command", HumanArgs{CommandLine: "x", CPUIndex: new(int64(3))}, "GenericError: Parameter 'cpu-index' expects a CPU number"},
		{"query-status", []int{1}, "GenericError: QMP input member 'arguments' must be an object"},
		{"qmp_capabilities", nil, "CommandNotFound: Capabilities negotiation is already complete, command ignored"},
	} {
		_, err := s.Execute(sess, tc.name, tc.args)
		qe := qmp.ToError(err)
		if err == nil || qe.Class+": "+qe.Desc != tc.want {
			t.Errorf("%s %v: got %v, want %s", tc.name, tc.args, err, tc.want)
		}
	}
	s.Close()
	if _, err := s.Execute(sess, "query-status", nil); err != qmp.ErrClosed {
		t.Errorf("after Close: %v", err)
	}
}

func TestPreconfig(t *testing.T) {
	ready := false
	s := newServer(t, qmp.Options{MachineReady: func() bool { return ready }})
	c := dial(t, s, false)
	c.negotiate()
	runExchanges(t, c, []exchange{
		{`{"execute":"stop"}`, []string{`{"error": {"class": "GenericError", "desc": "The command 'stop' is permitted only after machine initialization has completed"}}`}},
		{`{"execute":"query-status"}`, []string{statusRet + `}`}},
		{`{"execute":"nope"}`, []string{`{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}`}},
	})
	s.Do(func() { ready = true })
	c.send(`{"execute":"query-version"}`)
	if got := c.line(); !strings.HasPrefix(got, `{"return": {"qemu"`) {
		t.Errorf("after ready: %s", got)
	}
}

func TestQueryCommands(t *testing.T) {
	c := dial(t, newServer(t, optionsNone()), false)
	c.negotiate()
	c.send(`{"execute":"query-commands"}`)
	got := c.line()
	if !strings.HasPrefix(got, `{"return": [{"name": "query-fdsets"}, {"name": "remove-fd"}`) ||
		!strings.HasSuffix(got, `{"name": "query-version"}, {"name": "query-status"}]}`) {
		t.Errorf("query-commands: %s", got)
	}
}

// Handler panics become errors; the monitor keeps serving.
func TestHandlerPanic(t *testing.T) {
	r := qmp.NewRegistry()
	r.Register(qmp.Command{Name: "x-boom", Run: func(*qmp.Call) (any, error) { panic("boom") }})
	s := qmp.NewServer(r, qmp.Options{Version: testVersion})
	t.Cleanup(func() { s.Close() })
	c := dial(t, s, false)
	c.negotiate()
	runExchanges(t, c, []exchange{
		{`{"execute":"x-boom","id":1}`, []string{`{"id": 1, "error": {"class": "GenericError", "desc": "boom"}}`}},
		{`{"execute":"query-commands","id":2}`, []string{`{"return": [{"name": "query-fdsets"}, {"name": "remove-fd"}, {"name": "add-fd"}, {"name": "closefd"}, {"name": "getfd"}, {"name": "query-qmp-schema"}, {"name": "query-commands"}, {"name": "qmp_capabilities"}, {"name": "x-boom"}], "id": 2}`}},
	})
}

// Mistakes panic: at registration (names, handlers, Args' shape), and for types QAPI cannot
// express, in Check (registration leaves those for first use).
func TestRegisterPanics(t *testing.T) {
	run := func(*qmp.Call) (any, error) { return nil, nil }
	for name, f := range map[string]func(r *qmp.Registry){
		"duplicate":     func(r *qmp.Registry) { r.Register(qmp.Command{Name: "a", Run: run}, qmp.Command{Name: "a", Run: run}) },
		"no name":       func(r *qmp.Registry) { r.Register(qmp.Command{Run: run}) },
		"no run":        func(r *qmp.Registry) { r.Register(qmp.Command{Name: "a"}) },
		"args value":    func(r *qmp.Registry) { r.Register(qmp.Command{Name: "a", Run: run, Args: HumanArgs{}}) },
		"args scalar":   func(r *qmp.Registry) { r.Register(qmp.Command{Name: "a", Run: run, Args: new(int)}) },
		"bad return":    func(r *qmp.Registry) { r.Register(qmp.Command{Name: "a", Run: run, Returns: make(chan int)}) },
		"event twice":   func(r *qmp.Registry) { r.RegisterEvent("E", nil); r.RegisterEvent("E", nil) },
		"bad union":     func(r *qmp.Registry) { r.RegisterEvent("E", badUnion{}) },
		"int map event": func(r *qmp.Registry) { r.RegisterEvent("E", map[int]string{}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			r := qmp.NewRegistry()
			f(r)
			r.Check()
		})
	}
}

type badUnion struct {
	Kind string `json:"kind"`
}

func (badUnion) UnionTag() string              { return "kind" }
func (badUnion) UnionVariants() map[string]any { return nil }

// With OOB enabled, exec-oob overtakes an in-band command that is still running.
func TestOOBOvertakes(t *testing.T) {
	r := qmp.NewRegistry()
	release := make(chan struct{})
	r.Register(
		qmp.Command{Name: "x-block", Run: func(*qmp.Call) (any, error) { <-release; return nil, nil }},
		qmp.Command{Name: "migrate-pause", AllowOOB: true, Run: func(*qmp.Call) (any, error) { return "paused", nil }},
	)
	s := qmp.NewServer(r, qmp.Options{Version: testVersion})
	t.Cleanup(func() { s.Close() })
	c := dial(t, s, false)
	c.line()
	c.send(`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`)
	if got := c.line(); got != `{"return": {}}` {
		t.Fatal(got)
	}
	c.send(`{"execute":"x-block","id":"slow"}{"exec-oob":"migrate-pause","id":"fast"}`)
	if got := c.line(); got != `{"return": "paused", "id": "fast"}` {
		t.Errorf("first reply %s", got)
	}
	close(release)
	if got := c.line(); got != `{"return": {}, "id": "slow"}` {
		t.Errorf("second reply %s", got)
	}
}

// A held server greets at once; commands wait for open, which registers the protocol
// commands after those registered meanwhile.
func TestHeldServer(t *testing.T) {
	r := qmp.NewRegistry()
	s, open := qmp.NewHeldServer(r, optionsNone())
	t.Cleanup(func() { s.Close() })
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(a, false) }()
	t.Cleanup(func() { b.Close(); <-done })
	c := &client{t: t, conn: b, r: bufio.NewReader(b)}
	if got := c.line(); !strings.HasPrefix(got, `{"QMP": `) {
		t.Fatalf("greeting %s", got)
	}
	c.send(`{"execute": "qmp_capabilities"}`)
	replied := make(chan string, 1)
	go func() {
		b.SetReadDeadline(time.Now().Add(20 * time.Second))
		l, _ := c.r.ReadString('\n')
		replied <- l
	}()
	select {
	case l := <-replied:
		t.Fatalf("reply %q before open", l)
	case <-time.After(50 * time.Millisecond): // not a timing check: nothing may come at all
	}
	r.Register(sampleCommands(func(string, any) {})...)
	open()
	open() // again: nothing happens
	if l := <-replied; l != "{\"return\": {}}\r\n" {
		t.Fatalf("reply %q", l)
	}
	names := r.Commands()
	if names[len(names)-1] != "query-fdsets" || names[0] != "query-status" {
		t.Errorf("commands %v: the protocol commands come last", names)
	}
}

// Close before open neither deadlocks nor leaves the connection open.
func TestHeldServerClose(t *testing.T) {
	s, _ := qmp.NewHeldServer(qmp.NewRegistry(), optionsNone())
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(a, false) }()
	c := &client{t: t, conn: b, r: bufio.NewReader(b)}
	c.line()
	c.send(`{"execute": "qmp_capabilities"}`)
	s.Close()
	<-done
	b.Close()
}

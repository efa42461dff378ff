package qmpc_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"tlcvm/bench/qmpc"
)

// Real QEMU 7.2 lines (qemu-system-x86_64 -machine none -qmp stdio).
const (
	greeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}` + "\r\n"
	status   = `{"return": {"status": "running", "singlestep": false, "running": true}}` + "\r\n"
	event    = `{"timestamp": {"seconds": 1795609381, "microseconds": 600818}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}` + "\r\n"
	cmdErr   = `{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}` + "\r\n"
)

// serve answers each request line with the next scripted response.
func serve(t *testing.T, script ...string) *qmpc.Conn {
	t.Helper()
	cli, srv := net.Pipe()
	go func() {
		defer srv.Close()
		if _, err := io.WriteString(srv, greeting); err != nil {
			return
		}
		buf := make([]byte, 4096)
		for _, resp := range script {
			if _, err := srv.Read(buf); err != nil {
				return
			}
			if _, err := io.WriteString(srv, resp); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cli.Close() })
	return qmpc.New(cli)
}

func TestSession(t *testing.T) {
	c := serve(t, `{"return": {}}`+"\r\n", event+status, cmdErr, status, event+event+`{"id": 1, "return": {}}`+"\r\n")
	g, err := c.ReadGreeting()
	if err != nil {
		t.Fatal(err)
	}
	if g.Major != 7 || g.Minor != 2 || g.Micro != 22 || !strings.HasPrefix(g.Package, "Debian") || len(g.Capabilities) != 1 {
		t.Fatalf("greeting %+v", g)
	}
	if _, err := c.Execute("qmp_capabilities", nil); err != nil {
		t.Fatal(err)
	}
	ret, err := c.Execute("query-status", nil)
	if err != nil || !strings.Contains(string(ret), `"running"`) {
		t.Fatalf("query-status = %s, %v", ret, err)
	}
	_, err = c.Execute("nope", map[string]int{"x": 1})
	var qe *qmpc.Error
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" || !errors.Is(err, qmpc.ErrCommand) {
		t.Fatalf("nope: %v", err)
	}
	req := []byte(`{"execute":"query-status"}`)
	for i := 0; i < 2; i++ {
		if err := c.RoundTrip(req); err != nil {
			t.Fatalf("round trip %d: %v", i, err)
		}
	}
	if c.Events() != 3 {
		t.Fatalf("events = %d, want 3", c.Events())
	}
	if err := c.RoundTrip(req); err == nil { // server gone: EOF or closed pipe
		t.Fatalf("after close: %v", err)
	}
}

func TestParseGreeting(t *testing.T) {
	tests := []struct {
		in  string
		err error
	}{
		{strings.TrimSpace(greeting), nil},
		{`{"return": {}}`, qmpc.ErrProtocol},
		{`not json`, qmpc.ErrProtocol},
		{`{"QMP": {"version": {"qemu": {"major": "x"}}}}`, qmpc.ErrProtocol},
	}
	for _, tc := range tests {
		if _, err := qmpc.ParseGreeting([]byte(tc.in)); !errors.Is(err, tc.err) {
			t.Errorf("ParseGreeting(%q) err = %v, want %v", tc.in, err, tc.err)
		}
	}
}

func TestReadMessage(t *testing.T) {
	big := `{"return": "` + strings.Repeat("a", 200<<10) + `"}`
	tests := []struct {
		name string
		in   string
		want []string
		err  error
	}{
		{"crlf and blank lines", "\r\n" + status + "\n" + event, []string{strings.TrimSpace(status), strings.TrimSpace(event)}, io.EOF},
		{"longer than buffer", big + "\r\n", []string{big}, io.EOF},
		{"cut mid-line", `{"return"`, nil, io.ErrUnexpectedEOF},
		{"too long", strings.Repeat("x", qmpc.MaxMessage+(100<<10)), nil, qmpc.ErrTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv := net.Pipe()
			go func() { io.WriteString(srv, tc.in); srv.Close() }()
			c := qmpc.New(cli)
			defer c.Close()
			var got []string
			var err error
			for {
				var line []byte
				if line, err = c.ReadMessage(); err != nil {
					break
				}
				got = append(got, string(line))
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %d lines, want %d", len(got), len(tc.want))
			}
		})
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte(greeting + status + event + cmdErr))
	f.Add([]byte("\r\n\r\n{}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		cli, srv := net.Pipe()
		go func() { srv.Write(in); srv.Close() }()
		c := qmpc.New(cli)
		defer c.Close()
		_, _ = c.ReadGreeting()
		for i := 0; i < 64; i++ {
			line, err := c.ReadMessage()
			if err != nil {
				return
			}
			if len(line) > qmpc.MaxMessage || strings.ContainsAny(string(line), "\n") {
				t.Fatalf("bad line %q", line)
			}
			_, _ = qmpc.ParseGreeting(line)
		}
	})
}

package cmds

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"tlcvm/qmp"
)

// wire is a QMP connection to a server that holds only the commands a test registers (on
// fakes), with this package's ErrorClasses, as the composition root builds it: what a test
// sees is what a client sees on the socket.
type wire struct {
	t    *testing.T
	conn net.Conn
	in   *bufio.Reader
}

// wireTimeout bounds every read and write: a test fails, it never hangs.
const wireTimeout = 20 * time.Second

func newWire(t *testing.T, register func(r *qmp.Registry)) *wire {
	t.Helper()
	r := qmp.NewRegistry()
	r.SetErrorClasses(ErrorClasses())
	register(r)
	s := qmp.NewServer(r, qmp.Options{Now: func() time.Time { return time.Unix(1, 0) }})
	server, client := net.Pipe()
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(server, false) }()
	t.Cleanup(func() {
		client.Close()
		<-done
		s.Close()
	})
	w := &wire{t: t, conn: client, in: bufio.NewReader(client)}
	w.line() // greeting
	if got := w.do(`{"execute":"qmp_capabilities"}`); got != "{}" {
		t.Fatalf("qmp_capabilities: %s", got)
	}
	return w
}

func (w *wire) line() string {
	w.t.Helper()
	w.conn.SetReadDeadline(time.Now().Add(wireTimeout))
	l, err := w.in.ReadString('\n')
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// do sends one command and returns its reply, with the events that came before it, as
// "EVENT {data}" lines followed by the reply: the return value's compact JSON, or
// "Class: desc".
func (w *wire) do(cmd string) string {
	w.t.Helper()
	w.conn.SetWriteDeadline(time.Now().Add(wireTimeout))
	if _, err := w.conn.Write([]byte(cmd + "\n")); err != nil {
		w.t.Fatalf("write: %v", err)
	}
	var out []string
	for {
		l := w.line()
		m := gjson.Parse(l)
		switch {
		case m.Get("event").Exists():
			ev := m.Get("event").String()
			if d := m.Get("data"); d.Exists() {
				ev += " " + compact(d.Raw)
			}
			out = append(out, ev)
			continue
		case m.Get("error").Exists():
			out = append(out, m.Get("error.class").String()+": "+m.Get("error.desc").String())
		case m.Get("return").Exists():
			out = append(out, compact(m.Get("return").Raw))
		default:
			w.t.Fatalf("unexpected message %s", l)
		}
		return strings.Join(out, "\n")
	}
}

// compact removes the spaces QEMU's JSON writer puts after ':' and ',' (outside strings).
func compact(raw string) string {
	var b strings.Builder
	inStr, esc := false, false
	for _, c := range raw {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && (c == ' ' || c == '\n'):
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// recorder is the part every fake shares: each call is written down as "Method args", and
// the method returns err (nil: success).
type recorder struct {
	calls []string
	err   error
}

func (f *recorder) rec(format string, a ...any) error {
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
	return f.err
}

// called is the calls made, one a line ("" for none).
func (f *recorder) called() string { return strings.Join(f.calls, "\n") }

// handlerCase is one row of a handler table test: a command sent to a fake that fails with
// err, the calls the fake must have seen (the handler's argument mapping) and the reply.
type handlerCase struct {
	cmd   string
	err   error  // what the fake returns
	calls string // the fake's calls, one a line
	want  string // wire.do's result
}

// runHandlerCases runs each case on a fresh server whose commands register puts on a fake,
// made by newFake, that fails with the case's err.
func runHandlerCases[F any](t *testing.T, cases []handlerCase, newFake func(err error) (F, *recorder),
	register func(r *qmp.Registry, f F)) {
	t.Helper()
	for _, tc := range cases {
		f, rec := newFake(tc.err)
		w := newWire(t, func(r *qmp.Registry) { register(r, f) })
		if got := w.do(tc.cmd); got != tc.want {
			t.Errorf("%s (fake error %v):\n got %s\nwant %s", tc.cmd, tc.err, got, tc.want)
		}
		if got := rec.called(); got != tc.calls {
			t.Errorf("%s: calls:\n got %s\nwant %s", tc.cmd, got, tc.calls)
		}
	}
}

// show renders what a handler handed a fake compactly: a struct as {Field:value ...} with
// its zero fields left out, pointers followed (nil is left out too), slices as [a b].
func show(v any) string { return showValue(reflect.ValueOf(v)) }

func showValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Invalid:
		return "<nil>"
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "<nil>"
		}
		return showValue(v.Elem())
	case reflect.Struct:
		var parts []string
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || v.Field(i).IsZero() {
				continue
			}
			parts = append(parts, f.Name+":"+showValue(v.Field(i)))
		}
		return "{" + strings.Join(parts, " ") + "}"
	case reflect.Slice, reflect.Array:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = showValue(v.Index(i))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

// execInternal runs an internal command (reachable from HMP only) as HMP does, on a server
// holding what register puts there, and returns wire.do's form of the result.
func execInternal(t *testing.T, register func(r *qmp.Registry), name string, args any) string {
	t.Helper()
	r := qmp.NewRegistry()
	r.SetErrorClasses(ErrorClasses())
	register(r)
	s := qmp.NewServer(r, qmp.Options{})
	defer s.Close()
	raw, err := s.Execute(s.NewSession(), name, args)
	if err != nil {
		var qe *qmp.Error
		if !errors.As(err, &qe) {
			t.Fatalf("%s: %v is not a QMP error", name, err)
		}
		return qe.Class + ": " + qe.Desc
	}
	return compact(string(raw))
}

package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrQMP is wrapped by QMP client failures (not by QMP error replies, which
// are ordinary messages).
var ErrQMP = errors.New("harness: qmp")

// Message is one JSON object received from a QMP monitor.
type Message struct {
	Raw   []byte // exactly as received
	Value Value  // parsed, member order kept
}

// IsEvent reports whether m is an asynchronous event.
func (m Message) IsEvent() bool {
	_, ok := m.Value.Get("event")
	return ok
}

// Event is the event name of an event message.
func (m Message) Event() string {
	v, _ := m.Value.Get("event")
	return v.Str()
}

// QMP is a test client of a QMP monitor. It reads the JSON stream (not
// lines: a reply may be megabytes and is not split on newlines), keeps
// events apart from replies, and can pass descriptors with SCM_RIGHTS.
// Methods are for one goroutine (the test's); a reader goroutine feeds it.
type QMP struct {
	conn    net.Conn
	in      chan Message // replies and events in arrival order; closed at EOF
	mu      sync.Mutex
	readErr error         // why the reader stopped; guarded by mu
	events  []Message     // events read while waiting for a reply; test goroutine only
	done    chan struct{} // closed by Close; stops the reader
	once    sync.Once
	Timeout time.Duration
}

// DialQMP connects to a unix socket, waiting (polling) until it accepts
// connections, the process p ends (p may be nil), or the timeout passes.
func DialQMP(path string, p *Process, timeout time.Duration) (*QMP, error) {
	c, err := DialUnix(path, p, timeout)
	if err != nil {
		return nil, err
	}
	return NewQMP(c), nil
}

// DialUnix connects to a unix socket, retrying until it accepts connections,
// p (may be nil) ends, or the timeout passes.
func DialUnix(path string, p *Process, timeout time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c, nil
		}
		if p != nil {
			select {
			case <-p.Exited():
				return nil, fmt.Errorf("%w: %s: process ended (%s) before accepting: %v", ErrQMP, path, p.status, err)
			default:
			}
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("%w: %s: %v", ErrTimeout, path, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// NewQMP wraps a connected stream.
func NewQMP(c net.Conn) *QMP {
	q := &QMP{conn: c, in: make(chan Message, 64), done: make(chan struct{}), Timeout: DefaultTimeout}
	go q.read()
	return q
}

func (q *QMP) read() {
	defer close(q.in)
	dec := json.NewDecoder(q.conn)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			q.mu.Lock()
			q.readErr = err
			q.mu.Unlock()
			return
		}
		v, err := ParseJSON(raw)
		if err != nil {
			q.mu.Lock()
			q.readErr = err
			q.mu.Unlock()
			return
		}
		select {
		case q.in <- Message{Raw: raw, Value: v}:
		case <-q.done:
			return
		}
	}
}

func (q *QMP) next() (Message, error) {
	select {
	case m, ok := <-q.in:
		if !ok {
			q.mu.Lock()
			err := q.readErr
			q.mu.Unlock()
			// ECONNRESET: QEMU exited with our trailing newline unread.
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
				return Message{}, fmt.Errorf("%w: connection closed", ErrClosed)
			}
			return Message{}, fmt.Errorf("%w: read: %v", ErrQMP, err)
		}
		return m, nil
	case <-time.After(q.Timeout):
		return Message{}, fmt.Errorf("%w waiting for a QMP message", ErrTimeout)
	}
}

// Greeting reads the greeting ({"QMP": …}). Events that come before it are
// dropped: QEMU 7.2 sends events to a monitor whose connection it has not
// yet announced (monitor/qmp.c sets the negotiation mode only when it
// handles CHR_EVENT_OPENED), so a client that connects while QEMU starts
// may see the RESUME of vm_start before the greeting, or not, by timing.
func (q *QMP) Greeting() (Message, error) {
	for {
		m, err := q.next()
		if err != nil {
			return m, err
		}
		if m.IsEvent() {
			continue
		}
		if _, ok := m.Value.Get("QMP"); !ok {
			return m, fmt.Errorf("%w: not a greeting: %s", ErrQMP, m.Raw)
		}
		return m, nil
	}
}

// Connect reads the greeting and negotiates capabilities.
func (q *QMP) Connect() error {
	if _, err := q.Greeting(); err != nil {
		return err
	}
	r, err := q.Execute("qmp_capabilities", nil)
	if err != nil {
		return err
	}
	if _, ok := r.Value.Get("return"); !ok {
		return fmt.Errorf("%w: qmp_capabilities: %s", ErrQMP, r.Raw)
	}
	return nil
}

// Send writes raw bytes (any text, valid JSON or not).
func (q *QMP) Send(raw []byte) error {
	if _, err := q.conn.Write(raw); err != nil {
		return fmt.Errorf("%w: write: %v", ErrQMP, err)
	}
	return nil
}

// SendWithFiles writes raw together with descriptors as SCM_RIGHTS in the
// same sendmsg, as libvirt does for getfd and add-fd.
func (q *QMP) SendWithFiles(raw []byte, files ...*os.File) error {
	uc, ok := q.conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("%w: descriptors need a unix socket", ErrQMP)
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	if _, _, err := uc.WriteMsgUnix(raw, unix.UnixRights(fds...), nil); err != nil {
		return fmt.Errorf("%w: sendmsg: %v", ErrQMP, err)
	}
	return nil
}

// Recv returns the next reply, setting aside events that come first.
func (q *QMP) Recv() (Message, error) {
	for {
		m, err := q.next()
		if err != nil {
			return m, err
		}
		if m.IsEvent() {
			q.events = append(q.events, m)
			continue
		}
		return m, nil
	}
}

// Execute sends {"execute": cmd, "arguments": args} (args omitted when nil)
// and returns the reply.
func (q *QMP) Execute(cmd string, args any) (Message, error) {
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
	}{cmd, args}
	b, err := json.Marshal(req)
	if err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrQMP, err)
	}
	if err := q.Send(append(b, '\n')); err != nil {
		return Message{}, err
	}
	return q.Recv()
}

// WaitEvent returns, in order, every event up to and including the first
// one named name (already set aside or still to come).
func (q *QMP) WaitEvent(name string) ([]Message, error) {
	var out []Message
	for {
		for len(q.events) > 0 {
			e := q.events[0]
			q.events = q.events[1:]
			out = append(out, e)
			if e.Event() == name {
				return out, nil
			}
		}
		m, err := q.next()
		if err != nil {
			return out, fmt.Errorf("waiting for event %s: %w", name, err)
		}
		if !m.IsEvent() {
			return out, fmt.Errorf("%w: reply while waiting for event %s: %s", ErrQMP, name, m.Raw)
		}
		q.events = append(q.events, m)
	}
}

// Pending returns and forgets the events set aside so far.
func (q *QMP) Pending() []Message {
	ev := q.events
	q.events = nil
	return ev
}

// DropEvents forgets the pending events named name.
func (q *QMP) DropEvents(name string) {
	kept := q.events[:0]
	for _, m := range q.events {
		if m.Event() != name {
			kept = append(kept, m)
		}
	}
	q.events = kept
}

// Drain reads until the monitor closes the connection and returns every
// message still unread (set-aside events first).
func (q *QMP) Drain() ([]Message, error) {
	out := q.Pending()
	for {
		m, err := q.next()
		if errors.Is(err, ErrClosed) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// CloseWrite half-closes the connection: the monitor sees EOF on input.
func (q *QMP) CloseWrite() error {
	if uc, ok := q.conn.(*net.UnixConn); ok {
		return uc.CloseWrite()
	}
	return nil
}

// Close closes the connection.
func (q *QMP) Close() error {
	q.once.Do(func() { close(q.done) })
	err := q.conn.Close()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EBADF) {
		return nil
	}
	return err
}

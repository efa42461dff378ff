package qmpc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// MaxMessage bounds one server line (QEMU's largest reply, query-qmp-schema,
// is ~200 KiB; the benchmarks never ask for it).
const MaxMessage = 4 << 20

// Sentinel errors; functions wrap them with %w.
var (
	// ErrTooLong means a server line exceeded MaxMessage.
	ErrTooLong = errors.New("qmpc: message too long")
	// ErrProtocol means the server sent something that is not QMP.
	ErrProtocol = errors.New("qmpc: protocol error")
	// ErrCommand means the server answered with {"error": …}; the returned
	// error also unwraps to a *Error carrying class and description.
	ErrCommand = errors.New("qmpc: command failed")
)

// Error is a QMP error reply.
type Error struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *Error) Error() string { return e.Class + ": " + e.Desc }

// Is makes errors.Is(err, ErrCommand) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrCommand }

// Greeting is the server's first message.
type Greeting struct {
	Major, Minor, Micro int
	Package             string
	Capabilities        []string
}

// Conn is a QMP client connection. It is not safe for concurrent use.
type Conn struct {
	c      net.Conn
	r      *bufio.Reader
	events int  // events skipped while waiting for replies
	ready  bool // qmp_capabilities succeeded: command mode
}

// New wraps an established connection. Nothing is read until ReadGreeting.
func New(c net.Conn) *Conn { return &Conn{c: c, r: bufio.NewReaderSize(c, 64<<10)} }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Write sends raw bytes: a pre-encoded request, or anything else (a benchmark's huge line).
func (c *Conn) Write(b []byte) (int, error) { return c.c.Write(b) }

// SetDeadline sets the read and write deadline of the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// Events returns how many events were skipped while waiting for replies.
func (c *Conn) Events() int { return c.events }

// ReadMessage returns the next server line without its "\r\n". The slice is
// valid until the next read.
func (c *Conn) ReadMessage() ([]byte, error) { return readLine(c.r) }

func readLine(r *bufio.Reader) ([]byte, error) {
	var long []byte // only for lines longer than the reader's buffer
	for {
		frag, err := r.ReadSlice('\n')
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			if long != nil || err != nil {
				long = append(long, frag...)
				if len(long) > MaxMessage {
					return nil, ErrTooLong
				}
			}
			if err != nil {
				continue
			}
			line := frag
			if long != nil {
				line = long
			}
			line = bytes.TrimRight(line, "\r\n")
			if len(bytes.TrimSpace(line)) == 0 {
				long = nil
				continue // blank line: skip, as QEMU's clients do
			}
			return line, nil
		}
		if errors.Is(err, io.EOF) && len(frag)+len(long) > 0 {
			return nil, fmt.Errorf("%w: connection closed mid-message", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
}

// ParseGreeting decodes a greeting line.
func ParseGreeting(line []byte) (Greeting, error) {
	var g struct {
		QMP *struct {
			Version struct {
				QEMU struct {
					Major int `json:"major"`
					Minor int `json:"minor"`
					Micro int `json:"micro"`
				} `json:"qemu"`
				Package string `json:"package"`
			} `json:"version"`
			Capabilities []string `json:"capabilities"`
		} `json:"QMP"`
	}
	if err := json.Unmarshal(line, &g); err != nil {
		return Greeting{}, fmt.Errorf("%w: greeting: %v", ErrProtocol, err)
	}
	if g.QMP == nil {
		return Greeting{}, fmt.Errorf("%w: greeting without \"QMP\": %.200q", ErrProtocol, line)
	}
	v := g.QMP.Version
	return Greeting{Major: v.QEMU.Major, Minor: v.QEMU.Minor, Micro: v.QEMU.Micro, Package: v.Package,
		Capabilities: g.QMP.Capabilities}, nil
}

// ReadGreeting reads and decodes the greeting.
func (c *Conn) ReadGreeting() (Greeting, error) {
	line, err := c.ReadMessage()
	if err != nil {
		return Greeting{}, fmt.Errorf("qmpc: greeting: %w", err)
	}
	return ParseGreeting(line)
}

// Negotiate sends qmp_capabilities, which moves the session from
// capabilities-negotiation mode to command mode (qmp-spec 4. Capabilities
// Negotiation): before it, QEMU answers every other command with
// CommandNotFound "Expecting capabilities negotiation with 'qmp_capabilities'".
func (c *Conn) Negotiate() error {
	if _, err := c.Execute("qmp_capabilities", nil); err != nil {
		return err
	}
	c.ready = true
	return nil
}

// Negotiated reports whether Negotiate succeeded.
func (c *Conn) Negotiated() bool { return c.ready }

// Execute sends one command and returns its "return" value, skipping events.
// args may be nil.
func (c *Conn) Execute(name string, args any) (json.RawMessage, error) {
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
	}{name, args}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("qmpc: %s: %w", name, err)
	}
	b = append(b, '\r', '\n') // QEMU parses a stream; line-based servers need the end of line
	if _, err := c.c.Write(b); err != nil {
		return nil, fmt.Errorf("qmpc: %s: write: %w", name, err)
	}
	ret, err := c.readReply()
	if err != nil {
		return nil, fmt.Errorf("qmpc: %s: %w", name, err)
	}
	return ret, nil
}

// RoundTrip writes a pre-encoded request and waits for its reply, skipping
// events. It allocates nothing on the success path, so the harness measures
// the server rather than itself.
func (c *Conn) RoundTrip(req []byte) error {
	if _, err := c.c.Write(req); err != nil {
		return fmt.Errorf("qmpc: write: %w", err)
	}
	for {
		line, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if bytes.HasPrefix(line, []byte(`{"return"`)) {
			return nil
		}
		ret, err := decodeReply(line, &c.events)
		if err != nil {
			return err
		}
		if ret != nil {
			return nil // a reply with leading members, e.g. {"id": …, "return": …}
		}
	}
}

func (c *Conn) readReply() (json.RawMessage, error) {
	for {
		line, err := c.ReadMessage()
		if err != nil {
			return nil, err
		}
		ret, err := decodeReply(line, &c.events)
		if err != nil || ret != nil {
			return ret, err
		}
	}
}

// decodeReply classifies one server line: a reply (its "return" value), an
// error reply (*Error), or an event (nil, nil; counted in *events).
func decodeReply(line []byte, events *int) (json.RawMessage, error) {
	var m struct {
		Return json.RawMessage `json:"return"`
		Error  *Error          `json:"error"`
		Event  string          `json:"event"`
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("%w: %v in %.200q", ErrProtocol, err, line)
	}
	switch {
	case m.Error != nil:
		return nil, m.Error
	case m.Return != nil:
		return m.Return, nil
	case m.Event != "":
		*events++
		return nil, nil
	}
	return nil, fmt.Errorf("%w: neither return, error nor event: %.200q", ErrProtocol, line)
}

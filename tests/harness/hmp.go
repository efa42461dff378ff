package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Prompt is the HMP prompt QEMU prints after its banner and every command.
const Prompt = "(qemu) "

// HMP drives a human monitor: on a unix socket (-monitor unix:…) or on a
// process's stdio (-monitor stdio). Methods are for one goroutine.
type HMP struct {
	out     *Stream
	in      io.Writer
	conn    net.Conn // nil on stdio
	Timeout time.Duration
}

// NewHMP drives a monitor that writes to out and reads from in.
func NewHMP(out *Stream, in io.Writer) *HMP {
	return &HMP{out: out, in: in, Timeout: DefaultTimeout}
}

// StdioHMP drives the -monitor stdio monitor of p.
func StdioHMP(p *Process) *HMP { return NewHMP(p.Stdout, p.Stdin) }

// DialHMP connects to a -monitor unix:PATH,server=on,wait=off socket.
func DialHMP(path string, p *Process, timeout time.Duration) (*HMP, error) {
	c, err := DialUnix(path, p, timeout)
	if err != nil {
		return nil, err
	}
	h := NewHMP(NewStream(c), c)
	h.conn = c
	return h, nil
}

// Banner reads up to and including the first prompt and returns it raw.
func (h *HMP) Banner() ([]byte, error) {
	return h.out.ReadUntil([]byte(Prompt), h.Timeout)
}

// Raw sends line and returns every byte the monitor wrote up to (not
// including) the next prompt: the echo with its redraw sequences, then the
// output. After "quit" there is no next prompt: Raw returns what came
// before the end of the stream and an error wrapping ErrClosed.
func (h *HMP) Raw(line string) ([]byte, error) {
	if _, err := io.WriteString(h.in, line+"\n"); err != nil {
		return nil, fmt.Errorf("%w: hmp write: %v", ErrQMP, err)
	}
	b, err := h.out.ReadUntil([]byte(Prompt), h.Timeout)
	return bytes.TrimSuffix(b, []byte(Prompt)), err
}

// Command sends line and returns its output as a terminal shows it,
// without the echoed command line, lines joined by "\n" and ending in one.
func (h *HMP) Command(line string) (string, error) {
	b, err := h.Raw(line)
	lines := Screen(Prompt, b)
	if len(lines) > 0 {
		lines = lines[1:] // "(qemu) line" as echoed
	}
	out := strings.Join(lines, "\n")
	if errors.Is(err, ErrClosed) && line == "quit" {
		err = nil
	}
	return out, err
}

// Close closes a socket monitor connection.
func (h *HMP) Close() error {
	if h.conn != nil {
		return h.conn.Close()
	}
	return nil
}

package chardev

import (
	"io"
	"sync"
)

// maxMux is QEMU's MAX_MUX: front ends one mux=on chardev can carry.
const maxMux = 4

// Frontend is one user of a chardev (QEMU's CharBackend): a monitor, a
// serial port. A chardev without mux=on takes one front end; with mux=on up
// to four share it, and the escape C-a c moves the input focus among them.
// Output from every front end goes to the back end.
type Frontend struct {
	c *Chardev
	// The fields below are guarded by c.mu.
	open   bool
	input  func([]byte)
	serve  func(Conn)
	event  func(Event)
	mc     *muxConn // mux: the Conn of the running Serve session, if any
	gone   bool     // detached
	opened bool     // EventOpened delivered for the current peer
}

// Attach adds a front end (QEMU's qemu_chr_fe_init). Errors: "Device 'ID' is
// in use" when the chardev already has its front end (or four, for mux).
// On a mux=on chardev the newest front end takes the focus, as in QEMU, where
// the serial port attached after the monitor is the one that gets the input.
func (c *Chardev) Attach() (*Frontend, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, newErr(ErrClosed, "Chardev '%s' is closed", c.spec.ID)
	}
	limit := 1
	if c.spec.Mux {
		limit = maxMux
	}
	if len(c.fes) >= limit {
		c.mu.Unlock()
		return nil, newErr(ErrInUse, "Device '%s' is in use", c.spec.ID)
	}
	fe := &Frontend{c: c, open: true}
	c.fes = append(c.fes, fe)
	var evs []feEvent
	if c.spec.Mux {
		evs = c.setFocusLocked(len(c.fes) - 1)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	dispatch(evs)
	return fe, nil
}

type feEvent struct {
	fe *Frontend
	ev Event
}

func dispatch(evs []feEvent) {
	for _, e := range evs {
		e.fe.emit(e.ev)
	}
}

// setFocusLocked is QEMU's mux_set_focus; the caller dispatches the events.
func (c *Chardev) setFocusLocked(i int) []feEvent {
	var evs []feEvent
	if c.focus >= 0 && c.focus < len(c.fes) {
		evs = append(evs, feEvent{c.fes[c.focus], EventMuxOut})
	}
	c.focus = i
	evs = append(evs, feEvent{c.fes[i], EventMuxIn})
	return evs
}

// emit calls the front end's event handler, without locks held.
func (fe *Frontend) emit(ev Event) {
	c := fe.c
	c.mu.Lock()
	h := fe.event
	if ev == EventOpened {
		if fe.opened || (c.spec.Mux && !c.muxOpened) {
			h = nil
		} else if h != nil {
			fe.opened = true
		}
	}
	if ev == EventClosed {
		fe.opened = false
	}
	c.mu.Unlock()
	if h != nil {
		h(ev)
	}
}

// SetEventHandler sets fn to receive this front end's events. When a peer is
// already connected fn gets EventOpened at once (QEMU's sync_state), except
// on a mux whose opening is deferred (Options.DeferMuxOpen) until
// ResumeMuxOpen. fn is called without chardev locks held.
func (fe *Frontend) SetEventHandler(fn func(Event)) {
	c := fe.c
	c.mu.Lock()
	fe.event = fn
	connected := c.cur != nil
	c.mu.Unlock()
	if connected {
		fe.emit(EventOpened)
	}
}

// SetInput makes fn receive the bytes the peer sends to this front end.
func (fe *Frontend) SetInput(fn func([]byte)) {
	c := fe.c
	c.mu.Lock()
	fe.input = fn
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Serve makes this front end handle peer connections with fn (see
// Chardev.Serve). It returns at once.
func (fe *Frontend) Serve(fn func(Conn)) {
	c := fe.c
	c.mu.Lock()
	fe.serve = fn
	if c.spec.Mux && c.muxPeer != nil {
		c.startMuxServeLocked(fe)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Write sends output from this front end to the back end (see Chardev.Write).
func (fe *Frontend) Write(p []byte) (int, error) { return fe.c.Write(p) }

// Focused reports whether this front end receives input now (always true
// without mux).
func (fe *Frontend) Focused() bool {
	c := fe.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.spec.Mux {
		return true
	}
	return c.focus >= 0 && c.focus < len(c.fes) && c.fes[c.focus] == fe
}

// TakeFocus gives this front end the mux focus (QEMU's qemu_chr_fe_take_focus).
func (fe *Frontend) TakeFocus() {
	c := fe.c
	c.mu.Lock()
	if !c.spec.Mux || fe.gone {
		c.mu.Unlock()
		return
	}
	var evs []feEvent
	for i, f := range c.fes {
		if f == fe {
			evs = c.setFocusLocked(i)
		}
	}
	c.mu.Unlock()
	dispatch(evs)
}

// SetOpen marks the front end open or closed for query-chardev's
// "frontend-open" (QEMU's qemu_chr_fe_set_open). Attach starts it open.
func (fe *Frontend) SetOpen(open bool) {
	fe.c.mu.Lock()
	fe.open = open
	fe.c.mu.Unlock()
}

// Detach removes the front end (QEMU's qemu_chr_fe_deinit); its Serve
// session, if any, sees EOF.
func (fe *Frontend) Detach() {
	c := fe.c
	c.mu.Lock()
	if fe.gone {
		c.mu.Unlock()
		return
	}
	fe.gone = true
	for i, f := range c.fes {
		if f == fe {
			c.fes = append(c.fes[:i], c.fes[i+1:]...)
			switch {
			case c.focus == i:
				c.focus = -1
				if len(c.fes) > 0 {
					c.focus = 0
				}
			case c.focus > i:
				c.focus--
			}
			break
		}
	}
	mc := fe.mc
	c.cond.Broadcast()
	c.mu.Unlock()
	if mc != nil {
		mc.setEOF()
	}
}

// deliver hands input to the front end.
func (fe *Frontend) deliver(b []byte) {
	c := fe.c
	c.mu.Lock()
	in, mc := fe.input, fe.mc
	c.mu.Unlock()
	switch {
	case in != nil:
		in(b)
	case mc != nil:
		mc.push(b)
	}
}

// muxConn is the Conn a Serve front end of a mux=on chardev gets: reads see
// only the input routed to it (while it has the focus), writes go to the
// back end, Close ends only this front end's session.
type muxConn struct {
	c      *Chardev
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	eof    bool
	closed bool
}

const muxConnMax = 1 << 20

func newMuxConn(c *Chardev) *muxConn {
	m := &muxConn{c: c}
	m.cond = sync.NewCond(&m.mu)
	return m
}

func (m *muxConn) Read(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.buf) == 0 && !m.eof && !m.closed {
		m.cond.Wait()
	}
	if m.closed {
		return 0, ErrClosed
	}
	if len(m.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, m.buf)
	m.buf = m.buf[n:]
	return n, nil
}

func (m *muxConn) Write(p []byte) (int, error) {
	m.mu.Lock()
	closed := m.closed || m.eof
	m.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	if err := m.c.output(p, true); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (m *muxConn) Close() error {
	m.mu.Lock()
	m.closed = true
	m.cond.Broadcast()
	m.mu.Unlock()
	return nil
}

func (m *muxConn) push(b []byte) {
	m.mu.Lock()
	if !m.closed && !m.eof && len(m.buf)+len(b) <= muxConnMax {
		m.buf = append(m.buf, b...)
		m.cond.Signal()
	}
	m.mu.Unlock()
}

func (m *muxConn) setEOF() {
	m.mu.Lock()
	m.eof = true
	m.cond.Broadcast()
	m.mu.Unlock()
}

// Busy reports whether a front end uses the chardev (QEMU's qemu_chr_is_busy): it cannot be
// removed, and a chardev-change must move its front ends.
func (c *Chardev) Busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.fes) > 0 || c.spec.Mux
}

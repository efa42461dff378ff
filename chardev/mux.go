package chardev

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// EscapeChar is QEMU's default mux escape character, C-a (term_escape_char).
const EscapeChar = 0x01

// muxState is the mux's input escape and output timestamp state.
type muxState struct {
	escape     bool      // the previous input byte was the escape character
	timestamps bool      // C-a t: prefix output lines with the elapsed time
	tsStart    time.Time // zero: not yet stamped since toggled
	linestart  bool
	now        func() time.Time // for tests; nil: time.Now
}

// MuxHelp is the text the mux prints for C-a h (and C-a ?), byte for byte as
// QEMU 7.2 writes it ("\n\r" line ends included).
func MuxHelp() string {
	lines := []string{
		"% h    print this help\n\r",
		"% x    exit emulator\n\r",
		"% s    save disk data back to file (if -snapshot)\n\r",
		"% t    toggle console timestamps\n\r",
		"% b    send break (magic sysrq)\n\r",
		"% c    switch between console and monitor\n\r",
		"% %  sends %\n\r",
	}
	esc := fmt.Sprintf("C-%c", EscapeChar-1+'a')
	var b strings.Builder
	b.WriteString("\n\r")
	for _, l := range lines {
		b.WriteString(strings.ReplaceAll(l, "%", esc))
	}
	return b.String()
}

// muxTerminated is what C-a x writes before quitting.
const muxTerminated = "QEMU: Terminated\n\r"

// stamp applies C-a t timestamps to output (QEMU's mux_chr_write); mu held.
func (m *muxState) stamp(p []byte) []byte {
	if !m.timestamps {
		return p
	}
	now := time.Now
	if m.now != nil {
		now = m.now
	}
	var out []byte
	for _, ch := range p {
		if m.linestart {
			t := now()
			if m.tsStart.IsZero() {
				m.tsStart = t
			}
			ms := t.Sub(m.tsStart).Milliseconds()
			secs := ms / 1000
			out = fmt.Appendf(out, "[%02d:%02d:%02d.%03d] ", secs/3600, (secs/60)%60, secs%60, ms%1000)
			m.linestart = false
		}
		out = append(out, ch)
		if ch == '\n' {
			m.linestart = true
		}
	}
	return out
}

// ResumeMuxOpen delivers the EventOpened held back by Options.DeferMuxOpen
// (QEMU's resume_mux_open after the command line is processed); later front
// ends get it as soon as they set an event handler.
func (c *Chardev) ResumeMuxOpen() {
	c.mu.Lock()
	c.muxOpened = true
	fes := append([]*Frontend(nil), c.fes...)
	connected := c.cur != nil
	c.mu.Unlock()
	if connected {
		for _, fe := range fes {
			fe.emit(EventOpened)
		}
	}
}

// FocusNext moves the mux focus to the next front end, as C-a c does.
func (c *Chardev) FocusNext() {
	c.mu.Lock()
	evs := c.focusNextLocked()
	c.mu.Unlock()
	dispatch(evs)
}

func (c *Chardev) focusNextLocked() []feEvent {
	if !c.spec.Mux || len(c.fes) == 0 {
		return nil
	}
	next := c.focus + 1
	if next >= len(c.fes) {
		next = 0
	}
	return c.setFocusLocked(next)
}

// startMuxServeLocked starts fe's Serve session on the running mux peer.
func (c *Chardev) startMuxServeLocked(fe *Frontend) {
	if fe.mc != nil || fe.serve == nil || fe.gone {
		return
	}
	mc := newMuxConn(c)
	fe.mc = mc
	fn := fe.serve
	wg := c.muxWG
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn(mc)
		mc.Close()
		c.mu.Lock()
		if fe.mc == mc {
			fe.mc = nil
		}
		c.mu.Unlock()
	}()
}

// muxSession runs one peer of a mux=on chardev: a reader that interprets the
// escapes and routes input to the focused front end, and one Serve session
// per Serve front end.
func (c *Chardev) muxSession(p *peer) {
	var wg sync.WaitGroup
	c.mu.Lock()
	c.muxPeer, c.muxWG = p, &wg
	for _, fe := range c.fes {
		c.startMuxServeLocked(fe)
	}
	c.mu.Unlock()

	eof := c.readLoop(p, c.muxInput)

	c.mu.Lock()
	c.muxPeer = nil
	var mcs []*muxConn
	for _, fe := range c.fes {
		if fe.mc != nil {
			mcs = append(mcs, fe.mc)
		}
	}
	c.mu.Unlock()
	for _, mc := range mcs {
		mc.setEOF()
	}
	wg.Wait()
	if !eof || !p.endsOnEOF {
		c.waitClosing()
	}
}

type muxAction struct {
	fe     *Frontend
	data   []byte // input for fe
	ev     Event  // event for fe
	out    string // text written to the back end
	quit   bool
	commit bool
}

// muxInput is QEMU's mux_chr_read/mux_proc_byte.
func (c *Chardev) muxInput(b []byte) {
	var acts []muxAction
	var run []byte
	c.mu.Lock()
	flush := func() {
		if len(run) > 0 && c.focus >= 0 && c.focus < len(c.fes) {
			acts = append(acts, muxAction{fe: c.fes[c.focus], data: run})
		}
		run = nil
	}
	for _, ch := range b {
		switch {
		case c.mux.escape:
			c.mux.escape = false
			if ch == EscapeChar {
				run = append(run, ch)
				continue
			}
			flush()
			switch ch {
			case '?', 'h':
				acts = append(acts, muxAction{out: MuxHelp()})
			case 'x':
				acts = append(acts, muxAction{out: muxTerminated}, muxAction{quit: true})
			case 's':
				acts = append(acts, muxAction{commit: true})
			case 'b':
				if c.focus >= 0 && c.focus < len(c.fes) {
					acts = append(acts, muxAction{fe: c.fes[c.focus], ev: EventBreak})
				}
			case 'c':
				for _, e := range c.focusNextLocked() {
					acts = append(acts, muxAction{fe: e.fe, ev: e.ev})
				}
			case 't':
				c.mux.timestamps = !c.mux.timestamps
				c.mux.tsStart = time.Time{}
				c.mux.linestart = false
			}
		case ch == EscapeChar:
			c.mux.escape = true
		default:
			run = append(run, ch)
		}
	}
	flush()
	c.mu.Unlock()
	for _, a := range acts {
		switch {
		case a.data != nil:
			a.fe.deliver(a.data)
		case a.ev != 0:
			a.fe.emit(a.ev)
		case a.out != "":
			c.output([]byte(a.out), true)
		case a.quit:
			if c.opts.Quit != nil {
				c.opts.Quit()
			}
		case a.commit:
			if c.opts.Commit != nil {
				c.opts.Commit()
			}
		}
	}
}

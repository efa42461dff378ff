package qmp

import (
	"io"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// unixMsgReader is what *net.UnixConn offers for descriptor passing.
type unixMsgReader interface {
	ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error)
}

const (
	readSize     = 64 << 10
	maxFDsPerMsg = 253 // SCM_MAX_FD
	// queueLen is QMP_REQ_QUEUE_LEN_MAX: in-band requests a connection may have pending
	// with OOB enabled before reading pauses.
	queueLen = 8
)

// conn is one monitor connection: a reader goroutine (lexing; without OOB it also runs each
// command), an in-band worker that runs queued commands in order when OOB is enabled, and a
// writer goroutine that drains an unbounded output queue so events never block their emitter.
type conn struct {
	s      *Server
	sess   *Session
	rw     io.ReadWriteCloser
	pretty bool

	mu         sync.Mutex
	cond       *sync.Cond
	negotiated bool     // +checklocks:mu; qmp_capabilities succeeded
	oob        bool     // +checklocks:mu; the client enabled the "oob" capability
	out        [][]byte // +checklocks:mu; messages not yet written
	done       bool     // +checklocks:mu; no more output will be queued
	dead       bool     // +checklocks:mu; a write failed
	writing    bool     // +checklocks:mu; the writer holds a batch it has not finished writing
	inline     bool     // +checklocks:mu; the reader runs a command and will write its output itself

	pending []int // descriptors received but not yet attached to a command (reader goroutine)
}

type request struct {
	req  *Value
	err  error
	fds  []int
	done chan struct{}
}

func newConn(s *Server, sess *Session, rw io.ReadWriteCloser, pretty bool) *conn {
	c := &conn{s: s, sess: sess, rw: rw, pretty: pretty}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *conn) isNegotiated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.negotiated
}

func (c *conn) oobEnabled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.oob
}

// send queues one framed message.
func (c *conn) send(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.dead {
		return
	}
	c.out = append(c.out, b)
	if !c.inline {
		c.cond.Broadcast()
	}
}

func (c *conn) reply(v *Value) { c.send(frame(v, c.pretty)) }

// flushInline writes what is queued from the calling goroutine when the writer goroutine
// is idle, saving a hand-off on the request/reply path; otherwise the writer does it.
// Output order is kept: only one goroutine writes at a time, in queue order.
func (c *conn) flushInline() {
	c.mu.Lock()
	c.inline = false
	if c.writing || c.dead || len(c.out) == 0 {
		if len(c.out) > 0 {
			c.cond.Broadcast()
		}
		c.mu.Unlock()
		return
	}
	batch := c.out
	c.out = nil
	c.writing = true
	c.mu.Unlock()
	for _, b := range batch {
		if _, err := c.rw.Write(b); err != nil {
			c.mu.Lock()
			c.dead, c.out, c.writing = true, nil, false
			c.cond.Broadcast()
			c.mu.Unlock()
			c.rw.Close()
			return
		}
	}
	c.mu.Lock()
	c.writing = false
	if len(c.out) > 0 {
		c.cond.Broadcast() // events queued while we wrote
	}
	c.mu.Unlock()
}

// drained reports whether everything queued has been written (or can never be).
func (c *conn) drained() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead || (len(c.out) == 0 && !c.writing)
}

func (c *conn) writer(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c.mu.Lock()
		for (len(c.out) == 0 || c.writing || c.inline) && !(c.done && len(c.out) == 0 && !c.writing) {
			c.cond.Wait()
		}
		if len(c.out) == 0 {
			c.mu.Unlock()
			return
		}
		batch := c.out
		c.out = nil
		c.writing = true
		c.mu.Unlock()
		for _, b := range batch {
			if _, err := c.rw.Write(b); err != nil {
				c.s.log.Debug().Err(err).Msg("qmp: write failed")
				c.mu.Lock()
				c.dead, c.out, c.writing = true, nil, false
				c.mu.Unlock()
				c.rw.Close() // wake the reader
				return
			}
		}
		c.mu.Lock()
		c.writing = false
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

func (c *conn) run() {
	var wg sync.WaitGroup
	wg.Add(2)
	go c.writer(&wg)
	c.reply(c.s.greeting())

	inband := make(chan *request, queueLen)
	go c.worker(inband, &wg)

	var queued []*request
	sp := NewStreamParser(func(v *Value, err error) {
		queued = append(queued, &request{req: v, err: err})
	})
	ur, canFD := c.rw.(unixMsgReader)
	buf := make([]byte, readSize)
	oobBuf := make([]byte, unix.CmsgSpace(maxFDsPerMsg*4))
	for {
		var (
			n   int
			err error
		)
		if canFD {
			var oobn int
			n, oobn, _, _, err = ur.ReadMsgUnix(buf, oobBuf)
			if oobn > 0 {
				c.pending = append(c.pending, parseRights(oobBuf[:oobn])...)
			}
		} else {
			n, err = c.rw.Read(buf)
		}
		if n > 0 {
			sp.Feed(buf[:n])
			for _, r := range queued {
				// Descriptors go with the next command parsed (libvirt sends getfd and its fd
				// in one sendmsg).
				r.fds, c.pending = c.pending, nil
				c.handle(r, inband)
			}
			queued = queued[:0]
		}
		if err != nil {
			break
		}
	}
	close(inband)
	closeFDs(c.pending)
	c.pending = nil
	wg.Wait() // the worker ends first (inband closed), then the writer, released below
	c.rw.Close()
}

// handle routes one parsed message: out-of-band commands run at once on this goroutine,
// everything else runs in order under the server's lock. Without OOB the reader runs each
// command before it looks at the next, as QEMU suspends such a monitor.
func (c *conn) handle(r *request, inband chan<- *request) {
	if r.err == nil && c.oobEnabled() && isOOB(r.req) {
		c.reply(c.s.dispatch(c, r.req, true, r.fds))
		return
	}
	r.done = make(chan struct{})
	if !c.oobEnabled() {
		// Without OOB the monitor is suspended while a command runs (QEMU), so the reader
		// runs it itself: no hand-off to the worker, and the reply is written from here
		// when nothing is queued before it.
		c.mu.Lock()
		c.inline = true
		c.mu.Unlock()
		c.process(r)
		c.flushInline()
		return
	}
	inband <- r
}

// isOOB is qmp_is_oob.
func isOOB(v *Value) bool { return v.Kind() == KindObject && v.Has("exec-oob") && !v.Has("execute") }

func (c *conn) worker(inband <-chan *request, wg *sync.WaitGroup) {
	defer func() {
		c.mu.Lock()
		c.done = true
		c.cond.Broadcast()
		c.mu.Unlock()
		wg.Done()
	}()
	for r := range inband {
		c.process(r)
	}
}

// process runs one in-band request and queues its reply after the events the command
// emitted, then closes r.done.
func (c *conn) process(r *request) {
	defer close(r.done)
	if r.err != nil {
		closeFDs(r.fds)
		c.reply(errorResponse(ToError(r.err), nil))
		return
	}
	req, fds := r.req, r.fds
	if err := c.s.Do(func() { c.reply(c.s.dispatch(c, req, c.oobEnabled(), fds)) }); err != nil {
		closeFDs(fds)
	}
}

func errorResponse(e *Error, id *Value) *Value {
	rsp := Object()
	ev, _ := ToValue(e)
	rsp.Set("error", ev)
	if id != nil {
		rsp.Set("id", id)
	}
	return rsp
}

// dispatch is qapi/qmp-dispatch.c qmp_dispatch plus monitor_qmp_dispatch's rewrite of
// CommandNotFound before negotiation. It returns the response object.
func (s *Server) dispatch(c *conn, req *Value, allowOOB bool, fds []int) *Value {
	if req.Kind() != KindObject {
		closeFDs(fds)
		return errorResponse(GenericError("QMP input must be a JSON object"), nil)
	}
	id := req.Get("id")
	ret, qerr := s.dispatchObj(c, req, allowOOB, fds)
	if qerr != nil {
		if qerr.Class == ClassCommandNotFound && !c.isNegotiated() {
			qerr = &Error{Class: ClassCommandNotFound, Desc: "Expecting capabilities negotiation with 'qmp_capabilities'"}
		}
		return errorResponse(qerr, id)
	}
	rsp := Object()
	rsp.Set("return", ret)
	if id != nil {
		rsp.Set("id", id)
	}
	return rsp
}

func (s *Server) dispatchObj(c *conn, req *Value, allowOOB bool, fds []int) (*Value, *Error) {
	execKey := ""
	for _, i := range req.writeOrderQDict() {
		m := req.members[i]
		switch {
		case m.Key == "execute" || (m.Key == "exec-oob" && allowOOB):
			if m.Value.Kind() != KindString {
				closeFDs(fds)
				return nil, GenericError("QMP input member '%s' must be a string", m.Key)
			}
			if execKey != "" {
				closeFDs(fds)
				return nil, GenericError("QMP input member '%s' clashes with '%s'", m.Key, execKey)
			}
			execKey = m.Key
		case m.Key == "arguments":
			if m.Value.Kind() != KindObject {
				closeFDs(fds)
				return nil, GenericError("QMP input member 'arguments' must be an object")
			}
		case m.Key == "id":
		default:
			closeFDs(fds)
			return nil, GenericError("QMP input member '%s' is unexpected", m.Key)
		}
	}
	if execKey == "" {
		closeFDs(fds)
		return nil, GenericError("QMP input lacks member 'execute'")
	}
	name, _ := req.Get(execKey).AsString()
	var cmd *command
	if c.isNegotiated() || name == "qmp_capabilities" {
		cmd = s.reg.lookup(name)
	}
	if cmd == nil || cmd.Internal {
		closeFDs(fds)
		return nil, CommandNotFound(name)
	}
	if execKey == "exec-oob" && !cmd.AllowOOB {
		closeFDs(fds)
		return nil, GenericError("The command %s does not support OOB", name)
	}
	return s.run(c.sess, c, cmd, req.Get("arguments"), fds)
}

func parseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if r, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, r...)
		}
	}
	return fds
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

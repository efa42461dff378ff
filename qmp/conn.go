package qmp

import (
	"io"
	"net"
	"runtime/debug"
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
	// flushAt: a message being encoded is written out in pieces of about this size, so that
	// a reply of any size never needs a buffer of its size.
	flushAt = 64 << 10
)

// conn is one monitor connection.
//
// Its reader goroutine lexes the input and handles each value as soon as it is parsed.
// Without OOB (QEMU suspends such a monitor while a command runs) the reader runs the command
// itself under the server's lock and writes the reply, after any events queued before it, in
// one write: a round trip costs one wake-up of one goroutine. With OOB enabled, in-band
// commands go to a worker goroutine in order (up to queueLen pending) and exec-oob commands
// run at once on the reader.
//
// Reads and writes go through Go's network poller (a *net.UnixConn as the chardev gives it).
// Blocking system calls on a duplicate of the descriptor were tried: they save the poller's
// wake-up and sysmon's (a round trip ~10 % cheaper than bench/cmd/qmp-floor's while the
// process is otherwise idle), but a thread asleep in recvmsg holds a P, and with vCPU threads
// running the scheduler's hand-offs around it made round trips ~20 % dearer than with the
// poller (bench/run-qmp.sh, both machines).
//
// Output has one writer at a time, the holder of the write turn (writing): the goroutine that
// has a reply to send takes the turn when it is free and writes what is queued plus its reply;
// otherwise the message is queued. Events are always queued, never written by their emitter,
// and a writer goroutine writes what the turn holders leave behind, so an emitter never
// blocks on a slow client.
type conn struct {
	s      *Server
	sess   *Session
	rw     io.ReadWriteCloser
	pretty bool

	mu         sync.Mutex
	cond       *sync.Cond // signals the writer goroutine: output queued, turn released, done
	negotiated bool       // +checklocks:mu; qmp_capabilities succeeded
	oob        bool       // +checklocks:mu; the client enabled the "oob" capability
	out        [][]byte   // +checklocks:mu; framed messages not yet written
	done       bool       // +checklocks:mu; no more output will be queued
	dead       bool       // +checklocks:mu; a write failed
	writing    bool       // +checklocks:mu; a goroutine holds the write turn
	running    bool       // +checklocks:mu; the reader runs a command: its events wait for its reply

	// Owned by the reader goroutine.
	pending []int  // descriptors received but not yet attached to a command
	heavy   bool   // a large reply was written since the reader last returned memory
	rbuf    []byte // where the reader's commands encode their replies

	wbuf []byte // encoding buffer of the write turn's holder
}

type request struct {
	req *Value
	err error
	fds []int
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

// queue adds one framed message for the writer (events, and replies when another goroutine
// holds the write turn).
func (c *conn) queue(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.dead {
		return
	}
	c.out = append(c.out, b)
	if !c.running && !c.writing {
		c.cond.Broadcast()
	}
}

// deliver writes a reply, after what is queued, from the calling goroutine when the write turn
// is free, or else queues it behind the output of the turn's holder.
func (c *conn) deliver(r response) {
	c.mu.Lock()
	c.running = false
	if c.dead || r.empty() {
		if len(c.out) > 0 && !c.writing {
			c.cond.Broadcast()
		}
		c.mu.Unlock()
		return
	}
	if c.writing {
		c.mu.Unlock()
		b := r.framed
		if b != nil {
			b = append([]byte(nil), b...) // r.framed may be the reader's buffer, used again
		} else {
			b = r.frame(c.pretty)
		}
		c.queue(b)
		return
	}
	c.writing = true
	batch := c.out
	c.out = nil
	c.mu.Unlock()

	buf := c.wbuf[:0]
	var err error
	for _, b := range batch {
		if buf, err = c.spill(buf, b); err != nil {
			break
		}
	}
	if err == nil && r.framed != nil {
		if buf, err = c.spill(buf, r.framed); err == nil && len(buf) > 0 {
			_, err = c.rw.Write(buf)
		}
		if len(r.framed) > releaseAfter {
			c.heavy = true
		}
	} else if err == nil {
		w := jsonWriter{buf: buf, pretty: c.pretty, crlf: true, out: c.rw}
		w.response(&r)
		buf, err = w.finish()
		if err == nil {
			_, err = c.rw.Write(buf)
		}
		if w.flushed+len(buf) > releaseAfter {
			c.heavy = true
		}
	}
	if cap(buf) <= flushAt*2 {
		c.wbuf = buf[:0]
	} else {
		c.wbuf = nil
	}
	c.release(err)
}

// spill appends b to buf, writing buf out first when it would pass flushAt.
func (c *conn) spill(buf, b []byte) ([]byte, error) {
	if len(buf) > 0 && len(buf)+len(b) > flushAt {
		if _, err := c.rw.Write(buf); err != nil {
			return buf, err
		}
		buf = buf[:0]
	}
	if len(b) > flushAt {
		_, err := c.rw.Write(b)
		return buf, err
	}
	return append(buf, b...), nil
}

// release gives up the write turn; what was queued meanwhile goes to the writer goroutine.
func (c *conn) release(err error) {
	c.mu.Lock()
	c.writing = false
	if err != nil {
		c.s.log.Debug().Err(err).Msg("qmp: write failed")
		c.dead, c.out = true, nil
	}
	if len(c.out) > 0 || c.done || c.dead {
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	if err != nil {
		c.rw.Close() // wakes the reader
	}
}

// drained reports whether everything queued has been written (or can never be).
func (c *conn) drained() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead || (len(c.out) == 0 && !c.writing)
}

// writer writes queued output whenever no one holds the write turn and no command runs on the
// reader (whose reply will carry it), until the connection is done and drained.
func (c *conn) writer(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		c.mu.Lock()
		for !c.dead && (len(c.out) == 0 || c.writing || c.running) && !(c.done && len(c.out) == 0 && !c.writing) {
			c.cond.Wait()
		}
		if c.dead || len(c.out) == 0 {
			c.mu.Unlock()
			return
		}
		c.writing = true
		batch := c.out
		c.out = nil
		c.mu.Unlock()
		buf := c.wbuf[:0]
		var err error
		for _, b := range batch {
			if buf, err = c.spill(buf, b); err != nil {
				break
			}
		}
		if err == nil && len(buf) > 0 {
			_, err = c.rw.Write(buf)
		}
		c.wbuf = buf[:0]
		c.release(err)
	}
}

func (c *conn) run() {
	var wg sync.WaitGroup
	wg.Add(2)
	go c.writer(&wg)
	c.deliver(response{msg: c.s.greeting()})

	inband := make(chan request, queueLen)
	go c.worker(inband, &wg)

	sp := NewStreamParser(func(v *Value, err error) {
		// Descriptors go with the next command parsed (libvirt sends getfd and its fd in one
		// sendmsg).
		fds := c.pending
		c.pending = nil
		c.handle(request{req: v, err: err, fds: fds}, inband)
	})
	ur, canFD := c.rw.(unixMsgReader)
	buf := make([]byte, readSize)
	var oobBuf []byte
	if canFD {
		oobBuf = make([]byte, unix.CmsgSpace(maxFDsPerMsg*4))
	}
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
			if sp.Heavy() || c.heavy {
				// A value or reply of megabytes went through: give its memory back now
				// rather than keep the process at its peak (what GC and the scavenger
				// would do only slowly).
				c.heavy = false
				debug.FreeOSMemory()
			}
		}
		if err != nil {
			break
		}
	}
	close(inband)
	closeFDs(c.pending)
	c.pending = nil
	wg.Wait() // the worker ends first (inband closed), then the writer, released by it
	c.rw.Close()
}

// handle routes one parsed message: out-of-band commands run at once on this goroutine,
// everything else runs in order under the server's lock. Without OOB the reader runs each
// command before it looks at the next, as QEMU suspends such a monitor.
func (c *conn) handle(r request, inband chan<- request) {
	c.mu.Lock()
	oob := c.oob
	if !oob {
		c.running = true
	}
	c.mu.Unlock()
	switch {
	case !oob:
		rsp := c.process(r, false, c.rbuf[:0])
		c.deliver(rsp)
		if rsp.framed != nil && cap(rsp.framed) <= flushAt {
			c.rbuf = rsp.framed[:0]
		}
	case r.err == nil && isOOB(r.req):
		c.deliver(c.s.dispatch(c, r.req, true, r.fds, nil))
	default:
		inband <- r
	}
}

// isOOB is qmp_is_oob.
func isOOB(v *Value) bool { return v.Kind() == KindObject && v.Has("exec-oob") && !v.Has("execute") }

func (c *conn) worker(inband <-chan request, wg *sync.WaitGroup) {
	defer func() {
		c.mu.Lock()
		c.done = true
		c.cond.Broadcast()
		c.mu.Unlock()
		wg.Done()
	}()
	for r := range inband {
		c.deliver(c.process(r, true, nil))
	}
}

// process runs one in-band request under the server's lock and returns its response (nil
// once the server is closed); a reply to a command is encoded into buf.
func (c *conn) process(r request, oob bool, buf []byte) response {
	if r.err != nil {
		closeFDs(r.fds)
		return errorResponse(ToError(r.err), nil)
	}
	s := c.s
	s.owner.Lock()
	defer s.owner.Unlock()
	if s.closed {
		closeFDs(r.fds)
		return response{}
	}
	return s.dispatch(c, r.req, oob, r.fds, buf)
}

// response is one message: a whole message (msg: the greeting), a command's reply already
// framed (framed: {"return": …, "id": …}, encoded while the command still held the server's
// lock, as QEMU encodes it before it lets go of the big lock), or an error reply, {"error":
// err} with "id" when the request had one, encoded as it is written.
type response struct {
	msg    *Value
	framed []byte
	err    *Error
	id     *Value
}

func errorResponse(e *Error, id *Value) response { return response{err: e, id: id} }

// empty reports whether there is nothing to send (the server closed before the command ran).
func (r *response) empty() bool { return r.msg == nil && r.framed == nil && r.err == nil }

// frame encodes r as a complete monitor message.
func (r *response) frame(pretty bool) []byte {
	w := jsonWriter{pretty: pretty, crlf: true}
	w.response(r)
	b, _ := w.finish()
	return b
}

// dispatch is qapi/qmp-dispatch.c qmp_dispatch plus monitor_qmp_dispatch's rewrite of
// CommandNotFound before negotiation. It returns the response; a command's reply is framed
// into buf.
func (s *Server) dispatch(c *conn, req *Value, allowOOB bool, fds []int, buf []byte) response {
	if req.Kind() != KindObject {
		closeFDs(fds)
		return errorResponse(GenericError("QMP input must be a JSON object"), nil)
	}
	id := req.Get("id")
	out, qerr := s.dispatchObj(c, req, allowOOB, fds)
	if qerr == nil {
		w := jsonWriter{buf: buf, pretty: c.pretty, crlf: true}
		if qerr = w.reply(out, id); qerr == nil {
			b, _ := w.finish()
			return response{framed: b}
		}
		s.log.Error().Str("error", qerr.Desc).Msg("cannot encode reply")
	}
	if qerr.Class == ClassCommandNotFound && !c.isNegotiated() {
		qerr = &Error{Class: ClassCommandNotFound, Desc: "Expecting capabilities negotiation with 'qmp_capabilities'"}
	}
	return errorResponse(qerr, id)
}

func (s *Server) dispatchObj(c *conn, req *Value, allowOOB bool, fds []int) (any, *Error) {
	execKey, qerr := checkRequest(req, allowOOB)
	if qerr != nil {
		closeFDs(fds)
		return nil, qerr
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

// checkRequest is qmp_dispatch's check of the request's members; it returns the member naming
// the command. Members are checked in QDict order, which decides the error reported when
// several are wrong; a request with nothing wrong needs no order.
func checkRequest(req *Value, allowOOB bool) (execKey string, qerr *Error) {
	bad := false
	for _, m := range req.members {
		switch {
		case m.Key == "execute" || (m.Key == "exec-oob" && allowOOB):
			bad = bad || m.Value.Kind() != KindString || execKey != ""
			execKey = m.Key
		case m.Key == "arguments":
			bad = bad || m.Value.Kind() != KindObject
		case m.Key == "id":
		default:
			bad = true
		}
	}
	if !bad {
		if execKey == "" {
			return "", GenericError("QMP input lacks member 'execute'")
		}
		return execKey, nil
	}
	execKey = ""
	for _, i := range req.writeOrderQDict() {
		m := req.members[i]
		switch {
		case m.Key == "execute" || (m.Key == "exec-oob" && allowOOB):
			if m.Value.Kind() != KindString {
				return "", GenericError("QMP input member '%s' must be a string", m.Key)
			}
			if execKey != "" {
				return "", GenericError("QMP input member '%s' clashes with '%s'", m.Key, execKey)
			}
			execKey = m.Key
		case m.Key == "arguments":
			if m.Value.Kind() != KindObject {
				return "", GenericError("QMP input member 'arguments' must be an object")
			}
		case m.Key == "id":
		default:
			return "", GenericError("QMP input member '%s' is unexpected", m.Key)
		}
	}
	return "", GenericError("QMP input lacks member 'execute'")
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

package qmp

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// VersionTriple is QEMU's version number (QAPI VersionTriple).
type VersionTriple struct {
	QAPIOrder
	Major int64 `json:"major"`
	Minor int64 `json:"minor"`
	Micro int64 `json:"micro"`
}

// VersionInfo is the greeting's "version" and query-version's reply (QAPI VersionInfo).
type VersionInfo struct {
	QAPIOrder
	Qemu    VersionTriple `json:"qemu"`
	Package string        `json:"package"`
}

// Options configure a Server.
type Options struct {
	// Version is announced in the greeting.
	Version VersionInfo
	// Log receives protocol diagnostics; the zero Logger is silent.
	Log zerolog.Logger
	// Now stamps events; nil means time.Now.
	Now func() time.Time
	// MachineReady reports whether machine initialisation has completed; until then only
	// AllowPreconfig commands run (--preconfig). nil means always ready. Called on the owner
	// goroutine.
	MachineReady func() bool
	// Running reports whether the VM runs; fd sets release removed descriptors only then, as
	// QEMU does. nil means always.
	Running func() bool
}

// Server runs QMP monitors over any number of connections. Commands from every connection
// and from Execute run one at a time under the server's lock, so handlers need no locks
// among themselves; replies go back in order per connection; events go to every connection
// that has finished capability negotiation.
type Server struct {
	reg    *Registry
	opt    Options
	log    zerolog.Logger
	fdsets *FDSets

	// owner serialises command execution across every monitor (QEMU's big lock); closed,
	// set by Close under it, refuses later work.
	owner   sync.Mutex
	closed  bool          // +checklocks:owner
	quit    chan struct{} // closed by Close
	closing sync.Once

	mu    sync.Mutex
	conns map[*conn]struct{} // +checklocks:mu; every open connection
	held  bool               // +checklocks:mu; NewHeldServer's hold on owner, until open
}

// NewServer starts a server for the commands of r. The protocol commands (ProtocolCommands)
// are registered in r unless already there.
func NewServer(r *Registry, o Options) *Server {
	s := newServer(r, o)
	registerProtocol(r)
	return s
}

// NewHeldServer starts a server whose connections are greeted at once but whose commands wait
// until open is called, as QEMU's monitor I/O thread greets a client while the main loop that
// runs commands is still being set up. Commands and events may be registered in r until then;
// open registers the protocol commands after them (as NewServer would have, had it been
// called then) and lets commands run. open may be called more than once; Close before open
// is fine.
func NewHeldServer(r *Registry, o Options) (s *Server, open func()) {
	s = newServer(r, o)
	s.owner.Lock()
	s.held = true
	return s, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.held {
			registerProtocol(r)
			s.held = false
			s.owner.Unlock()
		}
	}
}

func newServer(r *Registry, o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		reg:   r,
		opt:   o,
		log:   o.Log,
		quit:  make(chan struct{}),
		conns: map[*conn]struct{}{},
	}
	s.fdsets = newFDSets(o.Running, s.connCount)
	return s
}

func registerProtocol(r *Registry) {
	for _, c := range ProtocolCommands() {
		if !r.Has(c.Name) {
			r.Register(c)
		}
	}
}

// Registry returns the server's command table.
func (s *Server) Registry() *Registry { return s.reg }

// FDSets returns the global fd sets of add-fd/remove-fd/query-fdsets.
func (s *Server) FDSets() *FDSets { return s.fdsets }

// Do runs fn serialised with every command (QEMU's big lock: one command at a time, whatever
// the monitor) and waits for it. It must not be called from a handler (use Call.Exec).
// ErrClosed after Close.
func (s *Server) Do(fn func()) error {
	s.owner.Lock()
	defer s.owner.Unlock()
	if s.closed {
		return ErrClosed
	}
	fn()
	return nil
}

// Close waits for the running command, refuses further ones, and closes every connection, after giving each up to a
// second to write what is queued for it (the reply to quit, the SHUTDOWN event). Serve calls
// return.
func (s *Server) Close() error {
	s.closing.Do(func() {
		close(s.quit)
		s.mu.Lock()
		if s.held { // opened never: nothing runs, nothing will
			s.held = false
			s.owner.Unlock()
		}
		s.mu.Unlock()
		s.owner.Lock() // waits for the running command
		s.closed = true
		s.owner.Unlock()
		s.mu.Lock()
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		deadline := time.Now().Add(time.Second)
		for _, c := range conns {
			for !c.drained() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			c.rw.Close()
		}
	})
	return nil
}

func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Emit sends an event to every monitor that has completed capability negotiation:
// {"timestamp": {"seconds": S, "microseconds": U}, "event": NAME, "data": DATA}, "data"
// left out when data is nil. It never blocks on a slow client. Safe from any goroutine.
func (s *Server) Emit(name string, data any) {
	now := s.opt.Now()
	ts := Object()
	ts.ordered = true
	ts.Set("seconds", Int(now.Unix()))
	ts.Set("microseconds", Int(int64(now.Nanosecond()/1000)))
	ev := Object()
	ev.Set("timestamp", ts)
	ev.Set("event", String(name))
	if data != nil {
		d, err := ToValue(data)
		if err != nil {
			s.log.Error().Err(err).Str("event", name).Msg("cannot encode event data")
			return
		}
		ev.Set("data", d)
	}
	msg := response{msg: ev}
	var compact, pretty []byte
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if !c.isNegotiated() {
			continue
		}
		if c.pretty {
			if pretty == nil {
				pretty = msg.frame(true)
			}
			c.queue(pretty)
		} else {
			if compact == nil {
				compact = msg.frame(false)
			}
			c.queue(compact)
		}
	}
}

// Execute runs a command for a monitor that is not a QMP connection (HMP): the same lookup,
// argument validation and handler as QMP, serialised with every other command. args is nil,
// a struct, a map, json.RawMessage or *Value. It returns the compact JSON of the return value.
// Handlers must use Call.Exec instead (Execute from a handler would deadlock).
func (s *Server) Execute(sess *Session, name string, args any) (json.RawMessage, error) {
	var (
		raw json.RawMessage
		err error
	)
	if derr := s.Do(func() { raw, err = s.execInline(sess, nil, name, args) }); derr != nil {
		return nil, derr
	}
	return raw, err
}

// execInline is Call.Exec and Execute's body, under the server's lock.
func (s *Server) execInline(sess *Session, c *conn, name string, args any) (json.RawMessage, error) {
	av, err := ToValue(args)
	if err != nil {
		return nil, err
	}
	if av.Kind() == KindNull {
		av = nil
	} else if av.Kind() != KindObject {
		return nil, GenericError("QMP input member 'arguments' must be an object")
	}
	cmd := s.reg.lookup(name)
	if cmd == nil {
		return nil, CommandNotFound(name)
	}
	out, qerr := s.run(sess, c, cmd, av, nil)
	if qerr != nil {
		return nil, qerr
	}
	w := jsonWriter{}
	if err := w.result(out); err != nil {
		s.log.Error().Err(err).Str("command", name).Msg("cannot encode reply")
		return nil, GenericError("%v", err)
	}
	return w.buf, nil
}

// run checks availability, decodes the arguments and calls the handler; it returns what the
// handler returned, for jsonWriter.result. fds not claimed by the handler are closed.
func (s *Server) run(sess *Session, c *conn, cmd *command, args *Value, fds []int) (out any, qerr *Error) {
	call := &Call{Session: sess, FDs: fds, server: s, conn: c}
	defer func() {
		closeFDs(call.FDs)
		if p := recover(); p != nil {
			s.log.Error().Str("command", cmd.Name).Interface("panic", p).Msg("command handler panicked")
			out, qerr = nil, GenericError("%v", p)
		}
	}()
	if s.opt.MachineReady != nil && !cmd.AllowPreconfig && !s.opt.MachineReady() {
		return nil, GenericError("The command '%s' is permitted only after machine initialization has completed", cmd.Name)
	}
	if cmd.OpenArgs {
		if args == nil {
			args = Object()
		}
		call.Args = args
	} else if cmd.argType != nil {
		a, err := DecodeArgs(args, cmd.Args)
		if err != nil {
			return nil, ToError(err)
		}
		call.Args = a
	} else if args.Len() > 0 {
		return nil, GenericError("Parameter '%s' is unexpected", firstUnvisited(args, nil))
	}
	out, err := cmd.Run(call)
	if err != nil {
		return nil, ToError(err)
	}
	return out, nil
}

// Serve runs one monitor connection with a fresh session, until the peer closes or the
// server is closed. If conn is a *net.UnixConn it receives SCM_RIGHTS descriptors. The
// session's named descriptors are closed when Serve returns.
func (s *Server) Serve(conn io.ReadWriteCloser, pretty bool) {
	sess := s.NewSession()
	defer sess.Close()
	s.ServeSession(sess, conn, pretty)
}

// ServeSession is Serve with a session that outlives the connection, as a QEMU monitor's fd
// table outlives reconnections of its chardev. Negotiation starts afresh on every connection.
func (s *Server) ServeSession(sess *Session, rw io.ReadWriteCloser, pretty bool) {
	c := newConn(s, sess, rw, pretty)
	s.mu.Lock()
	select {
	case <-s.quit:
		s.mu.Unlock()
		rw.Close()
		return
	default:
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.run()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.fdsets.Cleanup()
}

func (s *Server) greeting() *Value {
	v, err := ToValue(s.opt.Version)
	if err != nil {
		panic(fmt.Sprintf("qmp: version: %v", err))
	}
	q := Object()
	q.Set("version", v)
	q.Set("capabilities", Array(String("oob")))
	g := Object()
	g.Set("QMP", q)
	return g
}

package nbd

import (
	"errors"
	"net"
	"sync"

	"github.com/rs/zerolog"
)

// Device is what an export serves: a block node seen through its export (the composition
// root adapts a block node to it). Requests arrive inside [0, Size()).
type Device interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// WriteZeroes makes the range read as zeroes; mayTrim lets it deallocate.
	WriteZeroes(off, length int64, mayTrim bool) error
	Trim(off, length int64) error
	Flush() error
	// Status describes the first extent of [off, off+length) through the backing chain:
	// Length (0 < Length ≤ length), whether it holds data and reads as zeroes, and the
	// layer that decides it (Depth: 1 the node itself, 2 its backing, …; 0 none).
	Status(off, length int64) (Extent, error)
}

// Extent is Device.Status's answer.
type Extent struct {
	Length     int64
	Data, Zero bool
	Depth      int
}

// DirtyBitmap is a bitmap an export offers as the meta context qemu:dirty-bitmap:NAME.
type DirtyBitmap interface {
	Name() string
	// Extents calls fn for the runs of equal state in [off, off+length), in order, until
	// fn returns false.
	Extents(off, length int64, fn func(off, length int64, dirty bool) bool)
}

// ExportConfig describes an export (block-export-add type nbd, nbd-server-add).
type ExportConfig struct {
	ID          string // the block export's id (query-block-exports)
	Node        string // the node's name (query-block-exports' node-name)
	Name        string // the NBD export name clients ask for
	Description string
	Device      Device
	Size        int64 // bytes served: the node's size when the export was made, whole sectors
	Writable    bool
	Bitmaps     []DirtyBitmap
	// AllocationDepth offers the qemu:allocation-depth meta context.
	AllocationDepth bool
	// Deleted is called once, from any goroutine, when the export is gone: removed and
	// no client left (QEMU's blk_exp_delete_bh). The owner releases what the export held
	// and reports BLOCK_EXPORT_DELETED.
	Deleted func()
}

// ExportInfo is one element of query-block-exports.
type ExportInfo struct {
	ID, Node     string
	ShuttingDown bool
}

// export is a live export. Guarded by Server.mu except where noted.
type export struct {
	cfg          ExportConfig
	flags        uint16 // transmission flags before NBD_FLAG_SEND_DF
	userOwned    bool   // false once its removal was asked for (shutting down)
	named        bool   // reachable by name (false once shutting down)
	clients      map[*conn]struct{}
	deletedFired bool
}

// Config configures a Server.
type Config struct {
	Log zerolog.Logger
}

// Server is the NBD server of one VM: the exports (QEMU's block exports of type nbd) and,
// while started, a listener whose clients reach them. Its methods are safe for concurrent
// use. A stopped server has no exports.
//
// Export lifecycle (block/export/export.c): an export is held by its owner (the monitor)
// and by each client that opened it. Removal (Remove, Stop) drops the owner's hold and
// closes the clients; when the last hold goes, Deleted runs. A safe removal refuses an
// export that clients use.
type Server struct {
	log zerolog.Logger

	mu       sync.Mutex
	running  bool
	ln       net.Listener
	maxConns uint32
	conns    map[*conn]struct{}
	exports  []*export // newest first (query-block-exports' order)
	slot     *sync.Cond
	wg       sync.WaitGroup // the accept loop and the connections
}

// NewServer returns a stopped server.
func NewServer(cfg Config) *Server {
	s := &Server{log: cfg.Log, conns: map[*conn]struct{}{}}
	s.slot = sync.NewCond(&s.mu)
	return s
}

// Running reports whether the server is started.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// Start serves clients from l (nbd-server-start); with maxConns > 0 at most that many at
// once: further clients wait in the listen backlog until one leaves.
func (s *Server) Start(l net.Listener, maxConns uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errf(ErrRunning, "NBD server already running")
	}
	s.running, s.ln, s.maxConns = true, l, maxConns
	s.wg.Add(1)
	go s.accept(l)
	return nil
}

// CheckStart returns Start's refusal, if any, before a listener is opened.
func (s *Server) CheckStart() error {
	if s.Running() {
		return errf(ErrRunning, "NBD server already running")
	}
	return nil
}

func (s *Server) accept(l net.Listener) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for s.running && s.ln == l && s.maxConns > 0 && uint32(len(s.conns)) >= s.maxConns {
			s.slot.Wait()
		}
		if !s.running || s.ln != l {
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		nc, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		s.mu.Lock()
		if !s.running || s.ln != l {
			s.mu.Unlock()
			nc.Close()
			return
		}
		c := newConn(s, nc)
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
		}()
	}
}

// Stop is nbd-server-stop: every export is removed (clients closed), the call returns once
// they are all deleted, and the listener is closed.
func (s *Server) Stop() error {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return errf(ErrNotRunning, "NBD server not running")
	}
	var deleted []func()
	for i := len(s.exports) - 1; i >= 0; i-- { // oldest first, as blk_exp_close_all_type
		if e := s.exports[i]; e.userOwned {
			deleted = append(deleted, s.shutdown(e)...)
		}
	}
	s.running = false
	ln := s.ln
	s.ln = nil
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.slot.Broadcast()
	s.mu.Unlock()
	for _, f := range deleted {
		f()
	}
	for _, c := range conns {
		c.close()
	}
	ln.Close()
	s.wg.Wait() // every connection ended: every export deleted
	return nil
}

// Close stops the server if it runs (the VM exits).
func (s *Server) Close() {
	if s.Running() {
		_ = s.Stop()
	}
}

// CheckAdd runs Add's checks of the server and the names (nbd_export_create's first ones,
// which QEMU makes before it narrows the node's permissions and looks up bitmaps).
func (s *Server) CheckAdd(name, description string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkAdd(name, description)
}

func (s *Server) checkAdd(name, description string) error {
	if !s.running {
		return errf(ErrNotRunning, "NBD server not running")
	}
	if len(name) > MaxStringSize {
		return errf(ErrInvalid, "export name '%s' too long", name)
	}
	if len(description) > MaxStringSize {
		return errf(ErrInvalid, "description '%s' too long", description)
	}
	if s.byName(name) != nil {
		return errf(ErrExists, "NBD server already has export named '%s'", name)
	}
	return nil
}

// Add creates an export (nbd_export_create's checks, in its order, after the caller's
// generic ones).
func (s *Server) Add(cfg ExportConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkAdd(cfg.Name, cfg.Description); err != nil {
		return err
	}
	e := &export{cfg: cfg, userOwned: true, named: true, clients: map[*conn]struct{}{}}
	e.cfg.Size &^= 511
	e.flags = FlagHasFlags | FlagSendFlush | FlagSendFUA | FlagSendCache
	if s.maxConns != 1 {
		e.flags |= FlagCanMultiConn
	}
	if cfg.Writable {
		e.flags |= FlagSendTrim | FlagSendWriteZeroes | FlagSendFastZero
	} else {
		e.flags |= FlagReadOnly
	}
	s.exports = append([]*export{e}, s.exports...)
	return nil
}

// HasID reports whether an export has the id (block-export-add's "already in use").
func (s *Server) HasID(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID(id) != nil
}

func (s *Server) byID(id string) *export {
	for _, e := range s.exports {
		if e.cfg.ID == id {
			return e
		}
	}
	return nil
}

func (s *Server) byName(name string) *export {
	for _, e := range s.exports {
		if e.named && e.cfg.Name == name {
			return e
		}
	}
	return nil
}

// HasName reports whether an export answers to the NBD name.
func (s *Server) HasName(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byName(name) != nil
}

// Remove is block-export-del: a safe removal refuses an export clients use; a hard one
// closes them. The export is deleted (Deleted runs) before Remove returns when no client
// holds it, else when the last one has gone.
func (s *Server) Remove(id string, hard bool) error {
	s.mu.Lock()
	e := s.byID(id)
	if e == nil {
		s.mu.Unlock()
		return errf(ErrNotFound, "Export '%s' is not found", id)
	}
	if !e.userOwned {
		s.mu.Unlock()
		return errf(ErrInUse, "Export '%s' is already shutting down", id)
	}
	if !hard && len(e.clients) > 0 {
		s.mu.Unlock()
		return errf(ErrInUse, "export '%s' still in use", id).AppendHint("Use mode='hard' to force client disconnect\n")
	}
	clients := make([]*conn, 0, len(e.clients))
	for c := range e.clients {
		clients = append(clients, c)
	}
	deleted := s.shutdown(e)
	s.mu.Unlock()
	for _, f := range deleted {
		f()
	}
	for _, c := range clients {
		c.close()
	}
	return nil
}

// shutdown drops the owner's hold on e (nbd_export_request_shutdown): no new client finds
// it; it returns the Deleted callbacks to run (outside s.mu) if nothing holds e any more.
// Caller holds s.mu.
func (s *Server) shutdown(e *export) []func() {
	e.userOwned, e.named = false, false
	return s.maybeDelete(e)
}

// maybeDelete removes e once neither its owner nor a client holds it. Caller holds s.mu.
func (s *Server) maybeDelete(e *export) []func() {
	if e.userOwned || len(e.clients) > 0 || e.deletedFired {
		return nil
	}
	e.deletedFired = true
	out := s.exports[:0]
	for _, x := range s.exports {
		if x != e {
			out = append(out, x)
		}
	}
	clear(s.exports[len(out):])
	s.exports = out
	if e.cfg.Deleted != nil {
		return []func(){e.cfg.Deleted}
	}
	return nil
}

// Exports lists the exports, newest first (query-block-exports).
func (s *Server) Exports() []ExportInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ExportInfo, 0, len(s.exports))
	for _, e := range s.exports {
		out = append(out, ExportInfo{ID: e.cfg.ID, Node: e.cfg.Node, ShuttingDown: !e.userOwned})
	}
	return out
}

// Clients returns the number of clients that opened the export with the id.
func (s *Server) Clients(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byID(id); e != nil {
		return len(e.clients)
	}
	return 0
}

// open attaches c to the export called name (NBD_OPT_GO, NBD_OPT_EXPORT_NAME).
func (s *Server) open(c *conn, name string) *export {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byName(name)
	if e == nil {
		return nil
	}
	e.clients[c] = struct{}{}
	return e
}

// lookup returns the export called name without attaching (NBD_OPT_INFO, LIST).
func (s *Server) lookup(name string) *export {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byName(name)
}

// list returns the exports clients can find (NBD_OPT_LIST), oldest first as QEMU lists them.
func (s *Server) list() []ExportConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ExportConfig
	for i := len(s.exports) - 1; i >= 0; i-- {
		if e := s.exports[i]; e.named {
			out = append(out, e.cfg)
		}
	}
	return out
}

// gone removes c from the server and from its export; the export may be deleted.
func (s *Server) gone(c *conn, e *export) {
	s.mu.Lock()
	delete(s.conns, c)
	var deleted []func()
	if e != nil {
		delete(e.clients, c)
		deleted = s.maybeDelete(e)
	}
	s.slot.Broadcast()
	s.mu.Unlock()
	for _, f := range deleted {
		f()
	}
}

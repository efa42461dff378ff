package migration

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	"io"
	"sync"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// inJob is the incoming migration.
type inJob struct {
	e    *Engine
	src  transport.Source
	addr transport.Address // the incoming URI, parsed once (StartIncoming)

	mu  sync.Mutex
	st  Status           // +checklocks:mu
	rp  *rpDest          // +checklocks:mu; the return path, once the source opened it
	pc  *pcDest          // +checklocks:mu; postcopy, once advised
	ch  io.ReadCloser    // +checklocks:mu; the channel being read (migrate-pause aborts it)
	rec transport.Source // +checklocks:mu; migrate-recover's listener

	addrs []transport.SocketAddress // what src listened on (kept after it closed, as QEMU)
	recCh chan recovered            // the connection a recovery accepted
	mf    *mfReceiver               // multifd channels, set before the stream is read
	stop  chan struct{}             // closed by close
	once  sync.Once
}

// recovered is a connection migrate-recover's listener accepted.
type recovered struct {
	r   io.ReadCloser
	err error
}

func (in *inJob) setPC(pc *pcDest) {
	in.mu.Lock()
	in.pc = pc
	in.mu.Unlock()
}

// listening is what the incoming migration listens on (migrate-recover's listener once
// there is one): QEMU's socket_address_list.
func (in *inJob) listening() []transport.SocketAddress {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rec != nil {
		return transport.SocketAddresses(in.rec)
	}
	return in.addrs
}

// pauseLink is migrate-pause on the destination: the channel is shut, the postcopy pauses.
func (in *inJob) pauseLink() {
	in.mu.Lock()
	ch := in.ch
	in.mu.Unlock()
	if ch != nil {
		_ = transport.Abort(ch)
	}
}

// listenRecovery makes src the listener of the recovery (closing an earlier one) and
// accepts the source's connection on it in the background.
func (in *inJob) listenRecovery(src transport.Source) {
	in.mu.Lock()
	old := in.rec
	in.rec = src
	in.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	go func() {
		r, err := src.Accept()
		in.mu.Lock()
		current := in.rec == src
		in.mu.Unlock()
		if !current {
			if r != nil {
				_ = r.Close()
			}
			return
		}
		in.recCh <- recovered{r, err}
	}()
}

// awaitRecovery waits in postcopy-paused for the recovery's connection (a failed accept
// waits for the next migrate-recover).
func (in *inJob) awaitRecovery() (io.ReadCloser, error) {
	for {
		select {
		case c := <-in.recCh:
			if c.err != nil {
				in.e.report("%v", c.err)
				continue
			}
			in.mu.Lock()
			in.ch = c.r
			src := in.rec
			in.rec = nil
			if src != nil {
				in.addrs = transport.SocketAddresses(src)
			}
			in.mu.Unlock()
			if src != nil {
				_ = src.Close()
			}
			return c.r, nil
		case <-in.stop:
			return nil, errorf(ErrLoad, "postcopy recovery abandoned")
		}
	}
}

func (in *inJob) setRP(rp *rpDest) {
	in.mu.Lock()
	in.rp = rp
	in.mu.Unlock()
}

func (in *inJob) replyPath() *rpDest {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rp
}

func (in *inJob) status() Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.st
}

func (in *inJob) set(s Status) {
	in.mu.Lock()
	in.st = s
	in.mu.Unlock()
	in.e.emitStatus(s)
}

func (in *inJob) close() {
	in.once.Do(func() { close(in.stop) })
	if in.src != nil {
		_ = in.src.Close()
	}
	in.mu.Lock()
	rec, pc := in.rec, in.pc
	in.mu.Unlock()
	if rec != nil {
		_ = rec.Close()
	}
	if pc != nil {
		pc.fail()
	}
}

// Ready tells the engine that the machine has started (it is in inmigrate when an
// incoming migration is pending): a stream accepted before is loaded only from now on.
// Idempotent.
func (e *Engine) Ready() { e.readyOnce.Do(func() { close(e.ready) }) }

// SetDefer records -incoming defer: migrate-incoming is then allowed once.
func (e *Engine) SetDefer() {
	e.mu.Lock()
	e.defer_ = true
	e.mu.Unlock()
}

// IncomingOptions is what -incoming, migrate-incoming and migrate-recover take besides
// the URI.
type IncomingOptions struct {
	// LookupFD resolves fd:NAME from the monitor's getfd table; nil: fd:N names an
	// inherited descriptor by number (-incoming).
	LookupFD func(name string) (int, error)
}

// inEnv is what listening for an incoming channel needs (the engine's logger and opener).
func (e *Engine) inEnv(o IncomingOptions) transport.Env {
	return transport.Env{Log: e.log, LookupFD: o.LookupFD, Open: e.open}
}

// Incoming is migrate-incoming: allowed only after -incoming defer, and only once.
func (e *Engine) Incoming(uri string, o IncomingOptions) error {
	e.mu.Lock()
	if !e.defer_ {
		started := e.in != nil
		e.mu.Unlock()
		if started {
			return errorf(ErrState, "The incoming migration has already been started")
		}
		return errorf(ErrState, "'-incoming' was not specified on the command line")
	}
	e.mu.Unlock()
	return e.StartIncoming(uri, o)
}

// StartIncoming listens on uri (the -incoming URI before the monitors serve, or
// migrate-incoming's) and loads the stream in the background once it is available. QEMU
// emits MIGRATION setup here whatever the events capability. A listen error is returned
// and leaves migrate-incoming available.
func (e *Engine) StartIncoming(uri string, o IncomingOptions) error {
	addr, parseErr := transport.Parse(uri)
	if err := checkSeekable(e.Capability(CapMappedRAM), addr, parseErr); err != nil {
		return err
	}
	e.ev.Emit("MIGRATION", MigrationEvent{Status: StatusSetup})
	if parseErr != nil {
		return wrapf(ErrInvalid, parseErr, "%s", parseErr.Error())
	}
	src, err := transport.ListenAddress(addr, e.inEnv(o))
	if err != nil {
		return wrapf(ErrInvalid, err, "%s", err.Error())
	}
	if e.multifdChannels() > 0 {
		transport.Expect(src, e.multifdChannels)
	}
	in := &inJob{e: e, src: src, addr: addr, st: StatusSetup, recCh: make(chan recovered, 1), stop: make(chan struct{}),
		addrs: transport.SocketAddresses(src)}
	e.mu.Lock()
	e.defer_ = false
	e.in = in
	e.mu.Unlock()
	go in.run()
	return nil
}

func (in *inJob) run() {
	e := in.e
	r, err := in.src.Accept()
	<-e.ready
	if err == nil {
		in.mu.Lock()
		in.ch = r
		in.mu.Unlock()
		if n := transport.Channels(in.src); n > 0 {
			in.mf = e.startMultifd(in.src, n)
			defer in.mf.close()
		}
		in.set(StatusActive)
		var srcState string
		srcState, err = e.loadURI(in.addr, r, in)
		if err == nil {
			_ = in.src.Close()
			err = in.finish(srcState)
		}
		in.mu.Lock()
		cur := in.ch // a postcopy recovery's channel, or r
		in.mu.Unlock()
		_ = cur.Close()
		if err == nil {
			return
		}
	}
	_ = in.src.Close()
	in.set(StatusFailed)
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return
	}
	e.report("%s", err.Error())
	e.report("load of migration failed: %s", loadErrno(err))
	if e.exit != nil {
		e.exit(1)
	}
}

// finish ends a loaded incoming migration as QEMU 7.2's process_incoming_migration_bh:
// the images are activated unless late-block-activate holds them back for a guest that
// does not start now (a failed activation keeps the guest paused), the run state is
// taken from the source's, MIGRATION completed, then SHUT 0 on the return path.
func (in *inJob) finish(src string) error {
	e := in.e
	in.mu.Lock()
	pc := in.pc
	in.mu.Unlock()
	if pc == nil || !pc.running { // a postcopy's guest has run since its package
		start := e.m.Autostart() && (src == "" || src == "running")
		run := true
		if !e.Capability(CapLateBlockActivate) || start {
			if err := e.disks.Activate(); err != nil {
				e.report("%v", err)
				run = false
			}
		}
		if err := e.m.IncomingDone(src, run); err != nil {
			return err
		}
		e.disks.EndIncoming()
		e.afterRestore()
	}
	in.set(StatusCompleted)
	if rp := in.replyPath(); rp != nil {
		if err := rp.w.Send(stream.RPMessage{Type: stream.RPShut}); err != nil {
			e.log.Debug().Err(err).Msg("return path: SHUT not sent")
		}
	}
	return nil
}

// loadErrno is the strerror QEMU prints after "load of migration failed: ".
func loadErrno(err error) string {
	if errors.Is(err, stream.ErrTruncated) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "Input/output error"
	}
	return "Invalid argument"
}

// Load reads a whole stream into the machine, which must be in inmigrate (vCPUs parked):
// RAM pages go straight into guest RAM (never-written pages stay untouched), device
// sections are held until the stream's integrity is verified at its end and only then
// applied. It returns the source's run state ("" when the stream carried none).
func (e *Engine) Load(r io.Reader) (string, error) {
	return (&loader{e: e, rd: stream.NewReader(r)}).load()
}

// loader is one incoming stream being loaded.
type loader struct {
	e  *Engine
	rd *stream.Reader
	f  io.ReaderAt // reads a mapped-ram stream's pages (nil: rd cannot be one)
	ch io.Reader   // the channel, on which a return path may be opened (nil: none)
	in *inJob      // the incoming migration (nil: Load)
	pc *pcDest     // postcopy, once advised (postcopy_in.go)
	mf *mfReceiver // multifd channels (multifd_in.go), nil when off
	// pf reads the channel ahead (prefetch.go), nil when rd reads a file or a buffer.
	pf *prefetchReader
	// loaded, when not nil, records per RAM block the pages the stream carried (savevm.go).
	loaded map[string][]uint64
}

// command carries out a QEMU_VM_COMMAND of the stream (loadvm_process_command).
func (ld *loader) command(rec stream.Record) error {
	switch rec.Cmd {
	case stream.CmdOpenReturnPath:
		if ld.replyPath() != nil {
			ld.e.report("CMD_OPEN_RETURN_PATH called when RP already open")
			return nil
		}
		var rp *rpDest
		var err error
		if ld.ch != nil && ld.in != nil {
			rp, err = openReply(ld.ch)
		}
		if rp == nil {
			return wrapf(ErrLoad, err, "CMD_OPEN_RETURN_PATH failed")
		}
		ld.in.setRP(rp)
	case stream.CmdPing:
		rp := ld.replyPath()
		if rp == nil {
			return errorf(ErrLoad, "CMD_PING (0x%x) received with no return path", binary.BigEndian.Uint32(rec.Data))
		}
		if err := rp.w.Send(stream.RPMessage{Type: stream.RPPong, Value: binary.BigEndian.Uint32(rec.Data)}); err != nil {
			return wrapf(ErrLoad, err, "%v", err)
		}
	default:
		return ld.postcopyCommand(rec)
	}
	return nil
}

func (ld *loader) replyPath() *rpDest {
	if ld.in == nil {
		return nil
	}
	return ld.in.replyPath()
}

// load reads the whole stream into the machine.
func (ld *loader) load() (string, error) {
	e, rd, f := ld.e, ld.rd, ld.f
	var order []stream.Block
	blocks := map[string]RAMBlock{}
	for _, b := range e.m.RAMBlocks() {
		blocks[b.Name()] = b
	}
	var devs []loadedDev
	var bmSetup, bmData []stream.DirtyBitmap
	var fill [pageSize]byte
	var pages int64
	ahead := newReadaheads(blocks)
	defer ahead.stop()
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ld.pc != nil && ld.pc.running && linkBroken(err) {
				if err := ld.pausePostcopy(err); err != nil {
					return "", err
				}
				continue
			}
			return "", wrapf(ErrLoad, err, "%s", err.Error())
		}
		switch rec.Kind {
		case stream.Config:
			if mt := e.m.MachineType(); rec.MachineType != mt {
				return "", errorf(ErrLoad, "Machine type received is '%s' and local is '%s'", rec.MachineType, mt)
			}
		case stream.RAMBlocks, stream.SectionEnd:
			if ld.mf != nil && (ld.pc == nil || !ld.pc.running) {
				if err := ld.mf.sync(); err != nil {
					return "", err
				}
			}
			if rec.Kind == stream.SectionEnd {
				continue
			}
			order = rec.Blocks
			for _, sb := range rec.Blocks {
				b, ok := blocks[sb.Name]
				if !ok {
					return "", errorf(ErrLoad, "Unknown ramblock \"%s\", cannot accept migration", sb.Name)
				}
				if b.Size() != sb.Size {
					return "", errorf(ErrLoad, "Length mismatch: %s: 0x%x in != 0x%x", sb.Name, sb.Size, b.Size())
				}
			}
		case stream.Page, stream.ZeroPage:
			b, ok := blocks[rec.Block]
			if !ok {
				return "", errorf(ErrLoad, "Unknown ramblock \"%s\", cannot accept migration", rec.Block)
			}
			if rec.Offset%pageSize != 0 || rec.Offset >= b.Size() {
				return "", errorf(ErrLoad, "Illegal RAM offset 0x%x in block %s", rec.Offset, rec.Block)
			}
			page := rec.Offset / pageSize
			if ld.pc != nil && ld.pc.running {
				ld.pc.place(rec.Block, page, rec.Data, rec.Fill)
				continue
			}
			ld.markLoaded(rec.Block, page)
			if rec.Kind == stream.Page {
				ahead.block(rec.Block).page(page)
				b.WritePage(page, rec.Data)
				pages++
				continue
			}
			if rec.Fill == 0 && !b.Written(page) {
				continue // already zero, and never touched
			}
			for i := range fill {
				fill[i] = rec.Fill
			}
			b.WritePage(page, fill[:])
		case stream.XBZRLEPage, stream.CompressedPage:
			if err := ld.xbzrlePage(blocks, rec); err != nil {
				return "", err
			}
		case stream.Device:
			devs = append(devs, loadedDev{sectionID(rec.IDStr, rec.Instance), rec.Version, append([]byte(nil), rec.State...)})
		case stream.Command:
			if err := ld.command(rec); err != nil {
				return "", err
			}
		case stream.BitmapsSetup:
			bmSetup = rec.Bitmaps
		case stream.BitmapsData:
			bmData = append(bmData, rec.Bitmaps...)
		}
	}
	if ld.pc != nil && ld.pc.running {
		// The guest runs here already: its dirty bitmaps come after the pages, as in
		// QEMU's postcopy.
		if err := e.loadBitmaps(bmSetup, bmData); err != nil {
			return "", err
		}
		return ld.pc.srcState, ld.pc.finish()
	}
	if rd.Mapped() {
		if err := e.restoreMapped(rd, f, order, blocks); err != nil {
			return "", err
		}
	} else if _, ok := f.(*fileSource); ok {
		e.setRestoreInfo(&FileInfo{Mode: "streamed", Populate: populateRead, PagesEager: pages}, nil)
	}
	// Verified: apply the dirty bitmaps, then the device state.
	if err := e.loadBitmaps(bmSetup, bmData); err != nil {
		return "", err
	}
	return e.applyDevices(devs)
}

// xbzrlePage applies an XBZRLE record (QEMU's load_xbzrle) or a compressed one
// (decompress_data) to the page it names.
func (ld *loader) xbzrlePage(blocks map[string]RAMBlock, rec stream.Record) error {
	b, ok := blocks[rec.Block]
	if !ok {
		return errorf(ErrLoad, "Unknown ramblock \"%s\", cannot accept migration", rec.Block)
	}
	if rec.Offset%pageSize != 0 || rec.Offset >= b.Size() || (ld.pc != nil && ld.pc.running) {
		return errorf(ErrLoad, "Illegal RAM offset 0x%x in block %s", rec.Offset, rec.Block)
	}
	page := rec.Offset / pageSize
	ld.markLoaded(rec.Block, page)
	var buf [pageSize]byte
	if rec.Kind == stream.CompressedPage {
		if err := inflatePage(rec.Data, buf[:]); err != nil {
			return err
		}
		b.WritePage(page, buf[:])
		return nil
	}
	if b.Written(page) {
		copy(buf[:], b.Host()[rec.Offset:rec.Offset+pageSize])
	}
	if err := stream.DecodeXBZRLE(rec.Data, buf[:]); err != nil {
		return wrapf(ErrLoad, err, "Failed to load XBZRLE page - decode error!")
	}
	b.WritePage(page, buf[:])
	return nil
}

// loadedDev is one device section read, applied once the stream is verified.
type loadedDev struct {
	id      string
	version uint32
	state   []byte
}

// applyDevices loads the device sections into the machine and returns the source's run
// state from the global state ("" when absent).
func (e *Engine) applyDevices(devs []loadedDev) (string, error) {
	secs := map[string]Section{}
	for _, s := range e.m.Sections() {
		secs[s.SectionID()] = s
	}
	srcState := ""
	for _, d := range devs {
		if d.id == globalStateID {
			var g globalState
			if err := jsonUnmarshal(d.state, &g); err != nil {
				return "", errorf(ErrLoad, "error while loading state for instance 0x0 of device '%s'", d.id)
			}
			srcState = g.RunState
			continue
		}
		s, ok := secs[d.id]
		if !ok {
			name, inst := sectionName(d.id)
			return "", errorf(ErrLoad, "Unknown savevm section or instance '%s' %d. Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices", name, inst)
		}
		if err := s.LoadState(d.state, d.version); err != nil {
			name, inst := sectionName(d.id)
			return "", wrapf(ErrLoad, err, "error while loading state for instance 0x%x of device '%s': %v", inst, name, err)
		}
	}
	return srcState, nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

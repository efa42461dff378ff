package migration

import (
	"errors"
	"io"
	"math/bits"
	"sync"
	"time"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// Postcopy, the destination's side:
//
//	POSTCOPY_ADVISE        postcopy-ram must be on here too (QEMU's check), and every RAM
//	                       block able to wait for its pages (Guarder)
//	POSTCOPY_RAM_DISCARD   the pages the source will still send: the "need" bitmap
//	PACKAGED               LISTEN (postcopy-active), the device state, PING, RUN; verified
//	                       by its integrity section, then applied; each RAM block's chunks
//	                       holding needed pages are guarded (the machine's first-touch
//	                       hook): whatever touches one first — a vCPU, a monitor read —
//	                       asks the source for its missing pages (REQ_PAGES) and waits for
//	                       them; images activated; the guest runs (or stays paused under -S)
//	pages                  a needed page is placed once and wakes its waiters; a page
//	                       already there is dropped
//	END, EOF, integrity    every needed page has come: the chunks are cleaned, completed,
//	                       SHUT 0
//	the channel breaks     postcopy-paused ("Detected IO failure for postcopy. Migration
//	  (or migrate-pause)   paused."); the waiting vCPUs park when the VM stops; migrate-recover
//	                       listens on a new URI; on the source's connection postcopy-recover:
//	                       RECV_BITMAP answered with what this side has, POSTCOPY_RESUME →
//	                       postcopy-active, RESUME_ACK, the pages still waited for asked again
//
// A vCPU waits for a page in slices of retryWait (ErrRetry: the machine retries the access,
// and a vCPU can park between two).

// ErrRetry is what a guarded chunk's check returns while its pages have not arrived (the
// composition root turns it into the machine's retry).
var ErrRetry = errors.New("migration: page not arrived yet")

const retryWait = 20 * time.Millisecond

// pcDest is an incoming migration's postcopy.
type pcDest struct {
	ld       *loader
	listen   bool // LISTEN seen
	running  bool // RUN done: pages go through place
	srcState string
	blocks   map[string]*pcBlock
	order    []*pcBlock
	failed   chan struct{} // closed when the migration fails for good
	failOnce sync.Once
}

// pcBlock is one RAM block's pages still to come.
type pcBlock struct {
	pc   *pcDest
	b    RAMBlock
	name string

	mu     sync.Mutex
	need   []uint64      // +checklocks:mu; pages the source will still send
	asked  []uint64      // +checklocks:mu; pages requested and not arrived
	notify chan struct{} // +checklocks:mu; closed (and replaced) when an asked page arrives
	left   uint64        // +checklocks:mu; pages in need
}

// writtenMarker is a RAMBlock that can record a page as holding data without writing it
// (machine.RAMBlock.MarkWritten): a needed page must read as data, never as zero.
type writtenMarker interface {
	MarkWritten(page uint64)
}

// postcopyCommand carries out the postcopy commands (loadvm_process_command).
func (ld *loader) postcopyCommand(rec stream.Record) error {
	e := ld.e
	switch rec.Cmd {
	case stream.CmdPostcopyAdvise:
		if ld.pc != nil {
			return errorf(ErrLoad, "CMD_POSTCOPY_ADVISE in wrong postcopy state (1)")
		}
		if len(rec.Data) == 16 && !e.Capability(CapPostcopyRAM) {
			return errorf(ErrLoad, "RAM postcopy is disabled but have 16 byte advise")
		}
		if len(rec.Data) == 0 && e.Capability(CapPostcopyRAM) {
			return errorf(ErrLoad, "RAM postcopy is enabled but have 0 byte advise")
		}
		if err := stream.ParseAdvise(rec.Data); err != nil {
			return wrapf(ErrLoad, err, "%s", trimFormat(err))
		}
		pc, err := ld.newPCDest()
		if err != nil {
			return err
		}
		ld.pc = pc
	case stream.CmdPostcopyRAMDiscard:
		if ld.pc == nil || ld.pc.listen {
			return errorf(ErrLoad, "CMD_POSTCOPY_RAM_DISCARD in wrong postcopy state (%d)", ld.pcState())
		}
		name, ranges, err := stream.ParseDiscard(rec.Data)
		if err != nil {
			return wrapf(ErrLoad, err, "%s", trimFormat(err))
		}
		return ld.pc.discard(name, ranges)
	case stream.CmdPackaged:
		if ld.pc == nil || ld.pc.listen {
			return errorf(ErrLoad, "PACKAGED without a postcopy advise")
		}
		return ld.pc.runPackage(rec.Data)
	case stream.CmdRecvBitmap:
		name, err := stream.ParseBlockName(rec.Data)
		if err != nil {
			return wrapf(ErrLoad, err, "%s", trimFormat(err))
		}
		if ld.pc == nil || !ld.pc.running || ld.in.status() != StatusPostcopyRecover {
			return errorf(ErrLoad, "%s: only possible when in postcopy recover state", "loadvm_handle_recv_bitmap")
		}
		return ld.pc.sendBitmap(name)
	case stream.CmdPostcopyResume:
		if ld.pc == nil || !ld.pc.running || ld.in.status() != StatusPostcopyRecover {
			return errorf(ErrLoad, "%s: Illegal resume received", "loadvm_postcopy_handle_resume")
		}
		ld.in.set(StatusPostcopyActive)
		rp := ld.replyPath()
		if rp == nil {
			return errorf(ErrLoad, "postcopy resume without a return path")
		}
		if err := rp.w.Send(stream.RPMessage{Type: stream.RPResumeAck, Value: stream.ResumeAckValue}); err != nil {
			return ld.pausePostcopy(err)
		}
		ld.pc.askAgain()
	default:
		return errorf(ErrLoad, "VM_COMMAND 0x%x not expected here (len 0x%x)", uint16(rec.Cmd), len(rec.Data))
	}
	return nil
}

// pcState is QEMU's PostcopyState number for error texts.
func (ld *loader) pcState() int {
	switch {
	case ld.pc == nil:
		return 0
	case ld.pc.running:
		return 5
	case ld.pc.listen:
		return 4
	}
	return 2
}

// newPCDest prepares for postcopy: every RAM block must be able to wait for pages.
func (ld *loader) newPCDest() (*pcDest, error) {
	if ld.in == nil || ld.in.replyPath() == nil {
		return nil, errorf(ErrLoad, "Postcopy is not supported")
	}
	pc := &pcDest{ld: ld, blocks: map[string]*pcBlock{}, failed: make(chan struct{})}
	for _, b := range ld.e.m.RAMBlocks() {
		if _, ok := b.(Guarder); !ok {
			return nil, errorf(ErrLoad, "Postcopy is not supported")
		}
		pb := &pcBlock{pc: pc, b: b, name: b.Name(), need: make([]uint64, b.BitmapWords()),
			asked: make([]uint64, b.BitmapWords()), notify: make(chan struct{})}
		pc.blocks[pb.name] = pb
		pc.order = append(pc.order, pb)
	}
	ld.in.setPC(pc)
	return pc, nil
}

// discard records pages the source will still send.
func (pc *pcDest) discard(block string, ranges []stream.Range) error {
	pb, ok := pc.blocks[block]
	if !ok {
		return errorf(ErrLoad, "%s: block not found %s", "ram_discard_range", block)
	}
	size := pb.b.Size()
	pb.mu.Lock()
	defer pb.mu.Unlock()
	for _, r := range ranges {
		if r.Start%pageSize != 0 || r.Length%pageSize != 0 || r.Start >= size || r.Length > size-r.Start {
			return errorf(ErrLoad, "%s: Unaligned start address: 0x%x", "ram_block_discard_range", r.Start)
		}
		for p := r.Start / pageSize; p < (r.Start+r.Length)/pageSize; p++ {
			if pb.need[p/64]&(1<<(p%64)) == 0 {
				pb.need[p/64] |= 1 << (p % 64)
				pb.left++
			}
		}
	}
	return nil
}

// runPackage loads the package: its device state is applied only once its integrity is
// verified; then the guest may run while the remaining pages arrive.
func (pc *pcDest) runPackage(pkg []byte) error {
	ld := pc.ld
	e := ld.e
	rd := stream.NewPackageReader(pkg)
	var devs []loadedDev
	run := false
	for {
		rec, err := rd.Next()
		if err != nil {
			return wrapf(ErrLoad, err, "%s", err.Error())
		}
		if rec.Kind == stream.End {
			break
		}
		switch rec.Kind {
		case stream.Device:
			devs = append(devs, loadedDev{sectionID(rec.IDStr, rec.Instance), rec.Version, rec.State})
		case stream.Command:
			switch rec.Cmd {
			case stream.CmdPostcopyListen:
				if pc.listen {
					return errorf(ErrLoad, "CMD_POSTCOPY_LISTEN in wrong postcopy state (4)")
				}
				pc.listen = true
				ld.in.set(StatusPostcopyActive)
			case stream.CmdPing:
				if err := ld.command(rec); err != nil {
					return err
				}
			case stream.CmdPostcopyRun:
				if !pc.listen {
					return errorf(ErrLoad, "CMD_POSTCOPY_RUN in wrong postcopy state (%d)", ld.pcState())
				}
				run = true
			default:
				return errorf(ErrLoad, "VM_COMMAND 0x%x not expected in a package", uint16(rec.Cmd))
			}
		}
	}
	if !run {
		return errorf(ErrLoad, "postcopy package without RUN")
	}
	src, err := e.applyDevices(devs)
	if err != nil {
		return err
	}
	pc.srcState = src
	if err := pc.guard(); err != nil {
		return err
	}
	pc.running = true
	// QEMU's loadvm_postcopy_handle_run_bh: images activated (a failure keeps the guest
	// paused), then the guest runs if autostart says so.
	start := true
	if err := e.disks.Activate(); err != nil {
		e.report("%v", err)
		start = false
	}
	run = start && e.m.Autostart() && (src == "" || src == "running")
	if err := e.m.IncomingDone(src, run); err != nil {
		return wrapf(ErrLoad, err, "%v", err)
	}
	e.disks.EndIncoming()
	return nil
}

// guard marks every needed page as holding data and guards the chunks that hold one:
// their first touch fetches them.
func (pc *pcDest) guard() error {
	for _, pb := range pc.order {
		pb.mu.Lock()
		need := append([]uint64(nil), pb.need...)
		left := pb.left
		pb.mu.Unlock()
		if left == 0 {
			continue
		}
		if m, ok := pb.b.(writtenMarker); ok {
			for i, w := range need {
				for w != 0 {
					bit := bits.TrailingZeros64(w)
					w &^= 1 << bit
					m.MarkWritten(uint64(i*64 + bit))
				}
			}
		}
		if err := pb.b.(Guarder).Guard(need, pb.fetch); err != nil {
			return wrapf(ErrLoad, err, "%v", err)
		}
	}
	return nil
}

// fetch is a guarded chunk's first touch: it asks the source for the chunk's pages that
// have not come yet and waits for them, a slice at a time.
func (pb *pcBlock) fetch(first uint64, mem []byte) error {
	end := first + uint64(len(mem))/pageSize
	pb.mu.Lock()
	var runs []stream.Range
	missing := false
	for p := first; p < end; p++ {
		if pb.need[p/64]&(1<<(p%64)) == 0 {
			continue
		}
		missing = true
		if pb.asked[p/64]&(1<<(p%64)) != 0 {
			continue
		}
		pb.asked[p/64] |= 1 << (p % 64)
		if n := len(runs); n > 0 && runs[n-1].Start+runs[n-1].Length == p*pageSize {
			runs[n-1].Length += pageSize
		} else {
			runs = append(runs, stream.Range{Start: p * pageSize, Length: pageSize})
		}
	}
	notify := pb.notify
	pb.mu.Unlock()
	if !missing {
		return nil
	}
	pb.pc.request(pb.name, runs)
	t := time.NewTimer(retryWait)
	defer t.Stop()
	select {
	case <-notify:
	case <-t.C:
	case <-pb.pc.failed:
		return errorf(ErrLoad, "postcopy failed: page of block %s at 0x%x never came", pb.name, first*pageSize)
	}
	pb.mu.Lock()
	defer pb.mu.Unlock()
	for p := first; p < end; p++ {
		if pb.need[p/64]&(1<<(p%64)) != 0 {
			return ErrRetry
		}
	}
	return nil
}

// request sends REQ_PAGES for runs; without a return path (paused) they are sent again
// after the recovery (askAgain).
func (pc *pcDest) request(block string, runs []stream.Range) {
	rp := pc.ld.in.replyPath()
	if rp == nil || len(runs) == 0 {
		return
	}
	for _, r := range runs {
		if err := rp.w.Send(stream.RPMessage{Type: stream.RPReqPages, Block: block, Start: r.Start, Len: uint32(r.Length)}); err != nil {
			pc.ld.e.log.Debug().Err(err).Msg("postcopy: page request not sent")
			return
		}
	}
}

// askAgain requests every page asked for and not arrived (after a recovery).
func (pc *pcDest) askAgain() {
	for _, pb := range pc.order {
		pb.mu.Lock()
		var runs []stream.Range
		for i, w := range pb.asked {
			for w != 0 {
				bit := bits.TrailingZeros64(w)
				w &^= 1 << bit
				p := uint64(i*64 + bit)
				if n := len(runs); n > 0 && runs[n-1].Start+runs[n-1].Length == p*pageSize {
					runs[n-1].Length += pageSize
				} else {
					runs = append(runs, stream.Range{Start: p * pageSize, Length: pageSize})
				}
			}
		}
		pb.mu.Unlock()
		pc.request(pb.name, runs)
	}
}

// place stores a page that arrived in postcopy: once, if it is needed, waking the
// accesses waiting for it.
func (pc *pcDest) place(block string, p uint64, data []byte, fill byte) {
	pb := pc.blocks[block]
	if pb == nil {
		return
	}
	var buf [pageSize]byte
	if data == nil {
		for i := range buf {
			buf[i] = fill
		}
		data = buf[:]
	}
	pb.mu.Lock()
	defer pb.mu.Unlock()
	bit := uint64(1) << (p % 64)
	if pb.need[p/64]&bit == 0 {
		return // here already (asked and sent twice, or sent again after a recovery)
	}
	pb.b.WritePage(p, data)
	pb.need[p/64] &^= bit
	pb.left--
	if pb.asked[p/64]&bit != 0 {
		pb.asked[p/64] &^= bit
		close(pb.notify)
		pb.notify = make(chan struct{})
	}
}

// sendBitmap answers RECV_BITMAP: the pages of the block this side has.
func (pc *pcDest) sendBitmap(block string) error {
	pb, ok := pc.blocks[block]
	if !ok {
		return errorf(ErrLoad, "%s: invalid block name: %s", "loadvm_handle_recv_bitmap", block)
	}
	pages := pb.b.Size() / pageSize
	pb.mu.Lock()
	have := make([]uint64, len(pb.need))
	for i, w := range pb.need {
		have[i] = ^w
	}
	pb.mu.Unlock()
	if r := pages % 64; r != 0 {
		have[len(have)-1] &= 1<<r - 1
	}
	rp := pc.ld.in.replyPath()
	if rp == nil {
		return errorf(ErrLoad, "postcopy recovery without a return path")
	}
	if err := rp.w.Send(stream.RPMessage{Type: stream.RPRecvBitmap, Block: block, Bitmap: have, Pages: pages}); err != nil {
		return pc.ld.pausePostcopy(err)
	}
	return nil
}

// finish ends a postcopy whose stream has been read and verified: every needed page must
// have come; the chunks are cleaned.
func (pc *pcDest) finish() error {
	for _, pb := range pc.order {
		pb.mu.Lock()
		left := pb.left
		pb.mu.Unlock()
		if left != 0 {
			pc.fail()
			return errorf(ErrLoad, "postcopy ended with %d pages of block %s never sent", left, pb.name)
		}
		if err := pb.b.(Guarder).Populate(nil); err != nil {
			return wrapf(ErrLoad, err, "%v", err)
		}
	}
	return nil
}

// fail ends every wait for a page: the migration failed for good.
func (pc *pcDest) fail() { pc.failOnce.Do(func() { close(pc.failed) }) }

// linkBroken reports whether a read error is the channel's (a postcopy pauses on it) rather
// than a bad stream.
func linkBroken(err error) bool {
	if errors.Is(err, stream.ErrFormat) || errors.Is(err, stream.ErrIntegrity) {
		return false
	}
	return true
}

// pausePostcopy is postcopy-paused after the channel broke: it waits for migrate-recover's
// connection, then continues the stream on it in postcopy-recover.
func (ld *loader) pausePostcopy(cause error) error {
	in, e := ld.in, ld.e
	in.set(StatusPostcopyPaused)
	e.log.Debug().Err(cause).Msg("postcopy link broken")
	e.report("Detected IO failure for postcopy. Migration paused.")
	in.setRP(nil)
	if ld.ch != nil {
		if c, ok := ld.ch.(io.Closer); ok {
			_ = transport.Abort(c)
		}
	}
	ch, err := in.awaitRecovery()
	if err != nil {
		ld.pc.fail()
		return err
	}
	in.set(StatusPostcopyRecover)
	ld.ch = ch
	rp, err := openReply(ch)
	if err != nil {
		ld.pc.fail()
		return wrapf(ErrLoad, err, "%v", err)
	}
	in.setRP(rp)
	if ld.pf != nil {
		ld.pf.stop()
		ld.pf = newPrefetchReader(ch)
		ld.rd.Resume(ld.pf)
		return nil
	}
	ld.rd.Resume(ch)
	return nil
}

// Recover is migrate-recover: a destination paused in postcopy listens on uri for the
// source's new channel (a second call replaces the listener).
func (e *Engine) Recover(uri string, o IncomingOptions) error {
	e.mu.Lock()
	in := e.in
	e.mu.Unlock()
	if in == nil || in.status() != StatusPostcopyPaused {
		return errorf(ErrState, "Migrate recover can only be run when postcopy is paused.")
	}
	e.ev.Emit("MIGRATION", MigrationEvent{Status: StatusSetup})
	src, err := transport.Listen(uri, e.inEnv(o))
	if err != nil {
		return wrapf(ErrInvalid, err, "%s", err.Error())
	}
	in.listenRecovery(src)
	return nil
}

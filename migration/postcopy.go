package migration

import (
	"bytes"
	"errors"
	"io"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// Postcopy, the source's side (postcopy-ram, migrate-start-postcopy):
//
//	precopy passes … migrate-start-postcopy ─> the pass stops where it is
//	  [active ─> postcopy-active] STOP [pre-switchover ─> postcopy-active]   (QEMU 7.2's order)
//	  disks inactivated, last dirty sync (MIGRATION_PASS), POSTCOPY_RAM_DISCARD: every page
//	  the destination must still get; PACKAGED (LISTEN, device state, PING 3, RUN): the
//	  destination runs; downtime ends here
//	  then the pages left, in PART sections: first those the destination asks for on the
//	  return path (REQ_PAGES: a guest that touched a page not there yet), the rest in
//	  order; max-postcopy-bandwidth limits the rate; END, EOF, SHUT awaited: completed
//	link broken (a write, or the return path, fails; migrate-pause) ─> postcopy-paused,
//	  until migrate with resume=true gives a new channel ─> postcopy-recover: RECV_BITMAP
//	  per block (the destination answers with what it has), POSTCOPY_RESUME, RESUME_ACK
//	  ─> postcopy-active, the pages it lacks sent again; no page is lost
//	cancel (migrate_cancel) ─> cancelled; the source stays in postmigrate (its guest runs
//	  on the destination now) and its disks stay inactive

var errPostcopy = errors.New("migration: switch to postcopy")

// pcSource is an outgoing migration's postcopy state.
type pcSource struct {
	allowed   bool        // postcopy-ram when the migration started
	requested atomic.Bool // migrate-start-postcopy
	active    atomic.Bool // switched: page requests go to reqs, a broken link pauses
	reqs      reqQueue
	bitmaps   chan stream.RPMessage // RECV_BITMAP replies during a recovery
	acks      chan struct{}         // RESUME_ACK
	broken    chan struct{}         // the return path failed (cap 1)
	resume    chan io.WriteCloser   // a new channel from migrate resume=true
	pauseReq  atomic.Bool           // migrate-pause
	requests  atomic.Int64          // postcopy-requests
	bytes     atomic.Int64          // postcopy-bytes
}

// reqQueue holds the page requests the return path brought in, in order; none is ever
// dropped (a destination vCPU waits for it).
type reqQueue struct {
	mu    sync.Mutex
	q     []pageReq     // +checklocks:mu
	ready chan struct{} // signalled (cap 1) when a request is queued
}

func (r *reqQueue) push(p pageReq) {
	r.mu.Lock()
	r.q = append(r.q, p)
	r.mu.Unlock()
	r.kick()
}

func (r *reqQueue) kick() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

// take returns and removes every queued request.
func (r *reqQueue) take() []pageReq {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.q
	r.q = nil
	return q
}

func (r *reqQueue) pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.q) > 0
}

// pageReq is one REQ_PAGES: a byte range of a block.
type pageReq struct {
	block      string
	start, len uint64
}

func newPCSource(allowed bool) *pcSource {
	return &pcSource{allowed: allowed, reqs: reqQueue{ready: make(chan struct{}, 1)}, bitmaps: make(chan stream.RPMessage, 64),
		acks: make(chan struct{}, 1), broken: make(chan struct{}, 1), resume: make(chan io.WriteCloser, 1)}
}

// postcopyWanted reports whether the checkpoint thread should switch to postcopy now.
func (j *job) postcopyWanted() bool {
	return j.pc.allowed && j.pc.requested.Load() && !j.pc.active.Load()
}

// StartPostcopy is migrate-start-postcopy, with QEMU 7.2's checks: the capability must be
// on and a migration started; asking after it finished is not an error.
func (e *Engine) StartPostcopy() error {
	e.mu.Lock()
	on := e.capLocked(CapPostcopyRAM)
	j := e.out
	e.mu.Unlock()
	if !on {
		return errorf(ErrState, "Enable postcopy with migrate_set_capability before the start of migration")
	}
	if j == nil {
		return errorf(ErrState, "Postcopy must be started after migration has been started")
	}
	j.pc.requested.Store(true)
	return nil
}

// Pause is migrate-pause: a postcopy in postcopy-active (source or destination) breaks
// its channel on purpose and pauses, to be recovered.
func (e *Engine) Pause() error {
	e.mu.Lock()
	j, in := e.out, e.in
	e.mu.Unlock()
	if j != nil && j.status() == StatusPostcopyActive {
		j.pc.pauseReq.Store(true)
		j.mu.Lock()
		abort := j.abort
		j.mu.Unlock()
		if abort != nil {
			abort()
		}
		return nil
	}
	if in != nil && in.status() == StatusPostcopyActive {
		in.pauseLink()
		return nil
	}
	return errorf(ErrState, "migrate-pause is currently only supported during postcopy-active state")
}

// handleRP takes the return path's postcopy messages to the checkpoint thread.
func (j *job) handleRP(m stream.RPMessage) error {
	switch m.Type {
	case stream.RPReqPages, stream.RPReqPagesID:
		if !j.pc.active.Load() {
			return errorf(ErrSave, "RP: Received %s message outside postcopy", m.Type)
		}
		j.pc.requests.Add(1)
		j.pc.reqs.push(pageReq{m.Block, m.Start, uint64(m.Len)})
	case stream.RPRecvBitmap:
		j.pc.bitmaps <- m
	case stream.RPResumeAck:
		if m.Value != stream.ResumeAckValue {
			return errorf(ErrSave, "%s: illegal resume_ack value %d", "migrate_handle_rp_resume_ack", m.Value)
		}
		select {
		case j.pc.acks <- struct{}{}:
		default:
		}
	default:
		return errorf(ErrSave, "RP: Received invalid message 0x%04x", uint16(m.Type))
	}
	return nil
}

// postcopy switches the stopped-iterating migration to postcopy and runs it to its end.
func (s *saver) postcopy() error {
	j := s.j
	pc := j.pc
	s.beginStage()
	// From here the rate is max-postcopy-bandwidth's, for background pages only (QEMU's
	// postcopy_start sets the limit before the package; requested pages are never held).
	if err := s.idle(); err != nil {
		return s.ioErr(err)
	}
	s.cw.unlimited = true
	// What the interrupted pass left in the buffers goes out while the guest still runs
	// (and before postcopy-active, when migrate-pause would break the link): the
	// downtime's flush carries only the discards and the package.
	if err := s.flush(); err != nil {
		return s.ioErr(err)
	}
	if !j.pause && !j.setStatus(StatusPostcopyActive, StatusActive) {
		return errCancelled
	}
	srcState := s.m.RunState()
	if _, err := s.m.EnterFinishMigrate(); err != nil {
		return wrapf(ErrSave, err, "%s", err.Error())
	}
	downStart := time.Now()
	fail := func(err error) error { // nothing sent yet that the destination could run on
		j.activateDisks()
		if rerr := s.m.ReturnFromFinishMigrate(); rerr != nil {
			j.e.log.Error().Err(rerr).Msg("leaving finish-migrate")
		}
		return err
	}
	if err := j.maybePause(StatusActive, StatusPostcopyActive); err != nil {
		return fail(err)
	}
	if err := j.inactivateDisks(); err != nil {
		return fail(err)
	}
	tSync := time.Now()
	s.syncPass()
	j.precopy.Store(s.transferred())
	tDiscard := time.Now()
	if err := s.sendDiscards(); err != nil {
		return fail(err)
	}
	tPkg := time.Now()
	pkg, err := s.devicePackage(srcState)
	if err != nil {
		return fail(err)
	}
	if s.bm != nil { // the bitmaps as they are at switchover, sent after the pages
		s.bm.data = s.bm.b.SaveComplete()
	}
	pc.active.Store(true)
	if err := s.w.Packaged(pkg); err != nil {
		pc.active.Store(false)
		return fail(s.ioErr(err))
	}
	tFlush := time.Now()
	if err := s.flush(); err != nil {
		pc.active.Store(false)
		return fail(s.ioErr(err))
	}
	// The destination may run from here on: the source's state is its no more.
	if err := s.m.LeaveFinishMigrate(false); err != nil {
		j.e.log.Error().Err(err).Msg("leaving finish-migrate")
	}
	down := since(downStart)
	j.e.log.Debug().Dur("before-sync", tSync.Sub(downStart)).Dur("sync", tDiscard.Sub(tSync)).
		Dur("discards", tPkg.Sub(tDiscard)).Dur("package", tFlush.Sub(tPkg)).Int("package-bytes", len(pkg)).
		Dur("flush", time.Since(tFlush)).Msg("postcopy switchover")
	for {
		err := s.postcopyPages()
		if err == nil {
			return s.done(down)
		}
		// Only migrate_cancel ends a postcopy: an aborted channel (ErrCancelled from the
		// write) is migrate-pause's or a broken return path's doing, and pauses it.
		if j.cancelled() {
			return errCancelled
		}
		if err := s.postcopyPause(err); err != nil {
			return err
		}
	}
}

// sendDiscards tells the destination every page it must still get (its postcopy
// discard bitmap; tlcvm sends the pages not sent yet as well as those dirtied since).
func (s *saver) sendDiscards() error {
	for bi, b := range s.blocks {
		var ranges []stream.Range
		todo := s.todo[bi]
		for p := uint64(0); p < uint64(len(todo))*64; {
			if todo[p/64] == 0 {
				p = (p/64 + 1) * 64
				continue
			}
			if todo[p/64]&(1<<(p%64)) == 0 {
				p++
				continue
			}
			q := p + 1
			for q < uint64(len(todo))*64 && todo[q/64]&(1<<(q%64)) != 0 {
				q++
			}
			ranges = append(ranges, stream.Range{Start: p * pageSize, Length: (q - p) * pageSize})
			p = q
		}
		for _, d := range stream.DiscardCommands(b.Name(), ranges) {
			if err := s.w.Command(stream.CmdPostcopyRAMDiscard, d); err != nil {
				return s.ioErr(err)
			}
		}
	}
	return nil
}

// devicePackage builds what the destination needs to run: LISTEN, the device state,
// PING 3, RUN, and the package's integrity section.
func (s *saver) devicePackage(srcState string) ([]byte, error) {
	devs, _, err := s.saveDevices(srcState)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	pw := stream.NewPackageWriter(&buf)
	if err := pw.Command(stream.CmdPostcopyListen, nil); err != nil {
		return nil, wrapf(ErrSave, err, "%v", err)
	}
	for _, d := range devs {
		if err := pw.Device(d.idstr, d.instance, d.version, d.state); err != nil {
			return nil, wrapf(ErrSave, err, "%v", err)
		}
	}
	for _, err := range []error{pw.Ping(3), pw.Command(stream.CmdPostcopyRun, nil), pw.FinishPackage()} {
		if err != nil {
			return nil, wrapf(ErrSave, err, "%v", err)
		}
	}
	return buf.Bytes(), nil
}

// flush pushes the stream to the channel (its own buffer and the transport's).
func (s *saver) flush() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	return transport.Flush(s.out)
}

// postcopyPages sends the pages left, the requested ones first, then ends the stream and
// waits for the destination's SHUT. An error is a broken link (or a cancel).
func (s *saver) postcopyPages() error {
	j, pc := s.j, s.j.pc
	inPart, n := false, 0
	cursor := 0 // block being walked; words before cursorWord are done
	cursorWord := 0
	begin := func() error {
		if inPart {
			return nil
		}
		inPart = true
		return s.w.RAMIterBegin()
	}
	end := func() error {
		if !inPart {
			return nil
		}
		inPart = false
		return s.w.RAMIterEnd()
	}
	for {
		if j.cancelled() {
			return errCancelled
		}
		select {
		case <-pc.broken:
			return errorf(ErrSave, "return path broken")
		default:
		}
		urgent := false
		for _, r := range pc.reqs.take() {
			sent, err := s.sendRequested(r, begin)
			if err != nil {
				return err
			}
			urgent = urgent || sent
		}
		if urgent {
			if err := end(); err != nil {
				return s.ioErr(err)
			}
			if err := s.flush(); err != nil {
				return s.ioErr(err)
			}
			continue
		}
		// One background page, within max-postcopy-bandwidth (a request wakes the wait).
		if err := s.postcopyThrottle(); err != nil {
			return err
		}
		if pc.reqs.pending() {
			continue
		}
		bi, p, ok := s.nextTodo(&cursor, &cursorWord)
		if !ok {
			break
		}
		if err := begin(); err != nil {
			return s.ioErr(err)
		}
		if err := s.sendPostcopyPage(bi, p); err != nil {
			return err
		}
		if n++; inPart && n%partPages == 0 {
			if err := end(); err != nil {
				return s.ioErr(err)
			}
		}
	}
	if err := end(); err != nil {
		return s.ioErr(err)
	}
	// QEMU's qemu_savevm_state_complete_postcopy: the (empty) END, the dirty bitmaps'
	// END, then EOF.
	if err := s.w.RAMComplete(); err != nil {
		return s.ioErr(err)
	}
	if err := s.w.RAMIterEnd(); err != nil {
		return s.ioErr(err)
	}
	if s.bm != nil {
		if err := s.w.BitmapsComplete(s.bm.data); err != nil {
			return s.ioErr(err)
		}
	}
	if err := s.w.Finish(nil); err != nil {
		return s.ioErr(err)
	}
	if err := s.flush(); err != nil {
		return s.ioErr(err)
	}
	s.j.transferred.Store(s.transferred())
	if err := j.awaitShut(); err != nil {
		if errors.Is(err, errNoShut) {
			return errorf(ErrSave, "return path closed before SHUT")
		}
		return err
	}
	return s.closeOut()
}

// postcopyThrottle holds the background pages to max-postcopy-bandwidth in windows of
// rateWindow: when the window's budget is spent it waits for the next window, or for a
// page request, which is served at once.
func (s *saver) postcopyThrottle() error {
	pt := &s.pcRate
	for {
		bw := s.j.e.postcopyBandwidth()
		if bw == 0 || bw >= 1<<50 {
			return nil
		}
		now := time.Now()
		if now.Sub(pt.start) >= rateWindow {
			pt.start, pt.bytes = now, s.sent()
		}
		if s.sent()-pt.bytes < bw/uint64(time.Second/rateWindow) {
			return nil
		}
		if err := s.flush(); err != nil { // what the window allowed goes out now
			return s.ioErr(err)
		}
		t := time.NewTimer(rateWindow - now.Sub(pt.start))
		woken, err := s.waitWindow(t)
		t.Stop()
		if err != nil || woken {
			return err
		}
	}
}

// waitWindow waits for t, a page request (woken), a broken return path or a cancel.
func (s *saver) waitWindow(t *time.Timer) (woken bool, err error) {
	pc := s.j.pc
	for {
		select {
		case <-t.C:
			return false, nil
		case <-pc.reqs.ready:
			if pc.reqs.pending() {
				pc.reqs.kick() // the caller's loop serves it first
				return true, nil
			}
		case <-pc.broken:
			return false, errorf(ErrSave, "return path broken")
		case <-s.j.cancelCh:
			return false, errCancelled
		}
	}
}

// nextTodo returns the next page of todo from the cursor on (block, page), clearing it.
func (s *saver) nextTodo(cursor, word *int) (int, uint64, bool) {
	for *cursor < len(s.todo) {
		todo := s.todo[*cursor]
		for *word < len(todo) {
			w := todo[*word]
			if w != 0 {
				bit := bits.TrailingZeros64(w)
				todo[*word] &^= 1 << bit
				return *cursor, uint64(*word*64 + bit), true
			}
			*word++
		}
		*cursor, *word = *cursor+1, 0
	}
	return 0, 0, false
}

// sendRequested sends the pages of a request that are still to be sent (the others are
// on their way already); sent reports whether it wrote any.
func (s *saver) sendRequested(r pageReq, begin func() error) (bool, error) {
	bi := -1
	for i, b := range s.blocks {
		if b.Name() == r.block {
			bi = i
		}
	}
	if bi < 0 {
		s.j.e.report("%s: MIG_RP_MSG_REQ_PAGES has no block '%s'", "ram_save_queue_pages", r.block)
		return false, nil
	}
	todo := s.todo[bi]
	first, last := r.start/pageSize, (r.start+r.len+pageSize-1)/pageSize
	sent := false
	for p := first; p < last && p/64 < uint64(len(todo)); p++ {
		if todo[p/64]&(1<<(p%64)) == 0 {
			continue
		}
		todo[p/64] &^= 1 << (p % 64)
		if err := begin(); err != nil {
			return sent, s.ioErr(err)
		}
		if err := s.sendPostcopyPage(bi, p); err != nil {
			return sent, err
		}
		sent = true
	}
	return sent, nil
}

// sendPostcopyPage writes one page in postcopy and counts it.
func (s *saver) sendPostcopyPage(bi int, p uint64) error {
	before := s.sent()
	if err := s.sendPage(bi, p); err != nil {
		return err
	}
	s.j.pc.bytes.Add(int64(s.sent() - before))
	s.j.remaining.Add(-pageSize)
	s.j.transferred.Store(s.transferred())
	return nil
}

// postcopyPause waits in postcopy-paused after a broken link for migrate resume=true
// (or a cancel), then recovers on the new channel: nil once postcopy-active again.
func (s *saver) postcopyPause(cause error) error {
	j, pc := s.j, s.j.pc
	for {
		if j.status() != StatusPostcopyPaused && !j.setStatus(StatusPostcopyPaused, StatusPostcopyActive, StatusPostcopyRecover) {
			return errCancelled
		}
		if !pc.pauseReq.Swap(false) {
			j.e.log.Debug().Err(cause).Msg("postcopy link broken")
		}
		j.e.report("Detected IO failure for postcopy. Migration paused.")
		if s.out != nil {
			_ = transport.Abort(s.out)
			s.out = nil
		}
		var out io.WriteCloser
		select {
		case out = <-pc.resume:
		case <-j.cancelCh:
			return errCancelled
		}
		err := s.recover(out)
		if err == nil {
			return nil
		}
		if j.cancelled() {
			return errCancelled
		}
		cause = err
	}
}

// recover is the source's part of a postcopy recovery on a new channel (QEMU's
// postcopy_do_resume): the return path opened again, the destination's received bitmap
// of every block turned into the pages to send again, POSTCOPY_RESUME, RESUME_ACK.
func (s *saver) recover(out io.WriteCloser) error {
	j, pc := s.j, s.j.pc
	s.out = out
	j.mu.Lock()
	j.out = out
	j.abort = func() { _ = transport.Abort(out) }
	j.mu.Unlock()
	if err := transport.Connected(out); err != nil {
		j.e.report("%s", errText(err))
		return err
	}
	if !j.setStatus(StatusPostcopyRecover, StatusPostcopyPaused) {
		return errCancelled
	}
	for len(pc.broken) > 0 {
		<-pc.broken
	}
	if err := j.openReturnPath(out); err != nil {
		return err
	}
	if s.hw != nil {
		// The broken channel's write returned (its error is the break's); the new
		// channel is written from this thread.
		s.hw.close()
		s.hw = nil
	}
	s.cw.w = out
	s.bw.Reset(s.cw)
	s.w.Resume(s.bw)
	for _, b := range s.blocks {
		if err := s.w.Command(stream.CmdRecvBitmap, stream.BlockNameData(b.Name())); err != nil {
			return s.ioErr(err)
		}
	}
	if err := s.flush(); err != nil {
		return s.ioErr(err)
	}
	for range s.blocks {
		select {
		case m := <-pc.bitmaps:
			if err := s.reloadBitmap(m); err != nil {
				return err
			}
		case <-pc.broken:
			return errorf(ErrSave, "return path broken during recovery")
		case <-j.cancelCh:
			return errCancelled
		}
	}
	if err := s.w.Command(stream.CmdPostcopyResume, nil); err != nil {
		return s.ioErr(err)
	}
	if err := s.flush(); err != nil {
		return s.ioErr(err)
	}
	select {
	case <-pc.acks:
	case <-pc.broken:
		return errorf(ErrSave, "return path broken during recovery")
	case <-j.cancelCh:
		return errCancelled
	}
	if !j.setStatus(StatusPostcopyActive, StatusPostcopyRecover) {
		return errCancelled
	}
	return nil
}

// reloadBitmap makes the pages a block's destination has not received the block's todo
// (QEMU's ram_dirty_bitmap_reload): every page the source has that the destination lacks
// is sent again.
func (s *saver) reloadBitmap(m stream.RPMessage) error {
	for bi, b := range s.blocks {
		if b.Name() != m.Block {
			continue
		}
		written := make([]uint64, b.BitmapWords())
		b.WrittenBitmap(written)
		var left int64
		for i := range s.todo[bi] {
			w := written[i] &^ m.Bitmap[i]
			s.todo[bi][i] = w
			left += int64(bits.OnesCount64(w))
		}
		s.j.remaining.Store(left * pageSize)
		return nil
	}
	return errorf(ErrSave, "%s: invalid block name '%s'", "migrate_handle_rp_recv_bitmap", m.Block)
}

// resumePostcopy is migrate with resume=true: the new channel goes to the paused
// checkpoint thread, which recovers on it.
func (j *job) resumePostcopy(out io.WriteCloser) {
	select {
	case j.pc.resume <- out:
	default: // one is pending already: this one is dropped
		_ = transport.Abort(out)
	}
}

// resume is migrate with resume=true (QEMU 7.2's migrate_prepare checks).
func (e *Engine) resume(j *job, addr transport.Address, parseErr error, o MigrateOptions) error {
	if j == nil || j.status() != StatusPostcopyPaused {
		return errorf(ErrState, "Cannot resume if there is no paused migration")
	}
	if e.Capability("release-ram") {
		return errorf(ErrState, "Postcopy recovery cannot work when release-ram capability is set")
	}
	if parseErr != nil {
		return parseErr
	}
	out, err := transport.OpenAddress(addr, e.outEnv(o))
	if err != nil {
		return err
	}
	j.resumePostcopy(out)
	return nil
}

package migration

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

const pageSize = 4096

// Convergence of stage 2 (see doc.go): at most maxIterations passes; stop when the dirty
// set has not shrunk below 95 % of its smallest size for stallPasses passes in a row; stop
// before the stream would exceed streamBudget times the RAM the guest ever wrote.
const (
	maxIterations = 30
	stallPasses   = 3
	streamBudget  = 2
	partPages     = 4096 // pages per RAM PART section (16 MiB)
)

var errCancelled = errorf(ErrCancelled, "migration cancelled")

// saver is the checkpoint thread's state. Only the thread touches it.
type saver struct {
	j      *job
	m      Machine
	blocks []RAMBlock
	todo   [][]uint64 // per block: pages to send
	out    io.WriteCloser
	cw     *countWriter
	bw     *bufio.Writer
	hw     *handoffWriter // between w and bw on a stream without multifd, else nil
	w      *stream.Writer
	tid    int
	mf     *mfSender // multifd channels (multifd.go), nil when off
	ac     autoConverge
	cv     convergeThrottle

	written uint64 // bytes of RAM the guest ever wrote (at setup)
	pcRate  struct {
		start time.Time
		bytes uint64
	} // postcopy's background rate window (postcopyThrottle)
	stageStart time.Time
	stageBytes uint64
	pass       int64
	bm         *bitmapSave // dirty-bitmaps capability (bitmaps.go); nil: none
}

// run is the checkpoint thread: a goroutine locked to its OS thread (never unlocked, so
// the pinned thread exits with it).
func (j *job) run() {
	defer close(j.done)
	runtime.LockOSThread()
	restore := j.pin()
	defer restore()
	s := &saver{j: j, m: j.e.m, blocks: j.e.m.RAMBlocks(), tid: unix.Gettid()}
	err := s.save()
	s.stopThrottle()
	if s.bm != nil {
		// The destination owns the bitmaps once a migration that leaves this VM in
		// postmigrate completed; a checkpoint (x-tlc) keeps them here.
		s.bm.b.SaveCleanup(err == nil && !j.tlc)
	}
	if s.w != nil {
		s.w.Close()
	}
	if s.mf != nil {
		s.mf.close(err != nil)
	}
	for _, b := range s.blocks {
		b.StopDirtyLog()
	}
	if err != nil && j.file != nil {
		j.file.abort()
	}
	if s.out != nil {
		if err != nil {
			_ = transport.Abort(s.out)
		}
	}
	if s.hw != nil {
		s.hw.close() // after the abort: a write in flight returns
	}
	switch {
	case err == nil:
	case j.cancelled():
		j.setStatus(StatusCancelled, StatusCancelling, StatusSetup, StatusActive)
	case errors.Is(err, ErrCancelled):
		// An aborted channel without a cancel: it cannot stay in a running state (a
		// postcopy state would be left for ever, with no thread behind it).
		if !j.setStatus(StatusCancelled, StatusSetup, StatusActive) {
			j.fail(err, true)
		}
	default:
		j.fail(err, true)
	}
	j.e.log.Debug().Err(err).Str("uri", j.addr.URI).Msg("checkpoint thread done")
}

func (s *saver) beginStage() {
	s.stageStart = time.Now()
	s.stageBytes = s.sent()
}

func (s *saver) endStage(name string, iterations int64) {
	s.j.addStage(Stage{Name: name, ElapsedMS: since(s.stageStart), Bytes: int64(s.sent() - s.stageBytes),
		Iterations: iterations, ThreadID: s.tid, CPU: currentCPU()})
}

// syncPass takes the dirty log into todo (ORing) and emits MIGRATION_PASS.
func (s *saver) syncPass() (pages uint64) {
	for i, b := range s.blocks {
		pages += b.SyncDirtyLog(s.todo[i])
	}
	s.pass++
	s.j.dirtySync.Store(s.pass)
	if s.j.xb != nil {
		s.j.xb.updateRates()
	}
	if s.j.e.Capability(CapEvents) {
		s.j.e.ev.Emit("MIGRATION_PASS", PassEvent{Pass: s.pass})
	}
	return pages
}

func countBits(words [][]uint64) (n uint64) {
	for _, ws := range words {
		for _, w := range ws {
			n += uint64(bits.OnesCount64(w))
		}
	}
	return n
}

func (s *saver) save() error {
	j := s.j
	// Setup: open the destination, start dirty logging; the guest keeps running.
	s.stageStart = time.Now()
	s.out = j.out
	if err := transport.Connected(j.out); err != nil {
		return s.ioErr(err)
	}
	if j.multifd {
		mf, err := j.openMultifd(j.channels, j.e.uuid)
		if errors.Is(err, errMultifdProtocol) {
			fmt.Fprintln(j.e.stderr, err.Error()) // QEMU 7.2 prints it without its name
			return wrapf(errNoDesc, err, "%v", err)
		}
		if err != nil {
			return s.ioErr(err)
		}
		s.mf = mf
		j.mu.Lock()
		abort := j.abort
		j.abort = func() {
			abort()
			for _, c := range mf.chans {
				_ = transport.Abort(c.out)
			}
		}
		j.mu.Unlock()
	}
	if j.useRP {
		if err := j.openReturnPath(j.out); err != nil {
			j.e.report("Unable to open return-path for postcopy")
			return wrapf(errNoDesc, err, "%v", err)
		}
	}
	incremental := false
	if t := j.file; t != nil {
		if err := t.prepare(j.e, j.tlc, s.m); err != nil {
			return err
		}
		s.out, incremental = t.f, t.info.Incremental
		j.setFileInfo(t.info)
		s.w = stream.NewMappedWriterFrom(&limitedAt{f: t.writerAt(), cw: countWriter{j: j}}, t.offset, s.m.MachineType(), t.prev)
		if !incremental { // the journal appends: one writer
			s.w.SetWriters(j.channels)
		}
	} else {
		j.e.clearBaseline()
		if j.streamed {
			j.setFileInfo(FileInfo{Mode: "streamed"})
			sweepAsides(j.addr.Path)
		}
		s.cw = &countWriter{w: j.out, j: j}
		if j.xbSize > 0 {
			j.xb = newXBCache(j.xbSize, s.blocks)
		}
		if j.compressLevel >= 0 {
			j.comp = newCompressor(j.compressLevel)
		}
		if s.mf != nil {
			s.mf.rate = s.cw.charge
		}
		// Small: the stream writer's 1 MiB buffers pass through it uncopied (bufio writes a
		// chunk larger than its free space straight out when it holds nothing).
		s.bw = bufio.NewWriterSize(s.cw, 64<<10)
		var out io.Writer = s.bw
		if s.mf == nil {
			// Encode the next buffer while the last is sent (multifd's channels charge
			// the rate limit from this thread: they keep the writes on it).
			s.hw = newHandoffWriter(s.bw)
			out = s.hw
		}
		s.w = stream.NewWriter(out, s.m.MachineType())
	}
	if err := s.w.Begin(); err != nil {
		return s.ioErr(err)
	}
	if j.useRP {
		if err := s.w.Command(stream.CmdOpenReturnPath, nil); err != nil {
			return s.ioErr(err)
		}
		if err := s.w.Ping(1); err != nil {
			return s.ioErr(err)
		}
	}
	if j.pc.allowed {
		// Tell the destination we might switch to postcopy (it fails now if it cannot).
		if err := s.w.Command(stream.CmdPostcopyAdvise, stream.AdviseData()); err != nil {
			return s.ioErr(err)
		}
	}
	if s.bw != nil && (j.useRP || s.mf != nil) {
		// The header goes out now: the destination opens its return path and tells the
		// main channel from the multifd ones by it.
		if err := s.flush(); err != nil {
			return s.ioErr(err)
		}
	}
	var descs []stream.Block
	s.todo = make([][]uint64, len(s.blocks))
	for i, b := range s.blocks {
		s.todo[i] = make([]uint64, b.BitmapWords())
		if incremental {
			// The pages written since the previous checkpoint of the file are in the
			// dirty log: take them, and only them.
			b.ResumeDirtyLog()
		} else {
			b.StartDirtyLog()
			s.written += b.WrittenBitmap(s.todo[i]) * pageSize
		}
		descs = append(descs, stream.Block{Name: b.Name(), Size: b.Size()})
	}
	if s.mf != nil {
		if err := s.mf.sync(); err != nil { // the RAM setup's EOS is a sync point too
			return s.ioErr(err)
		}
	}
	if err := s.w.RAMSetup(descs); err != nil {
		return s.ioErr(err)
	}
	var err error
	if s.bm, err = s.setupBitmaps(); err != nil {
		return err
	}
	if s.mf != nil {
		if err := s.flush(); err != nil {
			return s.ioErr(err)
		}
	}
	if n := s.syncPass(); incremental { // pass 1: the written bitmap is the first pass's dirty set
		s.written = n * pageSize
	}
	s.j.remaining.Store(int64(countBits(s.todo)) * pageSize)
	j.mu.Lock()
	j.setupMS = since(j.start)
	j.mu.Unlock()
	s.endStage("setup", 0)
	if !j.setStatus(StatusActive, StatusSetup) {
		return errCancelled
	}

	// Stage 1: all RAM the guest ever wrote.
	s.beginStage()
	t1 := time.Now()
	if err := s.sendTodo(false); errors.Is(err, errPostcopy) {
		s.endStage("stage 1", 0) // no stage 2: the pass itself was cut short
		return s.postcopy()
	} else if err != nil {
		return err
	}
	var fit fitEstimate
	fit.observe(s.passed()-s.stageBytes, time.Since(t1))
	s.endStage("stage 1", 0)

	// Stage 2: iterate the dirty log until the rest fits the downtime budget. A guest
	// that does not run dirties nothing: straight to stage 3, as QEMU goes (one pass).
	s.beginStage()
	var iters int64
	minDirty, stalled := uint64(1<<63), 0
	s.newAutoConverge()
	if j.xb != nil {
		j.xb.enabled = true // after the first complete pass, as QEMU's xbzrle_enabled
	}
	for s.m.RunState() == "running" {
		if j.cancelled() {
			return errCancelled
		}
		dirty := s.syncPass() * pageSize
		s.noteSync(dirty / pageSize)
		s.j.remaining.Store(int64(dirty))
		bw, downMS := j.e.limits()
		fit.limit = float64(bw)
		if fit.fits(dirty, downMS) {
			break
		}
		if dirty < minDirty*95/100 {
			minDirty, stalled = dirty, 0
		} else {
			stalled++
		}
		if j.postcopyWanted() {
			s.endStage("stage 2", iters)
			return s.postcopy()
		}
		sent := s.sent()
		if s.ac.t != nil {
			// Auto-converge: iterate while the throttle can still rise (QEMU iterates
			// until the set fits); then the usual stall rule ends it.
			if s.throttleMaxed() && stalled >= stallPasses {
				break
			}
		} else if !j.pc.allowed && (iters >= maxIterations || stalled >= stallPasses || sent+2*dirty > streamBudget*max(s.written, pageSize)) {
			// With postcopy-ram a precopy that does not converge goes on, as QEMU's does,
			// until migrate-start-postcopy (libvirt's --postcopy-after-precopy asks at
			// the second pass): stopping here would race it into a long stage 3.
			// Otherwise the guest dirties faster than the channel drains: it is throttled
			// a step more each pass (throttle.go's convergence throttle) while that can
			// still help, then stage 3 takes what is left.
			if iters >= maxIterations || !s.convergeStep(dirty, fit.budget(downMS)) {
				break
			}
		}
		iters++
		t := time.Now()
		before := s.passed()
		if err := s.sendTodo(false); errors.Is(err, errPostcopy) {
			s.endStage("stage 2", iters)
			return s.postcopy()
		} else if err != nil {
			return err
		}
		el := time.Since(t)
		fit.observe(s.passed()-before, el)
		if el > 0 {
			s.j.dirtyRate.Store(int64(float64(dirty/pageSize) / el.Seconds()))
		}
	}
	s.endStage("stage 2", iters)
	j.precopy.Store(s.transferred())
	if j.tlc {
		// The final dirty set is at most what is dirty now plus what the guest writes
		// until the stop; a quarter more covers the pages dirtied meanwhile.
		dirty := countBits(s.todo)
		s.prepareArena(dirty + dirty/4 + 64)
	}
	return s.complete()
}

// complete is stage 3: the vCPUs stop; the last dirty pages and the device state are
// taken; QEMU mode writes them and stays in postmigrate, x-tlc copies them, resumes the
// guest at once and writes them afterwards.
func (s *saver) complete() error {
	j := s.j
	s.beginStage()
	srcState := s.m.RunState()
	if _, err := s.m.EnterFinishMigrate(); err != nil {
		return wrapf(ErrSave, err, "%s", err.Error())
	}
	downStart := time.Now()
	// fail puts the source back as it was: its disks active again, the guest resumed
	// (QEMU's fail_invalidate and migration_iteration_finish).
	fail := func(err error) error {
		j.activateDisks()
		if rerr := s.m.ReturnFromFinishMigrate(); rerr != nil {
			j.e.log.Error().Err(rerr).Msg("leaving finish-migrate")
		}
		return err
	}
	if err := j.maybePause(StatusActive, StatusDevice); err != nil {
		return fail(err)
	}
	s.syncPass()
	devs, descs, err := s.saveDevices(srcState)
	if err != nil {
		return fail(err)
	}
	if s.bm != nil {
		s.bm.data = s.bm.b.SaveComplete()
	}
	if j.tlc {
		// The checkpoint keeps the VM: back to the state it had (running, paused, prelaunch).
		buf, guarded, err := s.takeFinal()
		if err := s.m.ReturnFromFinishMigrate(); err != nil {
			j.e.log.Error().Err(err).Msg("leaving finish-migrate")
		}
		if err != nil {
			return err
		}
		down := since(downStart)
		if err := s.drainGuards(guarded); err != nil {
			return err
		}
		if err := s.writeFinal(buf, devs, descs); err != nil {
			return err
		}
		if err := s.commitFile(); err != nil {
			return err
		}
		return s.finish(down)
	}
	if s.cw != nil {
		if err := s.idle(); err != nil {
			return fail(s.ioErr(err))
		}
		s.cw.unlimited = true // the rest goes as fast as the channel takes it, as QEMU's
	}
	if j.xb != nil {
		j.xb.last = true
	}
	if err := j.inactivateDisks(); err != nil {
		return fail(err)
	}
	if err := s.writeFinal(nil, devs, descs); err != nil {
		return fail(err)
	}
	if err := s.commitFile(); err != nil {
		return fail(err)
	}
	if err := s.shutAndClose(); err != nil {
		return fail(err)
	}
	down := since(downStart)
	if j.cancelled() {
		return fail(errCancelled)
	}
	if err := s.m.LeaveFinishMigrate(false); err != nil {
		j.e.log.Error().Err(err).Msg("leaving finish-migrate")
	}
	return s.done(down)
}

// shutAndClose ends the channel: with a return path the stream is flushed, the
// destination's SHUT awaited (it has loaded everything), then the channel closed.
func (s *saver) shutAndClose() error {
	if s.j.rp != nil {
		if err := transport.Flush(s.out); err != nil {
			return s.ioErr(err)
		}
		if err := s.j.awaitShut(); err != nil {
			return err
		}
	}
	return s.closeOut()
}

// commitFile makes a mapped-ram checkpoint the file's content (journal applied, aside file
// renamed); an x-tlc one becomes the baseline of the next, incremental, checkpoint.
func (s *saver) commitFile() error {
	j := s.j
	if j.cancelled() {
		return errCancelled
	}
	t := j.file
	if t == nil {
		if j.streamed {
			j.setFileInfo(FileInfo{Mode: "streamed", WrittenBytes: int64(s.w.Bytes())})
		}
		return nil
	}
	bl, err := t.commit(s.w)
	if err != nil {
		return err
	}
	j.setFileInfo(t.info)
	if j.tlc {
		j.e.mu.Lock()
		j.e.baseline = bl
		j.e.mu.Unlock()
	}
	return nil
}

// finish closes the destination (x-tlc path) and completes.
func (s *saver) finish(down int64) error {
	if err := s.shutAndClose(); err != nil {
		return err
	}
	return s.done(down)
}

func (s *saver) done(down int64) error {
	j := s.j
	if j.pc.active.Load() {
		s.endStage("postcopy", 0) // the stop, the package and the pages sent while the destination ran
	} else {
		s.endStage("stage 3", 0)
	}
	if !j.pc.active.Load() { // QEMU counts a postcopy's device package in neither
		j.downtimeBytes.Store(s.transferred() - j.precopy.Load())
	}
	j.transferred.Store(s.transferred())
	j.remaining.Store(0)
	j.mu.Lock()
	j.downMS = down
	if el := since(j.start) - j.setupMS; el > 0 {
		j.mbps = float64(s.sent()) * 8 / float64(el) / 1000
	}
	j.mu.Unlock()
	if !j.setStatus(StatusCompleted, StatusActive, StatusDevice, StatusPostcopyActive) {
		return errCancelled
	}
	return nil
}

func (s *saver) closeOut() error {
	out := s.out
	s.out = nil
	if err := out.Close(); err != nil {
		return wrapf(ErrSave, err, "%s", err.Error())
	}
	return nil
}

// ioErr turns a write error into the job's error (cancellation stays cancellation).
func (s *saver) ioErr(err error) error {
	if errors.Is(err, ErrCancelled) || errors.Is(err, transport.ErrAborted) || s.j.cancelled() {
		return errCancelled
	}
	if isEngineError(err) {
		return err
	}
	return wrapf(ErrSave, err, "%s", err.Error())
}

func isZero(p []byte) bool {
	for i := 0; i+8 <= len(p); i += 8 {
		if binary.LittleEndian.Uint64(p[i:]) != 0 {
			return false
		}
	}
	return true
}

// sendTodo writes every page of todo in PART sections and clears todo. When a switch to
// postcopy is asked for meanwhile it stops with errPostcopy, the pages not sent yet still
// in todo.
func (s *saver) sendTodo(final bool) error {
	inPart, n := false, 0
	for bi := range s.blocks {
		todo := s.todo[bi]
		for wi, w := range todo {
			if w == 0 {
				continue
			}
			todo[wi] = 0
			for w != 0 {
				bit := bits.TrailingZeros64(w)
				if s.j.cancelled() {
					return errCancelled
				}
				if !final && n%64 == 0 && s.j.postcopyWanted() {
					todo[wi] |= w // not sent: they go in postcopy
					if inPart {
						if err := s.iterEnd(); err != nil {
							return err
						}
					}
					return errPostcopy
				}
				w &^= 1 << bit
				if !inPart && !final {
					if err := s.w.RAMIterBegin(); err != nil {
						return s.ioErr(err)
					}
					inPart = true
				}
				if err := s.sendPage(bi, uint64(wi*64+bit)); err != nil {
					return err
				}
				s.j.remaining.Add(-pageSize)
				if n++; n%256 == 0 {
					s.j.transferred.Store(s.transferred())
				}
				if inPart && n%partPages == 0 {
					if err := s.iterEnd(); err != nil {
						return err
					}
					inPart = false
				}
			}
		}
	}
	if inPart {
		if err := s.iterEnd(); err != nil {
			return err
		}
	}
	s.j.transferred.Store(s.transferred())
	return nil
}

// iterEnd closes the open RAM section (its EOS), the multifd channels synced first.
func (s *saver) iterEnd() error {
	if s.mf != nil && !s.j.pc.active.Load() {
		if err := s.mf.sync(); err != nil {
			return s.ioErr(err)
		}
	}
	if err := s.w.RAMIterEnd(); err != nil {
		return s.ioErr(err)
	}
	if s.mf != nil && !s.j.pc.active.Load() {
		// The destination's channels wait for this EOS before they read on (QEMU's
		// ram_save_iterate flushes after it).
		if err := s.flush(); err != nil {
			return s.ioErr(err)
		}
	}
	return nil
}

// idle waits until no stream buffer is being written behind the thread's back, so that it
// may touch the writers below the stream (rate limit, channel); it returns the error a
// write met.
func (s *saver) idle() error {
	if s.hw == nil {
		return nil
	}
	return s.hw.idle()
}

// passed is sent without the buffer being written behind the thread's back: what the
// bandwidth of a pass is measured on (a pass ends when its last buffer is handed off,
// not when it is written; under a rate limit that buffer may wait long).
func (s *saver) passed() uint64 {
	n := s.sent()
	if s.hw != nil {
		n -= uint64(len(s.hw.inflight))
	}
	return n
}

// sent is transferred as a uint64.
func (s *saver) sent() uint64 { return uint64(s.transferred()) }

// transferred is query-migrate's transferred: the main stream and the multifd channels.
func (s *saver) transferred() int64 {
	n := int64(s.w.Bytes())
	if s.mf != nil {
		n += s.mf.bytes.Load()
	}
	return n
}

// xbActive returns the XBZRLE cache when pages are to go through it now.
func (s *saver) xbActive() *xbCache {
	if s.j.xb == nil || !s.j.xb.enabled || s.j.pc.active.Load() {
		return nil
	}
	return s.j.xb
}

// sendPage writes page p of block bi in the open RAM section, counting it as QEMU does
// (duplicate for a zero page, normal otherwise).
func (s *saver) sendPage(bi int, p uint64) error {
	b := s.blocks[bi]
	if err := s.ensure(bi, p); err != nil {
		return err
	}
	off := p * pageSize
	page := b.Host()[off : off+pageSize]
	xb := s.xbActive()
	if isZero(page) {
		s.j.duplicate.Add(1)
		if xb != nil {
			xb.zeroPage(xb.base[bi]+off, uint64(s.pass))
		}
	} else {
		if s.mf != nil && !s.j.pc.active.Load() {
			s.j.normal.Add(1)
			if err := s.mf.page(b.Name(), off, page); err != nil {
				return s.ioErr(err)
			}
			return nil
		}
		if xb != nil {
			res, data := xb.save(xb.base[bi]+off, page, uint64(s.pass))
			switch res {
			case xbSkip:
				return nil
			case xbEncoded:
				if err := s.w.RAMXBZRLE(b.Name(), off, data); err != nil {
					return s.ioErr(err)
				}
				return nil
			}
			page = data
		} else if z := s.j.comp; z != nil && !s.j.pc.active.Load() {
			data, err := z.compress(page)
			if err != nil {
				return wrapf(ErrSave, err, "%v", err)
			}
			if err := s.w.RAMCompressed(b.Name(), off, data); err != nil {
				return s.ioErr(err)
			}
			return nil
		}
		s.j.normal.Add(1)
	}
	if err := s.w.RAMPage(b.Name(), off, page); err != nil {
		return s.ioErr(err)
	}
	return nil
}

// pageCopy is one final page copied in memory (x-tlc): nil data means a zero page.
type pageCopy struct {
	block int
	off   uint64
	data  []byte
}

// prepareArena makes the engine's copy buffer hold at least pages pages, faulting new
// memory in now, while the guest runs, so that stage 3's copy runs at memory speed.
func (s *saver) prepareArena(pages uint64) {
	e := s.j.e
	need := int(pages * pageSize)
	if cap(e.arena) >= need {
		return
	}
	a := make([]byte, need)
	for i := 0; i < len(a); i += pageSize {
		a[i] = 1 // touch: the kernel maps the page now, not during the downtime
	}
	e.arena = a[:0]
}

// layoutTodo gives every page of todo its place in the arena (not copied yet), in block
// and page order, clears todo and returns, per block, the pages it held and the range
// of out they occupy.
func (s *saver) layoutTodo() ([]pageCopy, []blockPages, error) {
	n := countBits(s.todo)
	arena := s.j.e.arena[:0]
	if uint64(cap(arena)) < n*pageSize {
		arena = make([]byte, 0, n*pageSize)
	}
	arena = arena[:n*pageSize]
	out := make([]pageCopy, 0, n)
	per := make([]blockPages, len(s.blocks))
	for bi := range s.blocks {
		per[bi].lo = len(out)
		per[bi].pages = append([]uint64(nil), s.todo[bi]...)
		for wi, w := range s.todo[bi] {
			s.todo[bi][wi] = 0
			for w != 0 {
				bit := bits.TrailingZeros64(w)
				w &^= 1 << bit
				off := uint64(wi*64+bit) * pageSize
				if err := s.ensure(bi, off/pageSize); err != nil {
					return nil, nil, err
				}
				start := len(out) * pageSize
				out = append(out, pageCopy{block: bi, off: off, data: arena[start : start+pageSize : start+pageSize]})
			}
		}
		per[bi].hi = len(out)
	}
	return out, per, nil
}

// blockPages is one block's share of the final pages: its todo bitmap and out[lo:hi].
type blockPages struct {
	pages  []uint64
	lo, hi int
}

// copyPages copies the final pages into their arena places. Zero pages are told apart
// after the guest resumes (writeFinal): this is one plain copy, split between this thread
// and copyWorkers others (the vCPUs are parked, so their CPUs are free).
func (s *saver) copyPages(out []pageCopy) {
	hosts := make([][]byte, len(s.blocks))
	for bi, b := range s.blocks {
		hosts[bi] = b.Host()
	}
	copyPart := func(part []pageCopy) {
		for _, p := range part {
			copy(p.data, hosts[p.block][p.off:p.off+pageSize])
		}
	}
	workers := min(runtime.GOMAXPROCS(0), maxCopyWorkers, len(out)/minPagesPerWorker+1)
	var wg sync.WaitGroup
	per := (len(out) + workers - 1) / max(workers, 1)
	for w := 1; w < workers; w++ {
		part := out[min(w*per, len(out)):min((w+1)*per, len(out))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			copyPart(part)
		}()
	}
	copyPart(out[:min(per, len(out))])
	wg.Wait()
}

// Guarder is a RAMBlock that runs a function on a chunk of its pages before anything
// touches them (machine.RAMBlock.Guard), and runs it on the chunks left (Populate).
type Guarder interface {
	Guard(pages []uint64, fn func(first uint64, mem []byte) error) error
	Populate(stop <-chan struct{}) error
}

// takeFinal is x-tlc's stage-3 copy, with the vCPUs parked. The final pages of a block
// that can be guarded are copied on first touch: the guest resumes at once, and a chunk
// of them is copied by whichever comes first, the vCPU about to change it or the
// checkpoint thread (drainGuards); the downtime no longer grows with the final set. The
// other blocks' pages are copied now. It returns the pages and the blocks guarded.
func (s *saver) takeFinal() ([]pageCopy, []Guarder, error) {
	out, per, err := s.layoutTodo()
	if err != nil {
		return nil, nil, err
	}
	var guarded []Guarder
	var now []pageCopy
	for bi, b := range s.blocks {
		part := out[per[bi].lo:per[bi].hi]
		g, ok := b.(Guarder)
		if ok && len(part) > 0 {
			host := b.Host()
			copyChunk := func(first uint64, mem []byte) error {
				end := first + uint64(len(mem))/pageSize
				i := sort.Search(len(part), func(i int) bool { return part[i].off/pageSize >= first })
				for ; i < len(part) && part[i].off/pageSize < end; i++ {
					copy(part[i].data, host[part[i].off:part[i].off+pageSize])
				}
				return nil
			}
			if g.Guard(per[bi].pages, copyChunk) == nil {
				guarded = append(guarded, g)
				continue
			}
		}
		now = append(now, part...)
	}
	s.copyPages(now)
	return out, guarded, nil
}

// drainGuards copies, on the checkpoint thread, the final pages the guest has not touched
// since it resumed.
func (s *saver) drainGuards(guarded []Guarder) error {
	for _, g := range guarded {
		if err := g.Populate(nil); err != nil {
			return wrapf(ErrSave, err, "%v", err)
		}
	}
	return nil
}

// Stage 3's copy (x-tlc) runs on up to maxCopyWorkers threads, each with at least
// minPagesPerWorker pages (below that a second thread costs more than it saves).
const (
	maxCopyWorkers    = 4
	minPagesPerWorker = 1024
)

// Ensurer is a RAMBlock restored by mapping whose pages are verified on first touch
// (machine.RAMBlock.Ensure): the checkpoint thread touches a page only after Ensure.
type Ensurer interface {
	Ensure(first, n uint64) error
}

// ensure makes page of block bi safe to read (see Ensurer).
func (s *saver) ensure(bi int, page uint64) error {
	en, ok := s.blocks[bi].(Ensurer)
	if !ok {
		return nil
	}
	if err := en.Ensure(page, 1); err != nil {
		return wrapf(ErrSave, err, "%v", err)
	}
	return nil
}

// writeFinal writes the END section of RAM (the copied pages, or todo read from guest
// RAM when buf is nil), the device sections and the end of the stream, and flushes.
func (s *saver) writeFinal(buf []pageCopy, devs []devState, descs []stream.DeviceDesc) error {
	if err := s.w.RAMComplete(); err != nil {
		return s.ioErr(err)
	}
	if buf != nil {
		for _, p := range buf {
			data := p.data
			if isZero(data) {
				s.j.duplicate.Add(1)
			} else {
				s.j.normal.Add(1)
			}
			if err := s.w.RAMPage(s.blocks[p.block].Name(), p.off, data); err != nil {
				return s.ioErr(err)
			}
		}
	} else if err := s.sendTodo(true); err != nil {
		return err
	}
	if err := s.iterEnd(); err != nil {
		return err
	}
	if s.bm != nil {
		if err := s.w.BitmapsComplete(s.bm.data); err != nil {
			return s.ioErr(err)
		}
	}
	for _, d := range devs {
		if err := s.w.Device(d.idstr, d.instance, d.version, d.state); err != nil {
			return s.ioErr(err)
		}
	}
	if err := s.w.Finish(descs); err != nil {
		return s.ioErr(err)
	}
	if s.bw == nil {
		return nil
	}
	if err := s.bw.Flush(); err != nil {
		return s.ioErr(err)
	}
	return nil
}

// devState is one device section ready to write.
type devState struct {
	idstr             string
	instance, version uint32
	state             []byte
}

// globalState is the "globalstate" section: the source's run state (QEMU's
// vmstate_globalstate), which tells the destination whether to run.
type globalState struct {
	RunState string `json:"runstate"`
}

const globalStateID = "globalstate"

// sectionName splits "cpu/3" into QEMU's idstr "cpu" and instance 3.
func sectionName(id string) (string, uint32) {
	if i := strings.LastIndexByte(id, '/'); i > 0 {
		if n, err := strconv.ParseUint(id[i+1:], 10, 32); err == nil {
			return id[:i], uint32(n)
		}
	}
	return id, 0
}

// sectionID is sectionName's inverse.
func sectionID(idstr string, instance uint32) string {
	if idstr == "cpu" {
		return idstr + "/" + strconv.FormatUint(uint64(instance), 10)
	}
	return idstr
}

func (s *saver) saveDevices(srcState string) ([]devState, []stream.DeviceDesc, error) {
	return saveDevices(s.m, srcState)
}

// saveDevices takes every device section of m (vCPUs parked), the global state first.
func saveDevices(m Machine, srcState string) ([]devState, []stream.DeviceDesc, error) {
	var devs []devState
	var descs []stream.DeviceDesc
	add := func(id string, version uint32, v any) error {
		raw, err := json.Marshal(v)
		if err != nil {
			return wrapf(ErrSave, err, "section %s: %v", id, err)
		}
		name, inst := sectionName(id)
		devs = append(devs, devState{name, inst, version, raw})
		descs = append(descs, stream.DeviceDesc{Name: name, Instance: inst, Version: version})
		return nil
	}
	if err := add(globalStateID, 1, globalState{RunState: srcState}); err != nil {
		return nil, nil, err
	}
	for _, sec := range m.Sections() {
		st, err := sec.SaveState()
		if err != nil {
			return nil, nil, wrapf(ErrSave, err, "section %s: %v", sec.SectionID(), err)
		}
		cur, _ := sec.StateVersion()
		if err := add(sec.SectionID(), cur, st); err != nil {
			return nil, nil, err
		}
	}
	return devs, descs, nil
}

func rate(bytes uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / d.Seconds()
}

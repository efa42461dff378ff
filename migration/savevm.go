package migration

import (
	"bufio"
	"io"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// The VM state of an internal snapshot (savevm, loadvm, the snapshot-save and
// snapshot-load jobs): the whole machine as one stream, written and read while the guest
// is stopped, as QEMU's qemu_savevm_state and qemu_loadvm_state do for save_snapshot and
// load_snapshot. The stream is the checkpoint stream (same framing and integrity section)
// with every page the guest ever wrote in one RAM END section:
//
//	header, config │ RAM setup │ RAM END: written pages, EOS │ globalstate, devices │ integrity, EOF, vmdesc
//
// A load puts back exactly the RAM that was saved: pages the guest wrote since then and
// the stream does not carry read as zeroes again.

// SaveVM writes the machine's state to w; the vCPUs must be parked (the VM stopped) and
// runState is the state the guest had (the global state section). It returns the bytes
// written. A migration in progress forbids it, in QEMU's words.
//
// As QEMU's qemu_savevm_state it is a migration as far as the monitor sees: MIGRATION setup,
// MIGRATION_PASS 1 and 2 (with the events capability), then completed or failed, and
// query-migrate reports it afterwards (completed, with zero times: QEMU never sets them).
func (e *Engine) SaveVM(w io.Writer, runState string) (int64, error) {
	e.mu.Lock()
	if e.activeLocked() {
		e.mu.Unlock()
		return 0, errorf(ErrActive, "There's a migration process in progress")
	}
	j := newJob(e, transport.Address{})
	close(j.done) // no checkpoint thread
	e.out = j
	e.mu.Unlock()
	e.clearBaseline()
	e.emitStatus(StatusSetup)
	n, err := e.saveVM(j, w, runState)
	j.transferred.Store(n)
	if err != nil {
		j.fail(err, false)
		return n, err
	}
	j.downtimeBytes.Store(n)
	j.setStatus(StatusCompleted, StatusSetup)
	j.mu.Lock()
	j.totalMS, j.setupMS, j.downMS = 0, 0, 0
	j.mu.Unlock()
	return n, nil
}

// pass is one dirty sync of a savevm (MIGRATION_PASS).
func (j *job) pass() {
	n := j.dirtySync.Add(1)
	if j.e.Capability(CapEvents) {
		j.e.ev.Emit("MIGRATION_PASS", PassEvent{Pass: n})
	}
}

func (e *Engine) saveVM(j *job, w io.Writer, runState string) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	sw := stream.NewWriter(bw, e.m.MachineType())
	fail := func(err error) (int64, error) { return int64(sw.Bytes()), wrapf(ErrSave, err, "%s", err.Error()) }
	if err := sw.Begin(); err != nil {
		return fail(err)
	}
	blocks := e.m.RAMBlocks()
	var descs []stream.Block
	for _, b := range blocks {
		descs = append(descs, stream.Block{Name: b.Name(), Size: b.Size()})
	}
	if err := sw.RAMSetup(descs); err != nil {
		return fail(err)
	}
	j.pass() // ram_save_setup's sync
	j.pass() // ram_save_complete's
	if err := sw.RAMComplete(); err != nil {
		return fail(err)
	}
	for _, b := range blocks {
		words := make([]uint64, b.BitmapWords())
		b.WrittenBitmap(words)
		host := b.Host()
		for wi, w := range words {
			for bit := 0; w != 0; bit++ {
				if w&1 != 0 {
					off := uint64(wi*64+bit) * pageSize
					page := host[off : off+pageSize]
					var err error
					if isZero(page) {
						j.duplicate.Add(1)
						err = sw.RAMZero(b.Name(), off)
					} else {
						j.normal.Add(1)
						err = sw.RAMPage(b.Name(), off, page)
					}
					if err != nil {
						return fail(err)
					}
				}
				w >>= 1
			}
		}
	}
	if err := sw.RAMIterEnd(); err != nil {
		return fail(err)
	}
	devs, ddescs, err := saveDevices(e.m, runState)
	if err != nil {
		return int64(sw.Bytes()), err
	}
	for _, d := range devs {
		if err := sw.Device(d.idstr, d.instance, d.version, d.state); err != nil {
			return fail(err)
		}
	}
	if err := sw.Finish(ddescs); err != nil {
		return fail(err)
	}
	return int64(sw.Bytes()), nil
}

// LoadVM reads a stream SaveVM wrote into the machine, whose vCPUs must be parked: RAM,
// then (the stream verified) the devices; the pages written since that the stream does
// not carry become zeroes again.
func (e *Engine) LoadVM(r io.Reader) error {
	e.mu.Lock()
	active := e.activeLocked()
	e.mu.Unlock()
	if active {
		return errorf(ErrActive, "There's a migration process in progress")
	}
	ld := &loader{e: e, rd: stream.NewReader(bufio.NewReaderSize(r, 1<<20)), loaded: map[string][]uint64{}}
	if _, err := ld.load(); err != nil {
		return err
	}
	var zero [pageSize]byte
	for _, b := range e.m.RAMBlocks() {
		words := make([]uint64, b.BitmapWords())
		b.WrittenBitmap(words)
		got := ld.loaded[b.Name()]
		for wi, w := range words {
			if wi < len(got) {
				w &^= got[wi]
			}
			for bit := 0; w != 0; bit++ {
				if w&1 != 0 {
					b.WritePage(uint64(wi*64+bit), zero[:])
				}
				w >>= 1
			}
		}
	}
	return nil
}

// markLoaded records that the stream carried page of block (when the load tracks it).
func (ld *loader) markLoaded(block string, page uint64) {
	if ld.loaded == nil {
		return
	}
	bm := ld.loaded[block]
	if need := int(page/64) + 1; len(bm) < need {
		bm = append(bm, make([]uint64, need-len(bm))...)
		ld.loaded[block] = bm
	}
	bm[page/64] |= 1 << (page % 64)
}

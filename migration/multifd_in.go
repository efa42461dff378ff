package migration

import (
	"errors"
	"io"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// mfReceiver is the destination's multifd channels (multifd.go draws the protocol): a
// goroutine per channel reads its packets straight into guest RAM and, at each SYNC
// packet, waits until the main stream reaches the matching EOS.
type mfReceiver struct {
	e       *Engine
	n       int
	blocks  map[string]RAMBlock
	synced  chan error      // one per channel per round: nil at its SYNC packet, or its error
	release []chan struct{} // per channel id: the round is over
	stop    chan struct{}
}

// startMultifd accepts the n multifd channels of src and starts reading them.
func (e *Engine) startMultifd(src transport.Source, n int) *mfReceiver {
	mr := &mfReceiver{e: e, n: n, blocks: map[string]RAMBlock{}, synced: make(chan error, n),
		release: make([]chan struct{}, n), stop: make(chan struct{})}
	for i := range mr.release {
		mr.release[i] = make(chan struct{}, 1)
	}
	for _, b := range e.m.RAMBlocks() {
		mr.blocks[b.Name()] = b
	}
	for i := 0; i < n; i++ {
		go func() {
			r, err := transport.AcceptChannel(src)
			if err != nil {
				mr.synced <- err
				return
			}
			defer r.Close()
			if err := mr.receive(r); err != nil {
				select {
				case mr.synced <- err:
				case <-mr.stop:
				}
			}
		}()
	}
	return mr
}

// receive reads one channel until it ends.
func (mr *mfReceiver) receive(r io.Reader) error {
	init := make([]byte, stream.MultifdInitSize)
	if _, err := io.ReadFull(r, init); err != nil {
		return wrapf(ErrLoad, err, "multifd: %v", err)
	}
	in, err := stream.ParseMultifdInit(init, mr.e.uuid, mr.n)
	if err != nil {
		return wrapf(ErrLoad, err, "%s", trimFormat(err))
	}
	if int(in.ID) >= mr.n {
		return errorf(ErrLoad, "multifd: channel %d of %d", in.ID, mr.n)
	}
	hdr := make([]byte, stream.MultifdPacketSize)
	data := make([]byte, stream.MultifdPagesPerPacket*pageSize)
	size := func(name string) (uint64, bool) {
		b, ok := mr.blocks[name]
		if !ok {
			return 0, false
		}
		return b.Size(), true
	}
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the source closed the channel after the last round
			}
			return wrapf(ErrLoad, err, "multifd: %v", err)
		}
		p, err := stream.ParseMultifdPacket(hdr, size)
		if err != nil {
			return wrapf(ErrLoad, err, "%s", trimFormat(err))
		}
		if err := mr.load(r, p, data); err != nil {
			return err
		}
		if p.Flags&stream.MultifdFlagSync != 0 {
			select {
			case mr.synced <- nil:
			case <-mr.stop:
				return nil
			}
			select {
			case <-mr.release[in.ID]:
			case <-mr.stop:
				return nil
			}
		}
	}
}

// inPlace is a block whose loader may read a run of pages straight into its memory (Host)
// and then mark them written, rather than hand each page to WritePage: what
// machine.RAMBlock offers.
type inPlace interface {
	MarkWritten(page uint64)
}

// load reads the page data of packet p from r into guest RAM and checks its CRC32C. A
// packet whose pages are one run (the usual case: the saver walks a block in order) is
// read straight into guest RAM, populated first in one call, with no copy in user space
// (QEMU reads its packets into guest RAM too, with an iovec per page); its CRC is then
// computed over guest RAM, and a mismatch fails the migration before the guest runs, as
// any integrity error does. Other packets go through data (len ≥ 128 pages).
func (mr *mfReceiver) load(r io.Reader, p stream.MultifdPacket, data []byte) error {
	if len(p.Offsets) == 0 {
		return p.CheckData(nil)
	}
	b := mr.blocks[p.Block]
	first, n := p.Offsets[0]/pageSize, uint64(len(p.Offsets))
	run := true
	for i, off := range p.Offsets {
		if off != (first+uint64(i))*pageSize {
			run = false
			break
		}
	}
	m, ok := b.(inPlace)
	if pf, canPf := b.(Prefaulter); canPf && n > 1 {
		// A packet's pages are usually a run, or nearly: populate their span in one call.
		if last := p.Offsets[n-1] / pageSize; last > first && last-first < 2*n {
			pf.PrefaultPages(first, last-first+1)
		}
	}
	if run && ok {
		d := b.Host()[first*pageSize : (first+n)*pageSize]
		if _, err := io.ReadFull(r, d); err != nil {
			return wrapf(ErrLoad, err, "multifd: %v", err)
		}
		if err := p.CheckData(d); err != nil {
			return wrapf(ErrLoad, err, "%s", err.Error())
		}
		for pg := first; pg < first+n; pg++ {
			m.MarkWritten(pg)
		}
		return nil
	}
	d := data[:len(p.Offsets)*pageSize]
	if _, err := io.ReadFull(r, d); err != nil {
		return wrapf(ErrLoad, err, "multifd: %v", err)
	}
	if err := p.CheckData(d); err != nil {
		return wrapf(ErrLoad, err, "%s", err.Error())
	}
	for i, off := range p.Offsets {
		b.WritePage(off/pageSize, d[i*pageSize:(i+1)*pageSize])
	}
	return nil
}

// sync is QEMU's multifd_recv_sync_main, at an EOS of the main stream: every channel has
// applied its packets up to its SYNC; then they go on.
func (mr *mfReceiver) sync() error {
	for i := 0; i < mr.n; i++ {
		select {
		case err := <-mr.synced:
			if err != nil {
				return err
			}
		case <-mr.stop:
			return errorf(ErrLoad, "multifd: stopped")
		}
	}
	for _, r := range mr.release {
		r <- struct{}{}
	}
	return nil
}

// close stops the channels' goroutines.
func (mr *mfReceiver) close() {
	select {
	case <-mr.stop:
	default:
		close(mr.stop)
	}
}

package migration

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// Multifd over sockets (capability multifd, multifd-channels): the source connects to the
// destination's tcp:/unix: address once more per channel; each channel starts with its
// init packet and then carries packets of up to 128 normal pages (stream/multifd.go, QEMU
// 7.2's format), dealt round robin; zero pages and everything else stay on the main
// channel. Before every EOS of the main stream (the RAM setup, each PART, the END) the
// source writes a SYNC packet on every channel and waits until each is flushed; the
// destination, at that EOS, waits until every channel has applied its packets up to the
// SYNC, so a page never lands after a later copy of it. A migration that switches to
// postcopy syncs once more and then sends its pages on the main channel only. URIs other
// than tcp:/unix: fail as QEMU 7.2's do ("multifd is not supported by current protocol").

// mfSender is the source's multifd channels.
type mfSender struct {
	j     *job
	chans []*mfChannel
	next  int
	batch mfBatch
	num   atomic.Uint64 // packet numbers (all channels)
	bytes atomic.Int64  // multifd-bytes
	uuid  [16]byte
	wg    sync.WaitGroup    // the channels' writers
	rate  func(n int) error // charges bytes to max-bandwidth (countWriter.charge)
	free  chan []byte       // packet buffers written out, for reuse (len MultifdPacketSize)
}

// mfBatch is the pages of one packet being gathered.
type mfBatch struct {
	block string
	offs  []uint64
	// buf is the packet as it is written: MultifdPacketSize bytes for its header, then
	// len(offs) pages. Header and pages go out in one write, which the transport passes to
	// the socket as it is (a header written on its own would make it copy the pages into
	// its buffer behind it).
	buf []byte
}

// data is the batch's page data.
func (b mfBatch) data() []byte {
	if len(b.buf) < stream.MultifdPacketSize {
		return nil
	}
	return b.buf[stream.MultifdPacketSize:]
}

// mfChannel is one multifd connection and its writer goroutine.
type mfChannel struct {
	id    int
	out   io.WriteCloser
	work  chan mfWork // cap 1: backpressure on the saver
	errMu sync.Mutex
	err   error // +checklocks:errMu; the first write error
}

// mfWork is a packet to write, or a sync request (done is signalled once it is flushed).
type mfWork struct {
	b    mfBatch
	sync bool
	done chan error
}

var errMultifdProtocol = errors.New("multifd is not supported by current protocol")

// openMultifd connects the channels (tcp:/unix: only) and writes their init packets.
func (j *job) openMultifd(n int, uuid [16]byte) (*mfSender, error) {
	if a := j.addr; a.Scheme != transport.SchemeTCP && a.Scheme != transport.SchemeUnix {
		return nil, errMultifdProtocol
	}
	mf := &mfSender{j: j, uuid: uuid, free: make(chan []byte, 2*n+1)}
	env := transport.Env{Log: j.e.log}
	for i := 0; i < n; i++ {
		out, err := transport.OpenAddress(j.addr, env)
		if err != nil {
			mf.close(true)
			return nil, err
		}
		c := &mfChannel{id: i, out: out, work: make(chan mfWork, 1)}
		mf.chans = append(mf.chans, c)
		if _, err := out.Write(stream.MultifdInit{UUID: uuid, ID: uint8(i)}.Encode()); err != nil {
			mf.close(true)
			return nil, err
		}
		if err := transport.Flush(out); err != nil { // the destination sorts channels by it
			mf.close(true)
			return nil, err
		}
		mf.wg.Add(1)
		go c.run(mf)
	}
	return mf, nil
}

// run writes what the saver hands over until the work channel closes.
func (c *mfChannel) run(mf *mfSender) {
	defer mf.wg.Done()
	for w := range c.work {
		err := c.failed()
		if err == nil {
			p := stream.MultifdPacket{Normal: uint32(len(w.b.offs)), PacketNum: mf.num.Add(1) - 1,
				Block: w.b.block, Offsets: w.b.offs}
			if w.sync {
				p.Flags = stream.MultifdFlagSync
			}
			pkt := w.b.buf
			if pkt == nil {
				pkt = make([]byte, stream.MultifdPacketSize)
			}
			copy(pkt, p.Encode(w.b.data()))
			_, err = c.out.Write(pkt)
			if err == nil && w.sync {
				err = transport.Flush(c.out)
			}
			mf.bytes.Add(int64(len(pkt)))
			mf.j.multifdBytes.Add(int64(len(pkt)))
			if w.b.buf != nil {
				select {
				case mf.free <- w.b.buf[:stream.MultifdPacketSize]:
				default:
				}
			}
			if err != nil {
				c.errMu.Lock()
				c.err = err
				c.errMu.Unlock()
			}
		}
		if w.done != nil {
			w.done <- err
		}
	}
}

func (c *mfChannel) failed() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// page queues a normal page (copied) for the channels.
func (mf *mfSender) page(block string, off uint64, data []byte) error {
	if mf.batch.block != block || len(mf.batch.offs) == stream.MultifdPagesPerPacket {
		if err := mf.flushBatch(); err != nil {
			return err
		}
		mf.batch.block = block
	}
	if mf.batch.buf == nil {
		select {
		case mf.batch.buf = <-mf.free:
		default:
			mf.batch.buf = make([]byte, stream.MultifdPacketSize, stream.MultifdPacketSize+stream.MultifdPagesPerPacket*pageSize)
		}
	}
	mf.batch.offs = append(mf.batch.offs, off)
	mf.batch.buf = append(mf.batch.buf, data...)
	return nil
}

// flushBatch hands the gathered pages to the next channel.
func (mf *mfSender) flushBatch() error {
	if len(mf.batch.offs) == 0 {
		return nil
	}
	c := mf.chans[mf.next]
	mf.next = (mf.next + 1) % len(mf.chans)
	if err := c.failed(); err != nil {
		return err
	}
	b := mf.batch
	mf.batch = mfBatch{offs: make([]uint64, 0, stream.MultifdPagesPerPacket)}
	select {
	case c.work <- mfWork{b: b}:
	case <-mf.j.cancelCh:
		return errCancelled
	}
	if mf.rate != nil {
		return mf.rate(len(b.data()))
	}
	return nil
}

// sync is QEMU's multifd_send_sync_main: the pages gathered go out, then a SYNC packet on
// every channel, and it returns once every channel has flushed it.
func (mf *mfSender) sync() error {
	if err := mf.flushBatch(); err != nil {
		return err
	}
	dones := make([]chan error, len(mf.chans))
	for i, c := range mf.chans {
		dones[i] = make(chan error, 1)
		select {
		case c.work <- mfWork{sync: true, done: dones[i]}:
		case <-mf.j.cancelCh:
			return errCancelled
		}
	}
	for _, d := range dones {
		select {
		case err := <-d:
			if err != nil {
				return err
			}
		case <-mf.j.cancelCh:
			return errCancelled
		}
	}
	return nil
}

// close ends the channels once their writers are done: flushed and closed, or (abort)
// ended at once, what is left dropped.
func (mf *mfSender) close(abort bool) {
	if abort {
		for _, c := range mf.chans {
			_ = transport.Abort(c.out)
		}
	}
	for _, c := range mf.chans {
		close(c.work)
	}
	mf.wg.Wait()
	if !abort {
		for _, c := range mf.chans {
			_ = c.out.Close()
		}
	}
}

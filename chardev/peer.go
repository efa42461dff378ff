package chardev

import (
	"io"
	"sync"
)

// outqMax bounds the guest output queued for a slow peer; beyond it guest
// output is dropped, so a vCPU writing a serial port never waits on a peer.
const outqMax = 64 << 10

// peer is one connection of a back end.
type peer struct {
	conn      io.ReadWriteCloser
	filename  string // query-chardev filename while connected
	endsOnEOF bool   // a read EOF ends the session (sockets), else only Close does
	async     bool   // guest writes go through the queue (may block: sockets, pty)
	// closeFn, if set, replaces conn.Close at shutdown (stdio must not close
	// the process's descriptors).
	closeFn func() error

	wmu sync.Mutex // serialises writes to conn

	qmu     sync.Mutex
	qcond   *sync.Cond
	q       []byte // pending guest output (qmu)
	qdone   bool   // shutdown: writer exits (qmu)
	qbroken bool   // a write failed: drop everything (qmu)
	started bool   // writer goroutine running (qmu)
	wdone   chan struct{}

	once sync.Once
}

func newPeer(conn io.ReadWriteCloser, filename string, endsOnEOF, async bool) *peer {
	p := &peer{conn: conn, filename: filename, endsOnEOF: endsOnEOF, async: async,
		wdone: make(chan struct{})}
	p.qcond = sync.NewCond(&p.qmu)
	return p
}

// writeBlocking writes all of b (monitor output).
func (p *peer) writeBlocking(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := p.conn.Write(b)
	return err
}

// writeGuest writes b without waiting on the peer: synchronous peers (files,
// stdio) are written directly, others through a bounded queue.
func (p *peer) writeGuest(b []byte) {
	if !p.async {
		p.writeBlocking(b)
		return
	}
	p.qmu.Lock()
	defer p.qmu.Unlock()
	if p.qdone || p.qbroken {
		return
	}
	if room := outqMax - len(p.q); len(b) > room {
		b = b[:max(room, 0)]
	}
	p.q = append(p.q, b...)
	if !p.started {
		p.started = true
		go p.writer()
	}
	p.qcond.Signal()
}

func (p *peer) writer() {
	defer close(p.wdone)
	for {
		p.qmu.Lock()
		for len(p.q) == 0 && !p.qdone {
			p.qcond.Wait()
		}
		if p.qdone {
			p.qmu.Unlock()
			return
		}
		b := p.q
		p.q = nil
		p.qmu.Unlock()
		if err := p.writeBlocking(b); err != nil {
			p.qmu.Lock()
			p.qbroken = true
			p.q = nil
			p.qmu.Unlock()
		}
	}
}

// shutdown closes the connection and stops the writer; idempotent.
func (p *peer) shutdown() {
	p.once.Do(func() {
		p.qmu.Lock()
		p.qdone = true
		started := p.started
		p.qcond.Broadcast()
		p.qmu.Unlock()
		if p.closeFn != nil {
			p.closeFn()
		} else {
			p.conn.Close()
		}
		if started {
			<-p.wdone
		}
	})
}

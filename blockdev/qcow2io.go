package blockdev

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
)

// qcow2's data path over the metadata of qcow2meta.go: reads cluster by cluster (data
// clusters from the file, zero clusters as zeroes, unallocated ones from the backing
// chain, compressed ones inflated), allocating writes (a new cluster holds what the
// cluster read as, with the write on top: QEMU's copy-on-write from the backing file),
// zero clusters and discards as QEMU 7.2's qcow2_co_pwrite_zeroes and qcow2_co_pdiscard.

// errExclusive asks the caller to redo the request holding n.io exclusively: it met a
// cluster whose host clusters it would free (a compressed cluster), which a concurrent
// request might be reading.
var errExclusive = errors.New("blockdev: request needs the node exclusively")

// span is the part of one guest cluster a request covers: cluster start g, bytes [a, b).
type span struct{ g, a, b int64 }

// spans splits [off, off+length) at cluster boundaries.
func (q *qcow2) spans(off, length int64, f func(s span) error) error {
	for length > 0 {
		g := off &^ (q.cs - 1)
		a := off - g
		b := min(q.cs, a+length)
		if err := f(span{g, a, b}); err != nil {
			return err
		}
		off += b - a
		length -= b - a
	}
	return nil
}

func (q *qcow2) read(p []byte, off int64) error {
	return q.spans(off, int64(len(p)), func(s span) error {
		q.mu.Lock()
		e, err := q.entry(s.g)
		q.mu.Unlock()
		if err != nil {
			return err
		}
		dst := p[:s.b-s.a]
		p = p[s.b-s.a:]
		return q.readCluster(e, s, dst)
	})
}

// readCluster reads bytes [s.a, s.b) of guest cluster s.g, whose L2 entry is e, into dst.
func (q *qcow2) readCluster(e uint64, s span, dst []byte) error {
	switch q.kind(e) {
	case kindUnallocated:
		return q.readBacking(dst, s.g+s.a)
	case kindZeroPlain, kindZeroAlloc:
		clear(dst)
		return nil
	case kindCompressed:
		buf, err := q.inflate(e)
		if err != nil {
			return err
		}
		copy(dst, buf[s.a:s.b])
		return nil
	}
	host := e & entryOffsetMask
	if err := q.checkOffset(host, "data cluster"); err != nil {
		return err
	}
	return q.pread(dst, int64(host)+s.a)
}

// readBacking reads what an unallocated range reads as: the backing chain's data, zeroes
// past its end or without one.
func (q *qcow2) readBacking(dst []byte, off int64) error {
	b := q.n.Backing
	if b == nil {
		clear(dst)
		return nil
	}
	got, err := b.ReadAt(dst, off)
	if err != nil && err != io.EOF {
		return err
	}
	clear(dst[got:])
	return nil
}

// compressed returns a compressed cluster's host offset and size in bytes.
func (q *qcow2) compressed(e uint64) (int64, int64) {
	x := 62 - (q.bits - 8)
	off := int64(e & (1<<x - 1))
	sectors := int64(e>>x&(1<<(q.bits-8)-1)) + 1
	return off, sectors*512 - off&511
}

// inflate reads and decompresses a compressed cluster (raw deflate, zlib compression
// type; zstd is not supported).
func (q *qcow2) inflate(e uint64) ([]byte, error) {
	if q.h.CompressionType != 0 {
		return nil, errf(ErrUnsupported, "tlcvm: zstd-compressed qcow2 clusters are not supported")
	}
	off, size := q.compressed(e)
	if off <= 0 || off+size > maxHostOffset {
		return nil, errf(ErrIO, "tlcvm: qcow2 image '%s' is corrupt: compressed cluster at %#x", q.n.filename, off)
	}
	raw := make([]byte, size)
	if err := q.pread(raw, off); err != nil {
		return nil, err
	}
	out := make([]byte, q.cs)
	r := flate.NewReader(bytes.NewReader(raw))
	defer r.Close()
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, errf(ErrIO, "tlcvm: qcow2 image '%s': cannot decompress cluster at %#x", q.n.filename, off)
	}
	return out, nil
}

// write writes p at off, cluster by cluster: in place in a cluster the node alone owns
// (COPIED), else into a new cluster that holds the old content around the write.
func (q *qcow2) write(p []byte, off int64) error {
	return q.spans(off, int64(len(p)), func(s span) error {
		src := p[:s.b-s.a]
		p = p[s.b-s.a:]
		q.mu.Lock()
		e, err := q.entry(s.g)
		if err != nil {
			q.mu.Unlock()
			return err
		}
		if q.kind(e) == kindNormal && e&oflagCopied != 0 {
			q.mu.Unlock()
			host := e & entryOffsetMask
			if err := q.checkOffset(host, "data cluster"); err != nil {
				return err
			}
			return q.pwrite(src, int64(host)+s.a)
		}
		defer q.mu.Unlock()
		return q.writeAlloc(e, s, src)
	})
}

// writeAlloc writes src at bytes [s.a, s.b) of guest cluster s.g whose entry e is not a
// cluster the node owns alone: the cluster's whole content is built (its old content
// around src), written to a new cluster (or in place into a preallocated zero cluster of
// its own), then the L2 entry points to it and the old cluster is released.
// Caller holds q.mu.
func (q *qcow2) writeAlloc(e uint64, s span, src []byte) error {
	k := q.kind(e)
	if k == kindCompressed && !q.n.exclusive {
		return errExclusive
	}
	t, l2off, err := q.l2ForWrite(s.g)
	if err != nil {
		return err
	}
	_, l2i := q.index(s.g)
	e = t[l2i] // the table may be a fresh copy; the entry is the same
	buf := make([]byte, q.cs)
	if s.a > 0 || s.b < q.cs {
		if err := q.readCluster(e, span{s.g, 0, q.cs}, buf); err != nil {
			return err
		}
	}
	copy(buf[s.a:], src)
	var host int64
	reuse := k == kindZeroAlloc && e&oflagCopied != 0
	if reuse {
		host = int64(e & entryOffsetMask)
		if err := q.checkOffset(uint64(host), "data cluster"); err != nil {
			return err
		}
	} else if host, err = q.alloc(); err != nil {
		return err
	}
	if err := q.pwrite(buf, host); err != nil {
		return err
	}
	if err := q.setEntry(t, l2off, l2i, uint64(host)|oflagCopied); err != nil {
		return err
	}
	if reuse {
		return nil
	}
	return q.unrefEntry(e)
}

// writeZeroes is qcow2_co_pwrite_zeroes: whole clusters become zero clusters (version 3;
// deallocated with ZeroMayUnmap, compressed ones always), the unaligned head and tail
// and everything on version 2 are written as zeroes.
func (q *qcow2) writeZeroes(off, length int64, fl ZeroFlags) error {
	return q.spans(off, length, func(s span) error {
		if q.h.Version < 3 || s.a > 0 || s.b < q.cs {
			return q.n.writeZeroBuffers(s.g+s.a, s.b-s.a)
		}
		return q.withEntry(s.g, func(e uint64) error {
			k := q.kind(e)
			unmap := k == kindCompressed || (fl&ZeroMayUnmap != 0 && (k == kindNormal || k == kindZeroAlloc))
			ne := e
			if unmap {
				ne = 0
			}
			ne |= oflagZero
			if ne == e {
				return nil
			}
			if unmap && !q.n.exclusive {
				return errExclusive
			}
			return q.replaceEntry(s.g, ne, unmap)
		})
	})
}

// withEntry runs f with guest cluster g's L2 entry, holding q.mu.
func (q *qcow2) withEntry(g int64, f func(e uint64) error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.entry(g)
	if err != nil {
		return err
	}
	return f(e)
}

// discard is qcow2_co_pdiscard (QCOW2_DISCARD_REQUEST, not a full discard): every whole
// cluster in the range is released; it reads as zeroes afterwards on version 3 when it
// had content or a backing file is there, else as the backing file. Partial clusters are
// left alone, as QEMU leaves them.
func (q *qcow2) discard(off, length int64) error {
	return q.spans(off, length, func(s span) error {
		if s.a > 0 || s.b < q.cs {
			return nil
		}
		return q.withEntry(s.g, func(e uint64) error {
			k := q.kind(e)
			allocated := k == kindNormal || k == kindZeroAlloc || k == kindCompressed
			var ne uint64
			if (q.n.Backing != nil || allocated) && q.h.Version >= 3 {
				ne = oflagZero
			}
			if ne == e {
				return nil
			}
			if err := q.replaceEntry(s.g, ne, true); err != nil {
				return err
			}
			if allocated && k != kindCompressed {
				q.discardHost(e)
			}
			return nil
		})
	})
}

// replaceEntry sets guest cluster g's L2 entry to ne and, with release, frees what the
// old entry held (after the entry no longer points to it). Caller holds q.mu.
func (q *qcow2) replaceEntry(g int64, ne uint64, release bool) error {
	t, l2off, err := q.l2ForWrite(g)
	if err != nil {
		return err
	}
	_, l2i := q.index(g)
	old := t[l2i]
	if err := q.setEntry(t, l2off, l2i, ne); err != nil {
		return err
	}
	if release {
		return q.unrefEntry(old)
	}
	return nil
}

// discardHost passes a freed cluster's discard to the image file (QEMU's
// pass-discard-request), when that cluster is now free.
func (q *qcow2) discardHost(e uint64) {
	host := int64(e & entryOffsetMask)
	if r, err := q.refcount(host / q.cs); err != nil || r != 0 {
		return
	}
	if f := q.n.File; f != nil && f.Discard == "unmap" && f.Driver == DriverFile {
		_ = f.fileDiscard(host, q.cs)
	}
}

// status is the node's own status of [off, off+length): whole clusters of the same kind
// from off on (0: unallocated, the backing chain decides).
func (q *qcow2) status(off, length int64) (Status, int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var st Status
	var done int64
	first := true
	err := q.spans(off, length, func(s span) error {
		e, err := q.entry(s.g)
		if err != nil {
			return err
		}
		var cur Status
		switch q.kind(e) {
		case kindZeroPlain, kindZeroAlloc:
			cur = StatusZero
		case kindNormal, kindCompressed:
			cur = StatusData
		}
		if first {
			st, first = cur, false
		} else if cur != st {
			return errStop
		}
		done += s.b - s.a
		return nil
	})
	if err != nil && err != errStop {
		return 0, 0, err
	}
	return st, done, nil
}

// errStop ends a spans walk early.
var errStop = errors.New("stop")

// copyUp writes data, whole clusters from cluster-aligned off (the last may end at the
// virtual size), into the clusters still unallocated in this image only: the
// copy-on-read of block-stream, which must not overwrite what a guest wrote meanwhile.
// Each cluster is checked and filled under q.mu, so a concurrent guest write to it is
// wholly before (the cluster is skipped) or after. All-zero clusters become zero
// clusters on version 3.
func (q *qcow2) copyUp(off int64, data []byte) error {
	for i := int64(0); i < int64(len(data)); i += q.cs {
		chunk := data[i:min(i+q.cs, int64(len(data)))]
		if err := q.withEntry(off+i, func(e uint64) error {
			if q.kind(e) != kindUnallocated {
				return nil
			}
			if q.h.Version >= 3 && isZero(chunk) {
				return q.replaceEntry(off+i, oflagZero, false)
			}
			return q.writeAlloc(e, span{off + i, 0, int64(len(chunk))}, chunk)
		}); err != nil {
			return err
		}
	}
	return nil
}

// makeEmpty frees every cluster of the image, so that all of it reads from the backing
// file again (qcow2_make_empty after a commit: a full discard).
func (q *qcow2) makeEmpty() error {
	return q.spans(0, q.n.Size(), func(s span) error {
		return q.withEntry(s.g, func(e uint64) error {
			if e == 0 {
				return nil
			}
			if q.kind(e) == kindCompressed && !q.n.exclusive {
				return errExclusive
			}
			if err := q.replaceEntry(s.g, 0, true); err != nil {
				return err
			}
			if k := q.kind(e); k == kindNormal || k == kindZeroAlloc {
				q.discardHost(e)
			}
			return nil
		})
	})
}

package migration

import (
	"io"
	"sync"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// CapMappedRAM is QEMU 9.0's mapped-ram: a file: checkpoint with every RAM page at a fixed
// offset (migration/stream's NewMappedWriter). tlcvm offers it although QEMU 7.2 did not.
const CapMappedRAM Capability = "mapped-ram"

// errSeekable is QEMU 9.0's refusal of mapped-ram on a channel that cannot seek
// (migration_channels_and_transport_compatible).
const errSeekable = "Migration requires seekable transport (e.g. file)"

// checkSeekable refuses a (parsed with parseErr) when mapped-ram is on and it is not file:.
// A URI that does not parse is left to the usual checks (QEMU parses first, then checks the
// transport).
func checkSeekable(mapped bool, a transport.Address, parseErr error) error {
	if !mapped {
		return nil
	}
	if parseErr == nil && a.Scheme != transport.SchemeFile {
		return errorf(ErrInvalid, "%s", errSeekable)
	}
	return nil
}

// limitedAt gives the mapped-ram writer's positional writes the channel's cancellation
// and max-bandwidth (countWriter) as a stream's sequential writes have. Safe for the
// writer's concurrent page writers (multifd): the budget is shared, the writes are not
// serialized.
type limitedAt struct {
	f  io.WriterAt
	mu sync.Mutex
	cw countWriter
}

func (l *limitedAt) WriteAt(p []byte, off int64) (int, error) {
	written := 0
	for len(p) > 0 {
		l.mu.Lock()
		k, err := l.cw.grant(len(p))
		if err == nil {
			l.cw.windowBytes += uint64(k) // granted: counted before the write lands
		}
		l.mu.Unlock()
		if err != nil {
			return written, err
		}
		n, err := l.f.WriteAt(p[:k], off)
		written += n
		if err != nil {
			return written, err
		}
		p, off = p[n:], off+int64(n)
	}
	return written, nil
}

// loadMapped reads the pages of a verified mapped-ram stream into guest RAM, chunk by
// chunk, each chunk checked before it is applied; pages absent from the file are zero.
func loadMapped(rd *stream.Reader, f io.ReaderAt, order []stream.Block, blocks map[string]RAMBlock) error {
	var zero [pageSize]byte
	for i, sb := range order {
		b := blocks[sb.Name]
		err := rd.ReadMapped(f, i, func(p uint64, data []byte) {
			switch {
			case data != nil:
				b.WritePage(p, data)
			case b.Written(p):
				b.WritePage(p, zero[:])
			}
		})
		if err != nil {
			return wrapf(ErrLoad, err, "%s", err.Error())
		}
	}
	return nil
}

package migration

import (
	"io"
	"os"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// CapMappedRAM is QEMU 9.0's mapped-ram: a file: checkpoint with every RAM page at a fixed
// offset (migration/stream's NewMappedWriter). tlcvm offers it although QEMU 7.2 did not.
const CapMappedRAM Capability = "mapped-ram"

// errSeekable is QEMU 9.0's refusal of mapped-ram on a channel that cannot seek
// (migration_channels_and_transport_compatible).
const errSeekable = "Migration requires seekable transport (e.g. file)"

// checkSeekable refuses uri when mapped-ram is on and uri is not file:. A URI that does not
// parse is left to the usual checks (QEMU parses first, then checks the transport).
func checkSeekable(mapped bool, uri string) error {
	if !mapped {
		return nil
	}
	if a, err := transport.Parse(uri); err == nil && a.Scheme != transport.SchemeFile {
		return errorf(ErrInvalid, "%s", errSeekable)
	}
	return nil
}

// reopenMapped swaps the file transport.Open created (with QEMU's errors for a file that
// cannot be opened) for a descriptor the mapped-ram writer can pwrite at any offset. It
// returns the file and the stream's base offset.
func reopenMapped(uri string, out io.WriteCloser) (*os.File, uint64, error) {
	a, err := transport.Parse(uri)
	if err != nil {
		_ = transport.Abort(out)
		return nil, 0, wrapf(ErrInvalid, err, "%s", err.Error())
	}
	f, err := os.OpenFile(a.Path, os.O_WRONLY, 0)
	_ = out.Close() // nothing was written through it
	if err != nil {
		return nil, 0, wrapf(ErrSave, err, "Unable to open %s: %v", a.Path, err)
	}
	return f, a.Offset, nil
}

// limitedAt gives the mapped-ram writer's positional writes the channel's cancellation
// and max-bandwidth (countWriter) as a stream's sequential writes have.
type limitedAt struct {
	f  io.WriterAt
	cw countWriter
}

type atWriter struct {
	f   io.WriterAt
	off int64
}

func (a *atWriter) Write(p []byte) (int, error) {
	n, err := a.f.WriteAt(p, a.off)
	a.off += int64(n)
	return n, err
}

func (l *limitedAt) WriteAt(p []byte, off int64) (int, error) {
	l.cw.w = &atWriter{f: l.f, off: off}
	return l.cw.Write(p)
}

// loadURI loads the incoming stream: a file: one is read from the file itself (seekable:
// either layout, mapped-ram detected from its configuration section), any other from r.
func (e *Engine) loadURI(uri string, r io.Reader) (string, error) {
	a, err := transport.Parse(uri)
	if err != nil || a.Scheme != transport.SchemeFile {
		return e.Load(r)
	}
	f, err := os.Open(a.Path)
	if err != nil {
		return "", wrapf(ErrLoad, err, "Unable to open %s: %v", a.Path, err)
	}
	defer f.Close()
	if _, err := f.Seek(int64(a.Offset), io.SeekStart); err != nil {
		return "", wrapf(ErrLoad, err, "%s", err.Error())
	}
	return e.load(stream.NewFileReader(f, a.Offset), f)
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

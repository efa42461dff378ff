package migration

import (
	"io"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// The return path (capability return-path, and always with postcopy-ram): the source
// sends OPEN_RETURN_PATH and PING 1 after the header, and reads what comes back on its
// own goroutine; the destination answers PINGs with PONGs, sends SHUT 0 once it has
// completed, and (postcopy) asks for pages.

// rpSource is the source's end.
type rpSource struct {
	j    *job
	r    io.ReadCloser
	shut chan error // the SHUT's outcome (nil: value 0), or the read error; once
}

// openReturnPath opens the return path on the source's channel and starts reading it.
func (j *job) openReturnPath(out io.Writer) error {
	r, err := transport.ReturnPath(out)
	if err != nil {
		return err
	}
	rp := &rpSource{j: j, r: r, shut: make(chan error, 1)}
	j.rp = rp
	go rp.run()
	return nil
}

// run reads messages until SHUT or an error (QEMU's source_return_path_thread).
func (rp *rpSource) run() {
	j := rp.j
	rd := stream.NewRPReader(rp.r, j.blockPages)
	for {
		m, err := rd.Next()
		if err != nil {
			if !j.cancelled() && err != io.EOF && !j.pc.active.Load() {
				j.e.report("%v", trimFormat(err))
			}
			rp.broke()
			rp.shut <- shutErr(err)
			return
		}
		switch m.Type {
		case stream.RPShut:
			if m.Value != 0 {
				j.e.report("RP: Sibling indicated error %d", m.Value)
				rp.shut <- errorf(errNoDesc, "RP: Sibling indicated error %d", m.Value)
				return
			}
			rp.shut <- nil
			return
		case stream.RPPong:
			j.e.log.Debug().Uint32("value", m.Value).Msg("return path: pong")
		default:
			if err := j.handleRP(m); err != nil {
				j.e.report("%v", err)
				rp.broke()
				rp.shut <- err
				return
			}
		}
	}
}

// broke tells a postcopy that its return path failed: the link is broken, so the
// channel is aborted (a write blocked on it returns) and the migration pauses.
func (rp *rpSource) broke() {
	j := rp.j
	if !j.pc.active.Load() {
		return
	}
	select {
	case j.pc.broken <- struct{}{}:
	default:
	}
	j.mu.Lock()
	abort := j.abort
	j.mu.Unlock()
	if abort != nil {
		abort()
	}
}

// blockPages gives the size in pages of the source's RAM block named block.
func (j *job) blockPages(block string) (uint64, bool) {
	for _, b := range j.e.m.RAMBlocks() {
		if b.Name() == block {
			return b.Size() / pageSize, true
		}
	}
	return 0, false
}

// trimFormat drops the stream package's sentinel prefix from a return-path error, so
// that the text is QEMU's ("RP: Received invalid message …").
func trimFormat(err error) string {
	s := err.Error()
	if p := stream.ErrFormat.Error() + ": "; len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// rpDest is the destination's end: created at OPEN_RETURN_PATH.
type rpDest struct {
	w *stream.RPWriter
}

// openReply opens the destination's return path on the channel it reads.
func openReply(r io.Reader) (*rpDest, error) {
	w, err := transport.Reply(r)
	if err != nil {
		return nil, err
	}
	return &rpDest{w: stream.NewRPWriter(w)}, nil
}

package nbd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// conn is one client: the handshake (negotiate.go's option haggling) then the transmission
// phase (transmit.go), on the connection's own goroutine. Requests are served one at a
// time, in order; replies go out before the next request is read.
type conn struct {
	s  *Server
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer

	closeOnce sync.Once

	// Negotiated state (the connection's goroutine only).
	fixed      bool // the client speaks fixed newstyle
	noZeroes   bool
	structured bool
	meta       metaSelection // SET_META_CONTEXT's choice (for the export named meta.export)
	exp        *export       // the export after GO or EXPORT_NAME
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{s: s, nc: nc, r: bufio.NewReaderSize(nc, 64<<10), w: bufio.NewWriterSize(nc, 64<<10)}
}

// close ends the connection from outside (removal, server stop); the goroutine notices.
func (c *conn) close() {
	c.closeOnce.Do(func() { c.nc.Close() })
}

// serve runs the connection to its end.
func (c *conn) serve() {
	defer func() {
		c.close()
		c.s.gone(c, c.exp)
	}()
	if err := c.negotiate(); err != nil {
		c.s.log.Debug().Err(err).Msg("nbd: negotiation ended")
		return
	}
	if err := c.transmit(); err != nil {
		c.s.log.Debug().Err(err).Msg("nbd: connection ended")
	}
}

// flush sends what is buffered.
func (c *conn) flush() error { return c.w.Flush() }

// metaSelection is the meta contexts a client selected for one export.
type metaSelection struct {
	export          string
	valid           bool
	baseAllocation  bool
	allocationDepth bool
	bitmaps         []bool // by index of the export's bitmaps
}

func (m *metaSelection) count() int {
	n := 0
	if m.baseAllocation {
		n++
	}
	if m.allocationDepth {
		n++
	}
	for _, b := range m.bitmaps {
		if b {
			n++
		}
	}
	return n
}

// optReader reads an option's data with bounds, as QEMU's nbd_opt_read does: running
// past the option's length is the client's error (NBD_REP_ERR_INVALID), never an
// out-of-bounds access.
type optReader struct {
	data []byte
	off  int
}

var errShort = errors.New("nbd: option too short")

func (o *optReader) u16() (uint16, error) {
	if len(o.data)-o.off < 2 {
		return 0, errShort
	}
	v := binary.BigEndian.Uint16(o.data[o.off:])
	o.off += 2
	return v, nil
}

func (o *optReader) u32() (uint32, error) {
	if len(o.data)-o.off < 4 {
		return 0, errShort
	}
	v := binary.BigEndian.Uint32(o.data[o.off:])
	o.off += 4
	return v, nil
}

// str reads a u32 length and that many bytes (at most MaxStringSize).
func (o *optReader) str() (string, error) {
	n, err := o.u32()
	if err != nil {
		return "", err
	}
	if n > MaxStringSize || uint64(n) > uint64(len(o.data)-o.off) {
		return "", errShort
	}
	s := string(o.data[o.off : o.off+int(n)])
	o.off += int(n)
	return s, nil
}

func (o *optReader) rest() int { return len(o.data) - o.off }

// metaQuery is one meta context query's meaning for an export.
type metaQuery struct {
	base, depth bool
	bitmaps     []int // indexes of the export's bitmaps
}

// matchMeta resolves a query (QEMU's nbd_meta_base_query / nbd_meta_qemu_query): on LIST
// the namespace alone ("base:", "qemu:", "qemu:dirty-bitmap:") and an empty query select
// everything below; on SET only full names do.
func matchMeta(e *export, q string, list bool) metaQuery {
	var m metaQuery
	switch {
	case q == "base:allocation" || list && q == "base:":
		m.base = true
	case q == "qemu:allocation-depth" && e.cfg.AllocationDepth:
		m.depth = true
	case list && q == "qemu:":
		m.depth = e.cfg.AllocationDepth
		for i := range e.cfg.Bitmaps {
			m.bitmaps = append(m.bitmaps, i)
		}
	case list && q == "qemu:dirty-bitmap:":
		for i := range e.cfg.Bitmaps {
			m.bitmaps = append(m.bitmaps, i)
		}
	case strings.HasPrefix(q, "qemu:dirty-bitmap:"):
		name := strings.TrimPrefix(q, "qemu:dirty-bitmap:")
		for i, b := range e.cfg.Bitmaps {
			if b.Name() == name {
				m.bitmaps = append(m.bitmaps, i)
			}
		}
	}
	return m
}

// contextName is the name of meta context id for e.
func contextName(e *export, id uint32) string {
	switch id {
	case MetaIDBaseAllocation:
		return "base:allocation"
	case MetaIDAllocationDepth:
		return "qemu:allocation-depth"
	}
	return "qemu:dirty-bitmap:" + e.cfg.Bitmaps[id-MetaIDDirtyBitmap].Name()
}

// errorf is a connection-level failure (the connection is closed).
func errorf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, a...)...)
}

// discard skips n bytes of the client's stream (an option's data tlcvm does not read).
func (c *conn) discard(n uint32) error {
	if n > maxSkip {
		return errorf("option of %d bytes", n)
	}
	_, err := io.CopyN(io.Discard, c.r, int64(n))
	return err
}

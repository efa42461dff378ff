package nbd

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// A hostile client gets errors or a closed connection, never a panic or an access out of
// bounds: the fuzzers feed arbitrary bytes as a client's side of the conversation, from
// the first option (FuzzNegotiate) or after a valid handshake into an export with every
// meta context selected (FuzzTransmit).

// fuzzConn is a net.Conn reading the fuzzer's bytes and discarding what the server sends.
type fuzzConn struct{ r io.Reader }

func (f *fuzzConn) Read(p []byte) (int, error)         { return f.r.Read(p) }
func (f *fuzzConn) Write(p []byte) (int, error)        { return len(p), nil }
func (f *fuzzConn) Close() error                       { return nil }
func (f *fuzzConn) LocalAddr() net.Addr                { return &net.UnixAddr{Name: "fuzz", Net: "unix"} }
func (f *fuzzConn) RemoteAddr() net.Addr               { return &net.UnixAddr{Name: "fuzz", Net: "unix"} }
func (f *fuzzConn) SetDeadline(t time.Time) error      { return nil }
func (f *fuzzConn) SetReadDeadline(t time.Time) error  { return nil }
func (f *fuzzConn) SetWriteDeadline(t time.Time) error { return nil }

// flatDevice is a small in-memory device whose first half is data and second half a hole.
type flatDevice struct{ data []byte }

func (d *flatDevice) ReadAt(p []byte, off int64) (int, error) { return copy(p, d.data[off:]), nil }
func (d *flatDevice) WriteAt(p []byte, off int64) (int, error) {
	return copy(d.data[off:], p), nil
}
func (d *flatDevice) WriteZeroes(off, length int64, _ bool) error {
	clear(d.data[off : off+length])
	return nil
}
func (d *flatDevice) Trim(off, length int64) error { return d.WriteZeroes(off, length, true) }
func (d *flatDevice) Flush() error                 { return nil }
func (d *flatDevice) Status(off, length int64) (Extent, error) {
	half := int64(len(d.data)) / 2
	if off < half {
		return Extent{Length: min(length, half-off), Data: true, Depth: 1}, nil
	}
	return Extent{Length: length, Zero: true}, nil
}

type flatBitmap struct{}

func (flatBitmap) Name() string { return "b" }
func (flatBitmap) Extents(off, length int64, fn func(int64, int64, bool) bool) {
	for o := off; o < off+length; o += 4096 {
		if !fn(o, min(4096, off+length-o), o/4096%2 == 0) {
			return
		}
	}
}

// fuzzServer is a running server (no listener) with a writable and a read-only export.
func fuzzServer() *Server {
	s := NewServer(Config{})
	s.running = true
	for _, c := range []ExportConfig{
		{ID: "w", Name: "w", Device: &flatDevice{data: make([]byte, 1<<16)}, Size: 1 << 16, Writable: true,
			Bitmaps: []DirtyBitmap{flatBitmap{}}, AllocationDepth: true},
		{ID: "r", Name: "", Device: &flatDevice{data: make([]byte, 8192)}, Size: 8192},
	} {
		if err := s.Add(c); err != nil {
			panic(err)
		}
	}
	return s
}

// serveInput runs one connection over the given client bytes to its end.
func serveInput(s *Server, in []byte) {
	c := newConn(s, &fuzzConn{r: bytes.NewReader(in)})
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.serve()
}

// handshake is a valid client side up to GO "w" with structured replies and every meta
// context selected.
func handshake() []byte {
	var b []byte
	b = appendU32(b, cflagFixedNewstyle|cflagNoZeroes)
	opt := func(o uint32, data []byte) {
		b = appendU64(b, optMagic)
		b = appendU32(b, o)
		b = appendU32(b, uint32(len(data)))
		b = append(b, data...)
	}
	opt(OptStructuredReply, nil)
	opt(OptSetMetaContext, metaData("w", []string{"base:allocation", "qemu:allocation-depth", "qemu:dirty-bitmap:b"}))
	opt(OptGo, []byte{0, 0, 0, 1, 'w', 0, 0})
	return b
}

func req(typ, flags uint16, off uint64, length uint32, data []byte) []byte {
	var b []byte
	b = appendU32(b, requestMagic)
	b = appendU16(b, flags)
	b = appendU16(b, typ)
	b = appendU64(b, 7)
	b = appendU64(b, off)
	b = appendU32(b, length)
	return append(b, data...)
}

func FuzzNegotiate(f *testing.F) {
	h := handshake()
	f.Add(h)
	f.Add(h[:20])
	f.Add(appendU32(nil, 0xffffffff))
	var list []byte
	list = appendU32(list, cflagFixedNewstyle)
	list = appendU64(list, optMagic)
	list = appendU32(list, OptList)
	list = appendU32(list, 0)
	f.Add(list)
	var info []byte
	info = appendU32(info, cflagFixedNewstyle)
	info = appendU64(info, optMagic)
	info = appendU32(info, OptInfo)
	info = appendU32(info, 7)
	info = append(info, 0xff, 0xff, 0xff, 0xff, 0, 0, 0)
	f.Add(info)
	f.Add(append(appendU32(nil, 0), append(appendU64(nil, optMagic), 0, 0, 0, 1, 0, 0, 0, 1, 'w')...))
	f.Fuzz(func(t *testing.T, in []byte) {
		serveInput(fuzzServer(), in)
	})
}

func FuzzTransmit(f *testing.F) {
	f.Add(req(CmdRead, 0, 0, 4096, nil))
	f.Add(req(CmdWrite, CmdFlagFUA, 100, 4, []byte{1, 2, 3, 4}))
	f.Add(req(CmdBlockStatus, CmdFlagReqOne, 0, 1<<16, nil))
	f.Add(req(CmdBlockStatus, 0, 30000, 30000, nil))
	f.Add(req(CmdWriteZeroes, CmdFlagNoHole|CmdFlagFastZero, 0, 1<<16, nil))
	f.Add(req(CmdTrim, 0, 1<<16, 1, nil))
	f.Add(req(CmdRead, CmdFlagDF, 1<<64-1, 1<<32-1, nil))
	f.Add(req(CmdWrite, 0, 0, 1<<31, nil))
	f.Add(append(req(CmdFlush, 0, 0, 0, nil), req(CmdDisc, 0, 0, 0, nil)...))
	prefix := handshake()
	f.Fuzz(func(t *testing.T, in []byte) {
		serveInput(fuzzServer(), append(append([]byte(nil), prefix...), in...))
	})
}

// TestFuzzSeedsEndCleanly: each seed ends its connection without leaving it attached.
func TestFuzzSeedsEndCleanly(t *testing.T) {
	s := fuzzServer()
	serveInput(s, append(handshake(), req(CmdRead, 0, 0, 16, nil)...))
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) != 0 {
		t.Errorf("%d connections left", len(s.conns))
	}
	for _, e := range s.exports {
		if len(e.clients) != 0 {
			t.Errorf("export %s still has clients", e.cfg.ID)
		}
	}
}

// chunk is a structured reply chunk on the wire (handle 7).
func chunk(flags, typ uint16, payload []byte) []byte {
	var b []byte
	b = appendU32(b, structMagic)
	b = appendU16(b, flags)
	b = appendU16(b, typ)
	b = appendU64(b, 7)
	b = appendU32(b, uint32(len(payload)))
	return append(b, payload...)
}

// FuzzClientReply feeds a server's bytes to the client's reply parser (ReadReply) for a
// read and a block status request, then assembles what it accepted: no input may panic or
// make the client write outside its buffer.
func FuzzClientReply(f *testing.F) {
	data := append(appendU64(nil, 4096), make([]byte, 512)...)
	hole := appendU32(appendU64(nil, 4096+512), 512)
	f.Add(uint8(0), append(chunk(0, ReplyTypeOffsetData, data), chunk(ReplyFlagDone, ReplyTypeOffsetHole, hole)...))
	f.Add(uint8(1), chunk(ReplyFlagDone, ReplyTypeBlockStatus, append(appendU32(nil, 0), append(appendU32(nil, 1024), 0, 0, 0, 3)...)))
	f.Add(uint8(0), chunk(ReplyFlagDone, ReplyTypeError, append(appendU32(nil, 5), append(appendU16(nil, 2), 'n', 'o')...)))
	f.Add(uint8(0), chunk(ReplyFlagDone, ReplyTypeErrorOffset, append(appendU32(nil, 5), append(appendU16(nil, 0), appendU64(nil, 4096)...)...)))
	f.Add(uint8(2), append(appendU32(nil, simpleMagic), append(appendU32(nil, 0), appendU64(nil, 7)...)...))
	f.Add(uint8(0), chunk(ReplyFlagDone, ReplyTypeNone, nil))
	f.Fuzz(func(t *testing.T, kind uint8, in []byte) {
		req := Request{Type: CmdRead, Handle: 7, Offset: 4096, Length: 1024}
		structured := kind%3 != 2
		if kind%3 == 1 {
			req.Type = CmdBlockStatus
		}
		rep, err := ReadReply(bytes.NewReader(in), req, structured)
		if err != nil {
			return
		}
		if req.Type == CmdRead {
			_ = rep.readInto(make([]byte, req.Length), int64(req.Offset))
			return
		}
		_, _ = rep.extents(map[uint32]string{0: "base:allocation"})
	})
}

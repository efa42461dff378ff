package nbd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Client is a minimal NBD client (fixed newstyle, structured replies, meta contexts): what
// a block driver needs to read and write an export — the target of a drive mirror during
// a migration with storage — and what the tests drive the server with. It sends one
// request at a time.
type Client struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer

	mu         sync.Mutex
	handle     uint64
	structured bool
	broken     error // set once a reply could not be read: the connection is unusable
	// Size and Flags describe the export after Go.
	Size  int64
	Flags uint16
	// Contexts are the meta contexts SetMeta selected, by id.
	Contexts map[uint32]string
}

// ErrReply is an error value the server returned for a request (Errno).
type ErrReply struct {
	Errno uint32
	Msg   string
}

func (e *ErrReply) Error() string {
	if e.Msg != "" {
		return fmt.Sprintf("nbd: error %d: %s", e.Errno, e.Msg)
	}
	return fmt.Sprintf("nbd: error %d", e.Errno)
}

// OptError is an option's error reply (NBD_REP_ERR_*).
type OptError struct {
	Rep uint32
	Msg string
}

func (e *OptError) Error() string { return fmt.Sprintf("nbd: option error 0x%x: %s", e.Rep, e.Msg) }

// NewClient does the handshake's greeting on nc (fixed newstyle, no zeroes).
func NewClient(nc net.Conn) (*Client, error) {
	c := &Client{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	var b [18]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return nil, err
	}
	be := binary.BigEndian
	if be.Uint64(b[0:]) != nbdMagic || be.Uint64(b[8:]) != optMagic {
		return nil, errors.New("nbd: not a newstyle NBD server")
	}
	if be.Uint16(b[16:])&flagFixedNewstyle == 0 {
		return nil, errors.New("nbd: server is not fixed newstyle")
	}
	if _, err := c.w.Write(appendU32(nil, cflagFixedNewstyle|cflagNoZeroes)); err != nil {
		return nil, err
	}
	return c, c.w.Flush()
}

// Close closes the connection (after NBD_CMD_DISC when in transmission).
func (c *Client) Close() error { return c.nc.Close() }

// OptReply is one reply to an option.
type OptReply struct {
	Type uint32
	Data []byte
}

// Option sends an option and reads its replies up to the final one (ACK or an error);
// the replies before it are returned, the error as *OptError.
func (c *Client) Option(opt uint32, data []byte) ([]OptReply, error) {
	var h []byte
	h = appendU64(h, optMagic)
	h = appendU32(h, opt)
	h = appendU32(h, uint32(len(data)))
	if _, err := c.w.Write(append(h, data...)); err != nil {
		return nil, err
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	var out []OptReply
	for {
		var b [20]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return out, err
		}
		be := binary.BigEndian
		if be.Uint64(b[0:]) != repMagic || be.Uint32(b[8:]) != opt {
			return out, errors.New("nbd: bad option reply")
		}
		typ, n := be.Uint32(b[12:]), be.Uint32(b[16:])
		if n > maxSkip {
			return out, errors.New("nbd: option reply too long")
		}
		d := make([]byte, n)
		if _, err := io.ReadFull(c.r, d); err != nil {
			return out, err
		}
		switch {
		case typ == RepAck:
			return out, nil
		case typ&repFlagError != 0:
			return out, &OptError{Rep: typ, Msg: string(d)}
		}
		out = append(out, OptReply{Type: typ, Data: d})
	}
}

// StructuredReplies asks for structured replies.
func (c *Client) StructuredReplies() error {
	if _, err := c.Option(OptStructuredReply, nil); err != nil {
		return err
	}
	c.structured = true
	return nil
}

// metaData is a meta context option's data.
func metaData(export string, queries []string) []byte {
	var d []byte
	d = appendU32(d, uint32(len(export)))
	d = append(d, export...)
	d = appendU32(d, uint32(len(queries)))
	for _, q := range queries {
		d = appendU32(d, uint32(len(q)))
		d = append(d, q...)
	}
	return d
}

// Meta sends NBD_OPT_LIST_META_CONTEXT (set false) or NBD_OPT_SET_META_CONTEXT and
// returns the contexts by id; after a SET they are the ones BlockStatus reports.
func (c *Client) Meta(set bool, export string, queries ...string) (map[uint32]string, error) {
	opt := uint32(OptListMetaContext)
	if set {
		opt = OptSetMetaContext
	}
	reps, err := c.Option(opt, metaData(export, queries))
	if err != nil {
		return nil, err
	}
	out := map[uint32]string{}
	for _, r := range reps {
		if r.Type != RepMetaContext || len(r.Data) < 4 {
			return nil, errors.New("nbd: bad meta context reply")
		}
		out[binary.BigEndian.Uint32(r.Data)] = string(r.Data[4:])
	}
	if set {
		c.Contexts = out
	}
	return out, nil
}

// Go selects the export (NBD_OPT_GO) and starts the transmission phase.
func (c *Client) Go(export string) error {
	var d []byte
	d = appendU32(d, uint32(len(export)))
	d = append(d, export...)
	d = appendU16(d, 1)
	d = appendU16(d, InfoBlockSize)
	reps, err := c.Option(OptGo, d)
	if err != nil {
		return err
	}
	for _, r := range reps {
		if r.Type == RepInfo && len(r.Data) >= 12 && binary.BigEndian.Uint16(r.Data) == InfoExport {
			c.Size = int64(binary.BigEndian.Uint64(r.Data[2:]))
			c.Flags = binary.BigEndian.Uint16(r.Data[10:])
			return nil
		}
	}
	return errors.New("nbd: no NBD_INFO_EXPORT in the reply to NBD_OPT_GO")
}

// ExportName selects the export the old way (NBD_OPT_EXPORT_NAME, for servers without
// NBD_OPT_GO): the server answers with the export's size and flags, or closes the
// connection when it has no such export.
func (c *Client) ExportName(export string) error {
	var h []byte
	h = appendU64(h, optMagic)
	h = appendU32(h, OptExportName)
	h = appendU32(h, uint32(len(export)))
	if _, err := c.w.Write(append(h, export...)); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	var b [10]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return fmt.Errorf("nbd: server rejected export %q: %w", export, err)
	}
	c.Size = int64(binary.BigEndian.Uint64(b[:]))
	c.Flags = binary.BigEndian.Uint16(b[8:])
	return nil
}

// Structured reports whether structured replies were negotiated.
func (c *Client) Structured() bool { return c.structured }

// Connect does QEMU's client handshake on nc (nbd_receive_negotiate): structured replies
// (a server without them is served with simple replies), the meta contexts asked for when
// structured replies are on (an unknown one is simply not selected), then NBD_OPT_GO, or
// NBD_OPT_EXPORT_NAME when the server does not know NBD_OPT_GO. On failure nc is closed.
func Connect(nc net.Conn, export string, meta ...string) (*Client, error) {
	c, err := NewClient(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	fail := func(err error) (*Client, error) {
		nc.Close()
		return nil, err
	}
	if err := c.StructuredReplies(); err != nil && !isOptErr(err, RepErrUnsup, RepErrPolicy) {
		return fail(err)
	}
	c.Contexts = map[uint32]string{}
	if c.structured && len(meta) > 0 {
		if _, err := c.Meta(true, export, meta...); err != nil && !isOptErr(err, RepErrUnsup, RepErrPolicy) {
			return fail(err)
		}
	}
	err = c.Go(export)
	if isOptErr(err, RepErrUnsup) {
		err = c.ExportName(export)
	}
	if err != nil {
		return fail(err)
	}
	if c.Flags&FlagHasFlags == 0 {
		c.Flags = FlagHasFlags // an old server's export: nothing but reads and writes
	}
	return c, nil
}

// isOptErr reports whether err is an option error of one of the given types.
func isOptErr(err error, reps ...uint32) bool {
	var oe *OptError
	if !errors.As(err, &oe) {
		return false
	}
	for _, r := range reps {
		if oe.Rep == r {
			return true
		}
	}
	return false
}

// Context is the id of the selected meta context name, and whether it was selected.
func (c *Client) Context(name string) (uint32, bool) {
	for id, n := range c.Contexts {
		if n == name {
			return id, true
		}
	}
	return 0, false
}

// Chunk is one structured reply chunk.
type Chunk struct {
	Flags, Type uint16
	Payload     []byte
}

// Reply is a request's reply: a simple one (Chunks nil) or the chunks up to DONE.
type Reply struct {
	Errno  uint32
	Data   []byte // simple reply data (reads)
	Chunks []Chunk
}

// Do sends one request and reads its reply (parsed by ReadReply).
func (c *Client) Do(typ, flags uint16, off uint64, length uint32, data []byte) (*Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, c.broken
	}
	c.handle++
	var h []byte
	h = appendU32(h, requestMagic)
	h = appendU16(h, flags)
	h = appendU16(h, typ)
	h = appendU64(h, c.handle)
	h = appendU64(h, off)
	h = appendU32(h, length)
	if _, err := c.w.Write(append(h, data...)); err != nil {
		return nil, c.fail(err)
	}
	if err := c.w.Flush(); err != nil {
		return nil, c.fail(err)
	}
	if typ == CmdDisc {
		return nil, nil
	}
	rep, err := ReadReply(c.r, Request{Type: typ, Handle: c.handle, Offset: off, Length: length}, c.structured)
	if err != nil {
		return nil, c.fail(err)
	}
	return rep, nil
}

// fail marks the connection unusable after a transport or protocol error: the replies
// that follow cannot be matched to requests any more (QEMU's client quits the connection
// the same way).
func (c *Client) fail(err error) error {
	c.broken = fmt.Errorf("nbd: connection failed: %w", err)
	c.nc.Close()
	return err
}

// Request is what ReadReply checks a reply against.
type Request struct {
	Type           uint16
	Handle, Offset uint64
	Length         uint32
}

// ErrProtocol is a server's reply that breaks the protocol.
var ErrProtocol = errors.New("nbd: protocol error")

func protoErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, a...))
}

// ReadReply reads one request's reply from r: a simple reply (a read's carries its data)
// or structured chunks up to the one flagged DONE, each checked as QEMU's client checks
// them (nbd_co_receive_one_chunk, nbd_parse_*_payload): the handle is the request's, a
// chunk type fits the command (data and holes answer reads only, block status only
// BLOCK_STATUS), offsets and lengths lie inside the request, an error chunk's message
// inside its payload and its errno nonzero, and a structured connection gets a simple
// reply only for an error. Lengths are checked before anything is allocated.
func ReadReply(r io.Reader, req Request, structured bool) (*Reply, error) {
	be := binary.BigEndian
	rep := &Reply{}
	for {
		var m [4]byte
		if _, err := io.ReadFull(r, m[:]); err != nil {
			return nil, err
		}
		switch be.Uint32(m[:]) {
		case simpleMagic:
			if rep.Chunks != nil {
				return nil, protoErr("simple reply after structured chunks")
			}
			var b [12]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil, err
			}
			rep.Errno = be.Uint32(b[0:])
			if be.Uint64(b[4:]) != req.Handle {
				return nil, protoErr("reply for another request")
			}
			if structured && req.Type == CmdRead && rep.Errno == 0 {
				return nil, protoErr("simple reply is only allowed for errors of a structured read")
			}
			if req.Type == CmdRead && rep.Errno == 0 {
				if req.Length > MaxBufferSize {
					return nil, protoErr("read of %d bytes", req.Length)
				}
				rep.Data = make([]byte, req.Length)
				if _, err := io.ReadFull(r, rep.Data); err != nil {
					return nil, err
				}
			}
			return rep, nil
		case structMagic:
			if !structured {
				return nil, protoErr("structured reply without negotiation")
			}
			var b [16]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil, err
			}
			ch := Chunk{Flags: be.Uint16(b[0:]), Type: be.Uint16(b[2:])}
			if be.Uint64(b[4:]) != req.Handle {
				return nil, protoErr("reply for another request")
			}
			n := be.Uint32(b[12:])
			if err := checkChunkHeader(ch, n, req); err != nil {
				return nil, err
			}
			ch.Payload = make([]byte, n)
			if _, err := io.ReadFull(r, ch.Payload); err != nil {
				return nil, err
			}
			if err := checkChunk(ch, req); err != nil {
				return nil, err
			}
			if ch.Type&(1<<15) != 0 && rep.Errno == 0 {
				rep.Errno = be.Uint32(ch.Payload)
			}
			rep.Chunks = append(rep.Chunks, ch)
			if ch.Flags&ReplyFlagDone != 0 {
				return rep, nil
			}
		default:
			return nil, protoErr("bad reply magic 0x%08x", be.Uint32(m[:]))
		}
	}
}

// checkChunkHeader checks a chunk's type and length before its payload is read.
func checkChunkHeader(ch Chunk, n uint32, req Request) error {
	switch ch.Type {
	case ReplyTypeNone:
		if ch.Flags&ReplyFlagDone == 0 || n != 0 {
			return protoErr("NBD_REPLY_TYPE_NONE chunk without NBD_REPLY_FLAG_DONE or with a payload")
		}
	case ReplyTypeOffsetData:
		if req.Type != CmdRead || n < 8 || n-8 > req.Length {
			return protoErr("unexpected data chunk")
		}
	case ReplyTypeOffsetHole:
		if req.Type != CmdRead || n != 12 {
			return protoErr("unexpected hole chunk")
		}
	case ReplyTypeBlockStatus:
		if req.Type != CmdBlockStatus || n < 12 || (n-4)%8 != 0 || n > 4+8*maxExtents {
			return protoErr("unexpected block status chunk")
		}
	case ReplyTypeError, ReplyTypeErrorOffset:
		if n < 6 || n > 6+MaxStringSize+8 {
			return protoErr("bad error chunk length %d", n)
		}
	default:
		if ch.Type&(1<<15) == 0 {
			return protoErr("unknown chunk type %d", ch.Type)
		}
		if n < 6 || n > maxSkip { // an unknown error type: its errno and message are read
			return protoErr("bad error chunk length %d", n)
		}
	}
	return nil
}

// checkChunk checks a chunk's payload against the request.
func checkChunk(ch Chunk, req Request) error {
	be := binary.BigEndian
	p := ch.Payload
	inside := func(off uint64, n uint64) bool {
		return off >= req.Offset && n <= uint64(req.Length) && off-req.Offset <= uint64(req.Length)-n
	}
	switch ch.Type {
	case ReplyTypeNone:
	case ReplyTypeOffsetData:
		if !inside(be.Uint64(p), uint64(len(p)-8)) || len(p) == 8 {
			return protoErr("data chunk out of range")
		}
	case ReplyTypeOffsetHole:
		if n := be.Uint32(p[8:]); n == 0 || !inside(be.Uint64(p), uint64(n)) {
			return protoErr("hole chunk out of range")
		}
	case ReplyTypeBlockStatus:
		for q := p[4:]; len(q) >= 8; q = q[8:] {
			if be.Uint32(q) == 0 {
				return protoErr("block status extent of length 0")
			}
		}
	default: // errors
		if be.Uint32(p) == 0 {
			return protoErr("error chunk with errno 0")
		}
		if int(be.Uint16(p[4:]))+6 > len(p) {
			return protoErr("error chunk message longer than its payload")
		}
		if ch.Type == ReplyTypeErrorOffset {
			if int(be.Uint16(p[4:]))+14 != len(p) || !inside(be.Uint64(p[len(p)-8:]), 0) {
				return protoErr("error chunk offset out of range")
			}
		}
	}
	return nil
}

// err is the reply's error as *ErrReply (nil on success).
func (r *Reply) err() error {
	if r.Errno == 0 {
		return nil
	}
	e := &ErrReply{Errno: r.Errno}
	for _, ch := range r.Chunks {
		if ch.Type&(1<<15) != 0 && len(ch.Payload) >= 6 {
			n := int(binary.BigEndian.Uint16(ch.Payload[4:]))
			if 6+n <= len(ch.Payload) {
				e.Msg = string(ch.Payload[6 : 6+n])
			}
		}
	}
	return e
}

// ReadAt reads len(p) bytes at off, assembling data and hole chunks.
func (c *Client) ReadAt(p []byte, off int64) (int, error) {
	rep, err := c.Do(CmdRead, 0, uint64(off), uint32(len(p)), nil)
	if err != nil {
		return 0, err
	}
	if err := rep.readInto(p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}

// readInto puts a read reply's data into p (the request was len(p) bytes at off): the
// simple reply's bytes, or the data and hole chunks, which must cover p (chunks were
// checked against the request as they were read).
func (r *Reply) readInto(p []byte, off int64) error {
	if err := r.err(); err != nil {
		return err
	}
	if r.Chunks == nil {
		if len(r.Data) != len(p) {
			return protoErr("read reply of %d bytes for %d", len(r.Data), len(p))
		}
		copy(p, r.Data)
		return nil
	}
	be := binary.BigEndian
	covered := 0
	for _, ch := range r.Chunks {
		switch ch.Type {
		case ReplyTypeOffsetData:
			o := int64(be.Uint64(ch.Payload)) - off
			covered += copy(p[o:], ch.Payload[8:])
		case ReplyTypeOffsetHole:
			o := int64(be.Uint64(ch.Payload)) - off
			n := int64(be.Uint32(ch.Payload[8:]))
			clear(p[o : o+n])
			covered += int(n)
		}
	}
	if covered != len(p) {
		return protoErr("read reply covers %d bytes of %d", covered, len(p))
	}
	return nil
}

// WriteAt writes p at off (with NBD_CMD_FLAG_FUA when fua).
func (c *Client) WriteAt(p []byte, off int64) (int, error) {
	rep, err := c.Do(CmdWrite, 0, uint64(off), uint32(len(p)), p)
	if err != nil {
		return 0, err
	}
	if err := rep.err(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Command sends a request without data (flush, trim, write zeroes, cache) and returns
// the server's error.
func (c *Client) Command(typ, flags uint16, off int64, length uint32) error {
	rep, err := c.Do(typ, flags, uint64(off), length, nil)
	if err != nil {
		return err
	}
	return rep.err()
}

// Descriptor is one block status extent.
type Descriptor struct {
	Length, Flags uint32
}

// BlockStatus returns the extents of each selected context for [off, off+length).
func (c *Client) BlockStatus(off int64, length uint32, flags uint16) (map[uint32][]Descriptor, error) {
	rep, err := c.Do(CmdBlockStatus, flags, uint64(off), length, nil)
	if err != nil {
		return nil, err
	}
	return rep.extents(c.Contexts)
}

// extents are a block status reply's descriptors by context id; every id must be one of
// the selected contexts.
func (r *Reply) extents(contexts map[uint32]string) (map[uint32][]Descriptor, error) {
	if err := r.err(); err != nil {
		return nil, err
	}
	out := map[uint32][]Descriptor{}
	for _, ch := range r.Chunks {
		if ch.Type != ReplyTypeBlockStatus {
			continue
		}
		id := binary.BigEndian.Uint32(ch.Payload)
		if _, ok := contexts[id]; !ok {
			return nil, protoErr("block status for context %d that was not selected", id)
		}
		for p := ch.Payload[4:]; len(p) >= 8; p = p[8:] {
			out[id] = append(out[id], Descriptor{binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])})
		}
	}
	return out, nil
}

// Disconnect sends NBD_CMD_DISC and closes the connection.
func (c *Client) Disconnect() error {
	_, _ = c.Do(CmdDisc, 0, 0, 0, nil)
	return c.Close()
}

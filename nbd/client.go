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

// Do sends one request and reads its reply; readLen is the data a simple read reply
// carries.
func (c *Client) Do(typ, flags uint16, off uint64, length uint32, data []byte) (*Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handle++
	var h []byte
	h = appendU32(h, requestMagic)
	h = appendU16(h, flags)
	h = appendU16(h, typ)
	h = appendU64(h, c.handle)
	h = appendU64(h, off)
	h = appendU32(h, length)
	if _, err := c.w.Write(append(h, data...)); err != nil {
		return nil, err
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	if typ == CmdDisc {
		return nil, nil
	}
	rep := &Reply{}
	for {
		var m [4]byte
		if _, err := io.ReadFull(c.r, m[:]); err != nil {
			return nil, err
		}
		be := binary.BigEndian
		switch be.Uint32(m[:]) {
		case simpleMagic:
			var b [12]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return nil, err
			}
			rep.Errno = be.Uint32(b[0:])
			if be.Uint64(b[4:]) != c.handle {
				return nil, errors.New("nbd: reply for another request")
			}
			if typ == CmdRead && rep.Errno == 0 {
				rep.Data = make([]byte, length)
				if _, err := io.ReadFull(c.r, rep.Data); err != nil {
					return nil, err
				}
			}
			return rep, nil
		case structMagic:
			var b [16]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return nil, err
			}
			ch := Chunk{Flags: be.Uint16(b[0:]), Type: be.Uint16(b[2:])}
			if be.Uint64(b[4:]) != c.handle {
				return nil, errors.New("nbd: reply for another request")
			}
			n := be.Uint32(b[12:])
			if n > MaxBufferSize+64 {
				return nil, errors.New("nbd: chunk too long")
			}
			ch.Payload = make([]byte, n)
			if _, err := io.ReadFull(c.r, ch.Payload); err != nil {
				return nil, err
			}
			if ch.Type&(1<<15) != 0 && len(ch.Payload) >= 6 {
				rep.Errno = be.Uint32(ch.Payload)
			}
			rep.Chunks = append(rep.Chunks, ch)
			if ch.Flags&ReplyFlagDone != 0 {
				return rep, nil
			}
		default:
			return nil, errors.New("nbd: bad reply magic")
		}
	}
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
	if err := rep.err(); err != nil {
		return 0, err
	}
	if rep.Chunks == nil {
		return copy(p, rep.Data), nil
	}
	for _, ch := range rep.Chunks {
		be := binary.BigEndian
		switch ch.Type {
		case ReplyTypeOffsetData:
			if len(ch.Payload) < 8 {
				return 0, errors.New("nbd: bad data chunk")
			}
			o := int64(be.Uint64(ch.Payload)) - off
			if o < 0 || o+int64(len(ch.Payload)-8) > int64(len(p)) {
				return 0, errors.New("nbd: data chunk out of range")
			}
			copy(p[o:], ch.Payload[8:])
		case ReplyTypeOffsetHole:
			if len(ch.Payload) != 12 {
				return 0, errors.New("nbd: bad hole chunk")
			}
			o := int64(be.Uint64(ch.Payload)) - off
			n := int64(be.Uint32(ch.Payload[8:]))
			if o < 0 || o+n > int64(len(p)) {
				return 0, errors.New("nbd: hole chunk out of range")
			}
			clear(p[o : o+n])
		}
	}
	return len(p), nil
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
	if err := rep.err(); err != nil {
		return nil, err
	}
	out := map[uint32][]Descriptor{}
	for _, ch := range rep.Chunks {
		if ch.Type != ReplyTypeBlockStatus || len(ch.Payload) < 4 || (len(ch.Payload)-4)%8 != 0 {
			return nil, errors.New("nbd: bad block status chunk")
		}
		id := binary.BigEndian.Uint32(ch.Payload)
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

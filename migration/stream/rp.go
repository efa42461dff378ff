package stream

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// The return path: messages a destination sends back to its source on the same channel,
// in the other direction (QEMU 7.2 migration/migration.c, enum mig_rp_message_type):
//
//	be16 type  be16 length  length bytes
//
//	SHUT          1  be32 error (0: the destination loaded the whole stream)
//	PONG          2  be32 the PING's value
//	REQ_PAGES_ID  3  be64 start, be32 length (bytes in the block), u8 len, block name
//	REQ_PAGES     4  be64 start, be32 length: the block of the previous request
//	RECV_BITMAP   5  u8 len, block name; then, outside the message, be64 size, size
//	                 bytes of the block's received bitmap (little-endian 64-bit words,
//	                 bit p: page p received), be64 0x0123456789abcdef
//	RESUME_ACK    6  be32 1: a recovered postcopy may continue
//
// A message is at most 512 bytes (QEMU's buffer).

// RPType is a return-path message type.
type RPType uint16

// The message types, in QEMU's numbering.
const (
	RPShut       RPType = 1
	RPPong       RPType = 2
	RPReqPagesID RPType = 3
	RPReqPages   RPType = 4
	RPRecvBitmap RPType = 5
	RPResumeAck  RPType = 6
)

// rpArgs are QEMU's rp_cmd_args: the length of each message (-1 variable) and its name.
var rpArgs = map[RPType]struct {
	len  int
	name string
}{
	RPShut:       {4, "SHUT"},
	RPPong:       {4, "PONG"},
	RPReqPagesID: {-1, "REQ_PAGES_ID"},
	RPReqPages:   {12, "REQ_PAGES"},
	RPRecvBitmap: {-1, "RECV_BITMAP"},
	RPResumeAck:  {4, "RESUME_ACK"},
}

// String is QEMU's name of the message.
func (t RPType) String() string {
	if a, ok := rpArgs[t]; ok {
		return a.name
	}
	return fmt.Sprintf("RP%d", uint16(t))
}

const (
	rpMaxLen = 512
	// RecvBitmapEnding closes a received bitmap (QEMU's RAMBLOCK_RECV_BITMAP_ENDING).
	RecvBitmapEnding = 0x0123456789abcdef
	// ResumeAckValue is RESUME_ACK's value (QEMU's MIGRATION_RESUME_ACK_VALUE).
	ResumeAckValue = 1
)

// RPMessage is one return-path message.
type RPMessage struct {
	Type  RPType
	Value uint32 // SHUT, PONG, RESUME_ACK
	Block string // REQ_PAGES_ID, REQ_PAGES (the previous request's), RECV_BITMAP
	Start uint64 // REQ_PAGES(_ID): first byte requested, in the block
	Len   uint32 // REQ_PAGES(_ID): bytes requested
	// Bitmap is RECV_BITMAP's bitmap (bit p of word p/64: page p received), Pages its
	// length in pages.
	Bitmap []uint64
	Pages  uint64
}

// RPWriter sends return-path messages; safe for concurrent use (the loader answers
// PINGs while vCPUs request pages). A REQ_PAGES names its block (REQ_PAGES_ID) when it
// differs from the previous request's, as QEMU's migrate_send_rp_req_pages does.
type RPWriter struct {
	mu   sync.Mutex
	w    io.Writer
	last string // block of the previous page request
}

// NewRPWriter returns an RPWriter writing to w.
func NewRPWriter(w io.Writer) *RPWriter { return &RPWriter{w: w} }

// Send writes one message (with RECV_BITMAP, its bitmap after it) in one Write.
func (rw *RPWriter) Send(m RPMessage) error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	var body []byte
	t := m.Type
	switch t {
	case RPShut, RPPong, RPResumeAck:
		body = binary.BigEndian.AppendUint32(nil, m.Value)
	case RPReqPages, RPReqPagesID:
		body = binary.BigEndian.AppendUint64(nil, m.Start)
		body = binary.BigEndian.AppendUint32(body, m.Len)
		t = RPReqPages
		if m.Block != rw.last || m.Type == RPReqPagesID {
			t = RPReqPagesID
			body = append(body, BlockNameData(m.Block)...)
			rw.last = m.Block
		}
	case RPRecvBitmap:
		body = BlockNameData(m.Block)
	default:
		return fmt.Errorf("%w: return-path message %s", ErrUsage, t)
	}
	if len(m.Block) > MaxIDStr {
		return fmt.Errorf("%w: block name of %d bytes", ErrUsage, len(m.Block))
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(t))
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	b = append(b, body...)
	if t == RPRecvBitmap {
		size := (m.Pages + 63) / 64 * 8
		if uint64(len(m.Bitmap))*8 < size {
			return fmt.Errorf("%w: bitmap of %d words for %d pages", ErrUsage, len(m.Bitmap), m.Pages)
		}
		b = binary.BigEndian.AppendUint64(b, size)
		for _, w := range m.Bitmap[:size/8] {
			b = binary.LittleEndian.AppendUint64(b, w)
		}
		b = binary.BigEndian.AppendUint64(b, RecvBitmapEnding)
	}
	_, err := rw.w.Write(b)
	return err
}

// RPReader reads return-path messages (the source's side), with QEMU 7.2's checks and
// error texts (source_return_path_thread, ram_dirty_bitmap_reload). Not safe for
// concurrent use.
type RPReader struct {
	r    *bufio.Reader
	last string
	// Pages gives the size in pages of a block named by RECV_BITMAP (false: no such
	// block), so that a bitmap's length is checked before it is read.
	Pages func(block string) (uint64, bool)
}

// NewRPReader returns an RPReader of r.
func NewRPReader(r io.Reader, pages func(block string) (uint64, bool)) *RPReader {
	return &RPReader{r: bufio.NewReaderSize(r, 4096), Pages: pages}
}

// Next reads one message. Errors of the underlying reader come back unchanged (io.EOF
// at a clean end); a malformed message wraps ErrFormat.
func (rr *RPReader) Next() (RPMessage, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(rr.r, hdr[:]); err != nil {
		return RPMessage{}, err
	}
	t := RPType(binary.BigEndian.Uint16(hdr[:]))
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	a, ok := rpArgs[t]
	if !ok || n > rpMaxLen {
		return RPMessage{}, fmt.Errorf("%w: RP: Received invalid message 0x%04x length 0x%04x", ErrFormat, uint16(t), n)
	}
	if a.len >= 0 && n != a.len {
		return RPMessage{}, fmt.Errorf("%w: RP: Received %s message 0x%04x length 0x%04x expecting 0x%04x", ErrFormat, a.name, uint16(t), n, a.len)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(rr.r, buf); err != nil {
		return RPMessage{}, unexpected(err)
	}
	m := RPMessage{Type: t}
	switch t {
	case RPShut, RPPong, RPResumeAck:
		m.Value = binary.BigEndian.Uint32(buf)
	case RPReqPages:
		m.Start, m.Len, m.Block = binary.BigEndian.Uint64(buf), binary.BigEndian.Uint32(buf[8:]), rr.last
		if rr.last == "" {
			return RPMessage{}, fmt.Errorf("%w: RP: REQ_PAGES before any REQ_PAGES_ID", ErrFormat)
		}
	case RPReqPagesID:
		if n < 13 || n != 13+int(buf[12]) {
			expect := 13
			if n >= 13 {
				expect += int(buf[12])
			}
			return RPMessage{}, fmt.Errorf("%w: RP: Req_Page_id with length %d expecting %d", ErrFormat, n, expect)
		}
		m.Start, m.Len = binary.BigEndian.Uint64(buf), binary.BigEndian.Uint32(buf[8:])
		m.Block = string(buf[13:])
		rr.last = m.Block
	case RPRecvBitmap:
		name, err := ParseBlockName(buf)
		if err != nil {
			return RPMessage{}, err
		}
		m.Block = name
		if err := rr.bitmap(&m); err != nil {
			return RPMessage{}, err
		}
	}
	return m, nil
}

// bitmap reads the received bitmap that follows a RECV_BITMAP message.
func (rr *RPReader) bitmap(m *RPMessage) error {
	pages, ok := uint64(0), false
	if rr.Pages != nil {
		pages, ok = rr.Pages(m.Block)
	}
	if !ok {
		return fmt.Errorf("%w: migrate_handle_rp_recv_bitmap: invalid block name '%s'", ErrFormat, m.Block)
	}
	want := (pages + 63) / 64 * 8
	var b8 [8]byte
	if _, err := io.ReadFull(rr.r, b8[:]); err != nil {
		return unexpected(err)
	}
	if size := binary.BigEndian.Uint64(b8[:]); size != want {
		return fmt.Errorf("%w: ramblock '%s' bitmap size mismatch (0x%x != 0x%x)", ErrFormat, m.Block, size, want)
	}
	m.Pages = pages
	m.Bitmap = make([]uint64, want/8)
	for i := range m.Bitmap {
		if _, err := io.ReadFull(rr.r, b8[:]); err != nil {
			return unexpected(err)
		}
		m.Bitmap[i] = binary.LittleEndian.Uint64(b8[:])
	}
	if _, err := io.ReadFull(rr.r, b8[:]); err != nil {
		return unexpected(err)
	}
	if end := binary.BigEndian.Uint64(b8[:]); end != RecvBitmapEnding {
		return fmt.Errorf("%w: ramblock '%s' end mark incorrect: 0x%x", ErrFormat, m.Block, end)
	}
	return nil
}

// unexpected turns a clean EOF inside a message into ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

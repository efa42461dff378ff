package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/rs/zerolog"
)

type rstate uint8

const (
	rHeader   rstate = iota // magic, version, configuration next
	rSections               // a section type byte next
	rRAM                    // inside a RAM PART or END section: a page record or EOS next
	rDone                   // End returned; io.EOF from now on
)

// Reader parses a stream written by Writer and checks it: every length read has a limit,
// every section id and footer is checked, and the tlcvm/integrity section (length and
// CRC32C of all bytes before it, and of the vmdesc after EOF) is verified before End.
// Errors wrap ErrFormat, ErrIntegrity or ErrTruncated and say where (offset, section);
// errors of the underlying reader are returned unchanged. All errors are sticky.
//
// The Reader buffers (16 KiB growing to 256 KiB) and may read past the end of the stream. It does not
// allocate per page: Page data aliases its buffer. Not safe for concurrent use.
type Reader struct {
	in  io.Reader
	log zerolog.Logger

	buf    []byte // buf[r:w] is read but not consumed
	done   []byte // the buffer a Refiller handed over before buf, to give back
	r, w   int
	base   uint64 // stream offset of buf[0]
	crcPos int    // buf[crcPos:r] is consumed but not yet folded into crc
	crc    uint32 // CRC32C of the stream up to buf[crcPos]
	err    error  // sticky

	state   rstate
	section string // current section name, for errors
	markOff uint64 // offset of the current section's type byte
	markCRC uint32 // CRC32C of every byte before markOff

	ids    map[uint32]struct{} // ids of the START and FULL sections read
	ramID  uint32
	ram    ramState
	blocks []Block
	byName map[string]int
	cur    int // block index of the previous page record of the open RAM section, or -1

	devs     []devRecord
	devIndex map[DeviceDesc]struct{}
	vmdesc   []byte
	normal   uint64
	zero     uint64
	xbzrles  uint64

	// The "dirty-bitmap" section (bitmaps.go): its id, open (START read, END not yet),
	// the names of the previous chunk.
	bmID   uint32
	bmSeen bool
	bmOpen bool
	bmPrev bitmapNames

	mr     mappedReader // mapped-ram: the seekable file and the blocks' places
	digest Digest       // the integrity section's record, once verified

	pkg     bool // a package (NewPackageReader)
	eosRecs bool // return SectionEnd records (ReportSectionEnd)
}

// ReportSectionEnd makes Next return a SectionEnd record at the end of every RAM PART
// and END section.
func (r *Reader) ReportSectionEnd() { r.eosRecs = true }

// Digest is a stream's integrity record: the length and CRC32C of its sequential bytes
// before the integrity section. Two mapped-ram checkpoints with the same Digest hold the
// same RAM and device state (the digest table, with every page's CRC32C, is covered).
type Digest struct {
	Length uint64
	CRC    uint32
}

// Digest is the verified stream's integrity record (zero before Next returned End).
func (r *Reader) Digest() Digest { return r.digest }

// FileEnd is the absolute file offset just past the vmdesc, once the stream is verified
// (NewFileReader; for NewReader, the stream's length).
func (r *Reader) FileEnd() uint64 { return r.filePos() }

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	return &Reader{
		in:       r,
		log:      zerolog.Nop(),
		buf:      make([]byte, initialReadBuffer),
		section:  "header",
		devIndex: map[DeviceDesc]struct{}{},
		ids:      map[uint32]struct{}{},
	}
}

// SetLogger sets the logger (default zerolog.Nop()): sections at trace level, the verified
// end and errors at debug level.
func (r *Reader) SetLogger(l zerolog.Logger) { r.log = l }

// Offset returns the number of stream bytes consumed so far.
func (r *Reader) Offset() uint64 { return r.base + uint64(r.r) }

// Pages returns how many PAGE and ZERO records have been read.
func (r *Reader) Pages() (normal, zero uint64) { return r.normal, r.zero }

// VMDesc returns the vmdesc JSON once End has been returned (nil before).
func (r *Reader) VMDesc() []byte { return r.vmdesc }

// Next returns the next record. After the tlcvm/integrity section and the vmdesc have
// been verified it returns a Record of kind End, then io.EOF on every later call. A
// stream that ends before that (no EOF marker, no integrity section, a cut anywhere) is
// ErrTruncated. Page data is valid until the next call.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.next()
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		if err != io.EOF {
			r.log.Debug().Err(err).Msg("stream read failed")
		}
		return Record{}, r.err
	}
	return rec, nil
}

func (r *Reader) next() (Record, error) {
	for {
		switch r.state {
		case rHeader:
			return r.header()
		case rRAM:
			rec, more, err := r.ramRecord()
			if err != nil || !more {
				return rec, err
			}
		case rSections:
			rec, more, err := r.sectionStart()
			if err != nil || !more {
				return rec, err
			}
		default:
			return Record{}, io.EOF
		}
	}
}

// fail builds a positioned error.
func (r *Reader) fail(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d (section %q)", kind, fmt.Sprintf(format, args...), r.Offset(), r.section)
}

// ensure makes buf[r:w] hold at least n bytes (n <= len(buf)).
func (r *Reader) ensure(n int) error {
	if r.w-r.r >= n {
		return nil
	}
	if rf, ok := r.in.(Refiller); ok && n <= RefillHeadroom {
		if err := r.refill(rf, n); err != nil || r.w-r.r >= n {
			return err
		}
	}
	// Compact (and grow) when n does not fit, or when less than half the buffer is free
	// behind w: what is left to consume is then less than n bytes, cheap to move, and the
	// read below asks for at least half a buffer, large enough for the channel to hand it
	// over without copying it through a buffer of its own.
	if len(r.buf)-r.r < n || len(r.buf)-r.w < len(r.buf)/2 {
		r.crc = crc32.Update(r.crc, castagnoli, r.buf[r.crcPos:r.r])
		if len(r.buf) < readBufferSize {
			// Start small (a short stream costs little), double up to readBufferSize.
			r.buf = append(make([]byte, 0, 2*len(r.buf)), r.buf[:r.w]...)[:2*len(r.buf)]
		}
		copy(r.buf, r.buf[r.r:r.w])
		r.base += uint64(r.r)
		r.w -= r.r
		r.r, r.crcPos = 0, 0
	}
	for empty := 0; r.w-r.r < n; {
		m, err := r.in.Read(r.buf[r.w:])
		r.w += m
		if r.w-r.r >= n {
			return nil
		}
		switch {
		case err == io.EOF:
			return r.fail(ErrTruncated, "input ended %d bytes short", n-(r.w-r.r))
		case err != nil:
			return err
		case m == 0:
			if empty++; empty > 100 {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// Refiller is an input that reads ahead into whole buffers on a goroutine of its own and
// hands them over instead of copying them: Refill takes back a buffer the Reader is done
// with (nil: none) and returns the next one read, its data in buf[RefillHeadroom:]; the
// headroom before it takes the bytes of a record the previous buffer ended in the middle
// of. Read serves the same data by copying, for a record larger than the headroom.
type Refiller interface {
	io.Reader
	Refill(done []byte) ([]byte, error)
}

// RefillHeadroom is the room a Refiller's buffer keeps before its data.
const RefillHeadroom = 64 << 10

// refill swaps the buffer for the Refiller's next one, the unconsumed bytes (fewer than n,
// at most RefillHeadroom) moved in front of its data. An error is the input's, as from
// Read.
func (r *Reader) refill(rf Refiller, n int) error {
	left := r.w - r.r
	next, err := rf.Refill(r.done)
	r.done = nil
	if err == io.EOF {
		return r.fail(ErrTruncated, "input ended %d bytes short", n-left)
	}
	if err != nil {
		return err
	}
	r.crc = crc32.Update(r.crc, castagnoli, r.buf[r.crcPos:r.r])
	start := RefillHeadroom - left
	copy(next[start:RefillHeadroom], r.buf[r.r:r.w])
	// buf[start] is the stream offset buf[r] was; base may wrap below zero (Offset adds
	// it back).
	r.base += uint64(r.r) - uint64(start)
	r.done = r.buf
	r.buf, r.r, r.w, r.crcPos = next, start, len(next), start
	return nil
}

func (r *Reader) u8() (byte, error) {
	if err := r.ensure(1); err != nil {
		return 0, err
	}
	r.r++
	return r.buf[r.r-1], nil
}

func (r *Reader) u32() (uint32, error) {
	if err := r.ensure(4); err != nil {
		return 0, err
	}
	r.r += 4
	return binary.BigEndian.Uint32(r.buf[r.r-4:]), nil
}

func (r *Reader) u64() (uint64, error) {
	if err := r.ensure(8); err != nil {
		return 0, err
	}
	r.r += 8
	return binary.BigEndian.Uint64(r.buf[r.r-8:]), nil
}

// peek consumes n bytes (n <= len(buf)) and returns them aliasing the buffer.
func (r *Reader) peek(n int) ([]byte, error) {
	if err := r.ensure(n); err != nil {
		return nil, err
	}
	r.r += n
	return r.buf[r.r-n : r.r], nil
}

// bytes consumes n bytes into a new slice that grows as data arrives (a lying length on a
// short input costs no more memory than the input).
func (r *Reader) bytes(n int) ([]byte, error) { return r.bytesCap(n, min(n, len(r.buf))) }

// bytesCap is bytes with room for c bytes from the start: a caller that knows n is no lie
// (a size fixed by what was read before) gives c = n and saves the regrowing.
func (r *Reader) bytesCap(n, c int) ([]byte, error) {
	out := make([]byte, 0, c)
	for len(out) < n {
		if r.w == r.r {
			if err := r.ensure(1); err != nil {
				if errors.Is(err, ErrTruncated) {
					err = r.fail(ErrTruncated, "input ended %d bytes short", n-len(out))
				}
				return nil, err
			}
		}
		k := min(n-len(out), r.w-r.r)
		out = append(out, r.buf[r.r:r.r+k]...)
		r.r += k
	}
	return out, nil
}

// str reads a u8-length string of 1..MaxIDStr bytes.
func (r *Reader) str(what string) ([]byte, error) {
	n, err := r.u8()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, r.fail(ErrFormat, "empty %s", what)
	}
	return r.peek(int(n))
}

// mark records the offset and CRC at the start of a section.
func (r *Reader) mark() {
	r.crc = crc32.Update(r.crc, castagnoli, r.buf[r.crcPos:r.r])
	r.crcPos = r.r
	r.markOff, r.markCRC = r.Offset(), r.crc
}

func (r *Reader) header() (Record, error) {
	magic, err := r.u32()
	if err != nil {
		return Record{}, err
	}
	if magic != fileMagic {
		return Record{}, r.fail(ErrFormat, "bad magic 0x%08x, want 0x%08x (QEVM)", magic, fileMagic)
	}
	version, err := r.u32()
	if err != nil {
		return Record{}, err
	}
	if version != fileVersion {
		return Record{}, r.fail(ErrFormat, "unsupported stream version %d, want %d", version, fileVersion)
	}
	r.section = "configuration"
	typ, err := r.u8()
	if err != nil {
		return Record{}, err
	}
	if typ != secConfiguration {
		return Record{}, r.fail(ErrFormat, "section type 0x%02x where the configuration section (0x07) must be", typ)
	}
	n, err := r.u32()
	if err != nil {
		return Record{}, err
	}
	if n > MaxMachineType {
		return Record{}, r.fail(ErrFormat, "machine type name of %d bytes (max %d)", n, MaxMachineType)
	}
	name, err := r.peek(int(n))
	if err != nil {
		return Record{}, err
	}
	rec := Record{Kind: Config, MachineType: string(name)}
	if err := r.ensure(1); err != nil {
		return Record{}, err
	}
	if r.buf[r.r] == secSubsection {
		if rec.Capabilities, err = r.capabilities(); err != nil {
			return Record{}, err
		}
	}
	r.state = rSections
	return rec, nil
}

// footer reads a section footer and checks its id.
func (r *Reader) footer(id uint32) error {
	typ, err := r.u8()
	if err != nil {
		return err
	}
	if typ != secFooter {
		return r.fail(ErrFormat, "byte 0x%02x where the section footer (0x7e) must be", typ)
	}
	got, err := r.u32()
	if err != nil {
		return err
	}
	if got != id {
		return r.fail(ErrFormat, "footer of section %d in section %d", got, id)
	}
	return nil
}

// sectionStart reads one section header; more=true when no record is returned yet.
func (r *Reader) sectionStart() (rec Record, more bool, err error) {
	r.mark()
	r.section = "-"
	typ, err := r.u8()
	if err != nil {
		return Record{}, false, err
	}
	switch typ {
	case secPart, secEnd:
		r.section = ramIDStr
		id, err := r.u32()
		if err != nil {
			return Record{}, false, err
		}
		if r.bmOpen && id == r.bmID {
			r.section = BitmapsIDStr
			r.bmOpen = typ == secPart
			rec, err := r.bitmapsSection(true)
			return rec, false, err
		}
		if r.ram != ramSetUp || id != r.ramID {
			return Record{}, false, r.fail(ErrFormat, "RAM section of id %d not open (state %d)", id, r.ram)
		}
		if typ == secEnd {
			r.ram = ramComplete
		}
		r.state, r.cur = rRAM, -1
		return Record{}, true, nil
	case secStart, secFull:
	case secCommand:
		rec, err := r.command()
		return rec, false, err
	case secEOF:
		return Record{}, false, r.fail(ErrTruncated, "end of sections without the %s section", IntegrityIDStr)
	default:
		return Record{}, false, r.fail(ErrFormat, "unexpected section type 0x%02x", typ)
	}
	id, err := r.u32()
	if err != nil {
		return Record{}, false, err
	}
	if _, dup := r.ids[id]; dup || len(r.ids) > MaxDevices+1 {
		return Record{}, false, r.fail(ErrFormat, "section id %d used twice", id)
	}
	r.ids[id] = struct{}{}
	idstr, err := r.str("section name")
	if err != nil {
		return Record{}, false, err
	}
	r.section = string(idstr)
	instance, err := r.u32()
	if err != nil {
		return Record{}, false, err
	}
	version, err := r.u32()
	if err != nil {
		return Record{}, false, err
	}
	r.log.Trace().Str("idstr", r.section).Uint32("id", id).Uint64("offset", r.markOff).Msg("section")
	switch {
	case r.pkg && (typ == secStart || r.section == ramIDStr || r.section == MappedTableIDStr):
		return Record{}, false, r.fail(ErrFormat, "section %q in a package", r.section)
	case r.pkg && r.section == IntegrityIDStr:
		if instance != 0 || version != integrityVersion {
			return Record{}, false, r.fail(ErrFormat, "integrity section instance %d version %d, want 0 and %d", instance, version, integrityVersion)
		}
		return Record{Kind: End}, false, r.packageEnd(id)
	case typ == secStart && r.section == ramIDStr:
		if instance != 0 || version != ramVersion {
			return Record{}, false, r.fail(ErrFormat, "RAM section instance %d version %d, want 0 and %d", instance, version, ramVersion)
		}
		if r.ram != ramNone {
			return Record{}, false, r.fail(ErrFormat, "second RAM section")
		}
		r.ramID = id
		rec, err := r.ramSetup()
		return rec, false, err
	case typ == secStart && r.section == BitmapsIDStr:
		if instance != 0 || version != bitmapsVersion {
			return Record{}, false, r.fail(ErrFormat, "dirty-bitmap section instance %d version %d, want 0 and %d", instance, version, bitmapsVersion)
		}
		if r.bmSeen {
			return Record{}, false, r.fail(ErrFormat, "second dirty-bitmap section")
		}
		r.bmID, r.bmSeen, r.bmOpen = id, true, true
		rec, err := r.bitmapsSection(false)
		return rec, false, err
	case typ == secStart:
		return Record{}, false, r.fail(ErrFormat, "unknown iterative section")
	case r.section == IntegrityIDStr:
		if instance != 0 || version != integrityVersion {
			return Record{}, false, r.fail(ErrFormat, "integrity section instance %d version %d, want 0 and %d", instance, version, integrityVersion)
		}
		return Record{Kind: End}, false, r.integrity(id)
	case r.section == ramIDStr:
		return Record{}, false, r.fail(ErrFormat, "RAM as a FULL section")
	case r.section == MappedTableIDStr:
		return Record{}, true, r.mappedTable(id, instance, version)
	}
	rec, err = r.device(id, instance, version, MaxStateSize)
	return rec, false, err
}

// ramSetup reads the rest of the RAM START section: MEM_SIZE, the blocks, EOS, footer.
func (r *Reader) ramSetup() (Record, error) {
	v, err := r.u64()
	if err != nil {
		return Record{}, err
	}
	if v&(PageSize-1) != flagMemSize {
		return Record{}, r.fail(ErrFormat, "RAM setup record flags 0x%x, want MEM_SIZE (0x4)", v&(PageSize-1))
	}
	total := v &^ (PageSize - 1)
	r.byName = map[string]int{}
	var sum uint64
	for sum < total {
		if len(r.blocks) == MaxBlocks {
			return Record{}, r.fail(ErrFormat, "more than %d RAM blocks", MaxBlocks)
		}
		name, err := r.str("RAM block name")
		if err != nil {
			return Record{}, err
		}
		size, err := r.u64()
		if err != nil {
			return Record{}, err
		}
		if size == 0 || size%PageSize != 0 || size > maxBlockSize || size > total-sum {
			return Record{}, r.fail(ErrFormat, "RAM block %q of 0x%x bytes (announced total 0x%x, 0x%x so far)", name, size, total, sum)
		}
		if _, dup := r.byName[string(name)]; dup {
			return Record{}, r.fail(ErrFormat, "RAM block %q announced twice", name)
		}
		r.byName[string(name)] = len(r.blocks)
		r.blocks = append(r.blocks, Block{Name: string(name), Size: size})
		sum += size
		if r.mr.on {
			if err := r.mappedBlock(size); err != nil {
				return Record{}, err
			}
		}
	}
	eos, err := r.u64()
	if err != nil {
		return Record{}, err
	}
	if eos != flagEOS {
		return Record{}, r.fail(ErrFormat, "RAM setup record 0x%x after the block list, want EOS", eos)
	}
	if err := r.footer(r.ramID); err != nil {
		return Record{}, err
	}
	r.ram = ramSetUp
	return Record{Kind: RAMBlocks, Blocks: r.blocks, Mapped: r.mr.blocks}, nil
}

// ramRecord reads one record of an open PART or END section.
func (r *Reader) ramRecord() (rec Record, more bool, err error) {
	v, err := r.u64()
	if err != nil {
		return Record{}, false, err
	}
	flags, addr := v&(PageSize-1), v&^(PageSize-1)
	if flags == flagEOS {
		if err := r.footer(r.ramID); err != nil {
			return Record{}, false, err
		}
		r.state = rSections
		if r.eosRecs {
			return Record{Kind: SectionEnd}, false, nil
		}
		return Record{}, true, nil
	}
	kind := flags &^ flagContinue
	if kind != flagZero && kind != flagPage && (kind != flagXBZRLE && kind != flagCompressPage || r.mr.on) {
		return Record{}, false, r.fail(ErrFormat, "unsupported RAM record flags 0x%x", flags)
	}
	if flags&flagContinue != 0 {
		if r.cur < 0 {
			return Record{}, false, r.fail(ErrFormat, "CONTINUE without a previous page record")
		}
	} else {
		name, err := r.str("RAM block name")
		if err != nil {
			return Record{}, false, err
		}
		i, ok := r.byName[string(name)]
		if !ok {
			return Record{}, false, r.fail(ErrFormat, "unknown RAM block %q", name)
		}
		r.cur = i
	}
	b := &r.blocks[r.cur]
	if addr >= b.Size {
		return Record{}, false, r.fail(ErrFormat, "page 0x%x outside RAM block %q of 0x%x bytes", addr, b.Name, b.Size)
	}
	rec = Record{Kind: Page, Block: b.Name, BlockIndex: r.cur, Offset: addr}
	if kind == flagXBZRLE {
		return r.xbzrle(rec)
	}
	if kind == flagCompressPage {
		n, err := r.u32()
		if err != nil {
			return Record{}, false, err
		}
		if n > CompressBound || n == 0 {
			return Record{}, false, r.fail(ErrFormat, "Invalid compressed data length: %d", int32(n))
		}
		if rec.Data, err = r.peek(int(n)); err != nil {
			return Record{}, false, err
		}
		rec.Kind = CompressedPage
		return rec, false, nil
	}
	if kind == flagZero {
		if rec.Fill, err = r.u8(); err != nil {
			return Record{}, false, err
		}
		rec.Kind = ZeroPage
		r.zero++
		return rec, false, nil
	}
	if rec.Data, err = r.peek(PageSize); err != nil {
		return Record{}, false, err
	}
	r.normal++
	return rec, false, nil
}

// xbzrle reads an XBZRLE record's body (QEMU's load_xbzrle checks and texts).
func (r *Reader) xbzrle(rec Record) (Record, bool, error) {
	f, err := r.u8()
	if err != nil {
		return Record{}, false, err
	}
	if f != xbzrleEncodingFlag {
		return Record{}, false, r.fail(ErrFormat, "Failed to load XBZRLE page - wrong compression!")
	}
	n, err := r.u16()
	if err != nil {
		return Record{}, false, err
	}
	if n > PageSize || n == 0 {
		return Record{}, false, r.fail(ErrFormat, "Failed to load XBZRLE page - len overflow!")
	}
	if rec.Data, err = r.peek(int(n)); err != nil {
		return Record{}, false, err
	}
	rec.Kind = XBZRLEPage
	r.xbzrles++
	return rec, false, nil
}

// device reads the body of a device FULL section.
// At most max bytes of state are accepted.
func (r *Reader) device(id, instance, version, max uint32) (Record, error) {
	key := DeviceDesc{Name: r.section, Instance: instance}
	if _, dup := r.devIndex[key]; dup {
		return Record{}, r.fail(ErrFormat, "device section instance %d appears twice", instance)
	}
	if len(r.devs) == MaxDevices {
		return Record{}, r.fail(ErrFormat, "more than %d device sections", MaxDevices)
	}
	n, err := r.u32()
	if err != nil {
		return Record{}, err
	}
	if n > max {
		return Record{}, r.fail(ErrFormat, "device state of %d bytes (max %d)", n, max)
	}
	c := min(int(n), len(r.buf))
	if max != MaxStateSize {
		// An exact size computed by the caller (the mapped-ram digest table: 4 MiB per
		// 4 GiB of RAM); past 64 MiB it grows as bytes arrive, as for a lying length.
		c = min(int(n), 64<<20)
	}
	state, err := r.bytesCap(int(n), c)
	if err != nil {
		return Record{}, err
	}
	if err := r.footer(id); err != nil {
		return Record{}, err
	}
	r.devIndex[key] = struct{}{}
	r.devs = append(r.devs, devRecord{DeviceDesc{r.section, instance, version}, n})
	return Record{Kind: Device, IDStr: r.section, Instance: instance, Version: version, State: state}, nil
}

// integrity reads the integrity section, EOF and the vmdesc, and verifies them all.
func (r *Reader) integrity(id uint32) error {
	if r.ram == ramSetUp {
		return r.fail(ErrFormat, "integrity section before the RAM section's END")
	}
	if r.mr.on && r.mr.table == nil {
		return r.fail(ErrFormat, "mapped-ram stream without its %s section", MappedTableIDStr)
	}
	f, err := r.peek(integrityFields)
	if err != nil {
		return err
	}
	streamLen := binary.BigEndian.Uint64(f)
	streamCRC := binary.BigEndian.Uint32(f[8:])
	descLen := binary.BigEndian.Uint32(f[12:])
	descCRC := binary.BigEndian.Uint32(f[16:])
	if streamLen != r.markOff {
		return r.fail(ErrIntegrity, "stream length %d recorded, %d read", streamLen, r.markOff)
	}
	if streamCRC != r.markCRC {
		return r.fail(ErrIntegrity, "CRC32C 0x%08x recorded, 0x%08x computed over %d bytes", streamCRC, r.markCRC, r.markOff)
	}
	if err := r.footer(id); err != nil {
		return err
	}
	if typ, err := r.u8(); err != nil {
		return err
	} else if typ != secEOF {
		return r.fail(ErrFormat, "section type 0x%02x after the integrity section, want EOF", typ)
	}
	r.section = "vmdesc"
	if typ, err := r.u8(); err != nil {
		return err
	} else if typ != secVMDescription {
		return r.fail(ErrFormat, "byte 0x%02x after EOF, want the vmdesc (0x06)", typ)
	}
	n, err := r.u32()
	if err != nil {
		return err
	}
	if n != descLen || n > MaxVMDescSize {
		return r.fail(ErrIntegrity, "vmdesc of %d bytes, %d recorded (max %d)", n, descLen, MaxVMDescSize)
	}
	desc, err := r.bytes(int(n))
	if err != nil {
		return err
	}
	if got := crc32.Checksum(desc, castagnoli); got != descCRC {
		return r.fail(ErrIntegrity, "vmdesc CRC32C 0x%08x, 0x%08x recorded", got, descCRC)
	}
	if err := checkVMDesc(desc, r.devs); err != nil {
		return r.fail(ErrFormat, "%v", err)
	}
	r.vmdesc = desc
	r.digest = Digest{Length: streamLen, CRC: streamCRC}
	r.state = rDone
	r.log.Debug().Uint64("bytes", r.Offset()).Uint64("pages", r.normal).Uint64("zero_pages", r.zero).
		Int("devices", len(r.devs)).Msg("stream verified")
	return nil
}

// IsStreamError reports whether err says the stream itself is bad (format, integrity or
// truncation) rather than the transport failing.
func IsStreamError(err error) bool {
	return errors.Is(err, ErrFormat) || errors.Is(err, ErrIntegrity) || errors.Is(err, ErrTruncated)
}

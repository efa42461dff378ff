package stream

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// writer states: the order of calls the Writer accepts.
type wstate uint8

const (
	wNew      wstate = iota // NewWriter: Begin next
	wBetween                // between sections: RAMSetup, RAMIterBegin, RAMComplete, Device, Finish
	wInPart                 // a PART section is open: RAMPage, RAMIterEnd
	wInEnd                  // the END section is open: RAMPage, RAMIterEnd
	wFinished               // Finish done: nothing more
)

// ramState: where the RAM section stands.
type ramState uint8

const (
	ramNone     ramState = iota // RAMSetup not called
	ramSetUp                    // START written; PART and END may follow
	ramComplete                 // END written (and closed or open)
)

type devRecord struct {
	desc DeviceDesc
	size uint32
}

// Writer writes QEMU's stream (magic QEVM, version 3, configuration section, sections with
// footers, RAM section "ram" instance 0 version 4 with QEMU's page flags, device sections,
// EOF, then the JSON vmdesc after EOF) plus tlcvm's integrity: a final device section
// "tlcvm/integrity" carrying the length and CRC32C of every byte before it and of the
// vmdesc JSON that follows (see the package doc for the layout).
//
// The Writer buffers (256 KiB) and writes to the underlying writer in large chunks; Flush
// and Finish push the buffer out. Errors of the underlying writer are returned unchanged
// and are sticky: every later call returns the same error. Not safe for concurrent use.
type Writer struct {
	out         io.Writer
	machineType string
	log         zerolog.Logger

	buf     []byte // pending bytes, cap writeBufferSize (or larger after a big Device)
	crcPos  int    // buf[:crcPos] is already folded into crc
	crc     uint32 // CRC32C of every byte before buf[crcPos:]
	flushed uint64 // bytes handed to out
	err     error  // sticky

	state  wstate
	ram    ramState
	nextID uint32 // next section id
	ramID  uint32

	blocks map[string]uint64 // RAM block sizes by name
	// The block of the previous page record of the open section ("" at the start of a
	// section) and its size: CONTINUE when the next record names it again.
	cur     string
	curSize uint64

	normal, zero uint64
	xbzrle       uint64 // XBZRLE records written
	compressed   uint64 // compressed page records written
	devices      []devRecord
	devIndex     map[DeviceDesc]struct{} // name+instance seen (Version zeroed)

	// The "dirty-bitmap" section (bitmaps.go): its id, 0 none / 1 set up / 2 complete,
	// the names of the previous chunk.
	bmID    uint32
	bmState uint8
	bmPrev  bitmapNames

	mr     *mappedWriter // QEMU 9.0's mapped-ram layout (NewMappedWriter), else nil
	digest Digest        // what the integrity section records (after Finish)

	pkg     bool   // a package (NewPackageWriter)
	segBase uint64 // flushed at the last Resume: the integrity section covers what follows
}

// Digest is what the integrity section records (valid after Finish): equal to the
// Reader's Digest of the same stream.
func (w *Writer) Digest() Digest { return w.digest }

// NewWriter returns a Writer for a machine of the given type (the configuration section's
// name, checked by the destination). The page size is 4096.
func NewWriter(w io.Writer, machineType string) *Writer {
	return &Writer{
		out:         w,
		machineType: machineType,
		log:         zerolog.Nop(),
		buf:         make([]byte, 0, writeBufferSize),
		devIndex:    map[DeviceDesc]struct{}{},
	}
}

// SetLogger sets the logger (default zerolog.Nop()): section boundaries at trace level,
// Finish at debug level.
func (w *Writer) SetLogger(l zerolog.Logger) { w.log = l }

// Bytes returns the number of bytes produced so far (buffered ones included): the stream,
// plus with mapped-ram the pages and bitmaps written at their offsets.
func (w *Writer) Bytes() uint64 {
	n := w.flushed + uint64(len(w.buf))
	if w.mr != nil {
		n += w.mr.bytes
	}
	return n
}

// streamBytes counts the sequential stream's bytes since it started or was last resumed
// (what the integrity section covers).
func (w *Writer) streamBytes() uint64 { return w.flushed + uint64(len(w.buf)) - w.segBase }

// Pages returns how many PAGE (normal) and ZERO records RAMPage has written.
func (w *Writer) Pages() (normal, zero uint64) { return w.normal, w.zero }

func (w *Writer) usage(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUsage}, args...)...)
}

// check returns the sticky error, or ErrUsage unless the Writer is in one of the states.
func (w *Writer) check(op string, ok ...wstate) error {
	if w.err != nil {
		return w.err
	}
	for _, s := range ok {
		if w.state == s {
			return nil
		}
	}
	return w.usage("%s not allowed %s", op, [...]string{"before Begin", "between sections", "inside a RAM PART section", "inside the RAM END section", "after Finish"}[w.state])
}

// Begin writes the file magic, the version and the configuration section.
func (w *Writer) Begin() error {
	if err := w.check("Begin", wNew); err != nil {
		return err
	}
	if len(w.machineType) > MaxMachineType || !utf8.ValidString(w.machineType) {
		return w.usage("machine type %q: must be UTF-8 of at most %d bytes", w.machineType, MaxMachineType)
	}
	b := w.buf
	b = binary.BigEndian.AppendUint32(b, fileMagic)
	b = binary.BigEndian.AppendUint32(b, fileVersion)
	b = append(b, secConfiguration)
	b = binary.BigEndian.AppendUint32(b, uint32(len(w.machineType)))
	b = append(b, w.machineType...)
	if w.mr != nil {
		b = appendCaps(b)
	}
	w.buf = b
	w.state = wBetween
	return nil
}

// sectionHeader appends a START or FULL header and returns the section id.
func (w *Writer) sectionHeader(typ byte, idstr string, instance, version uint32) uint32 {
	id := w.nextID
	w.nextID++
	w.reserve(1 + 4 + 1 + len(idstr) + 8)
	b := append(w.buf, typ)
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(b, byte(len(idstr)))
	b = append(b, idstr...)
	b = binary.BigEndian.AppendUint32(b, instance)
	b = binary.BigEndian.AppendUint32(b, version)
	w.buf = b
	w.log.Trace().Str("idstr", idstr).Uint32("id", id).Uint64("offset", w.Bytes()).Msg("section")
	return id
}

func (w *Writer) footer(id uint32) {
	w.reserve(5)
	w.buf = binary.BigEndian.AppendUint32(append(w.buf, secFooter), id)
}

// RAMSetup writes section START "ram": the MEM_SIZE record (total RAM | 0x04) with every
// block (u8 name length, name, be64 size), EOS and the footer. Block names are 1–255 bytes
// (QEMU's analyser reads the length as a signed byte: keep them under 128), sizes are
// non-zero multiples of PageSize, names are unique.
func (w *Writer) RAMSetup(blocks []Block) error {
	if err := w.check("RAMSetup", wBetween); err != nil {
		return err
	}
	if w.ram != ramNone {
		return w.usage("RAMSetup called twice")
	}
	if len(blocks) > MaxBlocks {
		return w.usage("%d RAM blocks (max %d)", len(blocks), MaxBlocks)
	}
	sizes := make(map[string]uint64, len(blocks))
	var total uint64
	for _, bl := range blocks {
		switch {
		case len(bl.Name) == 0 || len(bl.Name) > MaxIDStr || !utf8.ValidString(bl.Name):
			return w.usage("RAM block name %q: must be UTF-8 of 1..%d bytes", bl.Name, MaxIDStr)
		case bl.Size == 0 || bl.Size%PageSize != 0 || bl.Size > maxBlockSize:
			return w.usage("RAM block %q: size %d is not a non-zero multiple of %d (max %d)", bl.Name, bl.Size, PageSize, uint64(maxBlockSize))
		}
		if _, dup := sizes[bl.Name]; dup {
			return w.usage("RAM block %q named twice", bl.Name)
		}
		sizes[bl.Name] = bl.Size
		total += bl.Size
	}
	w.blocks = sizes
	w.ramID = w.sectionHeader(secStart, ramIDStr, 0, ramVersion)
	w.reserve(8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, total|flagMemSize)
	for _, bl := range blocks {
		w.reserve(1 + len(bl.Name) + 8 + mappedHdrSize)
		b := append(w.buf, byte(len(bl.Name)))
		b = append(b, bl.Name...)
		w.buf = binary.BigEndian.AppendUint64(b, bl.Size)
		if w.mr != nil {
			w.mappedSetup(bl)
		}
	}
	w.reserve(8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, flagEOS)
	w.footer(w.ramID)
	w.ram = ramSetUp
	return w.err
}

// RAMIterBegin opens a section PART "ram" (one stage-1 chunk or one stage-2 iteration).
func (w *Writer) RAMIterBegin() error {
	if err := w.check("RAMIterBegin", wBetween); err != nil {
		return err
	}
	if w.ram != ramSetUp {
		return w.usage("RAMIterBegin without RAMSetup or after RAMComplete")
	}
	w.reserve(5)
	w.buf = binary.BigEndian.AppendUint32(append(w.buf, secPart), w.ramID)
	w.state, w.cur, w.curSize = wInPart, "", 0
	return w.err
}

// RAMComplete opens the section END "ram" (stage 3); pages may follow; close it with
// RAMIterEnd. No RAM section may follow it.
func (w *Writer) RAMComplete() error {
	if err := w.check("RAMComplete", wBetween); err != nil {
		return err
	}
	if w.ram != ramSetUp {
		return w.usage("RAMComplete without RAMSetup or twice")
	}
	w.reserve(5)
	w.buf = binary.BigEndian.AppendUint32(append(w.buf, secEnd), w.ramID)
	w.state, w.cur, w.curSize, w.ram = wInEnd, "", 0, ramComplete
	return w.err
}

// RAMIterEnd writes EOS and the footer of the open PART or END section.
func (w *Writer) RAMIterEnd() error {
	if err := w.check("RAMIterEnd", wInPart, wInEnd); err != nil {
		return err
	}
	if w.mr != nil {
		if err := w.flushRun(); err != nil {
			return err
		}
		if err := w.drain(); err != nil {
			return err
		}
	}
	w.reserve(8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, flagEOS)
	w.footer(w.ramID)
	w.state = wBetween
	return w.err
}

// RAMPage writes one page record in the open PART or END section: ZERO (plus the fill byte
// 0) when every byte of page is 0, else PAGE followed by the PageSize bytes. The record
// carries CONTINUE when it names the same block as the previous record of the section,
// else the block's name. offset is the page's byte offset in the block. No allocation.
func (w *Writer) RAMPage(block string, offset uint64, page []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.state != wInPart && w.state != wInEnd {
		return w.usage("RAMPage outside a RAM section")
	}
	if len(page) != PageSize {
		return w.usage("page of %d bytes", len(page))
	}
	if w.mr != nil {
		return w.mappedPage(block, offset, page)
	}
	if IsZero(page) {
		return w.ramRecord(block, offset, flagZero, nil)
	}
	return w.ramRecord(block, offset, flagPage, page)
}

// RAMZero writes a ZERO record for a page known to be zero, without reading it (a page
// the guest never wrote need not be faulted in to be checked).
func (w *Writer) RAMZero(block string, offset uint64) error {
	if w.err != nil {
		return w.err
	}
	if w.state != wInPart && w.state != wInEnd {
		return w.usage("RAMZero outside a RAM section")
	}
	if w.mr != nil {
		return w.mappedPage(block, offset, nil)
	}
	return w.ramRecord(block, offset, flagZero, nil)
}

func (w *Writer) ramRecord(block string, offset uint64, flag uint64, page []byte) error {
	need := 1 + len(page)
	if err := w.ramHeader(block, offset, flag, need); err != nil {
		return err
	}
	if page == nil {
		w.buf = append(w.buf, 0)
		w.zero++
	} else {
		w.buf = append(w.buf, page...)
		w.normal++
	}
	return nil
}

// ramHeader appends a page record's header (flags, CONTINUE or the block's name), with
// room for body more bytes after it in the buffer.
func (w *Writer) ramHeader(block string, offset uint64, flag uint64, body int) error {
	cont := block == w.cur && w.cur != ""
	size := w.curSize
	if !cont {
		var ok bool
		if size, ok = w.blocks[block]; !ok {
			return w.usage("unknown RAM block %q", block)
		}
	}
	if offset%PageSize != 0 || offset >= size {
		return w.usage("offset 0x%x outside RAM block %q of 0x%x bytes or not page aligned", offset, block, size)
	}
	if len(w.buf)+8+1+len(block)+body > cap(w.buf) {
		w.flushBuf()
		if w.err != nil {
			return w.err
		}
	}
	hdr := offset | flag
	if cont {
		w.buf = binary.BigEndian.AppendUint64(w.buf, hdr|flagContinue)
	} else {
		w.buf = binary.BigEndian.AppendUint64(w.buf, hdr)
		w.buf = append(w.buf, byte(len(block)))
		w.buf = append(w.buf, block...)
	}
	w.cur, w.curSize = block, size
	return nil
}

// Device writes a FULL section with the state as two fields: be32 length, then the bytes
// (described in the vmdesc as "length" uint32 and "state" buffer of that size), then the
// footer. Each idstr/instance pair may appear once. idstr is 1–255 bytes, not "ram" and
// not the integrity section's name; state is at most MaxStateSize bytes.
func (w *Writer) Device(idstr string, instance, version uint32, state []byte) error {
	if err := w.check("Device", wBetween); err != nil {
		return err
	}
	switch {
	case len(idstr) == 0 || len(idstr) > MaxIDStr || !utf8.ValidString(idstr):
		return w.usage("device idstr %q: must be UTF-8 of 1..%d bytes", idstr, MaxIDStr)
	case idstr == ramIDStr || idstr == IntegrityIDStr || idstr == MappedTableIDStr || idstr == BitmapsIDStr:
		return w.usage("device idstr %q is reserved", idstr)
	case len(state) > MaxStateSize:
		return w.usage("device %q: state of %d bytes (max %d)", idstr, len(state), MaxStateSize)
	case len(w.devices) >= MaxDevices:
		return w.usage("more than %d device sections", MaxDevices)
	}
	if _, dup := w.devIndex[DeviceDesc{Name: idstr, Instance: instance}]; dup {
		return w.usage("device section %q instance %d written twice", idstr, instance)
	}
	w.deviceSection(idstr, instance, version, state)
	return w.err
}

// deviceSection writes a FULL section carrying state (unchecked).
func (w *Writer) deviceSection(idstr string, instance, version uint32, state []byte) {
	key := DeviceDesc{Name: idstr, Instance: instance}
	w.devIndex[key] = struct{}{}
	w.devices = append(w.devices, devRecord{DeviceDesc{idstr, instance, version}, uint32(len(state))})
	id := w.sectionHeader(secFull, idstr, instance, version)
	w.reserve(4)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(state)))
	w.write(state)
	w.footer(id)
}

// Finish writes the tlcvm/integrity section, EOF and the vmdesc JSON, then flushes. The
// vmdesc describes every device section written; devices, when not nil, must name only
// sections written (same name, instance and version) and is otherwise only checked. A
// stream whose RAM section was set up must have been completed (RAMComplete, RAMIterEnd).
func (w *Writer) Finish(devices []DeviceDesc) error {
	if err := w.check("Finish", wBetween); err != nil {
		return err
	}
	if w.ram == ramSetUp {
		return w.usage("Finish before RAMComplete")
	}
	if w.bmState == 1 {
		return w.usage("Finish before BitmapsComplete")
	}
	written := make(map[DeviceDesc]struct{}, len(w.devices))
	for _, d := range w.devices {
		written[d.desc] = struct{}{}
	}
	for _, d := range devices {
		if _, ok := written[d]; !ok {
			return w.usage("device %q instance %d version %d described but not written", d.Name, d.Instance, d.Version)
		}
	}
	if w.mr != nil {
		table, err := w.mappedFinish()
		if err != nil {
			return err
		}
		w.deviceSection(MappedTableIDStr, 0, mappedTableVersion, table)
	}
	var config []byte
	if w.mr != nil {
		config = configDesc(len(w.machineType))
	}
	desc := buildVMDesc(w.devices, config)
	if len(desc) > MaxVMDescSize {
		return w.usage("vmdesc of %d bytes (max %d)", len(desc), MaxVMDescSize)
	}
	// Fold every byte so far into the CRC: the integrity section covers them.
	w.crc = crc32.Update(w.crc, castagnoli, w.buf[w.crcPos:])
	w.crcPos = len(w.buf)
	streamLen, streamCRC := w.streamBytes(), w.crc
	w.digest = Digest{Length: streamLen, CRC: streamCRC}

	id := w.sectionHeader(secFull, IntegrityIDStr, 0, integrityVersion)
	w.reserve(integrityFields + 5 + 1 + 5)
	b := binary.BigEndian.AppendUint64(w.buf, streamLen)
	b = binary.BigEndian.AppendUint32(b, streamCRC)
	b = binary.BigEndian.AppendUint32(b, uint32(len(desc)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(desc, castagnoli))
	w.buf = b
	w.footer(id)
	w.buf = append(w.buf, secEOF, secVMDescription)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(desc)))
	w.write(desc)
	w.state = wFinished
	w.log.Debug().Uint64("bytes", w.Bytes()).Uint64("pages", w.normal).Uint64("zero_pages", w.zero).
		Int("devices", len(w.devices)).Msg("stream finished")
	return w.Flush()
}

// Flush writes the buffered bytes to the underlying writer and, when it has a Flush
// method (bufio.Writer), calls it.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.flushBuf()
	if w.err != nil {
		return w.err
	}
	if f, ok := w.out.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			w.err = err
		}
	}
	return w.err
}

// reserve makes room for n more bytes in buf, flushing when needed.
func (w *Writer) reserve(n int) {
	if len(w.buf)+n > cap(w.buf) {
		w.flushBuf()
	}
}

// write appends p, flushing as needed; large p goes straight to the underlying writer.
func (w *Writer) write(p []byte) {
	if len(w.buf)+len(p) <= cap(w.buf) {
		w.buf = append(w.buf, p...)
		return
	}
	w.flushBuf()
	if w.err != nil {
		return
	}
	if len(p) < cap(w.buf) {
		w.buf = append(w.buf, p...)
		return
	}
	w.crc = crc32.Update(w.crc, castagnoli, p)
	n, err := w.out.Write(p)
	w.flushed += uint64(n)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
	}
}

// Handoff is an underlying writer that takes the Writer's whole buffers instead of
// copying them: Handoff keeps p (the Writer never touches it again) and returns an empty
// buffer to fill next, with the error of an earlier write (sticky in the Writer). An
// implementation writes p on a goroutine of its own, so that the next buffer is encoded
// while the previous one is sent. Write (a large device state) and Flush, when it has one,
// must finish the handed-off buffers first.
type Handoff interface {
	io.Writer
	Handoff(p []byte) ([]byte, error)
}

// flushBuf folds the buffer into the CRC and writes it out (or hands it off). On error
// the buffer is kept (the error is sticky; nothing more is written).
func (w *Writer) flushBuf() {
	if w.err != nil || len(w.buf) == 0 {
		return
	}
	w.crc = crc32.Update(w.crc, castagnoli, w.buf[w.crcPos:])
	if h, ok := w.out.(Handoff); ok {
		next, err := h.Handoff(w.buf)
		if err != nil { // an earlier buffer's: this one was not taken
			w.err, w.buf, w.crcPos = err, w.buf[:0], 0
			return
		}
		w.flushed += uint64(len(w.buf))
		w.buf, w.crcPos = next[:0], 0
		return
	}
	n, err := w.out.Write(w.buf)
	w.flushed += uint64(n)
	if err == nil && n != len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
		w.buf = w.buf[:0]
		w.crcPos = 0
		return
	}
	w.buf = w.buf[:0]
	w.crcPos = 0
}

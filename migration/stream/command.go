package stream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/rs/zerolog"
)

// Cmd is a QEMU_VM_COMMAND subcommand (QEMU 7.2 migration/savevm.c, enum qemu_vm_cmd).
type Cmd uint16

// The subcommands, in QEMU's numbering.
const (
	CmdOpenReturnPath     Cmd = 1  // no data: the destination opens its return path
	CmdPing               Cmd = 2  // be32 value: answered by a PONG on the return path
	CmdPostcopyAdvise     Cmd = 3  // be64 host page size, be64 target page size (or nothing)
	CmdPostcopyListen     Cmd = 4  // no data: pages may arrive while devices load
	CmdPostcopyRun        Cmd = 5  // no data: the destination runs
	CmdPostcopyRAMDiscard Cmd = 6  // u8 version 0, u8 len, block name, NUL, be64 start/length pairs (bytes)
	CmdPackaged           Cmd = 7  // be32 length, then that many bytes of sections
	CmdEnableCOLO         Cmd = 8  // no data (not used by tlcvm)
	CmdPostcopyResume     Cmd = 9  // no data: a recovered postcopy continues
	CmdRecvBitmap         Cmd = 10 // u8 len, block name: send the received bitmap of the block
)

// cmdArgs are QEMU's mig_cmd_args: the data length of each command (-1 variable).
var cmdArgs = map[Cmd]struct {
	len  int
	name string
}{
	CmdOpenReturnPath:     {0, "OPEN_RETURN_PATH"},
	CmdPing:               {4, "PING"},
	CmdPostcopyAdvise:     {-1, "POSTCOPY_ADVISE"},
	CmdPostcopyListen:     {0, "POSTCOPY_LISTEN"},
	CmdPostcopyRun:        {0, "POSTCOPY_RUN"},
	CmdPostcopyRAMDiscard: {-1, "POSTCOPY_RAM_DISCARD"},
	CmdPackaged:           {4, "PACKAGED"},
	CmdPostcopyResume:     {0, "POSTCOPY_RESUME"},
	CmdRecvBitmap:         {-1, "RECV_BITMAP"},
}

// String is QEMU's name of the command.
func (c Cmd) String() string {
	if a, ok := cmdArgs[c]; ok {
		return a.name
	}
	if c == CmdEnableCOLO {
		return "ENABLE_COLO"
	}
	return fmt.Sprintf("CMD%d", uint16(c))
}

// Limits of commands.
const (
	// MaxPackageSize bounds a PACKAGED command's payload (QEMU 7.2 allows up to 4 GiB;
	// tlcvm's device state is far smaller than this).
	MaxPackageSize = 256 << 20
	// MaxDiscardRanges is QEMU's MAX_DISCARDS_PER_COMMAND.
	MaxDiscardRanges = 12
	discardVersion   = 0
)

// Command writes a QEMU_VM_COMMAND section: 0x08, be16 command, be16 length, data.
// PACKAGED is written by Packaged.
func (w *Writer) Command(c Cmd, data []byte) error {
	if err := w.check("Command", wBetween); err != nil {
		return err
	}
	a, ok := cmdArgs[c]
	switch {
	case !ok || c == CmdPackaged:
		return w.usage("command %s cannot be written with Command", c)
	case a.len >= 0 && len(data) != a.len:
		return w.usage("command %s with %d bytes of data, want %d", c, len(data), a.len)
	case len(data) > 0xffff:
		return w.usage("command %s with %d bytes of data", c, len(data))
	}
	w.commandHeader(c, len(data))
	w.write(data)
	return w.err
}

func (w *Writer) commandHeader(c Cmd, n int) {
	w.reserve(5)
	b := append(w.buf, secCommand)
	b = binary.BigEndian.AppendUint16(b, uint16(c))
	w.buf = binary.BigEndian.AppendUint16(b, uint16(n))
}

// Ping writes PING with value v.
func (w *Writer) Ping(v uint32) error {
	return w.Command(CmdPing, binary.BigEndian.AppendUint32(nil, v))
}

// Packaged writes a PACKAGED command carrying pkg (a package made by NewPackageWriter):
// be32 length, then the bytes, as QEMU's qemu_savevm_send_packaged.
func (w *Writer) Packaged(pkg []byte) error {
	if err := w.check("Packaged", wBetween); err != nil {
		return err
	}
	if len(pkg) > MaxPackageSize {
		return w.usage("package of %d bytes (max %d)", len(pkg), MaxPackageSize)
	}
	w.commandHeader(CmdPackaged, 4)
	w.reserve(4)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(pkg)))
	w.write(pkg)
	return w.err
}

// NewPackageWriter returns a Writer of a package: the sections a postcopy source sends
// wrapped in PACKAGED (commands and device sections, no header, no RAM), ended by
// FinishPackage with an integrity section over the package's own bytes, so that the
// destination verifies the device state before the guest runs on it.
func NewPackageWriter(w io.Writer) *Writer {
	return &Writer{out: w, log: zerolog.Nop(), buf: make([]byte, 0, writeBufferSize),
		devIndex: map[DeviceDesc]struct{}{}, state: wBetween, pkg: true}
}

// FinishPackage ends a package: the integrity section (the length and CRC32C of every
// package byte before it; an empty vmdesc), then a flush.
func (w *Writer) FinishPackage() error {
	if err := w.check("FinishPackage", wBetween); err != nil {
		return err
	}
	if !w.pkg {
		return w.usage("FinishPackage on a stream writer")
	}
	w.crc = crc32.Update(w.crc, castagnoli, w.buf[w.crcPos:])
	w.crcPos = len(w.buf)
	n, crc := w.streamBytes(), w.crc
	id := w.sectionHeader(secFull, IntegrityIDStr, 0, integrityVersion)
	w.reserve(integrityFields + 5)
	b := binary.BigEndian.AppendUint64(w.buf, n)
	b = binary.BigEndian.AppendUint32(b, crc)
	b = binary.BigEndian.AppendUint32(b, 0)
	w.buf = binary.BigEndian.AppendUint32(b, 0)
	w.footer(id)
	w.state = wFinished
	return w.Flush()
}

// Resume continues the stream on out after its previous channel broke (a postcopy
// recovery): what was buffered and not written is dropped, an open RAM section is
// abandoned (the next pages go in a new PART section), and the integrity section at the
// end covers the bytes written from here on. Bytes keeps counting.
func (w *Writer) Resume(out io.Writer) {
	w.out, w.err = out, nil
	w.buf, w.crcPos, w.crc = w.buf[:0], 0, 0
	w.segBase = w.flushed
	if w.state == wInPart || w.state == wInEnd {
		w.state = wBetween
	}
	if w.ram == ramComplete {
		w.ram = ramSetUp
	}
	w.cur, w.curSize = "", 0
}

// NewPackageReader returns a Reader of a package (NewPackageWriter's bytes, the data of
// a PACKAGED command): Command and Device records, then End once the package's integrity
// section is verified and nothing follows it.
func NewPackageReader(pkg []byte) *Reader {
	r := NewReader(bytes.NewReader(pkg))
	r.state, r.section, r.pkg = rSections, "package", true
	return r
}

// Resume continues reading on in after the previous channel broke (a postcopy
// recovery, see Writer.Resume): the bytes not yet consumed are dropped, the sticky error is
// cleared, and the next byte is a section type. Offsets and the integrity check start
// over from here.
func (r *Reader) Resume(in io.Reader) {
	r.in, r.err, r.done = in, nil, nil
	r.r, r.w, r.base, r.crcPos, r.crc = 0, 0, 0, 0, 0
	r.state, r.section = rSections, "-"
	if r.ram == ramComplete {
		r.ram = ramSetUp
	}
}

// command reads the rest of a QEMU_VM_COMMAND section.
func (r *Reader) command() (Record, error) {
	c16, err := r.u16()
	if err != nil {
		return Record{}, err
	}
	c := Cmd(c16)
	n, err := r.u16()
	if err != nil {
		return Record{}, err
	}
	a, ok := cmdArgs[c]
	r.section = "command " + c.String()
	if !ok {
		return Record{}, r.fail(ErrFormat, "VM_COMMAND 0x%x unknown (len 0x%x)", c16, n)
	}
	if a.len >= 0 && int(n) != a.len {
		return Record{}, r.fail(ErrFormat, "%s received bad length for %s: %d expected: %d", "loadvm_process_command", a.name, n, a.len)
	}
	data, err := r.bytesCap(int(n), int(n))
	if err != nil {
		return Record{}, err
	}
	rec := Record{Kind: Command, Cmd: c, Data: data}
	if c != CmdPackaged {
		return rec, nil
	}
	size := binary.BigEndian.Uint32(data)
	if size > MaxPackageSize {
		return Record{}, r.fail(ErrFormat, "package of %d bytes (max %d)", size, MaxPackageSize)
	}
	if rec.Data, err = r.bytes(int(size)); err != nil {
		return Record{}, err
	}
	return rec, nil
}

func (r *Reader) u16() (uint16, error) {
	if err := r.ensure(2); err != nil {
		return 0, err
	}
	r.r += 2
	return binary.BigEndian.Uint16(r.buf[r.r-2:]), nil
}

// packageEnd verifies a package's integrity section (after its header) and that nothing
// follows it.
func (r *Reader) packageEnd(id uint32) error {
	f, err := r.peek(integrityFields)
	if err != nil {
		return err
	}
	n, crc := binary.BigEndian.Uint64(f), binary.BigEndian.Uint32(f[8:])
	if desc := binary.BigEndian.Uint64(f[12:]); desc != 0 {
		return r.fail(ErrFormat, "package integrity section with a vmdesc record 0x%x", desc)
	}
	if n != r.markOff {
		return r.fail(ErrIntegrity, "package length %d recorded, %d read", n, r.markOff)
	}
	if crc != r.markCRC {
		return r.fail(ErrIntegrity, "package CRC32C 0x%08x recorded, 0x%08x computed over %d bytes", crc, r.markCRC, r.markOff)
	}
	if err := r.footer(id); err != nil {
		return err
	}
	if err := r.ensure(1); err == nil {
		return r.fail(ErrFormat, "bytes after the package's integrity section")
	}
	r.state = rDone
	return nil
}

// Range is a run of pages of a RAM block, in bytes (POSTCOPY_RAM_DISCARD's pairs).
type Range struct{ Start, Length uint64 }

// DiscardCommands encodes a block's ranges as POSTCOPY_RAM_DISCARD data, at most
// MaxDiscardRanges per command (QEMU's postcopy_discard_send_range batching).
func DiscardCommands(block string, ranges []Range) [][]byte {
	var out [][]byte
	for len(ranges) > 0 {
		k := min(len(ranges), MaxDiscardRanges)
		b := []byte{discardVersion, byte(len(block))}
		b = append(b, block...)
		b = append(b, 0)
		for _, rg := range ranges[:k] {
			b = binary.BigEndian.AppendUint64(b, rg.Start)
			b = binary.BigEndian.AppendUint64(b, rg.Length)
		}
		out = append(out, b)
		ranges = ranges[k:]
	}
	return out
}

// ParseDiscard decodes POSTCOPY_RAM_DISCARD data, with QEMU 7.2's checks and texts
// (loadvm_postcopy_ram_handle_discard).
func ParseDiscard(data []byte) (string, []Range, error) {
	if len(data) < 1+1+1+1+2*8 {
		return "", nil, fmt.Errorf("%w: CMD_POSTCOPY_RAM_DISCARD invalid length (%d)", ErrFormat, len(data))
	}
	if data[0] != discardVersion {
		return "", nil, fmt.Errorf("%w: CMD_POSTCOPY_RAM_DISCARD invalid version (%d)", ErrFormat, data[0])
	}
	n := int(data[1])
	if 2+n+1 > len(data) || data[2+n] != 0 {
		return "", nil, fmt.Errorf("%w: CMD_POSTCOPY_RAM_DISCARD missing nil (%d)", ErrFormat, n)
	}
	name := string(data[2 : 2+n])
	rest := data[3+n:]
	if len(rest)%16 != 0 || len(rest) == 0 {
		return "", nil, fmt.Errorf("%w: CMD_POSTCOPY_RAM_DISCARD invalid length (%d)", ErrFormat, len(data))
	}
	var out []Range
	for ; len(rest) > 0; rest = rest[16:] {
		out = append(out, Range{binary.BigEndian.Uint64(rest), binary.BigEndian.Uint64(rest[8:])})
	}
	return name, out, nil
}

// AdviseData is POSTCOPY_ADVISE's data: the host page size summary and the target page
// size (tlcvm: both 4096).
func AdviseData() []byte {
	b := binary.BigEndian.AppendUint64(nil, PageSize)
	return binary.BigEndian.AppendUint64(b, PageSize)
}

// ParseAdvise checks POSTCOPY_ADVISE's data as QEMU 7.2's loadvm_postcopy_handle_advise.
func ParseAdvise(data []byte) error {
	switch len(data) {
	case 0:
		return nil // dirty bitmaps only
	case 16:
	default:
		return fmt.Errorf("%w: CMD_POSTCOPY_ADVISE invalid length (%d)", ErrFormat, len(data))
	}
	if s := binary.BigEndian.Uint64(data); s != PageSize {
		return fmt.Errorf("%w: Postcopy needs matching RAM page sizes (s=%x d=%x)", ErrFormat, s, PageSize)
	}
	if t := binary.BigEndian.Uint64(data[8:]); t != PageSize {
		return fmt.Errorf("%w: Postcopy needs matching target page sizes (s=%d d=%d)", ErrFormat, t, PageSize)
	}
	return nil
}

// BlockNameData is RECV_BITMAP's data (and the return path's RECV_BITMAP message): u8
// length, the block name.
func BlockNameData(block string) []byte { return append([]byte{byte(len(block))}, block...) }

// ParseBlockName decodes BlockNameData.
func ParseBlockName(data []byte) (string, error) {
	if len(data) < 1 || int(data[0])+1 != len(data) {
		return "", fmt.Errorf("%w: RECV_BITMAP: invalid block name of %d bytes", ErrFormat, len(data))
	}
	return string(data[1:]), nil
}

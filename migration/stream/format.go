package stream

import (
	"errors"
	"fmt"
	"hash/crc32"
)

// Errors. Every error the Reader returns for a bad stream wraps exactly one of ErrFormat,
// ErrIntegrity or ErrTruncated and says where (byte offset, section). Writer misuse wraps
// ErrUsage. Errors of the underlying io.Reader / io.Writer are returned unchanged.
var (
	// ErrFormat: the bytes do not follow the format (unknown section type, bad magic,
	// unknown RAM flags, a length over its limit, an offset outside its block …).
	ErrFormat = errors.New("invalid migration stream")
	// ErrIntegrity: the stream parses but its tlcvm/integrity section disagrees with the
	// bytes (length or CRC32C of the stream or of the vmdesc).
	ErrIntegrity = errors.New("migration stream integrity check failed")
	// ErrTruncated: the input ended before the verified end (EOF marker, integrity
	// section and vmdesc).
	ErrTruncated = errors.New("truncated migration stream")
	// ErrUsage: a Writer method was called out of order or with invalid arguments.
	ErrUsage = errors.New("invalid use of the stream writer")
)

// Wire constants (QEMU's migration/savevm.c and migration/ram.c).
const (
	fileMagic   = 0x5145564d // "QEVM"
	fileVersion = 3

	secEOF           = 0x00
	secStart         = 0x01
	secPart          = 0x02
	secEnd           = 0x03
	secFull          = 0x04
	secSubsection    = 0x05
	secVMDescription = 0x06
	secConfiguration = 0x07
	secCommand       = 0x08
	secFooter        = 0x7e

	flagZero         = 0x02 // RAM_SAVE_FLAG_ZERO (RAM_SAVE_FLAG_COMPRESS in 7.2's source)
	flagMemSize      = 0x04
	flagPage         = 0x08
	flagEOS          = 0x10
	flagContinue     = 0x20
	flagXBZRLE       = 0x40
	flagHook         = 0x80
	flagCompressPage = 0x100
	flagMultifdFlush = 0x200

	ramIDStr   = "ram"
	ramVersion = 4

	// IntegrityIDStr names tlcvm's final device section.
	IntegrityIDStr   = "tlcvm/integrity"
	integrityVersion = 1
	integrityFields  = 8 + 4 + 4 + 4 // stream-length, stream-crc32c, vmdesc-length, vmdesc-crc32c
)

// Limits. The Reader refuses anything larger with ErrFormat before allocating; the Writer
// refuses to produce it with ErrUsage.
const (
	PageSize          = 4096     // TARGET_PAGE_SIZE on x86
	MaxIDStr          = 255      // section and RAM block names (u8 length; QEMU's idstr[256])
	MaxMachineType    = 256      // configuration section name
	MaxBlocks         = 1024     // RAM blocks in the MEM_SIZE record
	MaxDevices        = 4096     // device sections in one stream
	MaxStateSize      = 16 << 20 // one device section's state
	MaxVMDescSize     = 4 << 20  // the JSON after EOF (the analyser reads the last 10 MiB)
	maxBlockSize      = 1 << 46  // 64 TiB: more than any guest; keeps sums far from overflow
	writeBufferSize   = 1 << 20  // whole buffers go to the channel in one write (transport copies none)
	readBufferSize    = 1 << 20
	initialReadBuffer = 16 << 10
)

// castagnoli is the CRC32C table; hash/crc32 uses SSE4.2 (amd64) or the CRC32 instructions
// (arm64) for it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Block is one RAM block as announced in the RAM section's MEM_SIZE record.
type Block struct {
	Name string
	Size uint64 // bytes, a multiple of PageSize
}

// DeviceDesc names a device section for the vmdesc JSON.
type DeviceDesc struct {
	Name     string
	Instance uint32
	Version  uint32
}

// RecordKind says what a Record holds.
type RecordKind uint8

// Record kinds, in the order a stream yields them: one Config, one RAMBlocks (when the
// stream has a RAM section), Page and ZeroPage records, Device records (anywhere between
// sections, normally after the pages), and End once the whole stream has been verified.
const (
	Config RecordKind = iota + 1
	RAMBlocks
	Page
	ZeroPage
	Device
	End
	// Command is a QEMU_VM_COMMAND section (Cmd, Data; a PACKAGED command's Data is the
	// package).
	Command
	// SectionEnd is the EOS of a RAM PART or END section, returned only when asked for
	// (Reader.ReportSectionEnd: a multifd destination syncs its channels there).
	SectionEnd
	// XBZRLEPage is a page sent as its difference from the destination's copy: Data is the
	// encoding (DecodeXBZRLE), valid until the next call to Next.
	XBZRLEPage
	// CompressedPage is a page deflated in the zlib format: Data (valid until the next
	// call to Next) inflates to the page.
	CompressedPage
	// BitmapsSetup and BitmapsData are the "dirty-bitmap" section's START (headers) and
	// END (bits) sections (bitmaps.go), between the RAM setup and the device sections.
	BitmapsSetup
	BitmapsData
)

var kindNames = [...]string{"invalid", "config", "ram-blocks", "page", "zero-page", "device", "end", "command",
	"section-end", "xbzrle-page", "compressed-page", "bitmaps-setup", "bitmaps-data"}

func (k RecordKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("RecordKind(%d)", uint8(k))
}

// Record is one item of a stream, as returned by Reader.Next.
type Record struct {
	Kind RecordKind

	MachineType string // Config
	// Capabilities (Config) are the configuration section's migration capabilities (QEMU
	// 9.0's "configuration/capabilities" subsection): ["mapped-ram"] or none.
	Capabilities []string

	// Mapped (RAMBlocks, mapped-ram streams only) is where each block lives in the file;
	// its pages are read with Reader.ReadMapped once Next has returned End.
	Mapped []MappedBlock

	Blocks []Block // RAMBlocks

	// Page and ZeroPage. Data (PageSize bytes, Page only) aliases the Reader's buffer
	// and is valid until the next call to Next. Offset is the byte offset in the block.
	Block      string
	BlockIndex int // index of Block in the RAMBlocks record
	Offset     uint64
	Data       []byte
	Fill       byte // ZeroPage: every byte of the page has this value (tlcvm writes 0)

	// Command: the subcommand and its data (freshly allocated).
	Cmd Cmd

	// Device. State is freshly allocated and may be kept.
	IDStr    string
	Instance uint32
	Version  uint32
	State    []byte

	// Bitmaps (BitmapsSetup, BitmapsData): freshly allocated.
	Bitmaps []DirtyBitmap
}

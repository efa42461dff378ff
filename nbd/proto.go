package nbd

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Wire constants of the NBD protocol (doc/proto.md of the NBD project, include/block/nbd.h
// of QEMU 7.2). Every integer is big-endian.
const (
	nbdMagic      = 0x4e42444d41474943 // "NBDMAGIC"
	optMagic      = 0x49484156454f5054 // "IHAVEOPT"
	repMagic      = 0x0003e889045565a9 // option reply
	requestMagic  = 0x25609513
	simpleMagic   = 0x67446698
	structMagic   = 0x668e33ef
	cliservMagic  = 0x00420281861253 // oldstyle, never sent
	zeroPadLength = 124              // after NBD_OPT_EXPORT_NAME's reply without NO_ZEROES
)

// Handshake flags (server) and client flags.
const (
	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	cflagFixedNewstyle = 1 << 0
	cflagNoZeroes      = 1 << 1
	cflagMask          = cflagFixedNewstyle | cflagNoZeroes
)

// Options.
const (
	OptExportName      = 1
	OptAbort           = 2
	OptList            = 3
	OptPeekExport      = 4
	OptStartTLS        = 5
	OptInfo            = 6
	OptGo              = 7
	OptStructuredReply = 8
	OptListMetaContext = 9
	OptSetMetaContext  = 10
)

// Option reply types; errors have bit 31 set.
const (
	RepAck         = 1
	RepServer      = 2
	RepInfo        = 3
	RepMetaContext = 4

	repFlagError        = 1 << 31
	RepErrUnsup         = repFlagError | 1
	RepErrPolicy        = repFlagError | 2
	RepErrInvalid       = repFlagError | 3
	RepErrPlatform      = repFlagError | 4
	RepErrTLSReqd       = repFlagError | 5
	RepErrUnknown       = repFlagError | 6
	RepErrShutdown      = repFlagError | 7
	RepErrBlockSizeReqd = repFlagError | 8
	RepErrTooBig        = repFlagError | 9
)

// NBD_OPT_INFO / NBD_OPT_GO information types.
const (
	InfoExport      = 0
	InfoName        = 1
	InfoDescription = 2
	InfoBlockSize   = 3
)

// Transmission flags of an export.
const (
	FlagHasFlags        = 1 << 0
	FlagReadOnly        = 1 << 1
	FlagSendFlush       = 1 << 2
	FlagSendFUA         = 1 << 3
	FlagRotational      = 1 << 4
	FlagSendTrim        = 1 << 5
	FlagSendWriteZeroes = 1 << 6
	FlagSendDF          = 1 << 7
	FlagCanMultiConn    = 1 << 8
	FlagSendResize      = 1 << 9
	FlagSendCache       = 1 << 10
	FlagSendFastZero    = 1 << 11
)

// Commands.
const (
	CmdRead        = 0
	CmdWrite       = 1
	CmdDisc        = 2
	CmdFlush       = 3
	CmdTrim        = 4
	CmdCache       = 5
	CmdWriteZeroes = 6
	CmdBlockStatus = 7
)

// Command flags.
const (
	CmdFlagFUA      = 1 << 0
	CmdFlagNoHole   = 1 << 1
	CmdFlagDF       = 1 << 2
	CmdFlagReqOne   = 1 << 3
	CmdFlagFastZero = 1 << 4
)

// Structured reply chunks.
const (
	ReplyFlagDone = 1 << 0

	ReplyTypeNone        = 0
	ReplyTypeOffsetData  = 1
	ReplyTypeOffsetHole  = 2
	ReplyTypeBlockStatus = 5
	ReplyTypeError       = 1<<15 | 1
	ReplyTypeErrorOffset = 1<<15 | 2
)

// Error values on the wire (they are Linux errno values).
const (
	EPERM     = 1
	EIO       = 5
	ENOMEM    = 12
	EINVAL    = 22
	ENOSPC    = 28
	EOVERFLOW = 75
	ENOTSUP   = 95
	ESHUTDOWN = 108
)

// Block status flags: base:allocation, qemu:dirty-bitmap.
const (
	StateHole  = 1 << 0
	StateZero  = 1 << 1
	StateDirty = 1 << 0
)

// Meta context ids (QEMU's NBD_META_ID_*): a bitmap's id is MetaIDDirtyBitmap + its index.
const (
	MetaIDBaseAllocation  = 0
	MetaIDAllocationDepth = 1
	MetaIDDirtyBitmap     = 2
)

// Limits, as QEMU's server applies them.
const (
	// MaxBufferSize bounds a read or write (NBD_MAX_BUFFER_SIZE).
	MaxBufferSize = 32 << 20
	// MaxStringSize bounds export names, descriptions and meta context names
	// (NBD_MAX_STRING_SIZE).
	MaxStringSize = 4096
	// maxOptionLength bounds an option's data that is read into memory; longer options
	// of known types are refused (NBD_REP_ERR_TOO_BIG) after their data is skipped, and
	// anything longer than maxSkip closes the connection.
	maxOptionLength = 64 << 10
	maxSkip         = MaxBufferSize
	// maxMetaQueries bounds the queries of one meta context option.
	maxMetaQueries = 1 << 10
	// maxExtents bounds the extents of one block status reply (QEMU's
	// NBD_MAX_BLOCK_STATUS_EXTENTS).
	maxExtents = 1 << 20 / 8
	// preferredBlock is the preferred block size QEMU announces.
	preferredBlock = 4096
)

// request is a transmission request as read from the wire.
type request struct {
	Flags  uint16
	Type   uint16
	Handle uint64
	Offset uint64
	Length uint32
}

// readRequest reads one request header (28 bytes).
func readRequest(r io.Reader) (request, error) {
	var b [28]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return request{}, err
	}
	be := binary.BigEndian
	if m := be.Uint32(b[0:]); m != requestMagic {
		return request{}, fmt.Errorf("%w: invalid request magic 0x%x", errProtocol, m)
	}
	return request{Flags: be.Uint16(b[4:]), Type: be.Uint16(b[6:]), Handle: be.Uint64(b[8:]),
		Offset: be.Uint64(b[16:]), Length: be.Uint32(b[24:])}, nil
}

// appendU16, appendU32, appendU64 append big-endian integers.
func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// cmdName is QEMU's nbd_cmd_lookup text.
func cmdName(t uint16) string {
	switch t {
	case CmdRead:
		return "read"
	case CmdWrite:
		return "write"
	case CmdDisc:
		return "discard"
	case CmdFlush:
		return "flush"
	case CmdTrim:
		return "trim"
	case CmdCache:
		return "cache"
	case CmdWriteZeroes:
		return "write zeroes"
	case CmdBlockStatus:
		return "block status"
	}
	return "<unknown>"
}

// optName is QEMU's nbd_opt_lookup text.
func optName(o uint32) string {
	switch o {
	case OptExportName:
		return "export name"
	case OptAbort:
		return "abort"
	case OptList:
		return "list"
	case OptPeekExport:
		return "peek export"
	case OptStartTLS:
		return "start TLS"
	case OptInfo:
		return "info"
	case OptGo:
		return "go"
	case OptStructuredReply:
		return "structured reply"
	case OptListMetaContext:
		return "list meta context"
	case OptSetMetaContext:
		return "set meta context"
	}
	return "<unknown>"
}

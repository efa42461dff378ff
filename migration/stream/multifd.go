package stream

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Multifd channels (QEMU 7.2 migration/multifd.c, compression none): besides the main
// stream, the source opens multifd-channels more connections to the same address. Each
// starts with an init packet, then carries packets of normal pages; zero pages stay on
// the main stream. All integers big-endian.
//
//	init (64 bytes)   be32 0x11223344  be32 1  uuid[16]  u8 channel id  7 × 0  4 × be64 0
//	packet (1344 B)   be32 0x11223344  be32 1  be32 flags (1: SYNC)
//	                  be32 pages_alloc (128)  be32 normal_pages  be32 next_packet_size
//	                  be64 packet_num  4 × be64 unused  char ramblock[256] (NUL-padded)
//	                  128 × be64 offset (bytes in the block; the first normal_pages used)
//	                  then normal_pages × 4096 bytes of page data
//
// A SYNC packet ends each round: the destination applies a round's packets before it
// reads on past the main stream's EOS that closed the round (multifd_recv_sync_main).
// tlcvm's packets carry the CRC32C of their page data in unused[0] (high half "tlc\x01",
// low half the CRC); QEMU ignores the field, tlcvm's destination checks it.

// Multifd constants.
const (
	MultifdMagic          = 0x11223344
	MultifdVersion        = 1
	MultifdFlagSync       = 1
	MultifdPagesPerPacket = 128 // MULTIFD_PACKET_SIZE (512 KiB) / 4096
	MultifdInitSize       = 64
	MultifdPacketSize     = 4*6 + 8 + 4*8 + 256 + 8*MultifdPagesPerPacket
	multifdCRCTag         = 0x746c6301
)

// MultifdInit is a channel's init packet.
type MultifdInit struct {
	UUID [16]byte // the VM's -uuid (zero when none): both ends must agree
	ID   uint8    // the channel's number, 0 … multifd-channels-1
}

// Encode returns the 64 bytes of the init packet.
func (m MultifdInit) Encode() []byte {
	b := binary.BigEndian.AppendUint32(nil, MultifdMagic)
	b = binary.BigEndian.AppendUint32(b, MultifdVersion)
	b = append(b, m.UUID[:]...)
	b = append(b, m.ID)
	return append(b, make([]byte, MultifdInitSize-len(b))...)
}

// ParseMultifdInit decodes an init packet with QEMU 7.2's checks and texts
// (multifd_recv_initial_packet); channels is the destination's multifd-channels and uuid
// its own.
func ParseMultifdInit(b []byte, uuid [16]byte, channels int) (MultifdInit, error) {
	if len(b) != MultifdInitSize {
		return MultifdInit{}, fmt.Errorf("%w: multifd: init packet of %d bytes", ErrFormat, len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != MultifdMagic {
		return MultifdInit{}, fmt.Errorf("%w: multifd: received packet magic %x expected %x", ErrFormat, m, MultifdMagic)
	}
	if v := binary.BigEndian.Uint32(b[4:]); v != MultifdVersion {
		return MultifdInit{}, fmt.Errorf("%w: multifd: received packet version %d expected %d", ErrFormat, v, MultifdVersion)
	}
	var in MultifdInit
	copy(in.UUID[:], b[8:24])
	in.ID = b[24]
	if in.UUID != uuid {
		return MultifdInit{}, fmt.Errorf("%w: multifd: received uuid '%s' and expected uuid '%s' for channel %d", ErrFormat, uuidString(in.UUID), uuidString(uuid), in.ID)
	}
	if int(in.ID) > channels {
		return MultifdInit{}, fmt.Errorf("%w: multifd: received channel version %d expected %d", ErrFormat, in.ID, MultifdVersion)
	}
	return in, nil
}

func uuidString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// MultifdPacket is one packet's header.
type MultifdPacket struct {
	Flags     uint32
	Normal    uint32 // pages of data that follow
	PacketNum uint64
	Block     string
	Offsets   []uint64 // Normal byte offsets in Block
	// CRC is the CRC32C of the page data (tlcvm's unused[0]); HasCRC when present.
	CRC    uint32
	HasCRC bool
}

// Encode returns the packet's MultifdPacketSize bytes; data is the page data that will
// follow it (for the CRC).
func (p MultifdPacket) Encode(data []byte) []byte {
	b := make([]byte, 0, MultifdPacketSize)
	b = binary.BigEndian.AppendUint32(b, MultifdMagic)
	b = binary.BigEndian.AppendUint32(b, MultifdVersion)
	b = binary.BigEndian.AppendUint32(b, p.Flags)
	b = binary.BigEndian.AppendUint32(b, MultifdPagesPerPacket)
	b = binary.BigEndian.AppendUint32(b, p.Normal)
	b = binary.BigEndian.AppendUint32(b, p.Normal*PageSize)
	b = binary.BigEndian.AppendUint64(b, p.PacketNum)
	b = binary.BigEndian.AppendUint64(b, uint64(multifdCRCTag)<<32|uint64(crc32.Checksum(data, castagnoli)))
	b = append(b, make([]byte, 3*8)...)
	var name [256]byte
	copy(name[:255], p.Block)
	b = append(b, name[:]...)
	for i := 0; i < MultifdPagesPerPacket; i++ {
		var off uint64
		if i < len(p.Offsets) {
			off = p.Offsets[i]
		}
		b = binary.BigEndian.AppendUint64(b, off)
	}
	return b
}

// ParseMultifdPacket decodes a packet header with QEMU 7.2's checks and texts
// (multifd_recv_unfill_packet); blockSize gives a block's size in bytes (false: unknown).
func ParseMultifdPacket(b []byte, blockSize func(string) (uint64, bool)) (MultifdPacket, error) {
	be := binary.BigEndian
	if len(b) != MultifdPacketSize {
		return MultifdPacket{}, fmt.Errorf("%w: multifd: packet of %d bytes", ErrFormat, len(b))
	}
	if m := be.Uint32(b); m != MultifdMagic {
		return MultifdPacket{}, fmt.Errorf("%w: multifd: received packet magic %x and expected magic %x", ErrFormat, m, MultifdMagic)
	}
	if v := be.Uint32(b[4:]); v != MultifdVersion {
		return MultifdPacket{}, fmt.Errorf("%w: multifd: received packet version %d and expected version %d", ErrFormat, v, MultifdVersion)
	}
	p := MultifdPacket{Flags: be.Uint32(b[8:])}
	if p.Flags&^MultifdFlagSync != 0 {
		return MultifdPacket{}, fmt.Errorf("%w: multifd: packet flags 0x%x (compression is not supported)", ErrFormat, p.Flags)
	}
	alloc := be.Uint32(b[12:])
	if alloc > MultifdPagesPerPacket {
		return MultifdPacket{}, fmt.Errorf("%w: multifd: received packet with %d pages and expected maximum pages are %d", ErrFormat, alloc, MultifdPagesPerPacket)
	}
	p.Normal = be.Uint32(b[16:])
	if p.Normal > alloc {
		return MultifdPacket{}, fmt.Errorf("%w: multifd: received packet with %d pages and expected maximum pages are %d", ErrFormat, p.Normal, alloc)
	}
	if next := be.Uint32(b[20:]); next != p.Normal*PageSize {
		return MultifdPacket{}, fmt.Errorf("%w: multifd: next packet size %d for %d pages", ErrFormat, next, p.Normal)
	}
	p.PacketNum = be.Uint64(b[24:])
	if u := be.Uint64(b[32:]); u>>32 == multifdCRCTag {
		p.CRC, p.HasCRC = uint32(u), true
	}
	if p.Normal == 0 {
		return p, nil
	}
	name := b[64 : 64+255]
	for i, c := range name {
		if c == 0 {
			name = name[:i]
			break
		}
	}
	p.Block = string(name)
	size, ok := blockSize(p.Block)
	if !ok {
		return MultifdPacket{}, fmt.Errorf("%w: multifd: unknown ram block %s", ErrFormat, p.Block)
	}
	p.Offsets = make([]uint64, p.Normal)
	for i := range p.Offsets {
		off := be.Uint64(b[320+8*i:])
		if off > size-PageSize || off%PageSize != 0 {
			return MultifdPacket{}, fmt.Errorf("%w: multifd: offset too long %d (max %x)", ErrFormat, off, size)
		}
		p.Offsets[i] = off
	}
	return p, nil
}

// CheckData verifies the page data that followed p against its CRC.
func (p MultifdPacket) CheckData(data []byte) error {
	if !p.HasCRC {
		return fmt.Errorf("%w: multifd: packet %d carries no CRC32C", ErrIntegrity, p.PacketNum)
	}
	if got := crc32.Checksum(data, castagnoli); got != p.CRC {
		return fmt.Errorf("%w: multifd: packet %d: CRC32C 0x%08x recorded, 0x%08x computed", ErrIntegrity, p.PacketNum, p.CRC, got)
	}
	return nil
}

package stream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"tlcvm/migration/stream"
)

// raw builds byte sequences for hand-made (mostly malformed) streams.
type raw struct{ bytes.Buffer }

func (r *raw) u8(v byte) *raw    { r.WriteByte(v); return r }
func (r *raw) u16(v uint16) *raw { r.Write(binary.BigEndian.AppendUint16(nil, v)); return r }
func (r *raw) u32(v uint32) *raw { r.Write(binary.BigEndian.AppendUint32(nil, v)); return r }
func (r *raw) u64(v uint64) *raw { r.Write(binary.BigEndian.AppendUint64(nil, v)); return r }
func (r *raw) str(s string) *raw { r.u8(byte(len(s))); r.WriteString(s); return r }

// hdr writes the magic, version and a configuration section for machine "pc".
func hdr() *raw {
	r := &raw{}
	r.u32(0x5145564d).u32(3).u8(0x07).u32(2)
	r.WriteString("pc")
	return r
}

// ramStart appends a RAM START section (id 0) with one 8 KiB block "pc.ram".
func (r *raw) ramStart() *raw {
	return r.u8(0x01).u32(0).str("ram").u32(0).u32(4).u64(8192 | 0x04).str("pc.ram").u64(8192).u64(0x10).u8(0x7e).u32(0)
}

func TestReaderRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		data *raw
		want error
		text string
	}{
		{"empty input", &raw{}, stream.ErrTruncated, "input ended"},
		{"bad magic", (&raw{}).u32(0x51455600).u32(3), stream.ErrFormat, "bad magic 0x51455600"},
		{"version 2", (&raw{}).u32(0x5145564d).u32(2), stream.ErrFormat, "unsupported stream version 2"},
		{"no configuration", (&raw{}).u32(0x5145564d).u32(3).u8(0x01), stream.ErrFormat, "configuration section"},
		{"machine type too long", (&raw{}).u32(0x5145564d).u32(3).u8(0x07).u32(1 << 20), stream.ErrFormat, "machine type name of 1048576 bytes"},
		{"EOF without integrity", hdr().u8(0x00), stream.ErrTruncated, "without the tlcvm/integrity section"},
		{"unknown section type", hdr().u8(0x09), stream.ErrFormat, "unexpected section type 0x09"},
		{"command cut", hdr().u8(0x08), stream.ErrTruncated, "input ended 2 bytes short"},
		{"unknown command", hdr().u8(0x08).u16(11).u16(0), stream.ErrFormat, "VM_COMMAND 0xb unknown (len 0x0)"},
		{"COLO command", hdr().u8(0x08).u16(8).u16(0), stream.ErrFormat, "VM_COMMAND 0x8 unknown (len 0x0)"},
		{"PING of 3 bytes", hdr().u8(0x08).u16(2).u16(3), stream.ErrFormat, "bad length for PING: 3 expected: 4"},
		{"package too large", hdr().u8(0x08).u16(7).u16(4).u32(1 << 30), stream.ErrFormat, "package of 1073741824 bytes"},
		{"PART before START", hdr().u8(0x02).u32(0), stream.ErrFormat, "not open"},
		{"RAM version 3", hdr().u8(0x01).u32(0).str("ram").u32(0).u32(3), stream.ErrFormat, "version 3"},
		{"other iterative section", hdr().u8(0x01).u32(0).str("block").u32(0).u32(1), stream.ErrFormat, "unknown iterative section"},
		{"empty section name", hdr().u8(0x04).u32(0).u8(0), stream.ErrFormat, "empty section name"},
		{"MEM_SIZE missing", hdr().u8(0x01).u32(0).str("ram").u32(0).u32(4).u64(0x10), stream.ErrFormat, "want MEM_SIZE"},
		{"block larger than total", hdr().u8(0x01).u32(0).str("ram").u32(0).u32(4).u64(4096 | 4).str("a").u64(8192), stream.ErrFormat, "RAM block \"a\""},
		{"block not page multiple", hdr().u8(0x01).u32(0).str("ram").u32(0).u32(4).u64(8192 | 4).str("a").u64(100), stream.ErrFormat, "RAM block \"a\""},
		{"duplicate block", hdr().u8(0x01).u32(0).str("ram").u32(0).u32(4).u64(8192 | 4).str("a").u64(4096).str("a").u64(4096), stream.ErrFormat, "announced twice"},
		{"no EOS after blocks", hdr().u8(0x01).u32(0).str("ram").u32(0).u32(4).u64(4096 | 4).str("a").u64(4096).u64(0x08), stream.ErrFormat, "want EOS"},
		{"footer id mismatch", hdr().u8(0x01).u32(0).str("ram").u32(0).u32(4).u64(4096 | 4).str("a").u64(4096).u64(0x10).u8(0x7e).u32(1), stream.ErrFormat, "footer of section 1 in section 0"},
		{"no footer", hdr().u8(0x01).u32(0).str("ram").u32(0).u32(4).u64(4096 | 4).str("a").u64(4096).u64(0x10).u8(0x02), stream.ErrFormat, "section footer"},
		{"second RAM section", hdr().ramStart().u8(0x01).u32(1).str("ram").u32(0).u32(4), stream.ErrFormat, "second RAM section"},
		{"PART of another id", hdr().ramStart().u8(0x02).u32(5), stream.ErrFormat, "RAM section of id 5 not open"},
		{"XBZRLE cut", hdr().ramStart().u8(0x02).u32(0).u64(0x40), stream.ErrTruncated, "input ended 1 bytes short"},
		{"XBZRLE other encoding", hdr().ramStart().u8(0x02).u32(0).u64(0x40).str("pc.ram").u8(2), stream.ErrFormat, "wrong compression"},
		{"compressed too long", hdr().ramStart().u8(0x02).u32(0).u64(0x100).str("pc.ram").u32(5000), stream.ErrFormat, "Invalid compressed data length: 5000"},
		{"XBZRLE too long", hdr().ramStart().u8(0x02).u32(0).u64(0x40).str("pc.ram").u8(1).u16(4097), stream.ErrFormat, "len overflow"},
		{"MULTIFD_FLUSH", hdr().ramStart().u8(0x02).u32(0).u64(0x200), stream.ErrFormat, "unsupported RAM record flags 0x200"},
		{"PAGE and ZERO", hdr().ramStart().u8(0x02).u32(0).u64(0x0a), stream.ErrFormat, "unsupported RAM record flags 0xa"},
		{"MEM_SIZE in a PART", hdr().ramStart().u8(0x02).u32(0).u64(0x04), stream.ErrFormat, "unsupported RAM record flags 0x4"},
		{"CONTINUE first", hdr().ramStart().u8(0x02).u32(0).u64(0x22), stream.ErrFormat, "CONTINUE without a previous page record"},
		{"unknown block", hdr().ramStart().u8(0x02).u32(0).u64(0x02).str("vga.vram"), stream.ErrFormat, "unknown RAM block \"vga.vram\""},
		{"page outside block", hdr().ramStart().u8(0x02).u32(0).u64(0x2000 | 0x02).str("pc.ram"), stream.ErrFormat, "page 0x2000 outside RAM block \"pc.ram\""},
		{"PART after END", hdr().ramStart().u8(0x03).u32(0).u64(0x10).u8(0x7e).u32(0).u8(0x02).u32(0), stream.ErrFormat, "not open"},
		{"integrity before END", hdr().ramStart().u8(0x04).u32(1).str(stream.IntegrityIDStr).u32(0).u32(1), stream.ErrFormat, "before the RAM section's END"},
		{"integrity version 2", hdr().u8(0x04).u32(0).str(stream.IntegrityIDStr).u32(0).u32(2), stream.ErrFormat, "integrity section instance 0 version 2"},
		{"RAM as FULL", hdr().u8(0x04).u32(0).str("ram").u32(0).u32(4), stream.ErrFormat, "RAM as a FULL section"},
		{"state too large", hdr().u8(0x04).u32(0).str("cpu/0").u32(0).u32(1).u32(stream.MaxStateSize + 1), stream.ErrFormat, "device state of 16777217 bytes"},
		{"state cut", hdr().u8(0x04).u32(0).str("cpu/0").u32(0).u32(1).u32(1000).u32(0), stream.ErrTruncated, "996 bytes short"},
		{"duplicate section id", hdr().u8(0x04).u32(0).str("a").u32(0).u32(1).u32(0).u8(0x7e).u32(0).u8(0x04).u32(0), stream.ErrFormat, "section id 0 used twice"},
		{"duplicate device", hdr().u8(0x04).u32(0).str("a").u32(0).u32(1).u32(0).u8(0x7e).u32(0).u8(0x04).u32(1).str("a").u32(0).u32(1), stream.ErrFormat, "appears twice"},
		// QEMU's own device sections are VMState fields, not a length and bytes: its
		// "timer" section (3 × 8 bytes of zeros here) reads as empty state without a footer.
		{"QEMU device section", hdr().u8(0x04).u32(0).str("timer").u32(0).u32(2).u64(0).u64(0).u64(0), stream.ErrFormat, "section footer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(bytes.NewReader(tc.data.Bytes()))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), "at offset ") {
				t.Fatalf("error %q does not say %q and where", err, tc.text)
			}
		})
	}
}

// TestReaderIntegrityErrors: a stream whose bytes were altered consistently with the
// framing fails the integrity check, naming what differs.
func TestReaderIntegrityErrors(t *testing.T) {
	m := newMachine(11, 8<<10)
	data := m.stream(t)
	// The vmdesc JSON starts after the last NUL; its length is the be32 before it.
	js := bytes.LastIndexByte(data, 0) + bytes.IndexByte(data[bytes.LastIndexByte(data, 0):], '{')
	integ := bytes.Index(data, []byte(stream.IntegrityIDStr)) + len(stream.IntegrityIDStr) + 8
	for _, tc := range []struct {
		name  string
		alter func(b []byte)
		text  string
	}{
		{"page byte", func(b []byte) { b[200] ^= 1 }, "CRC32C"},
		{"recorded length", func(b []byte) { b[integ+7]++ }, "stream length"},
		{"recorded CRC", func(b []byte) { b[integ+8] ^= 0x80 }, "CRC32C"},
		{"vmdesc byte", func(b []byte) { b[js+3] ^= 0x20 }, "vmdesc CRC32C"},
		{"vmdesc length", func(b []byte) { b[js-1]-- }, "vmdesc of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(data)
			tc.alter(b)
			_, err := load(bytes.NewReader(b))
			if !errors.Is(err, stream.ErrIntegrity) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want ErrIntegrity saying %q", err, tc.text)
			}
			if !stream.IsStreamError(err) {
				t.Fatal("IsStreamError false")
			}
		})
	}
}

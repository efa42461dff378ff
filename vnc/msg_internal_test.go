package vnc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"tlcvm/console"
)

// Version strings as QEMU 7.2's sscanf reads them (checked on the binary:
// 3.4/3.5 are served as 3.3, 3.9/4.0/3.889 get u32 0, garbage is dropped).
func TestParseVersion(t *testing.T) {
	tests := []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"RFB 003.008\n", 3, 8, true},
		{"RFB 003.003\n", 3, 3, true},
		{"RFB 003.889\n", 3, 889, true},
		{"RFB 3.8    \n", 3, 8, true},
		{"RFB 03.0080\n", 3, 8, true},
		{"RFB 003.008X", 3, 8, true},
		{"RFB 003.00\n\n", 3, 0, true},
		{"RFB003.008\n\n", 3, 8, true},
		{"RFB -03.+08\n", -3, 8, true},
		{"XYZ 003.008\n", 0, 0, false},
		{"RFB 003,008\n", 0, 0, false},
		{"RFB .008\n   ", 0, 0, false},
		{"RFB 003.\n   ", 0, 0, false},
	}
	for _, tt := range tests {
		ma, mi, ok := parseVersion([]byte(tt.in))
		if ok != tt.ok || ok && (ma != tt.major || mi != tt.minor) {
			t.Errorf("parseVersion(%q) = %d, %d, %v", tt.in, ma, mi, ok)
		}
	}
}

func TestReadMessage(t *testing.T) {
	tests := []struct {
		in   []byte
		typ  byte
		fail error
	}{
		{[]byte{0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0}, 0, nil},
		{[]byte{2, 0, 0, 1, 0, 0, 0, 0}, 2, nil},
		{[]byte{3, 1, 0, 0, 0, 0, 2, 128, 1, 224}, 3, nil},
		{[]byte{4, 1, 0, 0, 0, 0, 0, 65}, 4, nil},
		{[]byte{5, 0, 0, 1, 0, 1}, 5, nil},
		{[]byte{6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe, 1, 2}, 6, nil}, // extended: abs(-2)
		{[]byte{6, 0, 0, 0, 0, 0x10, 0, 1}, 6, errProtocol},        // 1 MiB + 1
		{[]byte{6, 0, 0, 0, 0, 0, 0, 5, 1}, 6, io.ErrUnexpectedEOF},
		{[]byte{255, 1, 0, 9}, 255, errProtocol},
		{[]byte{1}, 1, errProtocol},
		{[]byte{3, 0}, 3, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		m, err := readMessage(bufio.NewReader(bytes.NewReader(tt.in)))
		if m.typ != tt.typ || (tt.fail == nil) != (err == nil) || tt.fail != nil && !errors.Is(err, tt.fail) {
			t.Errorf("readMessage(%x) = %d, %v; want %d, %v", tt.in, m.typ, err, tt.typ, tt.fail)
		}
	}
}

func TestPlaceholderSizes(t *testing.T) {
	for _, sz := range [][2]int{{1, 1}, {8, 16}, {100, 40}, {1024, 768}} {
		if fb := console.Placeholder(sz[0], sz[1], console.PlaceholderText); len(fb) != sz[0]*sz[1]*4 {
			t.Fatalf("%v: %d bytes", sz, len(fb))
		}
	}
}

// FuzzReadMessage feeds arbitrary client bytes through the parser and the
// handler's pixel-format path: no panic, bounded reads, sentinel errors.
func FuzzReadMessage(f *testing.F) {
	for _, s := range [][]byte{
		{0, 0, 0, 0, 16, 16, 1, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0},
		{2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21},
		{3, 0, 0, 5, 0, 3, 0, 20, 0, 2},
		{6, 0, 0, 0, 0x80, 0, 0, 0},
		{255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e},
		{255, 1, 0, 2, 3, 2, 0, 0, 0xac, 0x44},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for i := 0; i < 64; i++ {
			m, err := readMessage(r)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errProtocol) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if m.cutLen > maxCutText || len(m.encodings) > 65535 {
				t.Fatalf("unbounded message %+v", m)
			}
			if m.typ == msgSetPixelFormat {
				if pf, ok := m.pf.normalize(); ok {
					c := newConverter(pf)
					out := c.convert(nil, []byte{0xaa, 0xaa, 0xaa, 0xff, 1, 2, 3, 4})
					if len(out) != 2*int(pf.BPP)/8 {
						t.Fatalf("convert %d bpp gave %d bytes", pf.BPP, len(out))
					}
				}
			}
		}
	})
}

func FuzzParseVersion(f *testing.F) {
	f.Add([]byte("RFB 003.008\n"))
	f.Add([]byte("RFB 3.8    \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 12 {
			b = b[:12]
		}
		parseVersion(b)
	})
}

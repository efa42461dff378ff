package vnc

import (
	"encoding/binary"
	"math/bits"
)

// pixelFormat is RFB's PIXEL_FORMAT (RFC 6143 §7.4).
type pixelFormat struct {
	BPP, Depth                      uint8
	BigEndian, TrueColour           bool
	RedMax, GreenMax, BlueMax       uint16
	RedShift, GreenShift, BlueShift uint8
}

// serverFormat is what QEMU 7.2 announces in ServerInit: x8r8g8b8,
// 32 bpp, depth 24, little-endian, true colour.
var serverFormat = pixelFormat{BPP: 32, Depth: 24, TrueColour: true,
	RedMax: 255, GreenMax: 255, BlueMax: 255, RedShift: 16, GreenShift: 8}

func (p pixelFormat) encode(b []byte) {
	b[0], b[1] = p.BPP, p.Depth
	b[2], b[3] = boolByte(p.BigEndian), boolByte(p.TrueColour)
	binary.BigEndian.PutUint16(b[4:], p.RedMax)
	binary.BigEndian.PutUint16(b[6:], p.GreenMax)
	binary.BigEndian.PutUint16(b[8:], p.BlueMax)
	b[10], b[11], b[12] = p.RedShift, p.GreenShift, p.BlueShift
	b[13], b[14], b[15] = 0, 0, 0
}

func decodePixelFormat(b []byte) pixelFormat {
	return pixelFormat{BPP: b[0], Depth: b[1], BigEndian: b[2] != 0, TrueColour: b[3] != 0,
		RedMax: binary.BigEndian.Uint16(b[4:]), GreenMax: binary.BigEndian.Uint16(b[6:]),
		BlueMax: binary.BigEndian.Uint16(b[8:]), RedShift: b[10], GreenShift: b[11], BlueShift: b[12]}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// normalize applies ui/vnc.c set_pixel_format: a colour-map request gets
// QEMU's fixed 8-bit 3:3:2 map, zero maxima mean 255. ok is false for bpp
// other than 8, 16, 32 (QEMU drops the client).
func (p pixelFormat) normalize() (pixelFormat, bool) {
	if !p.TrueColour {
		p.BPP, p.RedMax, p.GreenMax, p.BlueMax = 8, 7, 7, 3
		p.RedShift, p.GreenShift, p.BlueShift = 0, 3, 6
	}
	switch p.BPP {
	case 8, 16, 32:
	default:
		return p, false
	}
	for _, m := range []*uint16{&p.RedMax, &p.GreenMax, &p.BlueMax} {
		if *m == 0 {
			*m = 0xff
		}
	}
	return p, true
}

// isServerLayout reports whether QEMU copies framebuffer bytes unchanged
// (set_pixel_conversion: the client format maps to x8r8g8b8). QEMU 7.2 does
// not look at the big-endian flag here; verified against the binary.
func (p pixelFormat) isServerLayout() bool {
	return p.BPP == 32 && p.RedMax == 255 && p.GreenMax == 255 && p.BlueMax == 255 &&
		p.RedShift == 16 && p.GreenShift == 8 && p.BlueShift == 0
}

// colourMap is send_color_map's 256 entries for a colour-map client.
func (p pixelFormat) colourMap() []byte {
	out := make([]byte, 6+256*6)
	out[0] = 1 // SetColourMapEntries
	binary.BigEndian.PutUint16(out[4:], 256)
	rb, gb, bb := bits.OnesCount16(p.RedMax), bits.OnesCount16(p.GreenMax), bits.OnesCount16(p.BlueMax)
	for i := 0; i < 256; i++ {
		e := out[6+i*6:]
		binary.BigEndian.PutUint16(e[0:], uint16(((uint32(i)>>p.RedShift)&uint32(p.RedMax))<<(16-rb)))
		binary.BigEndian.PutUint16(e[2:], uint16(((uint32(i)>>p.GreenShift)&uint32(p.GreenMax))<<(16-gb)))
		binary.BigEndian.PutUint16(e[4:], uint16(((uint32(i)>>p.BlueShift)&uint32(p.BlueMax))<<(16-bb)))
	}
	return out
}

// converter turns server (x8r8g8b8 little-endian) pixels into the client's
// format, as vnc_convert_pixel.
type converter struct {
	pf         pixelFormat
	copy       bool
	bpp        int // bytes per pixel
	rb, gb, bb int
}

func newConverter(p pixelFormat) converter {
	return converter{pf: p, copy: p.isServerLayout(), bpp: int(p.BPP) / 8,
		rb: bits.OnesCount16(p.RedMax), gb: bits.OnesCount16(p.GreenMax), bb: bits.OnesCount16(p.BlueMax)}
}

// convert appends the converted pixels of src (4 bytes each) to dst.
func (c converter) convert(dst, src []byte) []byte {
	if c.copy {
		return append(dst, src...)
	}
	p := c.pf
	for i := 0; i+4 <= len(src); i += 4 {
		v := binary.LittleEndian.Uint32(src[i:])
		r := (((v >> 16) & 0xff) << c.rb) >> 8
		g := (((v >> 8) & 0xff) << c.gb) >> 8
		b := ((v & 0xff) << c.bb) >> 8
		o := r<<p.RedShift | g<<p.GreenShift | b<<p.BlueShift
		switch c.bpp {
		case 1:
			dst = append(dst, byte(o))
		case 2:
			if p.BigEndian {
				dst = append(dst, byte(o>>8), byte(o))
			} else {
				dst = append(dst, byte(o), byte(o>>8))
			}
		default:
			if p.BigEndian {
				dst = binary.BigEndian.AppendUint32(dst, o)
			} else {
				dst = binary.LittleEndian.AppendUint32(dst, o)
			}
		}
	}
	return dst
}

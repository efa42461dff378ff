package console

import (
	"bufio"
	"fmt"
	"image"
	"image/png"
	"io"
)

// Default surface size of a display whose guest never set a mode (QEMU's 640x480).
const (
	DefaultWidth  = 640
	DefaultHeight = 480
)

// Console is one graphic console: the display device it belongs to and its surface.
type Console struct {
	Device string // QOM type of the display device ("VGA", "virtio-vga", …)
	ID     string // the device's qdev id ("" when it has none)
	w, h   int
	fb     []byte // x8r8g8b8 little-endian, w*h*4; immutable (the guest never draws)
}

// New returns the console of a display device whose guest has not initialised it:
// QEMU's placeholder surface.
func New(device, id string) *Console {
	return &Console{Device: device, ID: id, w: DefaultWidth, h: DefaultHeight,
		fb: Placeholder(DefaultWidth, DefaultHeight, PlaceholderText)}
}

// Size is the surface's width and height.
func (c *Console) Size() (w, h int) { return c.w, c.h }

// Pixels returns the surface (x8r8g8b8 little-endian, rows top to bottom); read only.
func (c *Console) Pixels() []byte { return c.fb }

// WritePPM writes the surface as QEMU's ppm_save does: "P6\n<w> <h>\n255\n", then the
// pixels as RGB.
func (c *Console) WritePPM(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "P6\n%d %d\n255\n", c.w, c.h)
	for i := 0; i < len(c.fb); i += 4 {
		_ = bw.WriteByte(c.fb[i+2])
		_ = bw.WriteByte(c.fb[i+1])
		_ = bw.WriteByte(c.fb[i])
	}
	return bw.Flush()
}

// WritePNG writes the surface as an 8-bit RGB PNG (QEMU's png_save: opaque, no alpha).
func (c *Console) WritePNG(w io.Writer) error {
	img := image.NewNRGBA(image.Rect(0, 0, c.w, c.h))
	for i, j := 0, 0; i < len(c.fb); i, j = i+4, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = c.fb[i+2], c.fb[i+1], c.fb[i], 0xff
	}
	return png.Encode(w, img)
}

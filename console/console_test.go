package console_test

import (
	"bytes"
	"fmt"
	"image/png"
	"testing"

	"tlcvm/console"
)

// TestFormats: the PPM is QEMU's header and the surface's RGB; the PNG decodes to the
// same pixels, opaque.
func TestFormats(t *testing.T) {
	c := console.New("VGA", "video0")
	w, h := c.Size()
	var ppm, pngb bytes.Buffer
	if err := c.WritePPM(&ppm); err != nil {
		t.Fatal(err)
	}
	hdr := fmt.Sprintf("P6\n%d %d\n255\n", w, h)
	if !bytes.HasPrefix(ppm.Bytes(), []byte(hdr)) || ppm.Len() != len(hdr)+w*h*3 {
		t.Fatalf("PPM: %d bytes, header %q", ppm.Len(), ppm.Bytes()[:len(hdr)])
	}
	if err := c.WritePNG(&pngb); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&pngb)
	if err != nil {
		t.Fatal(err)
	}
	rgb := ppm.Bytes()[len(hdr):]
	lit := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, b, a := img.At(x, y).RGBA()
			i := (y*w + x) * 3
			if byte(r>>8) != rgb[i] || byte(g>>8) != rgb[i+1] || byte(b>>8) != rgb[i+2] || a != 0xffff {
				t.Fatalf("pixel %d,%d differs", x, y)
			}
			if rgb[i] == 0xaa {
				lit++
			}
		}
	}
	if lit == 0 {
		t.Errorf("no text on the placeholder")
	}
}

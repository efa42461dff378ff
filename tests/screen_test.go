package tests_test

import (
	"bytes"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"tlcvm/tests/harness"
)

// TestScreendumpBesideQEMU: for a display whose guest has not initialised it, tlcvm's
// PPM is QEMU 7.2's byte for byte and its PNG has QEMU's pixels, for std VGA and
// virtio-vga (QEMU stopped before its firmware draws, -S).
func TestScreendumpBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	for _, dev := range []string{"VGA", "virtio-vga"} {
		t.Run(dev, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			files := map[string][2][]byte{}
			for _, b := range []struct{ name, bin string }{{"qemu", ref}, {"tlcvm", bin}} {
				v := startMigVM(t, b.bin, dir, b.name, "-S", "-machine", "pc", "-m", "64", "-device", dev+",id=video0")
				ppm, pngf := filepath.Join(dir, b.name+".ppm"), filepath.Join(dir, b.name+".png")
				v.do("screendump", map[string]any{"filename": ppm})
				v.do("screendump", map[string]any{"filename": pngf, "format": "png", "device": "video0"})
				v.quit()
				p, err := os.ReadFile(ppm)
				if err != nil {
					t.Fatal(err)
				}
				g, err := os.ReadFile(pngf)
				if err != nil {
					t.Fatal(err)
				}
				files[b.name] = [2][]byte{p, g}
			}
			q, tl := files["qemu"], files["tlcvm"]
			if !bytes.HasPrefix(q[0], []byte("P6\n640 480\n255\n")) {
				t.Fatalf("QEMU's PPM starts %q", q[0][:min(16, len(q[0]))])
			}
			if !bytes.Equal(q[0], tl[0]) {
				t.Errorf("PPM differs (%d and %d bytes)", len(q[0]), len(tl[0]))
			}
			qi, ti := decodeRGBA(t, q[1]), decodeRGBA(t, tl[1])
			if qi.Bounds() != ti.Bounds() || !bytes.Equal(qi.Pix, ti.Pix) {
				t.Errorf("PNG pixels differ: %v and %v", qi.Bounds(), ti.Bounds())
			}
			// The PNG's pixels are the PPM's.
			for i, j := 15, 0; i < len(tl[0]); i, j = i+3, j+4 {
				if !bytes.Equal(tl[0][i:i+3], ti.Pix[j:j+3]) {
					t.Fatalf("PNG and PPM differ at pixel %d", j/4)
				}
			}
		})
	}
}

func decodeRGBA(t *testing.T, b []byte) *image.RGBA {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, image.Point{}, draw.Src)
	return out
}

package tests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestHMPBlockResize: HMP block_resize over QMP block_resize, beside QEMU 7.2 (the image
// grows, then shrinks back, so that both binaries start from the same file). tlcvm numbers
// anonymous nodes differently, hence the scrub.
func TestHMPBlockResize(t *testing.T) {
	parallel(t)
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	differentialScript(t, fmt.Sprintf(`args: -machine pc -nodefaults -display none -drive file=%s,format=raw,if=none,id=d0
scrub: #block[0-9]+ => #blockN
negotiate
hmp: help block_resize
hmp: block_resize nosuch 1M
hmp: block_resize d0 2M
-> {"execute": "query-block"}
hmp: block_resize d0 1.5
hmp: block_resize d0 -1
hmp: block_resize d0
hmp: block_resize d0 1M
-> {"execute": "query-block"}
`, img))
}

package blockdev_test

import (
	"bytes"
	"testing"

	"tlcvm/blockdev"
)

// FuzzReadQcow2Header feeds arbitrary bytes to the qcow2 header parser: it must return an
// error or a header whose fields it checked, never panic or read out of bounds.
func FuzzReadQcow2Header(f *testing.F) {
	seed := make([]byte, 512)
	copy(seed, "QFI\xfb\x00\x00\x00\x03")
	seed[23], seed[29], seed[39], seed[42], seed[50], seed[59], seed[99], seed[103] = 16, 0x10, 1, 3, 1, 1, 4, 104
	f.Add(seed)
	v2 := append([]byte(nil), seed...)
	v2[7] = 2
	f.Add(v2)
	f.Add([]byte("QFI\xfb"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := blockdev.ReadQcow2Header(bytes.NewReader(b), int64(len(b)), true)
		if err != nil {
			return
		}
		if h.Version < 2 || h.Version > 3 || h.ClusterBits < 9 || h.ClusterBits > 21 {
			t.Fatalf("accepted header %+v", h)
		}
	})
}

package migration

import (
	"bytes"
	"testing"
)

// FuzzInflatePage: the destination's inflation of a compressed page accepts only data that
// inflates to exactly one page, and never panics.
func FuzzInflatePage(f *testing.F) {
	c := newCompressor(1)
	page := bytes.Repeat([]byte("tlcvm"), pageSize/5+1)[:pageSize]
	z, err := c.compress(page)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.Clone(z))
	f.Add(z[:len(z)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		out := make([]byte, pageSize)
		if inflatePage(data, out) == nil && bytes.Equal(data, z) && !bytes.Equal(out, page) {
			t.Fatal("a good page inflated wrong")
		}
	})
}

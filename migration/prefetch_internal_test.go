package migration

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"

	"tlcvm/migration/stream"
)

// choppy returns reads of random sizes (1 byte to 2 MiB), as a socket does.
type choppy struct {
	r   io.Reader
	rnd *rand.Rand
}

func (c *choppy) Read(p []byte) (int, error) {
	n := 1 + c.rnd.Intn(2<<20)
	if c.rnd.Intn(4) == 0 {
		n = 1 + c.rnd.Intn(64)
	}
	return c.r.Read(p[:min(n, len(p))])
}

// testStream writes a stream of pages pages and a device state of devBytes.
func testStream(t *testing.T, pages, devBytes int) []byte {
	t.Helper()
	var out bytes.Buffer
	w := stream.NewWriter(&out, "pc")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Begin())
	must(w.RAMSetup([]stream.Block{{Name: "pc.ram", Size: uint64(pages) * pageSize}}))
	must(w.RAMIterBegin())
	page := make([]byte, pageSize)
	for p := 0; p < pages; p++ {
		for i := range page {
			page[i] = byte(p*7 + i)
		}
		if p%5 == 0 {
			clear(page)
		}
		must(w.RAMPage("pc.ram", uint64(p)*pageSize, page))
	}
	must(w.RAMIterEnd())
	must(w.RAMComplete())
	must(w.RAMIterEnd())
	must(w.Device("dev", 0, 1, bytes.Repeat([]byte{9}, devBytes)))
	must(w.Finish(nil))
	return out.Bytes()
}

// readAll reads a stream through a prefetchReader and checks every page and the device.
func readAll(t *testing.T, in io.Reader, pages, devBytes int) error {
	t.Helper()
	pf := newPrefetchReader(in)
	defer pf.stop()
	r := stream.NewReader(pf)
	n := 0
	for {
		rec, err := r.Next()
		if err != nil {
			return err
		}
		switch rec.Kind {
		case stream.Page:
			p := int(rec.Offset / pageSize)
			if rec.Data[100] != byte(p*7+100) {
				t.Fatalf("page %d holds %d", p, rec.Data[100])
			}
			n++
		case stream.Device:
			if len(rec.State) != devBytes {
				t.Fatalf("device state of %d bytes, want %d", len(rec.State), devBytes)
			}
		case stream.End:
			if want := pages - (pages+4)/5; n != want {
				t.Fatalf("%d pages read back, want %d", n, want)
			}
			return nil
		}
	}
}

// TestPrefetchReader: a stream read through the prefetching goroutine, its buffers handed
// over or copied (a device state larger than the headroom), in reads of any size, comes
// back exactly and verifies; a cut one is truncated; stop ends a goroutine nobody reads.
func TestPrefetchReader(t *testing.T) {
	const pages, dev = 700, 3 << 20
	s := testStream(t, pages, dev)
	for seed := int64(1); seed <= 4; seed++ {
		if err := readAll(t, &choppy{r: bytes.NewReader(s), rnd: rand.New(rand.NewSource(seed))}, pages, dev); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	if err := readAll(t, bytes.NewReader(s), pages, dev); err != nil {
		t.Fatal(err)
	}
	cut := &choppy{r: bytes.NewReader(s[:len(s)/2]), rnd: rand.New(rand.NewSource(9))}
	if err := readAll(t, cut, pages, dev); !errors.Is(err, stream.ErrTruncated) {
		t.Fatalf("a stream cut in half: %v, want ErrTruncated", err)
	}
	pf := newPrefetchReader(bytes.NewReader(s))
	pf.stop() // the goroutine ends although nothing is read
	pf.stop()
}

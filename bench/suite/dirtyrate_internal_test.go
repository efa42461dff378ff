package suite

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

func TestXPWords(t *testing.T) {
	got, err := xpWords("0000000000000500: 0x0000000000000003 0x0000000000001000\r\n0000000000000510: 0x0000000000000002 0x00000000000000ff\r\n")
	if err != nil || !slices.Equal(got, []uint64{3, 0x1000, 2, 0xff}) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := xpWords("0000000000000500: 0xzz\r\n"); !errors.Is(err, ErrDirtyRate) {
		t.Fatalf("bad word: %v", err)
	}
	if got, err := xpWords("Cannot access memory\r\n"); err != nil || len(got) != 0 {
		t.Fatalf("no colon: %v %v", got, err)
	}
}

func FuzzXPWords(f *testing.F) {
	f.Add("0000000000000500: 0x0000000000000003 0x0000000000001000\r\n")
	f.Add(":::0x\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = xpWords(s)
	})
}

func TestCounters(t *testing.T) {
	var c counters
	if !math.IsNaN(c.rate()) || c.enough(1) {
		t.Fatal("empty counters")
	}
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	c.observe(at(0), []uint64{100, 50})     // the starting values: no change yet
	c.observe(at(100), []uint64{100, 50})   // nothing moved
	c.observe(at(500), []uint64{356, 50})   // vCPU 0: first change
	c.observe(at(700), []uint64{356, 306})  // vCPU 1: first change
	c.observe(at(1500), []uint64{612, 306}) // vCPU 0: +256 pages (1 MiB) in 1 s
	if !math.IsNaN(c.rate()) || c.enough(2) {
		t.Fatalf("vCPU 1 changed once: rate %v", c.rate())
	}
	c.observe(at(2700), []uint64{612, 818}) // vCPU 1: +512 pages (2 MiB) in 2 s
	if r := c.rate(); math.Abs(r-2) > 1e-9 || !c.enough(2) || c.enough(3) {
		t.Fatalf("rate %v, changes %v", r, c.changes)
	}
}

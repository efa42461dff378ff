package migration

import (
	"slices"
	"testing"
)

// TestReadahead: pages in a row ask for the window ahead once aheadMin have come, again
// when the loader nears its end; a jump starts over; with the queue full the loader
// populates the window itself.
func TestReadahead(t *testing.T) {
	reqs := make(chan aheadReq, 64)
	ra := &readahead{reqs: reqs}
	var got [][2]uint64 // first, end
	take := func() {
		for {
			select {
			case q := <-reqs:
				got = append(got, [2]uint64{q.first, q.first + q.n})
			default:
				return
			}
		}
	}
	const p0 = 100
	for p := uint64(p0); p < p0+aheadMin; p++ {
		ra.page(p)
	}
	take()
	if len(got) != 0 {
		t.Fatalf("asked before %d pages in a row: %v", aheadMin, got)
	}
	ra.page(p0 + aheadMin) // the run is aheadMin long: 2·aheadMin pages ahead
	take()
	want := [][2]uint64{{p0 + aheadMin, p0 + 3*aheadMin}}
	if !slices.Equal(got, want) {
		t.Fatalf("first request %v, want %v", got, want)
	}
	// The window grows with the run, up to aheadPages; the requests are contiguous and
	// each ends at most 2·aheadPages past the page that asked; nothing is asked twice.
	for p := uint64(p0 + aheadMin + 1); p < p0+8*aheadPages; p++ {
		ra.page(p)
	}
	take()
	for i := 1; i < len(got); i++ {
		if got[i][0] != got[i-1][1] {
			t.Fatalf("requests %v and %v are not contiguous", got[i-1], got[i])
		}
		if n := got[i][1] - got[i][0]; n > 2*aheadPages {
			t.Fatalf("request %v of %d pages", got[i], n)
		}
	}
	if last := got[len(got)-1][1]; last < p0+8*aheadPages || last > p0+8*aheadPages+2*aheadPages {
		t.Fatalf("the last request ends at %d, the run at %d", last, p0+8*aheadPages)
	}
	// A jump: the run starts over, and a short one asks for nothing.
	got = nil
	for p := uint64(1 << 20); p < 1<<20+aheadMin; p++ {
		ra.page(p)
	}
	take()
	if len(got) != 0 {
		t.Fatalf("asked right after a jump: %v", got)
	}
	// A full queue: the loader populates the window itself.
	f := fakePrefaulter{got: make(chan [2]uint64, 1)}
	ra.b, ra.reqs = f, make(chan aheadReq)
	ra.page(1<<20 + aheadMin)
	select {
	case q := <-f.got:
		if q != [2]uint64{1<<20 + aheadMin, 2 * aheadMin} {
			t.Errorf("populated %v itself", q)
		}
	default:
		t.Error("a full queue: nothing populated")
	}
	var nilRA *readahead
	nilRA.page(5) // a block that cannot prefault
}

// fakePrefaulter records what a readaheads goroutine was asked.
type fakePrefaulter struct{ got chan [2]uint64 }

func (f fakePrefaulter) PrefaultPages(first, n uint64) { f.got <- [2]uint64{first, n} }

// TestReadaheadsGoroutine: the goroutine prefaults what the loader's pages ask, and stop
// waits for it.
func TestReadaheadsGoroutine(t *testing.T) {
	f := fakePrefaulter{got: make(chan [2]uint64, 4)}
	r := newReadaheads(map[string]RAMBlock{})
	r.by["pc.ram"] = &readahead{b: f, reqs: r.reqs}
	if r.block("other") != nil {
		t.Fatal("a block that cannot prefault has a readahead")
	}
	for p := uint64(10); p <= 10+aheadMin; p++ {
		r.block("pc.ram").page(p)
	}
	r.stop()
	select {
	case q := <-f.got:
		if q != [2]uint64{10 + aheadMin, 2 * aheadMin} {
			t.Errorf("prefaulted %v", q)
		}
	default:
		t.Error("nothing prefaulted")
	}
}

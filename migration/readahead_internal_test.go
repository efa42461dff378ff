package migration

import (
	"slices"
	"testing"
)

// TestReadahead: pages in a row ask for the window ahead once aheadMin have come, again
// when the loader nears its end; a jump starts over; with the queue full the loader
// populates the window itself.
func TestReadahead(t *testing.T) {
	reqs := make(chan aheadReq, 8)
	ra := &readahead{reqs: reqs}
	var got [][2]uint64
	take := func() {
		for {
			select {
			case q := <-reqs:
				got = append(got, [2]uint64{q.first, q.n})
			default:
				return
			}
		}
	}
	for p := uint64(100); p < 100+aheadMin; p++ {
		ra.page(p)
	}
	take()
	if len(got) != 0 {
		t.Fatalf("asked before %d pages in a row: %v", aheadMin, got)
	}
	ra.page(100 + aheadMin) // the aheadMin-th page after the first
	take()
	p0 := uint64(100 + aheadMin)
	want := [][2]uint64{{p0, 2 * aheadPages}}
	if !slices.Equal(got, want) {
		t.Fatalf("first request %v, want %v", got, want)
	}
	// Within the window: nothing until the loader is aheadPages from its end.
	end := p0 + 2*aheadPages
	for p := p0 + 1; p < end-aheadPages; p++ {
		ra.page(p)
	}
	take()
	if len(got) != 1 {
		t.Fatalf("asked again inside the window: %v", got)
	}
	ra.page(end - aheadPages)
	take()
	want = append(want, [2]uint64{end, aheadPages})
	if !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	// A jump: the run starts over.
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
		if q != [2]uint64{1<<20 + aheadMin, 2 * aheadPages} {
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
		if q != [2]uint64{10 + aheadMin, 2 * aheadPages} {
			t.Errorf("prefaulted %v", q)
		}
	default:
		t.Error("nothing prefaulted")
	}
}

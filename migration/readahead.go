package migration

import "sync"

// Prefaulter is a RAMBlock that can make a run of never-written pages present in one
// kernel call (machine.RAMBlock.PrefaultPages), so that a loader filling them takes no page
// fault per page.
type Prefaulter interface {
	PrefaultPages(first, n uint64)
}

// Readahead's window: once aheadMin consecutive pages of a block have arrived in a row,
// the pages up to 2·w past the one arriving are populated, w the run's length so far up to
// aheadPages, and again each time the loader comes within w of the end of what was asked
// for. A run that stops leaves at most as many pages as it had, and at most 2·aheadPages
// (4 MiB), populated and unwritten; a scattered stream (a booted guest's few page-table
// pages) populates nothing ahead.
const (
	aheadMin   = 16
	aheadPages = 512
)

// readaheads prefault guest RAM ahead of a loader writing a block's pages in ascending
// order (a pass sends them so), as a file system reads ahead, on a goroutine of their own:
// the kernel's allocation and zeroing of a page (a fault: 2-5 µs here) then overlaps the
// loader's reading and copying instead of stalling it. When the goroutine is behind (its
// queue full) the loader populates the window itself, in one call too: both then
// populate. Prefaulting never changes a page's content: a page the loader writes
// meanwhile is simply present already.
type readaheads struct {
	by   map[string]*readahead
	reqs chan aheadReq
	done sync.WaitGroup
}

type aheadReq struct {
	b        Prefaulter
	first, n uint64
}

// readahead is one block's state; used by the loader's goroutine only.
type readahead struct {
	b               Prefaulter
	reqs            chan<- aheadReq
	next, run, upto uint64
}

// newReadaheads starts the prefaulting goroutine for the blocks that can prefault; stop
// ends it.
func newReadaheads(blocks map[string]RAMBlock) *readaheads {
	r := &readaheads{by: map[string]*readahead{}, reqs: make(chan aheadReq, 4)}
	for name, b := range blocks {
		if p, ok := b.(Prefaulter); ok {
			r.by[name] = &readahead{b: p, reqs: r.reqs}
		}
	}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		for q := range r.reqs {
			q.b.PrefaultPages(q.first, q.n)
		}
	}()
	return r
}

// block is the state of the named block, nil (does nothing) when it cannot prefault.
func (r *readaheads) block(name string) *readahead { return r.by[name] }

// stop ends the goroutine once it has done what it was asked.
func (r *readaheads) stop() {
	close(r.reqs)
	r.done.Wait()
}

// page notes that page p is about to be written.
func (ra *readahead) page(p uint64) {
	if ra == nil {
		return
	}
	if p == ra.next {
		ra.run++
	} else {
		ra.run, ra.upto = 0, 0
	}
	ra.next = p + 1
	w := min(ra.run, aheadPages)
	if ra.run < aheadMin || p+w < ra.upto {
		return
	}
	first := max(p, ra.upto)
	end := p + 2*w
	select {
	case ra.reqs <- aheadReq{b: ra.b, first: first, n: end - first}:
	default:
		// Behind: populate them here, in one call still (cheaper than a fault per page).
		ra.b.PrefaultPages(first, end-first)
	}
	ra.upto = end
}

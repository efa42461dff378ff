package migration

import (
	"math"
	"sync"
	"sync/atomic"

	"tlcvm/migration/stream"
)

// XBZRLE (capability xbzrle, xbzrle-cache-size; QEMU 7.2's save_xbzrle_page): from stage
// 2 on, a page sent again is sent as its difference from the copy sent before, when that
// copy is still in the cache (xbzrle-cache-size bytes, rounded down to a power of two
// pages, direct-mapped by address; an entry younger than two dirty syncs is not evicted).
// A miss sends the page whole and caches it; an encoding of more than a page overflows
// and sends it whole; an unchanged page is not sent. Zero pages update the cache too, so
// that a later difference is taken from what the destination has. Not used in stage 1, in
// postcopy, or for pages that go through multifd channels. Stage 3 encodes but no longer
// updates the cache.

// xbCache is the source's XBZRLE cache and counters (the checkpoint thread writes; the
// counters are read by query-migrate).
type xbCache struct {
	enabled bool // stage 2 on
	last    bool // stage 3: the cache is not updated
	addrs   []uint64
	ages    []uint64
	used    []bool
	data    []byte
	mask    uint64
	enc     []byte
	cur     []byte
	zero    []byte
	base    []uint64 // per RAM block: its first byte's "address" (blocks laid end to end)

	bytes, pages, misses, overflows atomic.Int64
	scanned                         atomic.Int64 // pages looked at while enabled

	mu                     sync.Mutex
	missRate, encodingRate float64 // +checklocks:mu
	prevMiss, prevScanned  int64   // +checklocks:mu
	prevBytes, prevPages   int64   // +checklocks:mu
}

// newXBCache makes a cache of size bytes for the blocks.
func newXBCache(size uint64, blocks []RAMBlock) *xbCache {
	n := uint64(1) << (63 - countLeadingZeros(max(size/pageSize, 1)))
	c := &xbCache{addrs: make([]uint64, n), ages: make([]uint64, n), used: make([]bool, n),
		data: make([]byte, n*pageSize), mask: n - 1, enc: make([]byte, pageSize),
		cur: make([]byte, pageSize), zero: make([]byte, pageSize)}
	var base uint64
	for _, b := range blocks {
		c.base = append(c.base, base)
		base += b.Size()
	}
	return c
}

func countLeadingZeros(x uint64) int {
	n := 0
	for x&(1<<63) == 0 {
		x <<= 1
		n++
	}
	return n
}

const cachedPageLifetime = 2 // QEMU's CACHED_PAGE_LIFETIME

func (c *xbCache) slot(addr uint64) (int, []byte) {
	i := int(addr / pageSize & c.mask)
	return i, c.data[i*pageSize : (i+1)*pageSize]
}

// cached is cache_is_cached: a hit refreshes the entry's age.
func (c *xbCache) cached(addr, gen uint64) bool {
	i, _ := c.slot(addr)
	if c.used[i] && c.addrs[i] == addr {
		c.ages[i] = gen
		return true
	}
	return false
}

// insert is cache_insert: false when a fresh entry of another page holds the slot.
func (c *xbCache) insert(addr uint64, page []byte, gen uint64) bool {
	i, d := c.slot(addr)
	if c.used[i] && c.addrs[i] != addr && c.ages[i]+cachedPageLifetime > gen {
		return false
	}
	copy(d, page)
	c.addrs[i], c.ages[i], c.used[i] = addr, gen, true
	return true
}

// xbResult is what save decided for a page.
type xbResult int

const (
	xbNormal  xbResult = iota // send the page whole (data: what to send)
	xbEncoded                 // send enc
	xbSkip                    // unchanged: send nothing
)

// save is save_xbzrle_page for the page at addr whose guest copy is page.
func (c *xbCache) save(addr uint64, page []byte, gen uint64) (xbResult, []byte) {
	c.scanned.Add(1)
	if !c.cached(addr, gen) {
		c.misses.Add(1)
		if !c.last && c.insert(addr, page, gen) {
			_, d := c.slot(addr)
			return xbNormal, d // what is sent is what the cache holds
		}
		return xbNormal, page
	}
	c.pages.Add(1)
	_, prev := c.slot(addr)
	copy(c.cur, page)
	n := stream.EncodeXBZRLE(prev, c.cur, c.enc)
	if !c.last && n != 0 {
		copy(prev, c.cur)
	}
	switch n {
	case 0:
		return xbSkip, nil
	case -1:
		c.overflows.Add(1)
		c.bytes.Add(pageSize)
		if c.last {
			return xbNormal, c.cur
		}
		return xbNormal, prev
	}
	c.bytes.Add(int64(n) + 1 + 2 + 1) // QEMU counts the record's bytes but the 8 of its header
	return xbEncoded, c.enc[:n]
}

// zeroPage is xbzrle_cache_zero_page: a zero page sent replaces the cached copy.
func (c *xbCache) zeroPage(addr, gen uint64) {
	if !c.last {
		c.insert(addr, c.zero, gen)
	}
}

// updateRates is migration_update_rates' xbzrle part, at a dirty sync.
func (c *xbCache) updateRates() {
	c.mu.Lock()
	defer c.mu.Unlock()
	miss, scanned := c.misses.Load(), c.scanned.Load()
	if d := scanned - c.prevScanned; d > 0 {
		c.missRate = float64(miss-c.prevMiss) / float64(d)
	}
	bytes, pages := c.bytes.Load(), c.pages.Load()
	if enc := bytes - c.prevBytes; enc > 0 {
		c.encodingRate = float64((pages-c.prevPages)*pageSize) / float64(enc)
	}
	c.prevMiss, c.prevScanned, c.prevBytes, c.prevPages = miss, scanned, bytes, pages
}

// XBZRLEInfo is query-migrate's xbzrle-cache.
type XBZRLEInfo struct {
	CacheSize, Bytes, Pages, CacheMiss, Overflow int64
	CacheMissRate, EncodingRate                  float64
}

func (c *xbCache) info(size uint64) *XBZRLEInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	clean := func(f float64) float64 {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0
		}
		return f
	}
	return &XBZRLEInfo{CacheSize: int64(size), Bytes: c.bytes.Load(), Pages: c.pages.Load(),
		CacheMiss: c.misses.Load(), Overflow: c.overflows.Load(),
		CacheMissRate: clean(c.missRate), EncodingRate: clean(c.encodingRate)}
}

// Package ghash reproduces the iteration order of a GLib 2.74 GHashTable keyed by strings
// (g_str_hash, g_str_equal) after a sequence of insertions, so that replies QEMU builds by
// walking a hash table — QOM children (qom-list), the /chardevs container (query-chardev) —
// come out in QEMU's order.
//
// The model follows glib/ghash.c: a power-of-two table starting at 8 buckets, the bucket
// of a hash is (hash*11) % prime_mod[shift], quadratic probing (step 1, 2, 3 …) masked to
// the table size, growth when occupancy reaches 15/16 (to nnodes*1.333 rounded up to a
// power of two), and the in-place rehash with eviction chains of g_hash_table_resize.
// Iteration visits buckets in index order.
package ghash

// primeMod is glib's prime_mod table, indexed by shift.
var primeMod = []uint32{
	1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521,
	131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393,
	67108859, 134217689, 268435399, 536870909, 1073741789, 2147483647,
}

const minShift = 3

// StrHash is g_str_hash (djb2 over signed chars).
func StrHash(s string) uint32 {
	h := uint32(5381)
	for i := 0; i < len(s); i++ {
		h = h<<5 + h + uint32(int32(int8(s[i])))
	}
	return h
}

type table struct {
	shift     int
	size      uint32
	mod, mask uint32
	hashes    []uint32 // 0 unused, 1 tombstone, ≥2 real
	keys      []string
	nnodes    int
	noccupied int
}

func (t *table) setShift(shift int) {
	t.shift = shift
	t.size = 1 << shift
	t.mod = primeMod[shift]
	t.mask = t.size - 1
}

func closestShift(n int) int {
	i := 0
	for ; n > 0; i++ {
		n >>= 1
	}
	return i
}

func (t *table) index(h uint32) uint32 { return (h * 11) % t.mod }

func (t *table) insert(key string) {
	h := StrHash(key)
	if h < 2 {
		h = 2
	}
	i := t.index(h)
	step := uint32(0)
	firstTomb, haveTomb := uint32(0), false
	for t.hashes[i] != 0 {
		if t.hashes[i] == h && t.keys[i] == key {
			return // replace: position unchanged
		}
		if t.hashes[i] == 1 && !haveTomb {
			firstTomb, haveTomb = i, true
		}
		step++
		i = (i + step) & t.mask
	}
	if haveTomb {
		i = firstTomb
	}
	wasUnused := t.hashes[i] == 0
	t.hashes[i], t.keys[i] = h, key
	t.nnodes++
	if wasUnused {
		t.noccupied++
		t.maybeResize()
	}
}

func (t *table) maybeResize() {
	size := int(t.size)
	if (size > t.nnodes*4 && size > 1<<minShift) || size <= t.noccupied+t.noccupied/16 {
		t.resize()
	}
}

func (t *table) resize() {
	oldSize := t.size
	shift := closestShift(int(float64(t.nnodes) * 1.333))
	if shift < minShift {
		shift = minShift
	}
	t.setShift(shift)
	n := t.size
	if oldSize > n {
		n = oldSize
	}
	hashes := make([]uint32, n)
	keys := make([]string, n)
	copy(hashes, t.hashes)
	copy(keys, t.keys)
	realloc := make([]bool, n)
	for i := uint32(0); i < oldSize; i++ {
		nh := hashes[i]
		if nh < 2 {
			hashes[i] = 0
			continue
		}
		if realloc[i] {
			continue
		}
		hashes[i] = 0
		key := keys[i]
		keys[i] = ""
		for {
			hv := t.index(nh)
			step := uint32(0)
			for realloc[hv] {
				step++
				hv = (hv + step) & t.mask
			}
			realloc[hv] = true
			replaced := hashes[hv]
			hashes[hv] = nh
			if replaced < 2 {
				keys[hv] = key
				break
			}
			nh = replaced
			key, keys[hv] = keys[hv], key
		}
	}
	t.hashes, t.keys = hashes[:t.size], keys[:t.size]
	t.noccupied = t.nnodes
}

// Order returns keys in the order g_hash_table_iter visits them after they were inserted
// in the given order into a new table (duplicates keep their first position).
func Order(keys []string) []string {
	t := &table{}
	t.setShift(minShift)
	t.hashes = make([]uint32, t.size)
	t.keys = make([]string, t.size)
	for _, k := range keys {
		t.insert(k)
	}
	out := make([]string, 0, t.nnodes)
	for i := uint32(0); i < t.size; i++ {
		if t.hashes[i] >= 2 {
			out = append(out, t.keys[i])
		}
	}
	return out
}

package memtree

import (
	"fmt"
	"strings"
)

// RAMBlock is a line of info ramblock (x-query-ramblock): a RAM block's name, page size,
// offset in the ram_addr_t space, used and maximum length.
type RAMBlock struct {
	Name                            string
	PageSize, Offset, Used, MaxSize uint64
}

// ramAlign is find_ram_offset's alignment of a candidate offset: a dirty bitmap word's worth
// of target pages (64 × 4 KiB).
const ramAlign = 64 << 12

// AllocOffsets is find_ram_offset applied to blocks of the given lengths, allocated in this
// order (and none freed): each takes the smallest gap after an existing block's end, rounded
// up to 256 KiB, that fits it; the first takes 0.
func AllocOffsets(sizes []uint64) []uint64 {
	type blk struct{ off, size uint64 }
	var blocks []blk
	out := make([]uint64, len(sizes))
	for i, size := range sizes {
		off, mingap := uint64(0), ^uint64(0)
		for _, b := range blocks {
			cand := (b.off + b.size + ramAlign - 1) &^ (ramAlign - 1)
			next := ^uint64(0)
			for _, n := range blocks {
				if n.off >= cand && n.off < next {
					next = n.off
				}
			}
			if gap := next - cand; gap >= size && gap < mingap {
				off, mingap = cand, gap
			}
		}
		out[i] = off
		blocks = append(blocks, blk{off, size})
	}
	return out
}

// FormatRAMBlocks is ram_block_format: a header, then one line per block in the order
// given (QEMU's RAM list: largest first).
func FormatRAMBlocks(blocks []RAMBlock) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%24s %8s  %18s %18s %18s\n", "Block Name", "PSize", "Offset", "Used", "Total")
	for _, r := range blocks {
		fmt.Fprintf(&b, "%24s %8s  0x%016x 0x%016x 0x%016x\n", r.Name, sizeToStr(r.PageSize), r.Offset, r.Used, r.MaxSize)
	}
	return b.String()
}

// sizeToStr is size_to_str for the page sizes RAM blocks have (a power of two).
func sizeToStr(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 && n%1024 == 0 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%d %s", n, units[i])
}

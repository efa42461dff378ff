package memtree

import (
	"slices"
	"strings"
)

// SortGroups is info mtree's output in a form independent of the order QEMU's hash tables
// give it: the blank-line-separated blocks (address-space groups, memory-region entries,
// FlatViews with their numbers blanked) sorted, address spaces before memory regions. Line
// ends are "\n" (the monitor's "\r\n" as human-monitor-command returns it are turned back).
func SortGroups(text string) string {
	var spaces, regions []string
	text = strings.ReplaceAll(text, "\r\n", "\n")
	for _, blk := range strings.Split(strings.TrimRight(text, "\n"), "\n\n") {
		if strings.HasPrefix(blk, "FlatView #") {
			_, rest, _ := strings.Cut(blk, "\n")
			blk = "FlatView\n" + rest
		}
		if strings.HasPrefix(blk, "memory-region: ") {
			regions = append(regions, blk)
		} else {
			spaces = append(spaces, blk)
		}
	}
	slices.Sort(spaces)
	slices.Sort(regions)
	return strings.Join(append(spaces, regions...), "\n\n") + "\n"
}

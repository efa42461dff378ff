package cmds

import "tlcvm/blockdev"

// blockdev-add's null-co and null-aio drivers (BlockdevOptionsNull): package blockdev
// opens them (blockdev/null.go).

// BlockdevOptionsNull is the null drivers' members (QEMU 7.2's, in its order).
type BlockdevOptionsNull struct {
	Size       *int64  `json:"size,omitempty"`
	LatencyNs  *uint64 `json:"latency-ns,omitempty"`
	ReadZeroes *bool   `json:"read-zeroes,omitempty"`
}

// nullOptions converts the null members.
func nullOptions(v *BlockdevOptionsNull) *blockdev.NullOptions {
	o := &blockdev.NullOptions{Size: v.Size, ReadZeroes: v.ReadZeroes}
	if v.LatencyNs != nil {
		l := int64(*v.LatencyNs) // null_file_open reads it as int64 and refuses a negative one
		o.LatencyNS = &l
	}
	return o
}

package catalog

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// qdictBuckets is QDICT_BUCKET_MAX (include/qapi/qmp/qdict.h).
const qdictBuckets = 512

// tdbHash is qobject/qdict.c tdb_hash: the hash that decides in which order
// QEMU iterates, and therefore emits, a dictionary's members.
func tdbHash(name string) uint32 {
	value := 0x238F13AF * uint32(len(name))
	for i := 0; i < len(name); i++ {
		value += uint32(name[i]) << (uint(i) * 5 % 24)
	}
	return 1103515243*value + 12345
}

// qdictOrder returns the indexes of names (distinct, in insertion order) in
// the order qdict_first/qdict_next visit them: by bucket, and within a
// bucket newest first (qdict_put_obj inserts at the head of the bucket).
func qdictOrder(names []string) []int {
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		ba, bb := tdbHash(names[a])%qdictBuckets, tdbHash(names[b])%qdictBuckets
		if ba != bb {
			return int(ba) - int(bb)
		}
		return b - a
	})
	return idx
}

// qemuJSONString is qobject/qjson.c's string encoding: quotes, backslash
// and control characters escaped, every character outside printable ASCII
// as \uXXXX (upper-case hex, surrogate pairs beyond the BMP).
func qemuJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			switch {
			case r == utf8.RuneError:
				b.WriteString(`\uFFFD`)
			case r >= 0x10000:
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04X\u%04X`, 0xD800|(r>>10), 0xDC00|(r&0x3FF))
			case r < 0x20 || r >= 0x7F:
				fmt.Fprintf(&b, `\u%04X`, r)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

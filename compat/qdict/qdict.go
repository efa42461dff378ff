// Package qdict is QEMU's QDict as it shows on the outside: the order in which
// qdict_first/qdict_next visit (and qobject_to_json writes) a dictionary's members, and
// qobject/qjson.c's compact JSON text of flat and nested dictionaries, for the places
// where QEMU prints a QDict inside a string (a block node's "json:{…}" filename) or
// where a reply's member order comes from one. It imports nothing of tlcvm's.
//
//	Order(keys)   by tdb_hash(key) % 512, and within a bucket the newest key first
//	Dict.JSON()   {"key": value, "k2": {"nested": true}}   (", " and ": " separators)
package qdict

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Buckets is QDICT_BUCKET_MAX (include/qapi/qmp/qdict.h).
const Buckets = 512

// Bucket is qobject/qdict.c tdb_hash of name modulo QDICT_BUCKET_MAX: the bucket that
// decides in which order QEMU iterates, and therefore emits, a dictionary's members.
func Bucket(name string) uint32 {
	value := 0x238F13AF * uint32(len(name))
	for i := 0; i < len(name); i++ {
		value += uint32(name[i]) << (uint(i) * 5 % 24)
	}
	return (1103515243*value + 12345) % Buckets
}

// Order returns the indexes of names (distinct, in insertion order) in
// the order qdict_first/qdict_next visit them: by bucket, and within a
// bucket newest first (qdict_put_obj inserts at the head of the bucket).
func Order(names []string) []int {
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		ba, bb := Bucket(names[a]), Bucket(names[b])
		if ba != bb {
			return int(ba) - int(bb)
		}
		return b - a
	})
	return idx
}

// Quote is qobject/qjson.c's string encoding: quotes, backslash
// and control characters escaped, every character outside printable ASCII
// as \uXXXX (upper-case hex, surrogate pairs beyond the BMP).
func Quote(s string) string {
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

// Member is one key and value of a Dict. Value is a string, an int64, a bool, a Dict or
// nil (null).
type Member struct {
	Key   string
	Value any
}

// Dict is a QDict's members in insertion order.
type Dict []Member

// JSON is qobject_to_json of the dict: members in Order, compact with QEMU's separators.
func (d Dict) JSON() string {
	var b strings.Builder
	d.write(&b)
	return b.String()
}

func (d Dict) write(b *strings.Builder) {
	keys := make([]string, len(d))
	for i, m := range d {
		keys[i] = m.Key
	}
	b.WriteByte('{')
	for i, j := range Order(keys) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(Quote(d[j].Key))
		b.WriteString(": ")
		switch v := d[j].Value.(type) {
		case string:
			b.WriteString(Quote(v))
		case int64:
			fmt.Fprintf(b, "%d", v)
		case bool:
			fmt.Fprintf(b, "%t", v)
		case Dict:
			v.write(b)
		case nil:
			b.WriteString("null")
		default:
			panic(fmt.Sprintf("qdict: member %q of type %T", d[j].Key, v))
		}
	}
	b.WriteByte('}')
}

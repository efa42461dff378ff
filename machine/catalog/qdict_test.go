package catalog

import (
	"slices"
	"testing"
)

// TestQDictOrder checks the hash order against member orders seen on the
// wire from QEMU 7.2.
func TestQDictOrder(t *testing.T) {
	for _, want := range [][]string{
		{"hotpluggable-cpus", "name", "numa-mem-supported", "default-cpu-type", "is-default", "cpu-max", "deprecated", "default-ram-id", "alias"},
		{"name", "typename", "unavailable-features", "alias-of", "static", "migration-safe", "deprecated"},
		{"abstract", "name", "parent"},
		{"default-value", "name", "description", "type"},
		{"class", "desc"},
	} {
		in := slices.Clone(want)
		slices.Reverse(in)
		var got []string
		for _, i := range qdictOrder(in) {
			got = append(got, in[i])
		}
		if !slices.Equal(got, want) {
			t.Errorf("qdictOrder = %v, want %v", got, want)
		}
	}
	// Same bucket: the member inserted last comes first.
	a, b := "a", ""
	for c := 'a'; c <= 'z' && b == ""; c++ {
		for d := 'a'; d <= 'z'; d++ {
			if s := string([]rune{c, d}); s != a && tdbHash(s)%qdictBuckets == tdbHash(a)%qdictBuckets {
				b = s
				break
			}
		}
	}
	if b != "" {
		if got := qdictOrder([]string{a, b}); !slices.Equal(got, []int{1, 0}) {
			t.Errorf("same-bucket order = %v, want [1 0]", got)
		}
	}
}

func TestQEMUJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     `"plain"`,
		"x<é>\"y\n": `"x<\u00E9>\"y\n"`,
		"\x01":      `"\u0001"`,
		"😀":         `"\uD83D\uDE00"`,
	} {
		if got := qemuJSONString(in); got != want {
			t.Errorf("qemuJSONString(%q) = %s, want %s", in, got, want)
		}
	}
}

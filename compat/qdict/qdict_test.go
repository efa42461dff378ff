package qdict

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
		for _, i := range Order(in) {
			got = append(got, in[i])
		}
		if !slices.Equal(got, want) {
			t.Errorf("Order = %v, want %v", got, want)
		}
	}
	// Same bucket: the member inserted last comes first.
	a, b := "a", ""
	for c := 'a'; c <= 'z' && b == ""; c++ {
		for d := 'a'; d <= 'z'; d++ {
			if s := string([]rune{c, d}); s != a && Bucket(s) == Bucket(a) {
				b = s
				break
			}
		}
	}
	if b != "" {
		if got := Order([]string{a, b}); !slices.Equal(got, []int{1, 0}) {
			t.Errorf("same-bucket order = %v, want [1 0]", got)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     `"plain"`,
		"x<é>\"y\n": `"x<\u00E9>\"y\n"`,
		"\x01":      `"\u0001"`,
		"😀":         `"\uD83D\uDE00"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestDictJSON checks a Dict's text against block node filenames QEMU 7.2 printed.
func TestDictJSON(t *testing.T) {
	for _, c := range []struct {
		d    Dict
		want string
	}{
		{Dict{{"driver", "null-aio"}, {"size", int64(1000)}, {"read-zeroes", true}},
			`{"read-zeroes": true, "driver": "null-aio", "size": 1000}`},
		{Dict{{"driver", "raw"}, {"file", Dict{{"driver", "null-co"}, {"size", "4096"}}}},
			`{"driver": "raw", "file": {"driver": "null-co", "size": "4096"}}`},
	} {
		if got := c.d.JSON(); got != c.want {
			t.Errorf("JSON() = %s, want %s", got, c.want)
		}
	}
}

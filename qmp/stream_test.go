package qmp_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"tlcvm/qmp"
)

// parseAll feeds input in chunks of size n (0: all at once) and returns one line per emitted
// value (its QEMU encoding) or error ("error: msg").
func parseAll(input string, n int) []string {
	var out []string
	p := qmp.NewStreamParser(func(v *qmp.Value, err error) {
		if err != nil {
			out = append(out, "error: "+err.Error())
			return
		}
		out = append(out, string(qmp.AppendJSON(nil, v, false)))
	})
	if n == 0 {
		p.Feed([]byte(input))
		return out
	}
	for i := 0; i < len(input); i += n {
		p.Feed([]byte(input[i:min(i+n, len(input))]))
	}
	return out
}

func TestStreamParser(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`{"a":1}{"b":2}`, []string{`{"a": 1}`, `{"b": 2}`}},
		{"  \t\r\n{\"a\" : [ 1 , 2.5 , true , false , null ] }  ", []string{`{"a": [1, 2.5, true, false, null]}`}},
		{`1 2 `, []string{`1`, `2`}},
		{`"x"'y'`, []string{`"x"`, `"y"`}},
		{`{"a":`, nil},
		{`{"a":1}}`, []string{`{"a": 1}`, "error: JSON parse error, expecting value"}},
		{`[}`, []string{"error: JSON parse error, expecting value"}},
		{`{"a" 1}`, []string{"error: JSON parse error, missing : in object pair"}},
		{`{"a":1,}`, []string{"error: JSON parse error, expecting value"}},
		{`[1,]`, []string{"error: JSON parse error, expecting value"}},
		{`{"a":}`, []string{"error: JSON parse error, expecting value"}},
		{`tru `, []string{"error: JSON parse error, invalid keyword 'tru'"}},
		{`-}`, []string{"error: JSON parse error, stray '-}'"}},
		{`-0 `, []string{`0`}},
		{`1E+2 `, []string{`100`}},
		{`123456789012345678901234567890 `, []string{`1.2345678901234568e+29`}},
		{`-9223372036854775808 `, []string{`-9223372036854775808`}},
		{`'a"b\'c'`, []string{`"a\"b'c"`}},
		{`"\/\b\f\n\r\t"`, []string{`"/\b\f\n\r\t"`}},
		{`"\ud83d\u0041"`, []string{"error: JSON parse error, \\ud83d is not a valid Unicode character"}},
		{`"\u12"`, []string{`error: JSON parse error, \u12" is not a valid Unicode character`}},
		{"\"\xef\xbf\xbe\"", []string{"error: JSON parse error, invalid UTF-8 sequence in string"}},
		{"abc def ", []string{"error: JSON parse error, invalid keyword 'abc'", "error: JSON parse error, invalid keyword 'def'"}},
		{"\xff\xfe{}", []string{"error: JSON parse error, stray '\xff'", "error: JSON parse error, stray '\xfe'", `{}`}},
		{"%%x{}", []string{"error: JSON parse error, stray '%'", `{}`}},
	} {
		for _, n := range []int{0, 1, 2, 3, 7} {
			got := parseAll(tc.in, n)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("%q in chunks of %d:\n got %q\nwant %q", tc.in, n, got, tc.want)
			}
		}
	}
}

// Every split of the same bytes must give the same messages (a stream, not lines).
func TestStreamSplitsAgree(t *testing.T) {
	var all strings.Builder
	for _, tc := range negotiatedCases {
		all.WriteString(tc.in)
	}
	in := all.String()
	want := parseAll(in, 0)
	for n := 1; n <= 13; n++ {
		if got := parseAll(in, n); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("chunks of %d differ from one read", n)
		}
	}
}

func TestStreamLimits(t *testing.T) {
	// MAX_NESTING as QEMU 7.2 applies it: 1024 levels pass, the 1025th open bracket fails and
	// every closing bracket after it is a separate "expecting value".
	got := parseAll(strings.Repeat("[", 1024)+strings.Repeat("]", 1024), 0)
	if len(got) != 1 || got[0] != strings.Repeat("[", 1024)+strings.Repeat("]", 1024) {
		t.Errorf("1024 levels: %.80q", got)
	}
	got = parseAll(strings.Repeat("[", 1025)+strings.Repeat("]", 1025)+"{}", 0)
	if len(got) != 1027 || got[0] != "error: JSON nesting depth limit exceeded" ||
		got[1] != "error: JSON parse error, expecting value" || got[1026] != "{}" {
		t.Errorf("1025 levels: %d messages, first %q", len(got), got[:2])
	}

	restore := qmp.SetLimits(64, 16, 1024)
	defer restore()
	for _, tc := range []struct{ in, want string }{
		{`["` + strings.Repeat("a", 70) + `"]`, "error: JSON token size limit exceeded"},
		{`[` + strings.Repeat("1,", 10) + `1]`, "error: JSON token count limit exceeded"},
		{`[` + strings.Repeat(`"aaaaaaaaaa",`, 6) + `1]`, "error: JSON token size limit exceeded"},
	} {
		if got := parseAll(tc.in, 0); len(got) == 0 || got[0] != tc.want {
			t.Errorf("%.40q: got %q, want first %q", tc.in, got, tc.want)
		}
	}
	// Recovery: the monitor keeps parsing after a limit error.
	got = parseAll(`[`+strings.Repeat("1,", 10)+`1]`+` {"ok":1}`, 0)
	if got[len(got)-1] != `{"ok": 1}` {
		t.Errorf("no recovery after token count limit: %q", got)
	}
}

func TestParseValue(t *testing.T) {
	v, err := qmp.ParseValue([]byte(`{"b": [1, "x"], "a": {"c": null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(qmp.AppendJSON(nil, v, false)); got != `{"a": {"c": null}, "b": [1, "x"]}` {
		t.Errorf("got %s", got)
	}
	for _, bad := range []string{``, `1 2`, `{`, `[1,`, `nul`} {
		if _, err := qmp.ParseValue([]byte(bad)); err == nil {
			t.Errorf("ParseValue(%q) accepted", bad)
		}
	}
	if v, err := qmp.ParseValue([]byte(`42`)); err != nil || v.Kind() != qmp.KindInt {
		t.Errorf("ParseValue(42) = %v, %v", v, err)
	}
}

// FuzzStreamReader: any bytes, fed in any split, never panic, and every emitted item is
// either a value that re-encodes and re-parses or an error with QEMU's prefix.
func FuzzStreamReader(f *testing.F) {
	for _, tc := range negotiatedCases {
		f.Add([]byte(tc.in), uint8(3))
	}
	f.Add([]byte("[[[[{'a':\"\\u00e9\"}]]]]"), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, split uint8) {
		n := int(split%16) + 1
		var items []string
		p := qmp.NewStreamParser(func(v *qmp.Value, err error) {
			if (v == nil) == (err == nil) {
				t.Fatalf("emit with v=%v err=%v", v, err)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "JSON ") {
					t.Fatalf("error text %q", err)
				}
				items = append(items, "E")
				return
			}
			enc := qmp.AppendJSON(nil, v, false)
			items = append(items, string(enc))
			// Re-parsing our own output must be stable after one round ("-0" becomes 0), up to
			// the order of keys that share a QDict bucket: QEMU writes later insertions first
			// within a bucket, so such keys swap at each round trip, as they do in QEMU.
			if v2, err := qmp.ParseValue(enc); err == nil {
				enc2 := qmp.AppendJSON(nil, v2, false)
				v3, err := qmp.ParseValue(enc2)
				if err != nil || !sameJSON(qmp.AppendJSON(nil, v3, false), enc2) {
					t.Fatalf("re-encode of %s unstable: %s (%v)", enc, enc2, err)
				}
			} else if !strings.Contains(string(enc), "inf") && !strings.Contains(string(enc), "nan") {
				t.Fatalf("own output %s does not parse: %v", enc, err)
			}
		})
		for i := 0; i < len(b); i += n {
			p.Feed(b[i:min(i+n, len(b))])
		}
		whole := parseAll(string(b), 0)
		if len(whole) != len(items) {
			t.Fatalf("split %d gave %d items, one read %d", n, len(items), len(whole))
		}
	})
}

// sameJSON compares two JSON texts as values, object keys unordered.
func sameJSON(a, b []byte) bool {
	if string(a) == string(b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

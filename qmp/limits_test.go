package qmp_test

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"tlcvm/qmp"
)

// The json-streamer limits, exactly at and just over each one, with QEMU 7.2's texts and what
// follows: the offending token is dropped with its value, and lexing goes on from the next
// byte (json-streamer.c json_message_process_token, json-lexer.c json_lexer_feed_char). The
// limits are shrunk here (size 32, count 16, nesting 4) so that each boundary is a short input;
// TestLimitsReal and limitCases check the real ones, limitCases against QEMU too.
func TestLimitsTable(t *testing.T) {
	defer qmp.SetLimits(32, 16, 4)()
	const (
		size  = "error: JSON token size limit exceeded"
		count = "error: JSON token count limit exceeded"
		nest  = "error: JSON nesting depth limit exceeded"
		exp   = "error: JSON parse error, expecting value"
	)
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		// MAX_TOKEN_SIZE: a value passes while its tokens' bytes plus the next token's plus
		// one stay within the limit.
		{"size: 31 bytes of tokens", `["` + a(27) + `"]`, []string{`["` + a(27) + `"]`}},
		{"size: 32 bytes of tokens", `["` + a(28) + `"]`, []string{size}},
		{"size: one token of 31 bytes", `"` + a(29) + `"`, []string{`"` + a(29) + `"`}},
		{"size: one token of 32 bytes", `"` + a(30) + `"`, []string{size}},
		// One token past the limit is cut by the lexer after 33 bytes; the rest is lexed as
		// new input (here a keyword, then an unterminated string).
		{"size: token cut by the lexer", `"` + a(40) + "\n", []string{size, "error: JSON parse error, invalid keyword '" + a(8) + "'"}},
		{"size: cut inside a value", `{"k": "` + a(40) + "\n [1]", []string{size, "error: JSON parse error, invalid keyword '" + a(8) + "'", `[1]`}},
		{"size: numbers", `[` + strings.Repeat("1", 29) + `]`, []string{`[1.1111111111111112e+28]`}},
		{"size: numbers over", `[` + strings.Repeat("1", 30) + `]`, []string{size}},
		// MAX_TOKEN_COUNT: the 17th token fails; the tokens after it start afresh.
		{"count: 16 tokens", `[1,2,3,4,5,6,[]]`, []string{`[1, 2, 3, 4, 5, 6, []]`}},
		{"count: 17 tokens", `[1,2,3,4,5,6,7,8]`, []string{count}},
		{"count: rest read anew", `[1,2,3,4,5,6,7,8,9,10]`, []string{count, `9`, exp, `10`, exp}},
		// MAX_NESTING: braces and brackets together.
		{"nesting: 4 levels", `[{"a":[{}]}]`, []string{`[{"a": [{}]}]`}},
		{"nesting: 5 levels", `[{"a":[{"b":[]}]}] {}`, []string{nest, exp, exp, exp, exp, exp, `{}`}},
		{"nesting: closers alone", `[[[[[]]]]]`, []string{nest, exp, exp, exp, exp, exp}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{0, 1, 3} {
				got := parseAll(tc.in+` {"ok": 1}`, n)
				want := append(append([]string(nil), tc.want...), `{"ok": 1}`)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%q in chunks of %d:\n got %q\nwant %q", tc.in, n, got, want)
				}
			}
		})
	}
}

// The same with long-token buffers shrunk too, so that tokens go through the chunked path.
func TestLimitsTableChunked(t *testing.T) {
	defer qmp.SetTokenBuffers(4, 8)()
	TestLimitsTable(t)
}

// TestLimitsReal feeds inputs at QEMU's real limits: 64 MiB of token text, 2 Mi tokens.
func TestLimitsReal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 64 MiB inputs")
	}
	const mib = 1 << 20
	cases := []struct {
		name string
		in   func() []byte
		want []string
	}{
		{"token of 64 MiB - 1 bytes: passes", func() []byte { return str(64*mib-1, '"') }, []string{fmt.Sprintf("string of %d bytes", 64*mib-3)}},
		{"token of 64 MiB: size limit", func() []byte { return str(64*mib, '"') }, []string{"error: JSON token size limit exceeded"}},
		{"token of 100 MiB: cut, then an invalid keyword", func() []byte { return str(100*mib, '\n') }, []string{
			"error: JSON token size limit exceeded",
			"error: JSON parse error, invalid keyword '" + strings.Repeat("a", 1023-len("invalid keyword '")),
		}},
		{"2 Mi tokens: passes", func() []byte { return tokens(1<<20 - 2) }, []string{fmt.Sprintf("array of %d", 1<<20-1)}},
		{"2 Mi + 1 tokens: count limit", func() []byte { return tokens(1<<20 - 1) }, []string{
			"error: JSON token count limit exceeded", "error: JSON parse error, expecting value",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			p := qmp.NewStreamParser(func(v *qmp.Value, err error) {
				switch {
				case err != nil:
					got = append(got, "error: "+err.Error())
				case v.Kind() == qmp.KindString:
					s, _ := v.AsString()
					got = append(got, fmt.Sprintf("string of %d bytes", len(s)))
				case v.Kind() == qmp.KindArray:
					got = append(got, fmt.Sprintf("array of %d", v.Len()))
				default:
					got = append(got, string(qmp.AppendJSON(nil, v, false)))
				}
			})
			in := tc.in()
			for i := 0; i < len(in); i += 64 << 10 {
				p.Feed(in[i:min(i+64<<10, len(in))])
			}
			if !p.Heavy() {
				t.Error("Heavy() is false after a value of megabytes")
			}
			p.Feed([]byte(`{"ok":1}`))
			want := append(append([]string(nil), tc.want...), `{"ok": 1}`)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got %.300q\nwant %.300q", got, want)
			}
		})
		runtime.GC()
		debug.FreeOSMemory()
	}
}

// str is n bytes: a quote, "a"s, and end (a closing quote, or a newline that ends what is
// left of a token the lexer cut).
func str(n int, end byte) []byte {
	b := make([]byte, n)
	b[0] = '"'
	for i := 1; i < n-1; i++ {
		b[i] = 'a'
	}
	b[n-1] = end
	return b
}

// tokens is an array of k ones and an empty array: 2k+4 tokens.
func tokens(k int) []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < k; i++ {
		b.WriteString("1,")
	}
	b.WriteString("[]]")
	return []byte(b.String())
}

// limitCases run at QEMU 7.2's real limits on a monitor, in order on one connection:
// nesting of braces and brackets together, the token count, parse_error's 1023-byte cut
// (the streamer's own "stray" message is not cut), and recovery after each. Recorded from
// QEMU 7.2.22; TestTablesAgainstQEMU replays them against the binary.
var limitCases = func() []exchange {
	exp := `{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}`
	notObj := `{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}`
	var ex []exchange
	add := func(in string, want ...string) { ex = append(ex, exchange{in, want}) }
	// 1024 levels: the request's braces, then {"a":[ 511 times and {}.
	add(`{"execute":"query-status","arguments":`+strings.Repeat(`{"a":[`, 511)+`{}`+strings.Repeat(`]}`, 511)+`}`,
		`{"error": {"class": "GenericError", "desc": "Parameter 'a' is unexpected"}}`)
	// 1025: the 1025th opener fails; each closer after it is a value on its own.
	want := []string{`{"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}}`}
	for i := 0; i < 1025; i++ {
		want = append(want, exp)
	}
	add(`{"execute":"query-status","arguments":`+strings.Repeat(`{"a":[`, 512)+strings.Repeat(`]}`, 512)+`}`, want...)
	add(`{"execute":"query-status","id":1}`, statusRet+`, "id": 1}`)
	// MAX_TOKEN_COUNT: exactly 2 Mi tokens parse; one more fails (the inner "]"), and the
	// token after it is read anew.
	add(string(tokens(1<<20-2)), notObj)
	add(string(tokens(1<<20-1)), `{"error": {"class": "GenericError", "desc": "JSON token count limit exceeded"}}`, exp)
	add(`{"execute":"query-status","id":2}`, statusRet+`, "id": 2}`)
	// An invalid keyword is reported with parse_error's 1024-byte buffer.
	kw := strings.Repeat("x", 3000)
	add(kw+"\n", `{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword '`+kw[:1023-len("invalid keyword '")]+`"}}`)
	// A stray token is reported whole, up to a NUL.
	long := `"` + strings.Repeat("y", 3000)
	add(long+"\x01\n", `{"error": {"class": "GenericError", "desc": "JSON parse error, stray '`+`\"`+long[1:]+`\u0001'"}}`)
	add(long+"\x00zz\n", `{"error": {"class": "GenericError", "desc": "JSON parse error, stray '`+`\"`+long[1:]+`'"}}`)
	add(`{"execute":"query-status","id":3}`, statusRet+`, "id": 3}`)
	return ex
}()

func TestLimitsOnMonitor(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: inputs of megabytes")
	}
	c := dial(t, newServer(t, optionsNone()), false)
	c.negotiate()
	runExchanges(t, c, limitCases)
}

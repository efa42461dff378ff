package qmp

import (
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// A port of qobject/json-parser.c: tokens of one top-level value → Value, with QEMU's error
// texts. Strings are decoded from modified UTF-8 (util/unicode.c), so "\xC0\x80" is U+0000 and
// noncharacters, surrogates and overlong forms are rejected; the streamer decodes each string
// token as it arrives (decodeString) and the parser reports a decoding error only when it
// reaches that token, as QEMU's parse_string would.

type parser struct {
	ts    *tokens
	pos   int
	err   error
	slab  []Value // Values are taken from here
	wants int     // Values still to come, at most (see values)
}

// maxSlab bounds one allocation of Values.
const maxSlab = 4096

// alloc returns a zero Value from the slab, allocated for all the Values the tokens will need
// (up to maxSlab at a time).
func (p *parser) alloc() *Value {
	if len(p.slab) == 0 {
		p.slab = make([]Value, min(max(p.wants, 1), maxSlab))
	}
	v := &p.slab[0]
	p.slab = p.slab[1:]
	p.wants--
	return v
}

// values counts the Values a parse of the tokens allocates at most: one per container and per
// number and string, but for a string followed by a colon (a key: no Value), and none for
// keywords (true, false and null are shared).
func (ts *tokens) values() int {
	n := 0
	for i := 0; i < ts.n; i++ {
		switch ts.at(i).typ {
		case jsonLCurly, jsonLSquare, jsonInteger, jsonFloat:
			n++
		case jsonString:
			if i+1 == ts.n || ts.at(i+1).typ != jsonColon {
				n++
			}
		}
	}
	return n
}

func parseTokens(ts *tokens) (*Value, error) {
	p := &parser{ts: ts, wants: ts.values()}
	v := p.value()
	if p.err != nil {
		return nil, p.err
	}
	return v, nil
}

// ParseValue parses one complete JSON text with QEMU's parser (single-quoted strings
// accepted). Trailing input after the first value is an error.
func ParseValue(b []byte) (*Value, error) {
	var (
		out  *Value
		errs error
		n    int
	)
	sp := NewStreamParser(func(v *Value, err error) {
		n++
		if n == 1 {
			out, errs = v, err
		}
	})
	sp.Feed(b)
	sp.feedEnd()
	switch {
	case n == 0:
		return nil, &SyntaxError{Msg: "JSON parse error, premature EOI"}
	case errs != nil:
		return nil, errs
	case n > 1:
		return nil, &SyntaxError{Msg: "JSON parse error, trailing input"}
	}
	return out, nil
}

// feedEnd flushes a keyword or number that only ends at end of input (json_lexer_flush).
func (p *StreamParser) feedEnd() {
	if p.state != inStart {
		p.feedByte(' ')
	}
	if p.val.n > 0 {
		p.finish()
	}
}

// maxParseError is the size of parse_error's message buffer, NUL included: QEMU cuts longer
// messages (an invalid keyword of any length is reported with its first ~1000 bytes).
const maxParseError = 1024

func (p *parser) fail(msg string) {
	if p.err == nil {
		if len(msg) > maxParseError-1 {
			msg = msg[:maxParseError-1]
		}
		p.err = &SyntaxError{Msg: "JSON parse error, " + msg}
	}
}

func (p *parser) peek() *token {
	if p.pos < p.ts.n {
		return p.ts.at(p.pos)
	}
	return nil
}

func (p *parser) pop() *token {
	t := p.peek()
	if t != nil {
		p.pos++
	}
	return t
}

func (p *parser) value() *Value {
	t := p.peek()
	if t == nil {
		p.fail("premature EOI")
		return nil
	}
	switch t.typ {
	case jsonLCurly:
		return p.object()
	case jsonLSquare:
		return p.array()
	case jsonInteger, jsonFloat, jsonString:
		return p.literal()
	case jsonKeyword:
		p.pop()
		kw := p.ts.text(t)
		switch string(kw) {
		case "true":
			return Bool(true)
		case "false":
			return Bool(false)
		case "null":
			return Null()
		}
		if len(kw) > maxParseError {
			kw = kw[:maxParseError] // the message is cut anyway
		}
		p.fail("invalid keyword '" + string(kw) + "'")
		return nil
	}
	p.fail("expecting value")
	return nil
}

func (p *parser) pair(obj *Value) bool {
	peek := p.peek()
	if peek == nil {
		p.fail("premature EOI")
		return false
	}
	var key string
	switch {
	case peek.typ == jsonString && peek.where == textBad:
		p.pop()
		p.fail(p.ts.bad[peek.ref])
		return false
	case peek.typ == jsonString:
		p.pop()
		key = p.ts.str(peek)
	default: // anything else is an error, the one parse_value gives or this one
		p.value()
		p.fail("key is not a string in object")
		return false
	}
	t := p.pop()
	if t == nil {
		p.fail("premature EOI")
		return false
	}
	if t.typ != jsonColon {
		p.fail("missing : in object pair")
		return false
	}
	val := p.value()
	if val == nil {
		p.fail("Missing value in dict")
		return false
	}
	if obj.Has(key) {
		p.fail("duplicate key")
		return false
	}
	obj.Set(key, val)
	return true
}

func (p *parser) object() *Value {
	p.pop() // '{'
	obj := p.alloc()
	obj.kind = KindObject
	peek := p.peek()
	if peek == nil {
		p.fail("premature EOI")
		return nil
	}
	if peek.typ == jsonRCurly {
		p.pop()
		return obj
	}
	if !p.pair(obj) {
		return nil
	}
	for {
		t := p.pop()
		if t == nil {
			p.fail("premature EOI")
			return nil
		}
		if t.typ == jsonRCurly {
			return obj
		}
		if t.typ != jsonComma {
			p.fail("expected separator in dict")
			return nil
		}
		if !p.pair(obj) {
			return nil
		}
	}
}

func (p *parser) array() *Value {
	p.pop() // '['
	arr := p.alloc()
	arr.kind = KindArray
	peek := p.peek()
	if peek == nil {
		p.fail("premature EOI")
		return nil
	}
	if peek.typ == jsonRSquare {
		p.pop()
		return arr
	}
	for {
		v := p.value()
		if v == nil {
			p.fail("expecting value")
			return nil
		}
		arr.Append(v)
		t := p.pop()
		if t == nil {
			p.fail("premature EOI")
			return nil
		}
		if t.typ == jsonRSquare {
			return arr
		}
		if t.typ != jsonComma {
			p.fail("expected separator in list")
			return nil
		}
	}
}

func (p *parser) literal() *Value {
	t := p.pop()
	if t.typ == jsonString {
		if t.where == textBad {
			p.fail(p.ts.bad[t.ref])
			return nil
		}
		v := p.alloc()
		v.kind, v.s = KindString, p.ts.str(t)
		return v
	}
	b := p.ts.text(t)
	s := unsafe.String(unsafe.SliceData(b), len(b)) // for strconv only, which keeps nothing of it
	v := p.alloc()
	if t.typ == jsonInteger {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			v.kind, v.n = KindInt, uint64(i)
			return v
		}
		if s[0] != '-' {
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				v.kind, v.n = KindUint, u // above MaxInt64, or ParseInt would have taken it
				return v
			}
		}
	}
	// JSON_FLOAT, or an integer beyond 64 bits: strtod, which saturates to ±inf.
	// Go's ParseFloat gives ±Inf on overflow and 0 on underflow, with ErrRange, like strtod.
	f, _ := strconv.ParseFloat(s, 64)
	v.kind, v.n = KindFloat, math.Float64bits(f)
	return v
}

// decodeString decodes a string token, quotes included (parse_string), appending to dst. It
// returns the message parse_error would give for an invalid one (without "JSON parse error, ").
// The decoded text is never longer than tok minus its quotes, so dst may be tok[:0].
func decodeString(dst, tok []byte) ([]byte, string) {
	quote := tok[0]
	out := dst
	i := 1
	for tok[i] != quote {
		c := tok[i]
		if c == '\\' {
			beg := i
			i++
			e := tok[i]
			i++
			switch e {
			case '"', '\'', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				cp := cvt4hex(tok[i:])
				i += 4
				if cp >= 0xD800 && cp <= 0xDBFF && i+1 < len(tok) && tok[i] == '\\' && tok[i+1] == 'u' {
					cp = 0x10000 + (cp&0x3FF)<<10
					trailing := cvt4hex(tok[i+2:])
					if trailing >= 0xDC00 && trailing <= 0xDFFF {
						cp |= trailing & 0x3FF
						i += 6
					} else {
						cp = -1
					}
				}
				if !validCodepoint(cp) {
					end := min(i, len(tok))
					return nil, string(tok[beg:end]) + " is not a valid Unicode character"
				}
				out = appendRune(out, cp)
			default:
				return nil, "invalid escape sequence in string"
			}
			continue
		}
		if c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		cp, n := modUTF8Codepoint(tok[i:])
		if cp < 0 {
			return nil, "invalid UTF-8 sequence in string"
		}
		i += n
		out = appendRune(out, cp)
	}
	return out, ""
}

func appendRune(b []byte, cp int) []byte {
	if cp == 0 {
		return append(b, 0)
	}
	return utf8.AppendRune(b, rune(cp))
}

// cvt4hex reads four hex digits; -1 if they are not (the token may be shorter than 4 bytes
// here, where QEMU would meet the closing quote and fail the same way).
func cvt4hex(s []byte) int {
	if len(s) < 4 {
		return -1
	}
	cp := 0
	for i := 0; i < 4; i++ {
		c := s[i]
		cp <<= 4
		switch {
		case c >= '0' && c <= '9':
			cp |= int(c - '0')
		case c >= 'a' && c <= 'f':
			cp |= int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			cp |= int(c-'A') + 10
		default:
			return -1
		}
	}
	return cp
}

func validCodepoint(cp int) bool {
	switch {
	case cp < 0 || cp > 0x10FFFF:
		return false
	case cp >= 0xFDD0 && cp <= 0xFDEF, cp&0xFFFE == 0xFFFE:
		return false
	case cp >= 0xD800 && cp <= 0xDFFF:
		return false
	}
	return true
}

// modUTF8Codepoint is util/unicode.c mod_utf8_codepoint: the code point starting s and the
// bytes it spans, or -1 (with the bytes to skip) for an invalid sequence. "\xC0\x80" is 0.
func modUTF8Codepoint[T string | []byte](s T) (int, int) {
	if len(s) == 0 {
		return -1, 0
	}
	b := s[0]
	switch {
	case b < 0x80:
		return int(b), 1
	case b >= 0xFE, b&0x40 == 0:
		return -1, 1
	}
	n := 0
	mask := byte(0x80)
	for ; b&mask != 0; mask >>= 1 {
		n++
	}
	cp := int(b & (mask - 1))
	p := 1
	for i := 1; i < n; i++ {
		var c byte
		if i < len(s) {
			c = s[i]
		}
		if c&0xC0 != 0x80 {
			return -1, p
		}
		p++
		cp = cp<<6 | int(c&0x3F)
	}
	minCP := [...]int{0x80, 0x800, 0x10000, 0x200000, 0x4000000}
	switch {
	case cp > 0x10FFFF:
		cp = -1
	case cp >= 0xFDD0 && cp <= 0xFDEF, cp&0xFFFE == 0xFFFE:
		cp = -1
	case cp >= 0xD800 && cp <= 0xDFFF:
		cp = -1
	case cp < minCP[n-2] && !(cp == 0 && n == 2):
		cp = -1
	}
	return cp, p
}

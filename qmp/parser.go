package qmp

import "strconv"

// A port of qobject/json-parser.c: tokens of one top-level value → Value, with QEMU's error
// texts. Strings are decoded from modified UTF-8 (util/unicode.c), so "\xC0\x80" is U+0000 and
// noncharacters, surrogates and overlong forms are rejected.

type parser struct {
	toks []token
	pos  int
	err  error
}

func parseTokens(toks []token) (*Value, error) {
	p := &parser{toks: toks}
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
	if len(p.tokens) > 0 {
		toks := p.tokens
		p.resetValue()
		v, err := parseTokens(toks)
		if err == nil {
			p.emit(v, nil)
		} else {
			p.emit(nil, err)
		}
	}
}

func (p *parser) fail(msg string) {
	if p.err == nil {
		p.err = &SyntaxError{Msg: "JSON parse error, " + msg}
	}
}

func (p *parser) peek() *token {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
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
		switch t.str {
		case "true":
			return Bool(true)
		case "false":
			return Bool(false)
		case "null":
			return Null()
		}
		p.fail("invalid keyword '" + t.str + "'")
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
	key := p.value()
	if key.Kind() != KindString {
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
	if obj.Has(key.s) {
		p.fail("duplicate key")
		return false
	}
	obj.Set(key.s, val)
	return true
}

func (p *parser) object() *Value {
	p.pop() // '{'
	obj := Object()
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
	arr := Array()
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
	switch t.typ {
	case jsonString:
		s, ok := p.str(t.str)
		if !ok {
			return nil
		}
		return String(s)
	case jsonInteger:
		if i, err := strconv.ParseInt(t.str, 10, 64); err == nil {
			return Int(i)
		}
		if t.str[0] != '-' {
			if u, err := strconv.ParseUint(t.str, 10, 64); err == nil {
				return Uint(u)
			}
		}
	}
	// JSON_FLOAT, or an integer beyond 64 bits: strtod, which saturates to ±inf.
	// Go's ParseFloat gives ±Inf on overflow and 0 on underflow, with ErrRange, like strtod.
	f, _ := strconv.ParseFloat(t.str, 64)
	return Float(f)
}

// str decodes a string token (parse_string).
func (p *parser) str(tok string) (string, bool) {
	quote := tok[0]
	out := make([]byte, 0, len(tok))
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
					end := i
					if end > len(tok) {
						end = len(tok)
					}
					p.fail(tok[beg:end] + " is not a valid Unicode character")
					return "", false
				}
				out = appendRune(out, cp)
			default:
				p.fail("invalid escape sequence in string")
				return "", false
			}
			continue
		}
		cp, n := modUTF8Codepoint(tok[i:])
		if cp < 0 {
			p.fail("invalid UTF-8 sequence in string")
			return "", false
		}
		i += n
		out = appendRune(out, cp)
	}
	return string(out), true
}

func appendRune(b []byte, cp int) []byte {
	if cp == 0 {
		return append(b, 0)
	}
	return append(b, string(rune(cp))...)
}

// cvt4hex reads four hex digits; -1 if they are not (the token may be shorter than 4 bytes
// here, where QEMU would meet the closing quote and fail the same way).
func cvt4hex(s string) int {
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
func modUTF8Codepoint(s string) (int, int) {
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

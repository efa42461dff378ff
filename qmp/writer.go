package qmp

import (
	"math"
	"strconv"
)

// A port of qobject/json-writer.c: QEMU's JSON text. Compact form separates with ", " and
// ": "; pretty form puts every member and element on its own line indented by four spaces per
// level, and an empty container as "{" newline indent "}". Numbers are "%.17g" ("inf", "nan" as
// C prints them); strings escape '"', '\\', \b \f \n \r \t, other controls and everything from
// U+007F up as \uXXXX (upper-case hex, surrogate pairs above the BMP); invalid UTF-8 becomes
// \uFFFD. Monitor framing (the "\n" QEMU appends and its "\n" → "\r\n" expansion) is the
// server's business, not the writer's.

// AppendJSON appends v's QEMU encoding to b.
func AppendJSON(b []byte, v *Value, pretty bool) []byte {
	w := jsonWriter{buf: b, pretty: pretty}
	w.value(v)
	return w.buf
}

type jsonWriter struct {
	buf    []byte
	pretty bool
	depth  int
}

func (w *jsonWriter) newline() {
	if w.pretty {
		w.buf = append(w.buf, '\n')
		for i := 0; i < w.depth; i++ {
			w.buf = append(w.buf, "    "...)
		}
	}
}

func (w *jsonWriter) value(v *Value) {
	switch v.Kind() {
	case KindNull:
		w.buf = append(w.buf, "null"...)
	case KindBool:
		w.buf = strconv.AppendBool(w.buf, v.b)
	case KindInt:
		w.buf = strconv.AppendInt(w.buf, v.i, 10)
	case KindUint:
		w.buf = strconv.AppendUint(w.buf, v.u, 10)
	case KindFloat:
		w.buf = appendFloat(w.buf, v.f)
	case KindString:
		w.buf = appendQuoted(w.buf, v.s)
	case KindObject:
		w.buf = append(w.buf, '{')
		w.depth++
		for n, i := range v.writeOrder() {
			if n > 0 {
				w.buf = append(w.buf, ',')
				if !w.pretty {
					w.buf = append(w.buf, ' ')
				}
			}
			w.newline()
			m := v.members[i]
			w.buf = appendQuoted(w.buf, m.Key)
			w.buf = append(w.buf, ": "...)
			w.value(m.Value)
		}
		w.depth--
		w.newline()
		w.buf = append(w.buf, '}')
	case KindArray:
		w.buf = append(w.buf, '[')
		w.depth++
		for n, e := range v.elems {
			if n > 0 {
				w.buf = append(w.buf, ',')
				if !w.pretty {
					w.buf = append(w.buf, ' ')
				}
			}
			w.newline()
			w.value(e)
		}
		w.depth--
		w.newline()
		w.buf = append(w.buf, ']')
	}
}

// appendFloat is printf("%.17g") as glibc prints it.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case math.IsNaN(f):
		if math.Signbit(f) {
			return append(b, "-nan"...)
		}
		return append(b, "nan"...)
	}
	return strconv.AppendFloat(b, f, 'g', 17, 64)
}

const hexDigits = "0123456789ABCDEF"

func appendU(b []byte, cp int) []byte {
	return append(b, '\\', 'u', hexDigits[cp>>12&0xF], hexDigits[cp>>8&0xF], hexDigits[cp>>4&0xF], hexDigits[cp&0xF])
}

// appendQuoted is json-writer.c quoted_str. A NUL byte (how Go holds U+0000) is written as
// \u0000, as QEMU writes its modified-UTF-8 "\xC0\x80".
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		var cp, n int
		if s[i] == 0 {
			cp, n = 0, 1
		} else {
			cp, n = modUTF8Codepoint(s[i:])
		}
		i += n
		switch cp {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if cp < 0 {
				cp = 0xFFFD
			}
			switch {
			case cp > 0xFFFF:
				b = appendU(b, 0xD800+(cp-0x10000)>>10)
				b = appendU(b, 0xDC00+(cp-0x10000)&0x3FF)
			case cp < 0x20 || cp >= 0x7F:
				b = appendU(b, cp)
			default:
				b = append(b, byte(cp))
			}
		}
	}
	return append(b, '"')
}

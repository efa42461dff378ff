package qmp

import (
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
)

// A port of qobject/json-writer.c: QEMU's JSON text. Compact form separates with ", " and
// ": "; pretty form puts every member and element on its own line indented by four spaces per
// level, and an empty container as "{" newline indent "}". Numbers are "%.17g" ("inf", "nan" as
// C prints them); strings escape '"', '\\', \b \f \n \r \t, other controls and everything from
// U+007F up as \uXXXX (upper-case hex, surrogate pairs above the BMP); invalid UTF-8 becomes
// \uFFFD. Monitor framing (the "\n" QEMU appends, and its "\n" → "\r\n" expansion) is the
// writer's crlf mode, which the server uses.

// AppendJSON appends v's QEMU encoding to b.
func AppendJSON(b []byte, v *Value, pretty bool) []byte {
	w := jsonWriter{buf: b, pretty: pretty}
	w.value(v)
	return w.buf
}

type jsonWriter struct {
	buf    []byte
	pretty bool
	crlf   bool // a monitor message: every newline is "\r\n", and finish ends the message with one
	depth  int

	// out, when set, receives buf whenever it has grown past flushAt (flushed bytes in all),
	// so that a message of any size is encoded in a buffer of about that size.
	out     io.Writer
	flushed int
	err     error // of out; later output is dropped
}

// spill writes the buffer out once it is full (streaming mode only).
func (w *jsonWriter) spill() {
	if w.out == nil || len(w.buf) < flushAt {
		return
	}
	if w.err == nil {
		_, w.err = w.out.Write(w.buf)
	}
	w.flushed += len(w.buf)
	w.buf = w.buf[:0]
}

// finish ends a monitor message and returns what remains to be written, or out's error.
func (w *jsonWriter) finish() ([]byte, error) {
	w.buf = append(w.buf, '\r', '\n')
	return w.buf, w.err
}

func (w *jsonWriter) newline() {
	if w.pretty {
		if w.crlf {
			w.buf = append(w.buf, '\r')
		}
		w.buf = append(w.buf, '\n')
		for i := 0; i < w.depth; i++ {
			w.buf = append(w.buf, "    "...)
		}
	}
}

// Member orders of the messages the server builds without a Value (QDict order).
var (
	returnFirst = QDictOrder("return", "id")[0] == "return"
	errorFirst  = QDictOrder("error", "id")[0] == "error"
)

// response writes an error reply as QEMU's monitor does, {"error": {"class": C, "desc": D},
// "id": I} in QDict order, "id" only when the request had one, or a whole message.
func (w *jsonWriter) response(r *response) {
	if r.msg != nil {
		w.value(r.msg)
		return
	}
	w.buf = append(w.buf, '{')
	w.depth++
	if r.id != nil && !errorFirst {
		w.member(0, "id")
		w.value(r.id)
		w.member(1, "error")
	} else {
		w.member(0, "error")
	}
	w.buf = append(w.buf, '{')
	w.depth++
	w.member(0, "class")
	w.quoted(r.err.Class)
	w.member(1, "desc")
	w.quoted(r.err.Desc)
	w.end('}')
	if r.id != nil && errorFirst {
		w.member(1, "id")
		w.value(r.id)
	}
	w.end('}')
}

// reply writes a command's reply, {"return": R, "id": I} in QDict order, from what its
// handler returned (see result); an error encoding it is returned as QEMU-style error.
func (w *jsonWriter) reply(out any, id *Value) *Error {
	w.buf = append(w.buf, '{')
	w.depth++
	if id != nil && !returnFirst {
		w.member(0, "id")
		w.value(id)
		w.member(1, "return")
	} else {
		w.member(0, "return")
	}
	if err := w.result(out); err != nil {
		return GenericError("%v", err)
	}
	if id != nil && returnFirst {
		w.member(1, "id")
		w.value(id)
	}
	w.end('}')
	return nil
}

// result writes a handler's return value as AppendJSON(ToValue(out)) would ({} for nil),
// building no Value where the type allows (see goValue).
func (w *jsonWriter) result(out any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("qmp: encoding %T: %v", out, p)
		}
	}()
	if out == nil {
		w.buf = append(w.buf, '{')
		w.depth++
		w.end('}')
		return nil
	}
	return w.goValue(reflect.ValueOf(out))
}

// item starts the n-th member or element of a container.
func (w *jsonWriter) item(n int) {
	if n > 0 {
		w.buf = append(w.buf, ',')
		if !w.pretty {
			w.buf = append(w.buf, ' ')
		}
	}
	w.newline()
}

// member starts the n-th member of an object.
func (w *jsonWriter) member(n int, key string) {
	w.item(n)
	w.quoted(key)
	w.buf = append(w.buf, ": "...)
}

// end closes an object or array opened with depth incremented.
func (w *jsonWriter) end(c byte) {
	w.depth--
	w.newline()
	w.buf = append(w.buf, c)
}

func (w *jsonWriter) value(v *Value) {
	switch v.Kind() {
	case KindNull:
		w.buf = append(w.buf, "null"...)
	case KindBool:
		w.buf = strconv.AppendBool(w.buf, v.n != 0)
	case KindInt:
		w.buf = strconv.AppendInt(w.buf, v.i(), 10)
	case KindUint:
		w.buf = strconv.AppendUint(w.buf, v.n, 10)
	case KindFloat:
		w.buf = appendFloat(w.buf, v.f())
	case KindString:
		w.quoted(v.s)
	case KindObject:
		w.buf = append(w.buf, '{')
		w.depth++
		if v.ordered {
			for n := range v.members {
				w.member(n, v.members[n].Key)
				w.value(v.members[n].Value)
				w.spill()
			}
		} else {
			for n, i := range v.writeOrder() {
				w.member(n, v.members[i].Key)
				w.value(v.members[i].Value)
				w.spill()
			}
		}
		w.end('}')
	case KindArray:
		w.buf = append(w.buf, '[')
		w.depth++
		for n, e := range v.elems {
			w.item(n)
			w.value(e)
			w.spill()
		}
		w.end(']')
	}
}

// quoted writes s as a JSON string, in pieces when it is long (streaming mode).
func (w *jsonWriter) quoted(s string) {
	if w.out == nil || len(s) < flushAt {
		w.buf = appendQuoted(w.buf, s)
		return
	}
	w.buf = append(w.buf, '"')
	for len(s) > 0 {
		n := min(len(s), flushAt)
		for n < len(s) && n > 0 && s[n]&0xC0 == 0x80 {
			n-- // cut between code points: invalid bytes are written alike either way
		}
		if n == 0 {
			n = min(len(s), flushAt)
		}
		w.buf = appendQuotedBody(w.buf, s[:n])
		s = s[n:]
		w.spill()
	}
	w.buf = append(w.buf, '"')
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
	b = appendQuotedBody(b, s)
	return append(b, '"')
}

func appendQuotedBody(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		// Printable ASCII other than the quote and the backslash is written as it is: take
		// the run of it at once.
		j := i
		for j < len(s) && s[j] >= 0x20 && s[j] < 0x7F && s[j] != '"' && s[j] != '\\' {
			j++
		}
		if j > i {
			b = append(b, s[i:j]...)
			i = j
			continue
		}
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
	return b
}

package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrBadJSON is wrapped by every JSON decoding failure of this package.
var ErrBadJSON = errors.New("harness: bad JSON")

// Kind is the JSON type of a Value.
type Kind int

// The kinds of Value. Verbatim is not JSON: it renders its text as is and is
// how masked values (TIMESTAMP, <int>, …) appear in a transcript.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
	Verbatim
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "bool"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	case Verbatim:
		return "verbatim"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a JSON value that keeps the order of object members, which QEMU's
// replies fix (`return` before `id`; `timestamp`, `event`, `data`) and which
// encoding/json's maps would lose. Numbers keep their literal text.
type Value struct {
	Kind Kind
	Bool bool
	Text string // Number: the literal; String: the decoded string; Verbatim: the text
	Arr  []Value
	Obj  []Member
}

// Member is one key/value pair of an Object, in wire order.
type Member struct {
	Key string
	Val Value
}

// Get returns the member named key of an object.
func (v Value) Get(key string) (Value, bool) {
	if v.Kind != Object {
		return Value{}, false
	}
	for _, m := range v.Obj {
		if m.Key == key {
			return m.Val, true
		}
	}
	return Value{}, false
}

// Str returns the string of a String value and "" for any other kind.
func (v Value) Str() string {
	if v.Kind == String {
		return v.Text
	}
	return ""
}

// maxDepth bounds the nesting the parser accepts; deeper input is an error
// rather than a stack overflow.
const maxDepth = 10000

// ParseJSON parses exactly one JSON value (surrounding white space allowed).
func ParseJSON(b []byte) (Value, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return Value{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Value{}, fmt.Errorf("%w: trailing data after value", ErrBadJSON)
	}
	return v, nil
}

// MustParseJSON is ParseJSON for literals in tests; it panics on error.
func MustParseJSON(s string) Value {
	v, err := ParseJSON([]byte(s))
	if err != nil {
		panic(err)
	}
	return v
}

func parseValue(dec *json.Decoder, depth int) (Value, error) {
	if depth > maxDepth {
		return Value{}, fmt.Errorf("%w: nested deeper than %d", ErrBadJSON, maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return Value{}, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	switch t := tok.(type) {
	case nil:
		return Value{Kind: Null}, nil
	case bool:
		return Value{Kind: Bool, Bool: t}, nil
	case json.Number:
		return Value{Kind: Number, Text: t.String()}, nil
	case string:
		return Value{Kind: String, Text: t}, nil
	case json.Delim:
		switch t {
		case '[':
			v := Value{Kind: Array, Arr: []Value{}}
			for dec.More() {
				e, err := parseValue(dec, depth+1)
				if err != nil {
					return Value{}, err
				}
				v.Arr = append(v.Arr, e)
			}
			if _, err := dec.Token(); err != nil {
				return Value{}, fmt.Errorf("%w: %v", ErrBadJSON, err)
			}
			return v, nil
		case '{':
			v := Value{Kind: Object, Obj: []Member{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return Value{}, fmt.Errorf("%w: %v", ErrBadJSON, err)
				}
				key, ok := kt.(string)
				if !ok {
					return Value{}, fmt.Errorf("%w: object key %v", ErrBadJSON, kt)
				}
				e, err := parseValue(dec, depth+1)
				if err != nil {
					return Value{}, err
				}
				v.Obj = append(v.Obj, Member{Key: key, Val: e})
			}
			if _, err := dec.Token(); err != nil {
				return Value{}, fmt.Errorf("%w: %v", ErrBadJSON, err)
			}
			return v, nil
		}
	}
	return Value{}, fmt.Errorf("%w: unexpected token %v", ErrBadJSON, tok)
}

// String renders v the way QEMU's QMP monitor does (qobject_to_json): ", "
// and ": " separators, members in order, non-ASCII and control characters
// escaped as \uXXXX with upper-case hex.
func (v Value) String() string {
	var sb strings.Builder
	v.write(&sb)
	return sb.String()
}

func (v Value) write(sb *strings.Builder) {
	switch v.Kind {
	case Null:
		sb.WriteString("null")
	case Bool:
		sb.WriteString(strconv.FormatBool(v.Bool))
	case Number, Verbatim:
		sb.WriteString(v.Text)
	case String:
		writeQuoted(sb, v.Text)
	case Array:
		sb.WriteByte('[')
		for i, e := range v.Arr {
			if i > 0 {
				sb.WriteString(", ")
			}
			e.write(sb)
		}
		sb.WriteByte(']')
	case Object:
		sb.WriteByte('{')
		for i, m := range v.Obj {
			if i > 0 {
				sb.WriteString(", ")
			}
			writeQuoted(sb, m.Key)
			sb.WriteString(": ")
			m.Val.write(sb)
		}
		sb.WriteByte('}')
	}
}

// writeQuoted follows QEMU 7.2 qobject/qjson.c to_json_str.
func writeQuoted(sb *strings.Builder, s string) {
	sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			sb.WriteString(`\"`)
		case '\\':
			sb.WriteString(`\\`)
		case '\b':
			sb.WriteString(`\b`)
		case '\f':
			sb.WriteString(`\f`)
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		default:
			switch {
			case r >= 0x20 && r <= 0x7e:
				sb.WriteRune(r)
			case r == utf8.RuneError:
				sb.WriteString(`\uFFFD`)
			case r > 0xffff:
				r -= 0x10000
				fmt.Fprintf(sb, `\u%04X\u%04X`, 0xd800|(r>>10), 0xdc00|(r&0x3ff))
			default:
				fmt.Fprintf(sb, `\u%04X`, r)
			}
		}
	}
	sb.WriteByte('"')
}

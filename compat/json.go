package compat

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"tlcvm/compat/qerror"
)

// JSON is a JSON-form argument (-device {...}, -object {...}, ...): a
// JSON object with its members in written order. QEMU's JSON dialect is
// accepted ('single-quoted' strings too); Raw is re-encoded as standard
// JSON so gjson and encoding/json can read it.
type JSON struct {
	Members []Member
	// Raw is the whole object as compact standard JSON, members in order.
	Raw string
}

// Member is one key of an Object with its value as standard JSON.
type Member struct {
	Key   string
	Value json.RawMessage
}

// Get returns the member's value via gjson (Exists() false when absent).
func (o *JSON) Get(key string) gjson.Result {
	if o == nil {
		return gjson.Result{}
	}
	for _, m := range o.Members {
		if m.Key == key {
			return gjson.ParseBytes(m.Value)
		}
	}
	return gjson.Result{}
}

// String returns a string member ("" and false if absent or not a string).
func (o *JSON) String(key string) (string, bool) {
	r := o.Get(key)
	if r.Type != gjson.String {
		return "", false
	}
	return r.Str, true
}

// Keys lists member names in order.
func (o *JSON) Keys() []string {
	out := make([]string, len(o.Members))
	for i, m := range o.Members {
		out[i] = m.Key
	}
	return out
}

// ParseJSONObject parses s with QEMU's JSON parser rules
// (qobject/json-lexer.c, json-parser.c) and its error texts; s must hold
// exactly one JSON value, an object.
func ParseJSONObject(s string) (*JSON, error) {
	o, err := parseJSONObject(s)
	if err != nil {
		return nil, err
	}
	return o, nil
}

func parseJSONObject(s string) (*JSON, *qerror.Error) {
	toks, lexErr := jsonLex(s)
	p := &jparser{toks: toks}
	v, perr := p.value()
	if perr != nil {
		// A lexer error inside the first value is what the streamer meets first.
		if lexErr != nil && lexErr.pos <= p.errPos() {
			return nil, newErr(ErrJSON, "JSON parse error, stray '"+lexErr.text+"'")
		}
		return nil, newErr(ErrJSON, "JSON parse error, "+perr.Error())
	}
	if p.i < len(p.toks) || lexErr != nil {
		return nil, newErr(ErrJSON, "Expecting at most one JSON value")
	}
	if v.kind != '{' {
		return nil, newErr(ErrJSON, "Expecting a JSON object")
	}
	o := &JSON{Raw: v.encode()}
	for _, m := range v.members {
		o.Members = append(o.Members, Member{Key: m.key, Value: json.RawMessage(m.val.encode())})
	}
	return o, nil
}

type jtok struct {
	kind byte // '{','}','[',']',':',',','s'(string),'n'(number),'k'(keyword)
	text string
	pos  int
}

type jlexErr struct {
	pos  int
	text string
}

// jsonLex splits s into tokens; it stops at the first invalid character.
func jsonLex(s string) ([]jtok, *jlexErr) {
	var toks []jtok
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.IndexByte("{}[]:,", c) >= 0:
			toks = append(toks, jtok{kind: c, pos: i})
			i++
		case c == '"' || c == '\'':
			str, n, ok := lexString(s[i:])
			if !ok {
				return toks, &jlexErr{pos: i, text: s[i:]}
			}
			toks = append(toks, jtok{kind: 's', text: str, pos: i})
			i += n
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(s) && strings.IndexByte("0123456789.eE+-", s[j]) >= 0 {
				j++
			}
			toks = append(toks, jtok{kind: 'n', text: s[i:j], pos: i})
			i = j
		case isAlpha(c):
			j := i
			for j < len(s) && isAlpha(s[j]) {
				j++
			}
			toks = append(toks, jtok{kind: 'k', text: s[i:j], pos: i})
			i = j
		default:
			_, w := utf8.DecodeRuneInString(s[i:])
			return toks, &jlexErr{pos: i, text: s[i : i+w]}
		}
	}
	return toks, nil
}

// lexString reads a quoted string (either quote), returning its value.
func lexString(s string) (string, int, bool) {
	q := s[0]
	var b strings.Builder
	i := 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, true
		case c == '\\':
			if i+1 >= len(s) {
				return "", 0, false
			}
			e := s[i+1]
			switch e {
			case '"', '\'', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+6 > len(s) {
					return "", 0, false
				}
				n, err := strconv.ParseUint(s[i+2:i+6], 16, 32)
				if err != nil {
					return "", 0, false
				}
				b.WriteRune(rune(n))
				i += 4
			default:
				return "", 0, false
			}
			i += 2
		case c < 0x20:
			return "", 0, false
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, false
}

type jval struct {
	kind    byte // '{', '[', 's', 'n', 't', 'f', 'z'(null)
	text    string
	members []jmember
	elems   []*jval
}

type jmember struct {
	key string
	val *jval
}

func (v *jval) encode() string {
	var b strings.Builder
	v.write(&b)
	return b.String()
}

func (v *jval) write(b *strings.Builder) {
	switch v.kind {
	case '{':
		b.WriteByte('{')
		for i, m := range v.members {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(m.key)
			b.Write(k)
			b.WriteByte(':')
			m.val.write(b)
		}
		b.WriteByte('}')
	case '[':
		b.WriteByte('[')
		for i, e := range v.elems {
			if i > 0 {
				b.WriteByte(',')
			}
			e.write(b)
		}
		b.WriteByte(']')
	case 's':
		k, _ := json.Marshal(v.text)
		b.Write(k)
	case 'n':
		b.WriteString(v.text)
	case 't':
		b.WriteString("true")
	case 'f':
		b.WriteString("false")
	case 'z':
		b.WriteString("null")
	}
}

type jparser struct {
	toks   []jtok
	i      int
	failAt int
}

type jerr string

func (e jerr) Error() string { return string(e) }

func (p *jparser) errPos() int {
	if p.failAt < len(p.toks) {
		return p.toks[p.failAt].pos
	}
	return 1 << 30
}

func (p *jparser) peek() *jtok {
	if p.i < len(p.toks) {
		return &p.toks[p.i]
	}
	return nil
}

func (p *jparser) pop() *jtok {
	t := p.peek()
	if t != nil {
		p.i++
	}
	return t
}

func (p *jparser) fail(msg string) error {
	p.failAt = p.i
	return jerr(msg)
}

func (p *jparser) value() (*jval, error) {
	t := p.peek()
	if t == nil {
		return nil, p.fail("premature EOI")
	}
	switch t.kind {
	case '{':
		return p.object()
	case '[':
		return p.array()
	case 's':
		p.pop()
		return &jval{kind: 's', text: t.text}, nil
	case 'n':
		p.pop()
		if _, err := strconv.ParseFloat(t.text, 64); err != nil || !json.Valid([]byte(t.text)) {
			return nil, p.fail("expecting value")
		}
		return &jval{kind: 'n', text: t.text}, nil
	case 'k':
		p.pop()
		switch t.text {
		case "true":
			return &jval{kind: 't'}, nil
		case "false":
			return &jval{kind: 'f'}, nil
		case "null":
			return &jval{kind: 'z'}, nil
		}
		return nil, p.fail("invalid keyword '" + t.text + "'")
	}
	return nil, p.fail("expecting value")
}

func (p *jparser) object() (*jval, error) {
	p.pop()
	v := &jval{kind: '{'}
	t := p.peek()
	if t == nil {
		return nil, p.fail("premature EOI")
	}
	if t.kind == '}' {
		p.pop()
		return v, nil
	}
	for {
		if err := p.pair(v); err != nil {
			return nil, err
		}
		t = p.pop()
		if t == nil {
			return nil, p.fail("premature EOI")
		}
		if t.kind == '}' {
			return v, nil
		}
		if t.kind != ',' {
			p.i--
			return nil, p.fail("expected separator in dict")
		}
	}
}

func (p *jparser) pair(v *jval) error {
	if p.peek() == nil {
		return p.fail("premature EOI")
	}
	k, err := p.value()
	if err != nil {
		return err
	}
	if k.kind != 's' {
		return p.fail("key is not a string in object")
	}
	t := p.pop()
	if t == nil {
		return p.fail("premature EOI")
	}
	if t.kind != ':' {
		p.i--
		return p.fail("missing : in object pair")
	}
	val, err := p.value()
	if err != nil {
		return err
	}
	for _, m := range v.members {
		if m.key == k.text {
			return p.fail("duplicate key")
		}
	}
	v.members = append(v.members, jmember{k.text, val})
	return nil
}

func (p *jparser) array() (*jval, error) {
	p.pop()
	v := &jval{kind: '['}
	t := p.peek()
	if t == nil {
		return nil, p.fail("premature EOI")
	}
	if t.kind == ']' {
		p.pop()
		return v, nil
	}
	for {
		e, err := p.value()
		if err != nil {
			return nil, err
		}
		v.elems = append(v.elems, e)
		t = p.pop()
		if t == nil {
			return nil, p.fail("premature EOI")
		}
		if t.kind == ']' {
			return v, nil
		}
		if t.kind != ',' {
			p.i--
			return nil, p.fail("expected separator in list")
		}
	}
}

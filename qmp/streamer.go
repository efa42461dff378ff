package qmp

import (
	"sync"
	"unsafe"
)

// A port of QEMU 7.2's qobject/json-streamer.c: tokens are grouped into top-level values by
// counting braces and brackets; a value is parsed when its count returns to zero (or goes
// below it), and QEMU's limits (MAX_TOKEN_SIZE, MAX_TOKEN_COUNT, MAX_NESTING) reject a value
// with "JSON token size limit exceeded", "JSON token count limit exceeded" or "JSON nesting
// depth limit exceeded" as soon as a token crosses them. The value's tokens are dropped and
// the next token starts a new value: the rest of the input is read as QEMU reads it.
//
// Memory: QEMU keeps each token in its own allocation (~80 bytes of overhead); here a token is
// 12 bytes in fixed-size chunks, short token texts share chunked arenas (strings already
// decoded, never longer than their source), and a text longer than smallToken gets a buffer of
// its own that a parsed string then uses without a copy. Nothing of a value is kept after it is
// emitted but the first small chunks, for the next one.

// releaseAfter: a value or token larger than this marks the parser Heavy.
const releaseAfter = 4 << 20

const (
	tokensPerChunk = 4096
	arenaChunk     = 64 << 10
	keepTokens     = 256     // the first token chunk is kept between values up to this capacity
	keepArena      = 4 << 10 // the first arena chunk likewise
)

// Where a token's text is.
const (
	textNone  = iota // punctuation
	textArena        // arena[ref>>16][ref&0xFFFF:][:n]
	textBig          // bigs[ref][:n]
	textBad          // a string that does not decode: bad[ref] is the parser's message
)

type token struct {
	typ   uint8
	where uint8
	n     uint32 // length of the text (decoded, for strings)
	ref   uint32
}

// tokens are those of one value, and its json-streamer counters.
type tokens struct {
	chunks  [][]token
	n       int
	arena   [][]byte
	bigs    [][]byte
	bad     []string
	size    int // bytes of the tokens' source text
	braces  int
	bracket int
}

// memory is about what the value's tokens hold.
func (ts *tokens) memory() int { return ts.size + ts.n*int(unsafe.Sizeof(token{})) }

func (ts *tokens) at(i int) *token { return &ts.chunks[i/tokensPerChunk][i%tokensPerChunk] }

func (ts *tokens) push(t token) {
	c := ts.n / tokensPerChunk
	if c == len(ts.chunks) {
		ts.chunks = append(ts.chunks, nil)
	}
	if ts.chunks[c] == nil {
		size := tokensPerChunk
		if c == 0 {
			size = 64 // grown below: most values have a handful of tokens
		}
		ts.chunks[c] = make([]token, 0, size)
	}
	if c == 0 && len(ts.chunks[0]) == cap(ts.chunks[0]) && cap(ts.chunks[0]) < tokensPerChunk {
		grown := make([]token, len(ts.chunks[0]), min(2*cap(ts.chunks[0]), tokensPerChunk))
		copy(grown, ts.chunks[0])
		ts.chunks[0] = grown
	}
	ts.chunks[c] = append(ts.chunks[c], t)
	ts.n++
}

// reserve makes room for n more bytes (n ≤ arenaChunk) at the end of an arena chunk and
// returns their position.
func (ts *tokens) reserve(n int) (ref uint32) {
	last := len(ts.arena) - 1
	if last >= 0 && cap(ts.arena[last])-len(ts.arena[last]) < n {
		if last == 0 && cap(ts.arena[0]) < arenaChunk {
			grown := make([]byte, len(ts.arena[0]), min(max(2*cap(ts.arena[0]), len(ts.arena[0])+n), arenaChunk))
			copy(grown, ts.arena[0])
			ts.arena[0] = grown
		}
		if cap(ts.arena[last])-len(ts.arena[last]) < n {
			last = -1
		}
	}
	if last < 0 {
		size := arenaChunk
		if len(ts.arena) == 0 {
			size = max(256, n)
		}
		ts.arena = append(ts.arena, make([]byte, 0, size))
		last = len(ts.arena) - 1
	}
	return uint32(last)<<16 | uint32(len(ts.arena[last]))
}

// text returns the bytes of a token's text (valid until reset).
func (ts *tokens) text(t *token) []byte {
	switch t.where {
	case textArena:
		a := ts.arena[t.ref>>16]
		off := int(t.ref & 0xFFFF)
		return a[off : off+int(t.n)]
	case textBig:
		return ts.bigs[t.ref][:t.n]
	}
	return nil
}

// str returns a string token's text as a Go string: a copy of a short one, the token's own
// buffer for a long one (never written again: reset drops it).
func (ts *tokens) str(t *token) string {
	if t.where == textBig && t.n > 0 {
		return unsafe.String(&ts.bigs[t.ref][0], int(t.n))
	}
	return intern(ts.text(t))
}

// intern returns the keys every request has, and the names of registered commands, without
// allocating.
func intern(b []byte) string {
	switch string(b) {
	case "execute":
		return "execute"
	case "arguments":
		return "arguments"
	case "id":
		return "id"
	case "exec-oob":
		return "exec-oob"
	}
	if len(b) <= maxInterned {
		interned.RLock()
		s, ok := interned.m[string(b)]
		interned.RUnlock()
		if ok {
			return s
		}
	}
	return string(b)
}

// interned holds the names of every registered command (Registry.Register adds them).
var interned = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

const maxInterned = 64

func internName(s string) {
	if len(s) <= maxInterned {
		interned.Lock()
		interned.m[s] = s
		interned.Unlock()
	}
}

// reset forgets the value, keeping only small first chunks for the next one.
func (ts *tokens) reset() {
	if len(ts.chunks) == 1 && cap(ts.chunks[0]) <= keepTokens {
		ts.chunks[0] = ts.chunks[0][:0]
	} else {
		ts.chunks = nil
	}
	if len(ts.arena) == 1 && cap(ts.arena[0]) <= keepArena {
		ts.arena[0] = ts.arena[0][:0]
	} else {
		ts.arena = nil
	}
	ts.bigs, ts.bad = nil, nil
	ts.n, ts.size, ts.braces, ts.bracket = 0, 0, 0, 0
}

// token is json_message_process_token for a token the lexer completed; its bytes are in p.cur.
func (p *StreamParser) token(typ int) {
	ts := &p.val
	switch typ {
	case jsonLCurly:
		ts.braces++
	case jsonRCurly:
		ts.braces--
	case jsonLSquare:
		ts.bracket++
	case jsonRSquare:
		ts.bracket--
	}
	n := p.cur.n
	switch {
	case ts.size+n+1 > maxTokenSize:
		p.heavy = p.heavy || ts.memory()+n > releaseAfter
		p.fail("JSON token size limit exceeded")
		return
	case ts.n+1 > maxTokenCount:
		p.heavy = p.heavy || ts.memory() > releaseAfter
		p.fail("JSON token count limit exceeded")
		return
	case ts.braces+ts.bracket > maxNesting:
		p.fail("JSON nesting depth limit exceeded")
		return
	}
	t := token{typ: uint8(typ)}
	switch typ {
	case jsonString:
		p.keepString(&t)
	case jsonKeyword, jsonInteger, jsonFloat:
		p.keepText(&t)
	}
	ts.push(t)
	ts.size += n
	if (ts.braces > 0 || ts.bracket > 0) && ts.braces >= 0 && ts.bracket >= 0 {
		return
	}
	p.finish()
}

// keepText stores the current token's bytes as they are.
func (p *StreamParser) keepText(t *token) {
	b, owned := p.cur.take()
	t.n = uint32(len(b))
	if owned {
		t.where, t.ref = textBig, uint32(len(p.val.bigs))
		p.val.bigs = append(p.val.bigs, b)
		return
	}
	ref := p.val.reserve(len(b))
	p.val.arena[ref>>16] = append(p.val.arena[ref>>16], b...)
	t.where, t.ref = textArena, ref
}

// keepString decodes the current string token (parse_string) and stores the result, or the
// parser's error for it: the parser reports that error only if it reaches the token.
func (p *StreamParser) keepString(t *token) {
	b, owned := p.cur.take()
	var (
		out []byte
		msg string
	)
	if owned {
		out, msg = decodeString(b[:0], b) // in place: the decoded text is never longer
	} else {
		ref := p.val.reserve(len(b))
		a := &p.val.arena[ref>>16]
		out, msg = decodeString((*a)[len(*a):len(*a):cap(*a)], b)
		if msg == "" {
			*a = (*a)[:len(*a)+len(out)]
			t.where, t.ref, t.n = textArena, ref, uint32(len(out))
			return
		}
	}
	switch {
	case msg != "":
		t.where, t.ref = textBad, uint32(len(p.val.bad))
		p.val.bad = append(p.val.bad, msg)
	default:
		t.where, t.ref, t.n = textBig, uint32(len(p.val.bigs)), uint32(len(out))
		p.val.bigs = append(p.val.bigs, out)
	}
}

// finish parses the collected tokens as one value and emits it.
func (p *StreamParser) finish() {
	if p.val.memory() > releaseAfter {
		p.heavy = true
	}
	v, err := parseTokens(&p.val)
	p.val.reset()
	if err != nil {
		p.emit(nil, err)
		return
	}
	p.emit(v, nil)
}

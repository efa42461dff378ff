package qmp

import (
	"bytes"
	"strings"
)

// A port of QEMU 7.2's qobject/json-lexer.c: a byte-at-a-time state machine that cuts the
// input into tokens for the streamer (streamer.go). Interpolation (%d …) is never enabled for
// QMP, so '%' is a stray byte here as it is in QEMU's monitor. Runs of bytes that keep the
// lexer in the same state (the inside of a string, keyword or number, whitespace, recovery)
// are taken in one step, which changes nothing but the speed.

// Lexer states and token types share one byte, as in QEMU: states below jsonMin, token types
// from it. The high bit of a table entry means "lookahead": the byte is not consumed.
const (
	jsonError = 0 // must be 0: the table's default entry

	inRecovery = iota // 1
	inDQStringEscape
	inDQString
	inSQStringEscape
	inSQString
	inZero
	inExpDigits
	inExpSign
	inExpE
	inMantissa
	inMantissaDigits
	inDigits
	inSign
	inKeyword
	inStart
)

const (
	jsonLCurly = 100 + iota
	jsonRCurly
	jsonLSquare
	jsonRSquare
	jsonColon
	jsonComma
	jsonInteger
	jsonFloat
	jsonKeyword
	jsonString
)

const lookahead = 0x80

// Limits of qobject/json-streamer.c (MAX_TOKEN_SIZE also bounds one token in json-lexer.c).
// Variables only so tests can shrink them.
var (
	maxTokenSize  = 64 << 20 // bytes of all tokens of one value, and of one token
	maxTokenCount = 2 << 20  // tokens of one value
	maxNesting    = 1 << 10  // open braces plus brackets
)

var lexTable = func() (t [inStart + 1][256]uint8) {
	terminal := func(s int, tok uint8) {
		for c := range t[s] {
			t[s][c] = tok | lookahead
		}
	}
	rng := func(s int, lo, hi int, to uint8) {
		for c := lo; c <= hi; c++ {
			t[s][c] = to
		}
	}
	// IN_RECOVERY: skip to a structural character, an ASCII control other than '\t', or 0xFE/0xFF.
	rng(inRecovery, 0, 0x1F, inStart|lookahead)
	rng(inRecovery, 0x20, 0xFD, inRecovery)
	rng(inRecovery, 0xFE, 0xFF, inStart|lookahead)
	t[inRecovery]['\t'] = inRecovery
	for _, c := range "[]{}:," {
		t[inRecovery][c] = inStart | lookahead
	}
	// Strings: any byte 0x20..0xFD; validation is the parser's job.
	rng(inDQStringEscape, 0x20, 0xFD, inDQString)
	rng(inDQString, 0x20, 0xFD, inDQString)
	t[inDQString]['\\'] = inDQStringEscape
	t[inDQString]['"'] = jsonString
	rng(inSQStringEscape, 0x20, 0xFD, inSQString)
	rng(inSQString, 0x20, 0xFD, inSQString)
	t[inSQString]['\\'] = inSQStringEscape
	t[inSQString]['\''] = jsonString
	// Numbers.
	terminal(inZero, jsonInteger)
	rng(inZero, '0', '9', jsonError)
	t[inZero]['.'] = inMantissa
	terminal(inExpDigits, jsonFloat)
	rng(inExpDigits, '0', '9', inExpDigits)
	rng(inExpSign, '0', '9', inExpDigits)
	t[inExpE]['-'] = inExpSign
	t[inExpE]['+'] = inExpSign
	rng(inExpE, '0', '9', inExpDigits)
	terminal(inMantissaDigits, jsonFloat)
	rng(inMantissaDigits, '0', '9', inMantissaDigits)
	t[inMantissaDigits]['e'] = inExpE
	t[inMantissaDigits]['E'] = inExpE
	rng(inMantissa, '0', '9', inMantissaDigits)
	terminal(inDigits, jsonInteger)
	rng(inDigits, '0', '9', inDigits)
	t[inDigits]['e'] = inExpE
	t[inDigits]['E'] = inExpE
	t[inDigits]['.'] = inMantissa
	t[inSign]['0'] = inZero
	rng(inSign, '1', '9', inDigits)
	// Keywords: [a-z]+, checked by the parser.
	terminal(inKeyword, jsonKeyword)
	rng(inKeyword, 'a', 'z', inKeyword)
	// Top level.
	s := inStart
	t[s]['"'] = inDQString
	t[s]['\''] = inSQString
	t[s]['0'] = inZero
	rng(s, '1', '9', inDigits)
	t[s]['-'] = inSign
	t[s]['{'] = jsonLCurly
	t[s]['}'] = jsonRCurly
	t[s]['['] = jsonLSquare
	t[s][']'] = jsonRSquare
	t[s][','] = jsonComma
	t[s][':'] = jsonColon
	rng(s, 'a', 'z', inKeyword)
	for _, c := range " \t\r\n" {
		t[s][c] = inStart
	}
	return t
}()

// curToken holds the bytes of the token being lexed: in a small reusable buffer while the
// token is short, in a list of chunks once it is long, so that a token of tens of MiB is
// never copied as it grows (a growing slice would hold its old and new arrays at once).
type curToken struct {
	small  []byte   // the token while it is at most smallToken bytes; reused
	chunks [][]byte // the token once longer; chunks[0] is the former small buffer
	n      int      // bytes in the token
}

// Variables only so tests can shrink them.
var (
	smallToken = 16 << 10 // a longer token is kept in chunks, then in a buffer of its own
	tokenChunk = 1 << 20  // chunk size of a long token
)

func (t *curToken) add(b []byte) {
	if t.chunks == nil && t.n+len(b) <= smallToken {
		t.small = append(t.small, b...)
		t.n += len(b)
		return
	}
	if t.chunks == nil {
		t.chunks = [][]byte{t.small}
		t.small = nil
	}
	t.n += len(b)
	for len(b) > 0 {
		last := &t.chunks[len(t.chunks)-1]
		if len(*last) == cap(*last) {
			t.chunks = append(t.chunks, make([]byte, 0, tokenChunk))
			last = &t.chunks[len(t.chunks)-1]
		}
		k := min(len(b), cap(*last)-len(*last))
		*last = append(*last, b[:k]...)
		b = b[k:]
	}
}

func (t *curToken) addByte(c byte) {
	if t.chunks == nil && t.n < smallToken {
		t.small = append(t.small, c)
		t.n++
		return
	}
	t.add([]byte{c})
}

// take returns the token's bytes: a view of the reusable buffer (owned false: copy what must
// be kept, before the next reset), or for a long token a buffer of exactly its size that the
// caller now owns.
func (t *curToken) take() (b []byte, owned bool) {
	if t.chunks == nil {
		return t.small[:t.n], false
	}
	out := make([]byte, 0, t.n)
	for _, c := range t.chunks {
		out = append(out, c...)
	}
	t.chunks = nil
	return out, true
}

func (t *curToken) reset() {
	t.n = 0
	t.chunks = nil
	if t.small == nil {
		t.small = make([]byte, 0, 64)
	}
	t.small = t.small[:0]
}

// selfLoop[s][c] is true when byte c keeps the lexer in state s and is consumed: the bytes of
// a run of them can be taken at once.
var selfLoop = func() (l [inStart + 1][256]bool) {
	for s := range lexTable {
		for c, next := range lexTable[s] {
			l[s][c] = s != jsonError && int(next) == s
		}
	}
	return l
}()

// StreamParser turns a byte stream into JSON values exactly as QEMU's monitor does
// (json_message_parser_feed): values need no separator, may be split across Feed calls, and
// invalid input yields a *SyntaxError followed by recovery. For every complete top-level value
// or error, emit is called once, with exactly one of v and err non-nil. A value is parsed only
// once its last token has arrived; until then its tokens are kept compactly (see streamer.go),
// within QEMU's limits.
type StreamParser struct {
	emit func(v *Value, err error)

	state int      // lexer state
	cur   curToken // the token being lexed
	val   tokens   // the tokens of the value being collected (json-streamer)

	// heavy is set when a value or token held more than releaseAfter bytes; see Heavy.
	heavy bool
}

// NewStreamParser returns a parser calling emit for each value or error.
func NewStreamParser(emit func(v *Value, err error)) *StreamParser {
	return &StreamParser{emit: emit, state: inStart}
}

// Feed lexes b, emitting every value completed by it.
func (p *StreamParser) Feed(b []byte) {
	for i := 0; i < len(b); {
		if selfLoop[p.state][b[i]] {
			j := i + 1
			row := &selfLoop[p.state]
			for j < len(b) && row[b[j]] {
				j++
			}
			i += p.run(b[i:j])
			continue
		}
		p.feedByte(b[i])
		i++
	}
}

// run takes bytes that all keep the lexer in its state and returns how many it took: all of
// them, or fewer when the token reached the size limit (then cut, and the lexer restarted).
func (p *StreamParser) run(b []byte) int {
	if p.state == inStart || p.state == inRecovery {
		return len(b) // whitespace, or bytes skipped after an error: not part of a token
	}
	if room := maxTokenSize + 1 - p.cur.n; len(b) >= room {
		p.cur.add(b[:room])
		p.cutToken()
		return room
	}
	p.cur.add(b)
	return len(b)
}

// Pending reports whether a value has been started but not completed.
func (p *StreamParser) Pending() bool { return p.state != inStart || p.val.n > 0 }

// Reset drops any partial value, as QEMU does when a monitor connection closes.
func (p *StreamParser) Reset() {
	p.state = inStart
	p.cur.reset()
	p.val.reset()
}

// Heavy reports whether a value or token of more than releaseAfter bytes went through the
// parser since the last call, and clears the mark: the caller may then return the memory
// that held it to the system once it has dropped the value.
func (p *StreamParser) Heavy() bool {
	h := p.heavy
	p.heavy = false
	return h
}

func (p *StreamParser) feedByte(c byte) {
	consumed := false
	for !consumed {
		next := lexTable[p.state][c]
		consumed = next&lookahead == 0
		next &^= lookahead
		if consumed {
			p.cur.addByte(c)
		}
		switch {
		case next >= jsonLCurly:
			p.token(int(next))
			p.cur.reset()
			next = inStart
		case next == inStart, next == inRecovery:
			p.cur.reset()
		case next == jsonError:
			p.stray()
			p.cur.reset()
			next = inRecovery
		}
		p.state = int(next)
	}
	if p.cur.n > maxTokenSize {
		p.cutToken()
	}
}

// cutToken is json-lexer.c's guard against one huge token: the partial token goes to the
// streamer with the lexer state as its type, which fails the size check, and lexing restarts
// with the next byte (QEMU lexes the rest of the token as new input).
func (p *StreamParser) cutToken() {
	if p.cur.n > releaseAfter {
		p.heavy = true
	}
	p.cur.reset()
	p.state = inStart
	p.fail("JSON token size limit exceeded")
}

// stray reports the bytes of an invalid token (JSON_ERROR), printed as a C string.
func (p *StreamParser) stray() {
	b, _ := p.cur.take()
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) > releaseAfter {
		p.heavy = true
	}
	const prefix = "JSON parse error, stray '"
	var msg strings.Builder
	msg.Grow(len(prefix) + len(b) + 1)
	msg.WriteString(prefix)
	msg.Write(b)
	msg.WriteByte('\'')
	p.fail(msg.String())
}

func (p *StreamParser) fail(msg string) {
	p.val.reset()
	p.emit(nil, &SyntaxError{Msg: msg})
}

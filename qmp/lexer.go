package qmp

// A port of QEMU 7.2's qobject/json-lexer.c and json-streamer.c: a byte-at-a-time lexer that
// cuts the input into tokens, and a streamer that groups tokens into top-level values by
// counting braces and brackets, with QEMU's limits and error recovery. Interpolation (%d …) is
// never enabled for QMP, so '%' is a stray byte here as it is in QEMU's monitor.

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

// Limits of qobject/json-streamer.c. Variables only so tests can shrink them.
var (
	maxTokenSize  = 64 << 20 // bytes of all tokens of one value
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

type token struct {
	typ int
	str string
}

// StreamParser turns a byte stream into JSON values exactly as QEMU's monitor does
// (json_message_parser_feed): values need no separator, may be split across Feed calls, and
// invalid input yields a *SyntaxError followed by recovery. For every complete top-level value
// or error, emit is called once, with exactly one of v and err non-nil.
type StreamParser struct {
	emit func(v *Value, err error)

	state   int
	tok     []byte
	tokens  []token
	size    int // bytes in tokens
	braces  int
	bracket int
}

// NewStreamParser returns a parser calling emit for each value or error.
func NewStreamParser(emit func(v *Value, err error)) *StreamParser {
	return &StreamParser{emit: emit, state: inStart}
}

// Feed lexes b, emitting every value completed by it.
func (p *StreamParser) Feed(b []byte) {
	for _, c := range b {
		p.feedByte(c)
	}
}

// Pending reports whether a value has been started but not completed.
func (p *StreamParser) Pending() bool { return p.state != inStart || len(p.tokens) > 0 }

// Reset drops any partial value, as QEMU does when a monitor connection closes.
func (p *StreamParser) Reset() {
	p.state = inStart
	p.tok = p.tok[:0]
	p.tokens = nil
	p.size, p.braces, p.bracket = 0, 0, 0
}

func (p *StreamParser) feedByte(c byte) {
	consumed := false
	for !consumed {
		next := lexTable[p.state][c]
		consumed = next&lookahead == 0
		next &^= lookahead
		if consumed {
			p.tok = append(p.tok, c)
		}
		switch {
		case next >= jsonLCurly:
			p.process(int(next), string(p.tok))
			p.tok = p.tok[:0]
			next = inStart
		case next == inStart:
			p.tok = p.tok[:0]
		case next == jsonError:
			p.process(jsonError, string(p.tok))
			p.tok = p.tok[:0]
			next = inRecovery
		case next == inRecovery:
			p.tok = p.tok[:0]
		}
		p.state = int(next)
	}
	if len(p.tok) > maxTokenSize {
		// The lexer hands the oversized partial token on with its state as type; the
		// streamer's size check then rejects it.
		p.process(p.state, string(p.tok))
		p.tok = p.tok[:0]
		p.state = inStart
	}
}

// process is json_message_process_token.
func (p *StreamParser) process(typ int, s string) {
	switch typ {
	case jsonLCurly:
		p.braces++
	case jsonRCurly:
		p.braces--
	case jsonLSquare:
		p.bracket++
	case jsonRSquare:
		p.bracket--
	case jsonError:
		p.fail("JSON parse error, stray '" + cString(s) + "'")
		return
	}
	switch {
	case p.size+len(s)+1 > maxTokenSize:
		p.fail("JSON token size limit exceeded")
		return
	case len(p.tokens)+1 > maxTokenCount:
		p.fail("JSON token count limit exceeded")
		return
	case p.braces+p.bracket > maxNesting:
		p.fail("JSON nesting depth limit exceeded")
		return
	}
	p.tokens = append(p.tokens, token{typ, s})
	p.size += len(s)
	if (p.braces > 0 || p.bracket > 0) && p.braces >= 0 && p.bracket >= 0 {
		return
	}
	tokens := p.tokens
	p.resetValue()
	v, err := parseTokens(tokens)
	if err != nil {
		p.emit(nil, err)
		return
	}
	p.emit(v, nil)
}

func (p *StreamParser) fail(msg string) {
	p.resetValue()
	p.emit(nil, &SyntaxError{Msg: msg})
}

func (p *StreamParser) resetValue() {
	p.braces, p.bracket = 0, 0
	p.tokens = nil
	p.size = 0
}

// cString cuts s at its first NUL, as printing a C string would.
func cString(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return s[:i]
		}
	}
	return s
}

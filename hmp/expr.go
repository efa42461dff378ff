package hmp

import (
	"fmt"
	"math"
	"syscall"

	"tlcvm/compat/optval"
)

// This file ports QEMU 7.2's monitor expression evaluator (monitor/hmp.c get_expr and
// friends): the grammar of the 'i', 'l' and 'M' argument types.
//
//	sum   := logic { ('+'|'-') logic }
//	logic := prod  { ('&'|'|'|'^') prod }
//	prod  := unary { ('*'|'/'|'%') unary }
//	unary := '+' unary | '-' unary | '~' unary | '(' sum ')' | '\'' CHAR '\''
//	       | '$' REGNAME | NUMBER (strtoull base 0: 0x.. hex, 0.. octal, decimal)
//
// Arithmetic is int64 with wrap-around, as in C. QEMU's messages are kept verbatim.

// RegisterReader resolves a $name in an expression: the value of register name on the
// monitor's current CPU, or ok=false for an unknown register.
type RegisterReader func(name string) (val int64, ok bool)

// exprParser walks s from pos; the byte past the end reads as NUL, like the C string.
type exprParser struct {
	s   string
	pos int
	reg RegisterReader
	err error // first error; once set every production returns 0
}

func (e *exprParser) ch() byte {
	if e.pos < len(e.s) {
		return e.s[e.pos]
	}
	return 0
}

func (e *exprParser) fail(format string, a ...any) int64 {
	if e.err == nil {
		e.err = &ParseError{Msg: fmt.Sprintf(format, a...), Err: ErrArgs}
	}
	return 0
}

// next skips the current character and the blanks after it (QEMU's next()).
func (e *exprParser) next() {
	if e.ch() != 0 {
		e.pos++
		e.skipSpace()
	}
}

func (e *exprParser) skipSpace() {
	for isSpace(e.ch()) {
		e.pos++
	}
}

func (e *exprParser) unary() int64 {
	if e.err != nil {
		return 0
	}
	switch c := e.ch(); c {
	case '+':
		e.next()
		return e.unary()
	case '-':
		e.next()
		return -e.unary()
	case '~':
		e.next()
		return ^e.unary()
	case '(':
		e.next()
		n := e.sum()
		if e.err != nil {
			return 0
		}
		if e.ch() != ')' {
			return e.fail("')' expected")
		}
		e.next()
		return n
	case '\'':
		e.pos++
		if e.ch() == 0 {
			return e.fail("character constant expected")
		}
		n := int64(int8(e.ch())) // C's plain char is signed on x86
		e.pos++
		if e.ch() != '\'' {
			return e.fail("missing terminating ' character")
		}
		e.next()
		return n
	case '$':
		e.pos++
		start := e.pos
		for {
			c := e.ch()
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
				break
			}
			e.pos++
		}
		name := e.s[start:e.pos]
		if len(name) > 127 { // QEMU's buf[128]
			name = name[:127]
		}
		e.skipSpace()
		if e.reg == nil {
			return e.fail("unknown register")
		}
		v, ok := e.reg(name)
		if !ok {
			return e.fail("unknown register")
		}
		return v
	case 0:
		return e.fail("unexpected end of expression")
	default:
		// strtoull(pch, &p, 0) at a character that is neither blank nor a sign.
		n, rest, err := optval.ScanUint64(e.s[e.pos:], 0)
		if err == syscall.ERANGE {
			return e.fail("number too large")
		}
		end := len(e.s) - len(rest)
		if end == e.pos {
			return e.fail("invalid char '%c' in expression", c)
		}
		e.pos = end
		e.skipSpace()
		return int64(n)
	}
}

func (e *exprParser) prod() int64 {
	val := e.unary()
	for e.err == nil {
		op := e.ch()
		if op != '*' && op != '/' && op != '%' {
			break
		}
		e.next()
		val2 := e.unary()
		if e.err != nil {
			return 0
		}
		switch op {
		case '*':
			val *= val2
		default:
			if val2 == 0 {
				return e.fail("division by zero")
			}
			if val2 == -1 && val == math.MinInt64 {
				// C traps here (SIGFPE); Go defines the result. Keep Go's.
				if op == '%' {
					val = 0
				}
				continue
			}
			if op == '/' {
				val /= val2
			} else {
				val %= val2
			}
		}
	}
	return val
}

func (e *exprParser) logic() int64 {
	val := e.prod()
	for e.err == nil {
		op := e.ch()
		if op != '&' && op != '|' && op != '^' {
			break
		}
		e.next()
		val2 := e.prod()
		switch op {
		case '&':
			val &= val2
		case '|':
			val |= val2
		case '^':
			val ^= val2
		}
	}
	return val
}

func (e *exprParser) sum() int64 {
	val := e.logic()
	for e.err == nil {
		op := e.ch()
		if op != '+' && op != '-' {
			break
		}
		e.next()
		val2 := e.logic()
		if op == '+' {
			val += val2
		} else {
			val -= val2
		}
	}
	return val
}

// getExpr evaluates the expression at s[pos:] and returns its value and the position
// after it (QEMU's get_expr).
func getExpr(s string, pos int, reg RegisterReader) (int64, int, error) {
	e := &exprParser{s: s, pos: pos, reg: reg}
	e.skipSpace()
	v := e.sum()
	if e.err != nil {
		return 0, e.pos, e.err
	}
	return v, e.pos, nil
}

// EvalExpr evaluates an HMP expression such as "0x1000+8*2" or "$eip" (reg may be nil
// when no registers are available). It is the parser behind the 'i', 'l' and 'M'
// argument types; the whole of s must be consumed.
func EvalExpr(s string, reg RegisterReader) (int64, error) {
	v, end, err := getExpr(s, 0, reg)
	if err != nil {
		return 0, err
	}
	if end != len(s) {
		return 0, &ParseError{Msg: fmt.Sprintf("invalid char '%c' in expression", s[end]), Err: ErrArgs}
	}
	return v, nil
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c >= '\t' && c <= '\r'
}

// isGraph is C's isgraph in the C locale.
func isGraph(c byte) bool {
	return c > ' ' && c < 0x7f
}

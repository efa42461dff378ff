package hmp

import (
	"errors"
	"fmt"
	"strings"

	"tlcvm/compat/optval"
)

// Sentinel errors. Every error the parser returns is a *ParseError wrapping one of them.
var (
	// ErrUnknownCommand: the command (or info subcommand) is not in the table.
	ErrUnknownCommand = errors.New("hmp: unknown command")
	// ErrArgs: the arguments do not match the command's args spec.
	ErrArgs = errors.New("hmp: bad arguments")
	// ErrEmpty: the line holds no command (QEMU does nothing and prints nothing).
	ErrEmpty = errors.New("hmp: empty line")
)

// ParseError is a command line QEMU refuses before running anything. Msg is the text QEMU
// prints (without the final newline; it may be empty), Try the command text for the
// `Try "help <Try>" for more information` line that follows argument errors.
type ParseError struct {
	Msg string
	Try string
	Err error
	// noNewline: QEMU prints Msg without its newline (a %c of NUL cut its string short).
	noNewline bool
}

func (e *ParseError) Error() string { return e.Msg }
func (e *ParseError) Unwrap() error { return e.Err }

// Args are a command's parsed arguments, keyed by the names of its args spec. Values are
// string ('s', 'S', 'F', 'B', '-xs' and the members of 'O'), int64 ('i', 'l', 'M', 'o',
// and "count", "format", "size" of '/'), float64 ('T') or bool ('b', '-x'). Optional
// arguments that were not given are absent.
type Args map[string]any

// Str returns a string argument.
func (a Args) Str(key string) (string, bool) {
	v, ok := a[key].(string)
	return v, ok
}

// Int returns an integer argument.
func (a Args) Int(key string) (int64, bool) {
	v, ok := a[key].(int64)
	return v, ok
}

// Float returns a 'T' argument in seconds.
func (a Args) Float(key string) (float64, bool) {
	v, ok := a[key].(float64)
	return v, ok
}

// Bool returns a boolean argument or flag; absent is false.
func (a Args) Bool(key string) bool {
	v, _ := a[key].(bool)
	return v
}

// Has reports whether key was given.
func (a Args) Has(key string) bool {
	_, ok := a[key]
	return ok
}

// fmtState is the memory-dump format that '/' remembers between commands (QEMU's
// default_fmt_format and default_fmt_size).
type fmtState struct {
	format byte
	size   int
}

// argParser holds what parsing one command's arguments needs.
type argParser struct {
	cmd  *Command
	fmt  *fmtState
	reg  RegisterReader
	warn func(string) // QEMU messages that go to stderr or stdout, not the monitor
}

func at(s string, i int) byte {
	if i >= 0 && i < len(s) {
		return s[i]
	}
	return 0
}

func skipSpace(s string, p int) int {
	for isSpace(at(s, p)) {
		p++
	}
	return p
}

// keyGetInfo is QEMU's key_get_info: it reads "key:" at typ[t:] and returns the key and
// the position of the type letter, or ok=false at the end of the spec.
func keyGetInfo(typ string, t int) (key string, next int, ok bool) {
	if at(typ, t) == ',' {
		t++
	}
	i := strings.IndexByte(typ[min(t, len(typ)):], ':')
	if i < 0 {
		return "", t, false
	}
	return typ[t : t+i], t + i + 1, true
}

// getStr is QEMU's get_str: a blank-delimited word, or a double-quoted string with the
// escapes \n \r \\ \' \". Words are cut at 1023 bytes, as QEMU's buffer does.
func (ap *argParser) getStr(s string, p int) (string, int, bool) {
	p = skipSpace(s, p)
	if at(s, p) == 0 {
		return "", p, false
	}
	var b strings.Builder
	put := func(c byte) {
		if b.Len() < 1023 {
			b.WriteByte(c)
		}
	}
	if s[p] == '"' {
		p++
		for at(s, p) != 0 && s[p] != '"' {
			if s[p] == '\\' {
				p++
				c := at(s, p)
				p++
				switch c {
				case 'n':
					c = '\n'
				case 'r':
					c = '\r'
				case '\\', '\'', '"':
				default:
					// QEMU printf()s this to its own stdout, not to the monitor.
					ap.warnf("unsupported escape code: '\\%c'", c)
					return "", p, false
				}
				put(c)
			} else {
				put(s[p])
				p++
			}
		}
		if at(s, p) != '"' {
			ap.warnf("unterminated string")
			return "", p, false
		}
		p++
	} else {
		for at(s, p) != 0 && !isSpace(s[p]) {
			put(s[p])
			p++
		}
	}
	return b.String(), p, true
}

func (ap *argParser) warnf(format string, a ...any) {
	if ap.warn != nil {
		ap.warn(fmt.Sprintf(format, a...))
	}
}

func (ap *argParser) fail(format string, a ...any) (Args, error) {
	return nil, &ParseError{Msg: fmt.Sprintf(format, a...), Err: ErrArgs}
}

// parse is QEMU's monitor_parse_arguments, walking the args spec exactly as the C code
// does so that odd inputs fail (or succeed) the same way.
func (ap *argParser) parse(s string, p int) (Args, error) {
	name := ap.cmd.Name
	args := Args{}
	typ := ap.cmd.Args
	t := 0
	for {
		key, tt, ok := keyGetInfo(typ, t)
		if !ok {
			break
		}
		c := at(typ, tt)
		t = tt + 1
		switch c {
		case 'F', 'B', 's':
			p = skipSpace(s, p)
			if at(typ, t) == '?' {
				t++
				if at(s, p) == 0 {
					continue
				}
			}
			str, np, ok := ap.getStr(s, p)
			p = np
			if !ok {
				switch c {
				case 'F':
					return ap.fail("%s: filename expected", name)
				case 'B':
					return ap.fail("%s: block device name expected", name)
				}
				return ap.fail("%s: string expected", name)
			}
			args[key] = str
		case 'O':
			p = skipSpace(s, p)
			if at(s, p) == 0 {
				continue
			}
			str, np, ok := ap.getStr(s, p)
			p = np
			if !ok {
				return nil, &ParseError{Err: ErrArgs}
			}
			// QEMU reports QemuOpts errors with error_report, which is not the monitor
			// while arguments are parsed: only the "Try" line reaches the user.
			if err := parseOpts(str, impliedKey(key), args); err != nil {
				ap.warnf("%s", err.Error())
				return nil, &ParseError{Err: ErrArgs}
			}
		case '/':
			np, err := ap.parseFormat(s, p, args)
			if err != nil {
				return nil, err
			}
			p = np
		case 'i', 'l', 'M':
			p = skipSpace(s, p)
			if q := at(typ, t); q == '?' || q == '.' {
				if q == '?' {
					if at(s, p) == 0 {
						t++
						continue
					}
				} else {
					if at(s, p) == '.' {
						p = skipSpace(s, p+1)
					} else {
						t++
						continue
					}
				}
				t++
			}
			val, np, err := getExpr(s, p, ap.reg)
			p = np
			if err != nil {
				return nil, err
			}
			if c == 'i' && (val>>32)&0xffffffff != 0 {
				return ap.fail("'%s' has failed: integer is for 32-bit values", name)
			} else if c == 'M' {
				if val < 0 {
					return ap.fail("enter a positive value")
				}
				val *= 1 << 20
			}
			args[key] = val
		case 'o':
			p = skipSpace(s, p)
			if at(typ, t) == '?' {
				t++
				if at(s, p) == 0 {
					continue
				}
			}
			val, rest, hexSuffix, err := optval.ScanSize(s[p:], 'M') // qemu_strtosz_MiB
			if err != nil || val > 1<<63-1 {
				return ap.fail("invalid size")
			}
			if hexSuffix {
				ap.warnf("warning: Using a multiplier suffix on hex numbers is deprecated: %s", s[p:])
			}
			args[key] = int64(val)
			p = len(s) - len(rest)
		case 'T':
			p = skipSpace(s, p)
			if at(typ, t) == '?' {
				t++
				if at(s, p) == 0 {
					continue
				}
			}
			val, end := strtod(s, p)
			if end == p {
				return ap.fail("Number expected")
			}
			if val != val || val-val != 0 {
				return ap.fail("Bad number")
			}
			p = end
			if at(s, p) != 0 && at(s, p+1) == 's' {
				switch s[p] {
				case 'm':
					val /= 1e3
					p += 2
				case 'u':
					val /= 1e6
					p += 2
				case 'n':
					val /= 1e9
					p += 2
				}
			}
			if at(s, p) != 0 && !isSpace(s[p]) {
				return ap.fail("Unknown unit suffix")
			}
			args[key] = val
		case 'b':
			p = skipSpace(s, p)
			beg := p
			for isGraph(at(s, p)) {
				p++
			}
			b, ok := optval.Bool(s[beg:p], optval.OnOff) // monitor_parse_arguments: on/off only
			if !ok {
				return ap.fail("Expected 'on' or 'off'")
			}
			args[key] = b
		case '-':
			tmp := p
			flag := at(typ, t)
			t++
			if flag == 0 {
				return ap.fail("%s: unknown type '%c'", name, c)
			}
			p = skipSpace(s, p)
			if at(s, p) == '-' {
				p++
				if flag != at(s, p) {
					if !strings.Contains(typ[min(t, len(typ)):], "-"+string(at(s, p))) {
						// %c of NUL ends QEMU's string: the newline is lost too.
						if at(s, p) == 0 {
							return nil, &ParseError{Msg: name + ": unsupported option -", Err: ErrArgs, noNewline: true}
						}
						return ap.fail("%s: unsupported option -%c", name, s[p])
					}
					p = tmp // another flag further on matches: leave it for that key
				} else if at(typ, t) == 's' {
					t++
					optc := s[p]
					p = skipSpace(s, p+1)
					str, np, ok := ap.getStr(s, p)
					p = np
					if !ok {
						return ap.fail("%s: value expected for -%c", name, optc)
					}
					args[key] = str
				} else {
					p++
					args[key] = true
				}
			} else if at(typ, t) == 's' {
				t++
			}
		case 'S':
			p = skipSpace(s, p)
			if at(typ, t) == '?' {
				t++
				if at(s, p) == 0 {
					continue
				}
			}
			if p >= len(s) {
				return ap.fail("%s: string expected", name)
			}
			args[key] = s[p:]
			p = len(s)
		default:
			return ap.fail("%s: unknown type '%c'", name, c)
		}
	}
	p = skipSpace(s, p)
	if at(s, p) != 0 {
		return ap.fail("%s: extraneous characters at the end of line", name)
	}
	return args, nil
}

// parseFormat handles the '/' type: "/[count][format][size]" for x, xp, p, i, o.
func (ap *argParser) parseFormat(s string, p int, args Args) (int, error) {
	var count int32
	var format, size int
	p = skipSpace(s, p)
	if at(s, p) == '/' {
		p++
		count = 1
		if c := at(s, p); c >= '0' && c <= '9' {
			count = 0
			for c := at(s, p); c >= '0' && c <= '9'; c = at(s, p) {
				count = count*10 + int32(c-'0') // wraps like C's int on absurd counts
				p++
			}
		}
		size, format = -1, -1
	loop:
		for {
			switch c := at(s, p); c {
			case 'o', 'd', 'u', 'x', 'i', 'c':
				format = int(c)
				p++
			case 'b':
				size = 1
				p++
			case 'h':
				size = 2
				p++
			case 'w':
				size = 4
				p++
			case 'g', 'L':
				size = 8
				p++
			default:
				break loop
			}
		}
		if c := at(s, p); c != 0 && !isSpace(c) {
			return p, &ParseError{Msg: fmt.Sprintf("invalid char in format: '%c'", c), Err: ErrArgs}
		}
		if format < 0 {
			format = int(ap.fmt.format)
		}
		if format != 'i' {
			if size < 0 {
				size = ap.fmt.size
			}
			ap.fmt.size = size
		}
		ap.fmt.format = byte(format)
	} else {
		count = 1
		format = int(ap.fmt.format)
		if format != 'i' {
			size = ap.fmt.size
		} else {
			size = -1
		}
	}
	args["count"] = int64(count)
	args["format"] = int64(format)
	args["size"] = int64(size)
	return p, nil
}

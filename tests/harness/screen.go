package harness

import (
	"strconv"
	"strings"
)

// Screen renders what a terminal would show for bytes written by QEMU's
// readline (util/readline.c): it redraws the input line on every key with
// ESC[K (erase to end of line) and ESC[D / ESC[C (cursor left / right), and
// the monitor ends lines with \r\n. prefix is text already on the current
// line (e.g. the "(qemu) " prompt) before b. The result has one string per
// line, without line terminators.
func Screen(prefix string, b []byte) []string {
	s := screen{lines: [][]rune{nil}}
	s.write([]byte(prefix))
	s.write(b)
	out := make([]string, len(s.lines))
	for i, l := range s.lines {
		out[i] = string(l)
	}
	return out
}

type screen struct {
	lines    [][]rune
	row, col int
}

func (s *screen) write(b []byte) {
	rs := []rune(string(b))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch r {
		case '\r':
			s.col = 0
		case '\n':
			s.row++
			s.col = 0
			if s.row == len(s.lines) {
				s.lines = append(s.lines, nil)
			}
		case '\b':
			if s.col > 0 {
				s.col--
			}
		case '\a', 0:
		case 0x1b:
			i = s.escape(rs, i)
		default:
			s.put(r)
		}
	}
}

// escape interprets the CSI sequence starting at rs[i] and returns the index
// of its last rune. Unknown sequences are dropped.
func (s *screen) escape(rs []rune, i int) int {
	if i+1 >= len(rs) || rs[i+1] != '[' {
		return i
	}
	j := i + 2
	for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9' || rs[j] == ';' || rs[j] == '?') {
		j++
	}
	if j >= len(rs) {
		return len(rs) - 1
	}
	if rs[j] < 0x40 || rs[j] > 0x7e {
		return j - 1 // not a final byte: drop "ESC [ params", keep the rest
	}
	n, err := strconv.Atoi(string(rs[i+2 : j]))
	if err != nil || n < 1 {
		n = 1
	}
	line := s.lines[s.row]
	switch rs[j] {
	case 'K':
		if s.col < len(line) {
			s.lines[s.row] = line[:s.col]
		}
	case 'D':
		s.col = max(0, s.col-n)
	case 'C':
		s.col = min(s.col+n, screenWidth-1) // a terminal stops at its right margin
	}
	return j
}

// screenWidth is the terminal's width as far as cursor movement goes: ESC[C stops at its
// last column, as a terminal's does (ESC[999999999C would otherwise pad a line with a
// gigabyte of spaces). Text written is never wrapped or cut.
const screenWidth = 4096

func (s *screen) put(r rune) {
	line := s.lines[s.row]
	for len(line) < s.col {
		line = append(line, ' ')
	}
	if s.col < len(line) {
		line[s.col] = r
	} else {
		line = append(line, r)
	}
	s.lines[s.row] = line
	s.col++
}

// ScreenText is Screen joined with "\n".
func ScreenText(prefix string, b []byte) string {
	return strings.Join(Screen(prefix, b), "\n")
}

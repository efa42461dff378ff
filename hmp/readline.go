package hmp

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
)

// A port of QEMU 7.2's util/readline.c: the line editor of an HMP terminal. Every input
// byte is handled and then the visible line is brought up to date with the same escape
// sequences QEMU sends (ESC[D to move left, ESC[C right, ESC[K to clear to the end), so a
// client sees the very bytes QEMU would send.
//
// Keys: ^A/Home bol, ^E/End eol, ^D/Del delete, Backspace/^H, ^W delete word, Tab
// complete, Left/Right, Up/Down history (64 entries), Enter (CR or LF) runs the line.

const (
	rlMaxCmds        = 64   // READLINE_MAX_CMDS
	rlCmdBufSize     = 4095 // READLINE_CMD_BUF_SIZE
	rlMaxCompletions = 256  // READLINE_MAX_COMPLETIONS
)

const (
	isNorm = iota
	isEsc
	isCSI
	isSS3
)

type readline struct {
	m *Monitor

	prompt      string
	cmdBuf      []byte
	index       int
	lastCmdBuf  []byte
	lastIndex   int
	escState    int
	escParam    int
	history     []string
	histEntry   int
	completions []string
	complIndex  int
	password    bool // the line is a password: echoed as stars, never in the history

	out bytes.Buffer // pending output, "\n" already turned into "\r\n"
}

func newReadline(m *Monitor) *readline {
	return &readline{m: m, prompt: "(qemu) ", histEntry: -1}
}

func (rl *readline) printf(format string, a ...any) {
	rl.out.WriteString(crlf(fmt.Sprintf(format, a...)))
}

// showPrompt is readline_show_prompt.
func (rl *readline) showPrompt() {
	rl.printf("%s", rl.prompt)
	rl.lastIndex = 0
	rl.lastCmdBuf = rl.lastCmdBuf[:0]
	rl.escState = isNorm
}

// restart is readline_restart: an empty line (history is kept).
func (rl *readline) restart() {
	rl.cmdBuf = rl.cmdBuf[:0]
	rl.index = 0
}

// update is readline_update: redraw what changed.
func (rl *readline) update() {
	if !bytes.Equal(rl.cmdBuf, rl.lastCmdBuf) {
		for i := 0; i < rl.lastIndex; i++ {
			rl.out.WriteString("\033[D")
		}
		if rl.password {
			rl.out.WriteString(strings.Repeat("*", len(rl.cmdBuf)))
		} else {
			rl.out.WriteString(crlf(string(rl.cmdBuf)))
		}
		rl.out.WriteString("\033[K")
		rl.lastCmdBuf = append(rl.lastCmdBuf[:0], rl.cmdBuf...)
		rl.lastIndex = len(rl.cmdBuf)
	}
	if rl.index != rl.lastIndex {
		d, seq := rl.index-rl.lastIndex, "\033[C"
		if d < 0 {
			d, seq = -d, "\033[D"
		}
		for i := 0; i < d; i++ {
			rl.out.WriteString(seq)
		}
		rl.lastIndex = rl.index
	}
}

func (rl *readline) insertChar(ch byte) {
	if rl.index < rlCmdBufSize {
		rl.cmdBuf = append(rl.cmdBuf, 0)
		copy(rl.cmdBuf[rl.index+1:], rl.cmdBuf[rl.index:])
		rl.cmdBuf[rl.index] = ch
		rl.index++
	}
}

func (rl *readline) backwardChar() {
	if rl.index > 0 {
		rl.index--
	}
}

func (rl *readline) forwardChar() {
	if rl.index < len(rl.cmdBuf) {
		rl.index++
	}
}

func (rl *readline) deleteChar() {
	if rl.index < len(rl.cmdBuf) {
		rl.cmdBuf = append(rl.cmdBuf[:rl.index], rl.cmdBuf[rl.index+1:]...)
	}
}

func (rl *readline) backspace() {
	if rl.index > 0 {
		rl.backwardChar()
		rl.deleteChar()
	}
}

// backword is ^W: delete the word before the cursor.
func (rl *readline) backword() {
	if rl.index == 0 || rl.index > len(rl.cmdBuf) {
		return
	}
	start := rl.index - 1
	for start > 0 && isSpace(rl.cmdBuf[start]) {
		start--
	}
	for start > 0 {
		if isSpace(rl.cmdBuf[start]) {
			start++
			break
		}
		start--
	}
	if start < rl.index {
		rl.cmdBuf = append(rl.cmdBuf[:start], rl.cmdBuf[rl.index:]...)
		rl.index = start
	}
}

func (rl *readline) upChar() {
	if rl.histEntry == 0 {
		return
	}
	if rl.histEntry == -1 {
		rl.histEntry = len(rl.history)
	}
	rl.histEntry--
	if rl.histEntry >= 0 {
		rl.cmdBuf = append(rl.cmdBuf[:0], rl.history[rl.histEntry]...)
		rl.index = len(rl.cmdBuf)
	}
}

func (rl *readline) downChar() {
	if rl.histEntry == -1 {
		return
	}
	if rl.histEntry < rlMaxCmds-1 && rl.histEntry+1 < len(rl.history) {
		rl.histEntry++
		rl.cmdBuf = append(rl.cmdBuf[:0], rl.history[rl.histEntry]...)
	} else {
		rl.cmdBuf = rl.cmdBuf[:0]
		rl.histEntry = -1
	}
	rl.index = len(rl.cmdBuf)
}

// histAdd is readline_hist_add: the line moves to the end of the history, once.
func (rl *readline) histAdd(line string) {
	if line == "" {
		return
	}
	for i, h := range rl.history {
		if h == line {
			rl.history = append(rl.history[:i], rl.history[i+1:]...)
			break
		}
	}
	if len(rl.history) == rlMaxCmds {
		rl.history = rl.history[1:]
	}
	rl.history = append(rl.history, line)
	rl.histEntry = -1
}

func (rl *readline) addCompletion(s string) {
	if len(rl.completions) < rlMaxCompletions {
		rl.completions = append(rl.completions, s)
	}
}

// completion is readline_completion (Tab).
func (rl *readline) completion() {
	rl.completions = rl.completions[:0]
	rl.m.findCompletion(rl, string(rl.cmdBuf[:rl.index]))
	n := len(rl.completions)
	if n == 0 {
		return
	}
	sort.Strings(rl.completions)
	if n == 1 {
		c := rl.completions[0]
		for i := rl.complIndex; i < len(c); i++ {
			rl.insertChar(c[i])
		}
		if len(c) > 0 && c[len(c)-1] != '/' {
			rl.insertChar(' ')
		}
		return
	}
	rl.printf("\n")
	maxWidth, maxPrefix := 0, 0
	for i, c := range rl.completions {
		l := len(c)
		if i == 0 {
			maxPrefix = l
		} else {
			if l < maxPrefix {
				maxPrefix = l
			}
			for j := 0; j < maxPrefix; j++ {
				if c[j] != rl.completions[0][j] {
					maxPrefix = j
				}
			}
		}
		maxWidth = max(maxWidth, l)
	}
	if maxPrefix > 0 {
		for i := rl.complIndex; i < maxPrefix; i++ {
			rl.insertChar(rl.completions[0][i])
		}
	}
	maxWidth += 2
	maxWidth = min(max(maxWidth, 10), 80)
	cols := 80 / maxWidth
	j := 0
	for i, c := range rl.completions {
		rl.printf("%-*s", maxWidth, c)
		if j++; j == cols || i == n-1 {
			rl.printf("\n")
			j = 0
		}
	}
	rl.showPrompt()
}

// handleByte is readline_handle_byte. It returns the finished line and true on Enter.
func (rl *readline) handleByte(ch byte) (string, bool) {
	line, done := "", false
	switch rl.escState {
	case isNorm:
		switch ch {
		case 1:
			rl.index = 0
		case 4:
			rl.deleteChar()
		case 5:
			rl.index = len(rl.cmdBuf)
		case 9:
			rl.completion()
		case 10, 13:
			line, done = string(rl.cmdBuf), true
			if !rl.password {
				rl.histAdd(line)
			}
			rl.printf("\n")
			rl.cmdBuf = rl.cmdBuf[:0]
			rl.index = 0
			rl.lastIndex = 0
			rl.lastCmdBuf = rl.lastCmdBuf[:0]
			return line, done // the caller runs the line, then calls update
		case 23:
			rl.backword()
		case 27:
			rl.escState = isEsc
		case 127, 8:
			rl.backspace()
		case 155:
			rl.escState = isCSI
		default:
			if ch >= 32 {
				rl.insertChar(ch)
			}
		}
	case isEsc:
		switch ch {
		case '[':
			rl.escState, rl.escParam = isCSI, 0
		case 'O':
			rl.escState, rl.escParam = isSS3, 0
		default:
			rl.escState = isNorm
		}
	case isCSI:
		if ch >= '0' && ch <= '9' {
			rl.escParam = rl.escParam*10 + int(ch-'0')
			break
		}
		switch ch {
		case 'A', 'F':
			rl.upChar()
		case 'B', 'E':
			rl.downChar()
		case 'D':
			rl.backwardChar()
		case 'C':
			rl.forwardChar()
		case '~':
			switch rl.escParam {
			case 1:
				rl.index = 0
			case 3:
				rl.deleteChar()
			case 4:
				rl.index = len(rl.cmdBuf)
			}
		}
		rl.escState = isNorm
	case isSS3:
		switch ch {
		case 'F':
			rl.index = len(rl.cmdBuf)
		case 'H':
			rl.index = 0
		}
		rl.escState = isNorm
	}
	rl.update()
	return line, done
}

// findCompletion is monitor_find_completion.
func (m *Monitor) findCompletion(rl *readline, line string) {
	args, ok := parseCmdline(line)
	if !ok {
		return
	}
	if len(line) > 0 && isSpace(line[len(line)-1]) {
		if len(args) >= maxArgs {
			return
		}
		args = append(args, "")
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.completeByTable(rl, m.cmds, args)
}

// nextArgType is QEMU's next_arg_type: the text after the next ':' (or typ itself).
func nextArgType(typ string) string {
	if i := strings.IndexByte(typ, ':'); i >= 0 {
		return typ[i+1:]
	}
	return typ
}

// completeByTable is monitor_find_completion_by_table.
func (m *Monitor) completeByTable(rl *readline, table []*Command, args []string) {
	if len(args) <= 1 {
		name := ""
		if len(args) == 1 {
			name = args[0]
		}
		rl.complIndex = len(name)
		for _, c := range table {
			for _, alias := range strings.Split(c.Name, "|") {
				if strings.HasPrefix(alias, name) {
					rl.addCompletion(alias)
				}
			}
		}
		return
	}
	cmd := find(table, args[0])
	if cmd == nil {
		return
	}
	if cmd.Name == "info" && !cmd.Info {
		m.completeByTable(rl, m.info, args[1:])
		return
	}
	ptype := nextArgType(cmd.Args)
	for i := 0; i < len(args)-2; i++ {
		if ptype != "" {
			ptype = nextArgType(ptype)
			for strings.HasPrefix(ptype, "?") {
				ptype = nextArgType(ptype)
			}
		}
	}
	str := args[len(args)-1]
	old := "\x00"
	for strings.HasPrefix(ptype, "-") && old != ptype {
		old = ptype
		ptype = nextArgType(ptype)
	}
	switch at(ptype, 0) {
	case 'F':
		rl.complIndex = len(str)
		fileCompletion(rl, str)
	case 's', 'S':
		if cmd.Name == "help|?" {
			m.completeByTable(rl, table, args[1:])
		}
	}
}

// fileCompletion is QEMU's file_completion: names in the directory of input that start
// with its last component; directories get a trailing '/'.
func fileCompletion(rl *readline, input string) {
	dir, prefix, pathLen := ".", input, 0
	if i := strings.LastIndexByte(input, '/'); i >= 0 {
		pathLen = i + 1
		dir, prefix = input[:pathLen], input[i+1:]
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		file := input[:pathLen] + e.Name()
		if st, err := os.Stat(file); err == nil && st.IsDir() {
			file += "/"
		}
		rl.addCompletion(file)
	}
}

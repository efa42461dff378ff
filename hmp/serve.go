package hmp

import (
	"errors"
	"fmt"
	"io"
)

// Serve runs the monitor on a character device until EOF, a read or write error, or
// `quit`. It first sends QEMU's banner, then the "(qemu) " prompt.
//
// interactive=true is QEMU's -monitor/-mon mode=readline: every byte goes through the
// line editor, which echoes and redraws the line exactly as QEMU does (see readline.go).
// interactive=false is a plain line mode for scripts: no echo, no editing, lines end at
// LF (a CR before it is dropped); banner and prompts are still sent.
//
// Only one Serve runs at a time per Monitor (a second waits): like QEMU's chardev
// monitor, the line history and current CPU belong to the monitor and survive
// reconnection; a new connection starts with an empty line.
func (m *Monitor) Serve(conn io.ReadWriter, interactive bool) {
	m.serveMu.Lock()
	defer m.serveMu.Unlock()
	err := m.serve(conn, interactive)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errQuit) {
		m.log.Debug().Err(err).Msg("hmp session ended")
	}
}

var errQuit = errors.New("hmp: quit")

func (m *Monitor) serve(conn io.ReadWriter, interactive bool) error {
	banner := crlf(fmt.Sprintf("QEMU %s monitor - type 'help' for more information\n", m.version))
	rl := m.term.rl
	if !interactive {
		if _, err := io.WriteString(conn, banner+"(qemu) "); err != nil {
			return err
		}
		return m.serveLines(conn)
	}
	rl.out.Reset()
	rl.out.WriteString(banner)
	rl.restart()
	rl.showPrompt()
	if err := rl.flush(conn); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		for _, b := range buf[:n] {
			line, done := rl.handleByte(b)
			if !done {
				continue
			}
			out, quit := m.readLine(line)
			rl.out.WriteString(out)
			if quit {
				if werr := rl.flush(conn); werr != nil {
					return werr
				}
				return errQuit
			}
			rl.showPrompt()
		}
		if werr := rl.flush(conn); werr != nil {
			return werr
		}
		if err != nil {
			return err
		}
	}
}

// serveLines is the non-interactive loop.
func (m *Monitor) serveLines(conn io.ReadWriter) error {
	buf := make([]byte, 4096)
	var line []byte
	for {
		n, err := conn.Read(buf)
		for _, b := range buf[:n] {
			if b != '\n' {
				line = append(line, b)
				continue
			}
			if l := len(line); l > 0 && line[l-1] == '\r' {
				line = line[:l-1]
			}
			if m.term.password == nil {
				m.term.rl.histAdd(string(line))
			}
			out, quit := m.readLine(string(line))
			line = line[:0]
			if !quit {
				out += m.term.rl.prompt
			}
			if _, werr := io.WriteString(conn, out); werr != nil {
				return werr
			}
			if quit {
				return errQuit
			}
		}
		if err != nil {
			return err
		}
	}
}

// flush writes the editor's pending output.
func (rl *readline) flush(w io.Writer) error {
	if rl.out.Len() == 0 {
		return nil
	}
	_, err := w.Write(rl.out.Bytes())
	rl.out.Reset()
	return err
}

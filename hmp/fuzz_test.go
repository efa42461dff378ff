package hmp_test

import (
	"errors"
	"strings"
	"testing"

	"tlcvm/hmp"
)

// FuzzParseLine: any line parses to a command or a *ParseError wrapping a sentinel, and
// running it never panics and always answers with "\r\n" line ends.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"", "info status", "x/10xw 0x1000", "xp/4cb $eip", "p/x ($eax+1)*2", "help info registers",
		"info registers -a", "block_resize d0 1.5k", "screendump f -f png d 1", "device_add e1000,id=n",
		"qom-set -j /m p {}", "i/b 0x3f8 .1", "x_sleep 250ms", "pmemsave 0 16 \"a\\\\b\"", "'",
		"info/x", "migrate -d -x u", "set_link a on", "balloon -1", "x/99999999999xg 0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, fake, _ := newSpecMonitor(t)
		fake.ram = make([]byte, 256)
		cmd, args, err := m.Parse(line)
		if err != nil {
			var pe *hmp.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%q: %T is not a *ParseError", line, err)
			}
			if !errors.Is(err, hmp.ErrEmpty) && !errors.Is(err, hmp.ErrUnknownCommand) && !errors.Is(err, hmp.ErrArgs) {
				t.Fatalf("%q: %v wraps no sentinel", line, err)
			}
		} else if cmd == nil || args == nil {
			t.Fatalf("%q: nil command or args without error", line)
		}
		out := m.RunLine(line)
		if strings.Contains(strings.ReplaceAll(out, "\r\n", ""), "\n") {
			t.Fatalf("%q: bare newline in %q", line, out)
		}
	})
}

// FuzzTerminal: any byte stream through the line editor is handled without panicking and
// the session ends at EOF.
func FuzzTerminal(f *testing.F) {
	for _, s := range []string{
		"info status\r\n", "abc\x1b[D\x1b[DX\r", "in\t\t\r", "\x1b[A\x1b[B\x1b[3~\x1bOH\r",
		"help inf\tver\t\r", "\x9b\x9b\x9bA", "a b c\x17\x17\x17\x17\r", "x/4xb 0\r\x1b[A\r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, fake, _ := newSpecMonitor(t)
		fake.ram = make([]byte, 64)
		sc := &scriptConn{}
		for len(in) > 0 { // small reads, to cut escape sequences and lines apart
			n := min(len(in), 7)
			sc.inputs = append(sc.inputs, in[:n])
			in = in[n:]
		}
		m.Serve(sc, true)
		if len(sc.outs) == 0 || !strings.HasPrefix(sc.outs[0].String(), "QEMU ") {
			t.Fatal("no banner")
		}
	})
}

// FuzzEvalExpr: expressions evaluate or fail with a QEMU message, never panic.
func FuzzEvalExpr(f *testing.F) {
	for _, s := range []string{"1+2*3", "(1", "$eax", "'a'", "0x", "-9223372036854775808/-1", "~-+1%0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := hmp.EvalExpr(s, func(string) (int64, bool) { return 1, true })
		if err != nil && !errors.Is(err, hmp.ErrArgs) {
			t.Fatalf("%q: %v", s, err)
		}
	})
}

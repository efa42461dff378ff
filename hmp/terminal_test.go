package hmp_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlcvm/hmp"
)

// Terminal transcripts (testdata/terminal/*.txt) pin the bytes of an interactive HMP
// session: banner, prompt, echo, line editing, history and completion. Each line is
//
//	>> "input bytes"       (Go-quoted) sent by the client
//	<< "output bytes"      (Go-quoted) everything the monitor sent back
//
// The first << is the banner and first prompt. -update re-records the << lines from a
// real QEMU 7.2 (-machine none, HMP on a unix socket); replay runs Serve over net.Pipe.

type exchange struct{ in, out string }

func readTranscript(t *testing.T, path string) (head []string, ex []exchange) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, ">> "):
			s, err := strconv.Unquote(l[3:])
			if err != nil {
				t.Fatalf("%s: %q: %v", path, l, err)
			}
			ex = append(ex, exchange{in: s})
		case strings.HasPrefix(l, "<< "):
			s, err := strconv.Unquote(l[3:])
			if err != nil {
				t.Fatalf("%s: %q: %v", path, l, err)
			}
			if len(ex) == 0 {
				ex = append(ex, exchange{})
			}
			ex[len(ex)-1].out = s
		default:
			head = append(head, l)
		}
	}
	if len(ex) == 0 || ex[0].in != "" {
		ex = append([]exchange{{}}, ex...)
	}
	return head, ex
}

// recordTranscript replays the inputs against a real QEMU and returns its outputs.
func recordTranscript(t *testing.T, ex []exchange) {
	if _, err := os.Stat(qemuBinary); err != nil {
		t.Skipf("-update needs %s", qemuBinary)
	}
	sock := filepath.Join(t.TempDir(), "mon.sock")
	cmd := exec.Command(qemuBinary, "-machine", "none", "-nodefaults", "-display", "none",
		"-monitor", "unix:"+sock+",server=on,wait=off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var conn net.Conn
	for i := 0; i < 100; i++ {
		var err error
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // recording only: wait for QEMU to listen
	}
	if conn == nil {
		t.Fatal("QEMU monitor socket never appeared")
	}
	defer conn.Close()
	readQuiet := func() string {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := conn.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				return b.String()
			}
		}
	}
	for i := range ex {
		if ex[i].in != "" {
			if _, err := conn.Write([]byte(ex[i].in)); err != nil {
				t.Fatal(err)
			}
		}
		ex[i].out = readQuiet()
	}
}

func writeTranscript(t *testing.T, path string, head []string, ex []exchange) {
	var b strings.Builder
	for _, l := range head {
		b.WriteString(l + "\n")
	}
	for i, e := range ex {
		if i > 0 {
			fmt.Fprintf(&b, ">> %s\n", strconv.Quote(e.in))
		}
		fmt.Fprintf(&b, "<< %s\n", strconv.Quote(e.out))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTerminal(t *testing.T) {
	files, _ := filepath.Glob("testdata/terminal/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			head, ex := readTranscript(t, path)
			if *update {
				recordTranscript(t, ex)
				writeTranscript(t, path, head, ex)
			}
			m := hmp.New(newFake(), hmp.Options{})
			sc := &scriptConn{}
			for _, e := range ex[1:] {
				sc.inputs = append(sc.inputs, e.in)
			}
			m.Serve(sc, true)
			for i, e := range ex {
				got := ""
				if i < len(sc.outs) {
					got = sc.outs[i].String()
				}
				if got != e.out {
					t.Fatalf("after %q:\n got %q\nwant %q", e.in, got, e.out)
				}
			}
		})
	}
}

// scriptConn feeds Serve one input per Read and files what Serve writes under the
// input it answers (outs[0] is what comes before any input: banner and prompt). Serve
// handles a whole read and flushes before reading again, so the split is exact.
type scriptConn struct {
	inputs []string
	reads  int
	outs   []strings.Builder
}

func (s *scriptConn) Read(p []byte) (int, error) {
	if s.reads >= len(s.inputs) {
		return 0, io.EOF
	}
	n := copy(p, s.inputs[s.reads])
	s.reads++
	return n, nil
}

func (s *scriptConn) Write(p []byte) (int, error) {
	for len(s.outs) <= s.reads {
		s.outs = append(s.outs, strings.Builder{})
	}
	return s.outs[s.reads].Write(p)
}

// TestServeOverPipe runs a transcript over a real net.Conn pair.
func TestServeOverPipe(t *testing.T) {
	_, ex := readTranscript(t, "testdata/terminal/basic.txt")
	m := hmp.New(newFake(), hmp.Options{})
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() { m.Serve(server, true); server.Close(); close(done) }()
	defer func() { client.Close(); <-done }()
	// A guard against hanging on a short answer, not a timing assertion.
	_ = client.SetDeadline(time.Now().Add(time.Minute))
	for _, e := range ex {
		if e.in != "" {
			go func(in string) { _, _ = client.Write([]byte(in)) }(e.in)
		}
		got := make([]byte, len(e.out))
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatalf("after %q: %v (got %q)", e.in, err, got)
		}
		if string(got) != e.out {
			t.Fatalf("after %q:\n got %q\nwant %q", e.in, got, e.out)
		}
	}
}

// TestServeQuitEndsSession: quit runs QMP quit and Serve returns without a prompt.
func TestServeQuitEndsSession(t *testing.T) {
	f := newFake()
	m := hmp.New(f, hmp.Options{Version: "7.2.99"})
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() { m.Serve(server, true); server.Close(); close(done) }()
	go func() { _, _ = client.Write([]byte("q\r")) }()
	got, err := io.ReadAll(client)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	<-done
	want := "QEMU 7.2.99 monitor - type 'help' for more information\r\n(qemu) q\x1b[K\r\n"
	if string(got) != want {
		t.Fatalf("got %q want %q", got, want)
	}
	if n := f.Names(); len(n) != 1 || n[0] != "quit" {
		t.Fatalf("QMP calls %v, want [quit]", n)
	}
}

// TestServeLineMode: interactive=false has no echo and keeps the prompts.
func TestServeLineMode(t *testing.T) {
	f := newFake()
	m := hmp.New(f, hmp.Options{})
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() { m.Serve(server, false); server.Close(); close(done) }()
	go func() {
		_, _ = client.Write([]byte("info status\r\nfoo\ninfo history\n"))
		_, _ = client.Write([]byte("quit\n"))
	}()
	got, _ := io.ReadAll(client)
	<-done
	want := "QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) " +
		"VM status: running\r\n(qemu) unknown command: 'foo'\r\n(qemu) " +
		"0: 'info status'\r\n1: 'foo'\r\n2: 'info history'\r\n(qemu) "
	if string(got) != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

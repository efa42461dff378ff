package transport_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/migration/transport"
)

// TestExecFailures: a command that exits early or badly. QEMU 7.2 reports a write to a
// command that is gone as "Unable to write to command: Broken pipe" (migrate "exec:false"
// on the real binary); tlcvm's Close adds the exit status, which QEMU ignores — unless
// every Write succeeded and the command left the stream unread in the pipe: that is QEMU's
// broken pipe (its pipe is smaller than any RAM stream), whichever comes first.
func TestExecFailures(t *testing.T) {
	p := payload(streamSize)
	tests := []struct {
		name     string
		cmd      string
		n        int    // bytes to write
		writeErr string // "" when every Write succeeds
		closeErr string
	}{
		{"exits at once without reading", "exec:exit 3", streamSize, "Unable to write to command: Broken pipe",
			"Command 'exit 3' exited with status 3"},
		{"false", "exec:false", streamSize, "Unable to write to command: Broken pipe",
			"Command 'false' exited with status 1"},
		{"reads everything then fails", "exec:cat >/dev/null; exit 4", streamSize, "",
			"Command 'cat >/dev/null; exit 4' exited with status 4"},
		{"says why on stderr", "exec: head -c 1000 >/dev/null; echo 'dd: error writing: No space left on device' >&2; exit 1", streamSize,
			"Unable to write to command: Broken pipe",
			"Command 'head -c 1000 >/dev/null; echo 'dd: error writing: No space left on device' >&2; exit 1' exited with status 1: dd: error writing: No space left on device"},
		// Every Write succeeds (the pipe takes 100 bytes), but the command never read them:
		// QEMU's write fails there (its pipe is smaller than any RAM stream), and it says so.
		{"small stream never read", "exec:exit 2", 100, "", "Unable to write to command: Broken pipe"},
		{"small stream read, failure found at Close", "exec:head -c 100 >/dev/null; exit 2", 100, "",
			"Command 'head -c 100 >/dev/null; exit 2' exited with status 2"},
		{"killed by a signal", "exec:cat >/dev/null; kill -TERM $$", streamSize, "",
			"Command 'cat >/dev/null; kill -TERM $$' was terminated by signal 15 (Terminated)"},
		{"dd to a full disk", "exec: dd of=/dev/full bs=64k", streamSize, "Unable to write to command: Broken pipe",
			"Command 'dd of=/dev/full bs=64k' exited with status 1: dd: error writing '/dev/full': No space left on device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := transport.Open(tt.cmd, quietEnv())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			var werr error
			for off := 0; off < tt.n && werr == nil; off += 64 << 10 {
				_, werr = w.Write(p[off:min(off+64<<10, tt.n)])
			}
			if tt.writeErr == "" && werr != nil {
				t.Fatalf("Write: %v", werr)
			}
			if tt.writeErr != "" {
				if werr == nil || werr.Error() != tt.writeErr {
					t.Fatalf("Write error %v, want %q", werr, tt.writeErr)
				}
				mustIs(t, werr, transport.ErrWrite, syscall.EPIPE)
			}
			cerr := w.Close()
			if cerr == nil || cerr.Error() != tt.closeErr {
				t.Fatalf("Close error %v, want %q", cerr, tt.closeErr)
			}
			if strings.HasSuffix(tt.closeErr, "Broken pipe") {
				mustIs(t, cerr, transport.ErrWrite, syscall.EPIPE)
			} else {
				mustIs(t, cerr, transport.ErrCommand)
			}
			if again := w.Close(); again == nil || again.Error() != cerr.Error() {
				t.Errorf("second Close = %v, want the same error", again)
			}
		})
	}
}

// TestExecIncomingFailure: the incoming command's failure replaces the EOF the stream
// reader would otherwise call a truncation.
func TestExecIncomingFailure(t *testing.T) {
	src, err := transport.Listen("exec:printf QEVM; echo 'dd: a.chk: No such file or directory' >&2; exit 1", quietEnv())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r, err := src.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if string(got) != "QEVM" {
		t.Errorf("read %q, want the 4 bytes written", got)
	}
	want := "Command 'printf QEVM; echo 'dd: a.chk: No such file or directory' >&2; exit 1' exited with status 1: dd: a.chk: No such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("ReadAll error %v, want %q", err, want)
	}
	mustIs(t, err, transport.ErrCommand)
}

// TestDestinationClosesMidStream: the peer goes away after 64 KiB.
func TestDestinationClosesMidStream(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			l, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			uri := "unix:" + addr
			if network == "tcp" {
				uri = "tcp:" + l.Addr().String()
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				c, err := l.Accept()
				if err != nil {
					return
				}
				io.CopyN(io.Discard, c, 64<<10)
				c.Close()
			}()
			w, err := transport.Open(uri, quietEnv())
			if err != nil {
				t.Fatal(err)
			}
			p := payload(1 << 20)
			var werr error
			for i := 0; i < 64 && werr == nil; i++ {
				_, werr = w.Write(p)
			}
			<-done
			if werr == nil {
				werr = w.Close()
			} else {
				w.Close()
			}
			if werr == nil {
				t.Fatal("64 MiB written to a peer that read 64 KiB")
			}
			if werr.Error() != "Unable to write to socket: Broken pipe" && werr.Error() != "Unable to write to socket: Connection reset by peer" {
				t.Errorf("error %q", werr)
			}
			mustIs(t, werr, transport.ErrWrite)
		})
	}
}

// TestFDDestinationClosesMidStream: libvirt's reader of the fd goes away.
func TestFDDestinationClosesMidStream(t *testing.T) {
	r, wf, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ft := newFDTable()
	defer ft.closeAll()
	ft.put(t, "migrate", wf)
	w, err := transport.Open("fd:migrate", transport.Env{LookupFD: ft.lookup})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	_, werr := w.Write(payload(2 << 20))
	if werr == nil || werr.Error() != "Unable to write to file: Broken pipe" {
		t.Fatalf("Write error %v", werr)
	}
	mustIs(t, werr, transport.ErrWrite, syscall.EPIPE)
	w.Close()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	return port
}

// TestUnreachable: the connection fails in the background, as QEMU's does: migrate
// returns {} and query-migrate shows the error-desc.
func TestUnreachable(t *testing.T) {
	port := freePort(t)
	tests := []struct{ uri, err string }{
		{"tcp:127.0.0.1:" + port, "Failed to connect to '127.0.0.1:" + port + "': Connection refused"},
		{"unix:/nonexistent/sock", "Failed to connect to '/nonexistent/sock': No such file or directory"},
		{"tcp::" + port, "address resolution failed for :" + port + ": Name or service not known"},
		{"tcp:127.0.0.1:99999", "address resolution failed for 127.0.0.1:99999: Servname not supported for ai_socktype"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			w, err := transport.Open(tt.uri, quietEnv())
			if err != nil {
				t.Fatalf("Open: %v (QEMU reports this in the background)", err)
			}
			if err := transport.Connected(w); err == nil || err.Error() != tt.err {
				t.Fatalf("Connected = %v, want %q", err, tt.err)
			}
			_, werr := w.Write([]byte("QEVM"))
			if werr == nil || werr.Error() != tt.err {
				t.Errorf("Write = %v, want %q", werr, tt.err)
			}
			mustIs(t, werr, transport.ErrConnect)
			if cerr := w.Close(); cerr == nil || cerr.Error() != tt.err {
				t.Errorf("Close = %v, want %q", cerr, tt.err)
			}
		})
	}
}

// TestOpenErrors: what QEMU 7.2's migrate refuses synchronously.
func TestOpenErrors(t *testing.T) {
	ft := newFDTable()
	env := transport.Env{LookupFD: ft.lookup, Stderr: io.Discard}
	notOpen := strconv.Itoa(closedFD(t))
	tests := []struct {
		uri  string
		err  string
		kind error
	}{
		{"fd:nosuch", "File descriptor named 'nosuch' has not been found", transport.ErrFDNotFound},
		{"fd:" + notOpen, "File descriptor named '" + notOpen + "' has not been found", transport.ErrFDNotFound},
		{"fd:-1", "File descriptor named '-1' has not been found", transport.ErrFDNotFound},
		{"fd:2", "File descriptor named '2' has not been found", transport.ErrFDNotFound},
		{"foo:bar", "Parameter 'uri' expects a valid migration protocol", transport.ErrUnknownProtocol},
		{"tcp:x", "error parsing address 'x'", transport.ErrBadURI},
		{"unix:", "invalid Unix socket address", transport.ErrBadURI},
		{"file:/nonexistent/dir/a.chk", "Unable to open /nonexistent/dir/a.chk: No such file or directory", transport.ErrConnect},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			w, err := transport.Open(tt.uri, env)
			if err == nil {
				w.Close()
				t.Fatalf("Open(%q) succeeded", tt.uri)
			}
			if err.Error() != tt.err {
				t.Errorf("error %q, want %q", err, tt.err)
			}
			mustIs(t, err, tt.kind)
		})
	}
}

// TestOpenFDNumber: outgoing, an open descriptor is not a name: QEMU 7.2's
// monitor_get_fd looks only in the getfd table. The file behind the number is not
// written, not cut and not moved.
func TestOpenFDNumber(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := bytes.Repeat([]byte("disk"), 1024)
	if _, err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	n := strconv.Itoa(int(f.Fd()))
	for _, env := range []transport.Env{{}, {LookupFD: newFDTable().lookup}} {
		w, err := transport.Open("fd:"+n, env)
		if err == nil {
			w.Close()
			t.Fatalf("Open(fd:%s) took the open descriptor", n)
		}
		if err.Error() != "File descriptor named '"+n+"' has not been found" {
			t.Errorf("error %q", err)
		}
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); !bytes.Equal(got, want) || pos != int64(len(want)) {
		t.Errorf("the file behind fd %s changed: %d bytes, position %d", n, len(got), pos)
	}
}

// TestOpenFDSet: file: paths go through Env.Open, which resolves "/dev/fdset/N" (qemu_open);
// its errno makes QEMU's text.
func TestOpenFDSet(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "set.chk")
	var asked []string
	env := transport.Env{Stderr: io.Discard, Open: func(path string, flag int, perm uint32) (int, error) {
		asked = append(asked, path)
		if path != "/dev/fdset/1" {
			return -1, unix.ENOENT
		}
		return unix.Open(dst, flag, perm)
	}}
	w, err := transport.Open("file:/dev/fdset/1", env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("stream")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "stream" {
		t.Errorf("the set's file holds %q", b)
	}
	if _, err := transport.Open("file:/dev/fdset/2", env); err == nil ||
		err.Error() != "Unable to open /dev/fdset/2: No such file or directory" {
		t.Errorf("missing set: %v", err)
	}
	src, err := transport.Listen("file:/dev/fdset/1", env)
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); string(b) != "stream" {
		t.Errorf("read back %q", b)
	}
	r.Close()
	src.Close()
	if len(asked) != 3 || asked[2] != "/dev/fdset/1" {
		t.Errorf("Env.Open asked for %q", asked)
	}
}

// TestListenErrors: what QEMU 7.2's -incoming / migrate-incoming refuse at once.
func TestListenErrors(t *testing.T) {
	ft := newFDTable()
	notOpen := strconv.Itoa(closedFD(t))
	monitor := transport.Env{LookupFD: ft.lookup}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cmdline := transport.Env{}
	tests := []struct {
		uri  string
		env  transport.Env
		err  string
		kind error
	}{
		{"foo:bar", monitor, "unknown migration protocol: foo:bar", transport.ErrUnknownProtocol},
		{"defer", monitor, "unknown migration protocol: defer", transport.ErrUnknownProtocol},
		{"fd:nosuch", monitor, "File descriptor named 'nosuch' has not been found", transport.ErrFDNotFound},
		{"fd:-1", monitor, "File descriptor named '-1' has not been found", transport.ErrFDNotFound},
		{"fd:nosuch", cmdline, "Invalid file descriptor number 'nosuch'", transport.ErrFDNotFound},
		{"fd:-1", cmdline, "Invalid file descriptor number '-1'", transport.ErrFDNotFound},
		{"fd:", cmdline, "Invalid file descriptor number ''", transport.ErrFDNotFound},
		{"fd:5x", cmdline, "Invalid file descriptor number '5x'", transport.ErrFDNotFound},
		{"fd:" + notOpen, cmdline, "Invalid file descriptor number '" + notOpen + "': Bad file descriptor", transport.ErrFDNotFound},
		{"tcp:x", cmdline, "error parsing address 'x'", transport.ErrBadURI},
		{"tcp:192.0.2.1:5", cmdline, "Failed to bind socket: Cannot assign requested address", transport.ErrConnect},
		{"tcp:" + busy.Addr().String(), cmdline, "Failed to find an available port: Address already in use", transport.ErrConnect},
		{"unix:/nonexistent/x", cmdline, "Failed to bind socket to /nonexistent/x: No such file or directory", transport.ErrConnect},
		{"file:/nonexistent/a.chk", cmdline, "Unable to open /nonexistent/a.chk: No such file or directory", transport.ErrConnect},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			src, err := transport.Listen(tt.uri, tt.env)
			if err == nil {
				src.Close()
				t.Fatalf("Listen(%q) succeeded", tt.uri)
			}
			if err.Error() != tt.err {
				t.Errorf("error %q, want %q", err, tt.err)
			}
			mustIs(t, err, tt.kind)
		})
	}
}

// closedFD returns a descriptor number that is not open.
func closedFD(t *testing.T) int {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd()) + 1000
	f.Close()
	return fd
}

// TestFileOffsetKeepsHeader: file:PATH,offset=N keeps the N bytes before the stream and
// drops what was after; the incoming side starts at N.
func TestFileOffsetKeepsHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sav")
	header := bytes.Repeat([]byte("LibvirtQemudSave"), 256) // 4 KiB
	if err := os.WriteFile(path, append(append([]byte{}, header...), bytes.Repeat([]byte{0xEE}, 1<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}
	p := payload(100000)
	w, err := transport.Open("file:"+path+",offset=4K", quietEnv())
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAll(w, p); err != nil {
		t.Fatal(err)
	}
	all, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, all, append(append([]byte{}, header...), p...))
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		// a pre-existing file keeps its mode; a new one is 0600
		t.Logf("mode %v", fi.Mode())
	}
	src, err := transport.Listen("file:"+path+",offset=4096", quietEnv())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r, err := src.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, got, p)
}

// TestFDReadsFromCurrentOffset: libvirt's restore passes its save file positioned after
// its own header (fd:N, -incoming defer + migrate-incoming): nothing may seek.
func TestFDReadsFromCurrentOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sav")
	header := []byte("LibvirtQemudSave\x02\x00\x00\x00 and some XML")
	p := payload(300000)
	if err := os.WriteFile(path, append(append([]byte{}, header...), p...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(int64(len(header)), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	fd := handOver(t, f) // shares the file position
	src, err := transport.Listen("fd:"+strconv.Itoa(fd), transport.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r, err := src.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, got, p)
	if !errors.Is(syscall.Close(fd), syscall.EBADF) {
		t.Errorf("fd %d still open after Close: the transport must own it", fd)
	}
}

// TestFDToRegularFile: libvirt's save without a helper hands over the save file itself,
// positioned after the header it wrote: the stream goes after it, nothing seeks or cuts.
func TestFDToRegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	header := []byte("LibvirtQemudSave header, XML and padding")
	if _, err := f.Write(header); err != nil {
		t.Fatal(err)
	}
	ft := newFDTable()
	defer ft.closeAll()
	ft.put(t, "migrate", f)
	w, err := transport.Open("fd:migrate", transport.Env{LookupFD: ft.lookup})
	if err != nil {
		t.Fatal(err)
	}
	p := payload(1<<20 + 17)
	if err := writeAll(w, p); err != nil {
		t.Fatal(err)
	}
	all, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, all, append(append([]byte{}, header...), p...))
}

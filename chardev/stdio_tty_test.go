package chardev_test

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/chardev"
)

// newTTY returns the slave side of a fresh pseudo-terminal (cooked mode).
func newTTY(t *testing.T) *os.File {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skip(err)
	}
	n, _ := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func modes(t *testing.T, f *os.File) (echo, icanon, isig, icrnl, opost bool) {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0, tio.Lflag&unix.ICANON != 0, tio.Lflag&unix.ISIG != 0,
		tio.Iflag&unix.ICRNL != 0, tio.Oflag&unix.OPOST != 0
}

// Modes QEMU 7.2 sets, read from a pty given to the real binary as stdio:
// -monitor stdio: -echo -icanon isig -icrnl opost; -qmp stdio (the QMP
// monitor asks for echo): the original cooked modes; -serial mon:stdio:
// -isig as well; everything restored at exit.
func TestStdioTerminalModes(t *testing.T) {
	for _, tc := range []struct {
		legacy string
		isig   bool
	}{{"stdio", true}, {"mon:stdio", false}} {
		tty := newTTY(t)
		c := open(t, tc.legacy, chardev.Options{Stdin: tty, Output: tty})
		echo, icanon, isig, icrnl, opost := modes(t, tty)
		if echo || icanon || isig != tc.isig || icrnl || !opost {
			t.Errorf("%s raw: echo=%v icanon=%v isig=%v icrnl=%v opost=%v", tc.legacy, echo, icanon, isig, icrnl, opost)
		}
		c.SetEcho(true)
		echo, icanon, isig, _, _ = modes(t, tty)
		if !echo || !icanon || isig != tc.isig {
			t.Errorf("%s echo: echo=%v icanon=%v isig=%v", tc.legacy, echo, icanon, isig)
		}
		c.SetEcho(false)
		c.Close()
		echo, icanon, isig, icrnl, _ = modes(t, tty)
		if !echo || !icanon || !isig || !icrnl {
			t.Errorf("%s: terminal not restored", tc.legacy)
		}
	}
}

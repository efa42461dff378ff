package tests_test

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// qtest: the protocol test harnesses written for QEMU speak on -qtest's chardev.

// qtestClient is the test's end of -qtest unix:PATH (QEMU connects to the harness's
// socket, as libqtest's).
type qtestClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// startQTest listens on a socket, starts bin with -qtest on it (and a QMP socket), and
// returns the accepted qtest connection with the QMP client. The qtest log goes to
// dir/qtest.log.
func startQTest(t *testing.T, bin string, args ...string) (*qtestClient, *harness.QMP, string) {
	t.Helper()
	dir := shortDir(t)
	sock := filepath.Join(dir, "qt.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	args = append([]string{"-qtest", "unix:" + sock, "-qtest-log", filepath.Join(dir, "qtest.log")}, args...)
	args = append(args, "-nodefaults", "-display", "none", "-qmp", "unix:"+filepath.Join(dir, "qmp.sock")+",server=on,wait=off")
	p := harness.Start(t, harness.Config{Bin: bin, Args: args, Dir: dir})
	q, err := harness.DialQMP(filepath.Join(dir, "qmp.sock"), p, harness.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if err := q.Connect(); err != nil {
		t.Fatal(err)
	}
	_ = l.(*net.UnixListener).SetDeadline(time.Now().Add(harness.DefaultTimeout))
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("qtest connection: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &qtestClient{t: t, conn: c, r: bufio.NewReader(c)}, q, dir
}

// do sends one request and returns the lines up to its reply (IRQ messages first).
func (c *qtestClient) do(req string) []string {
	c.t.Helper()
	_ = c.conn.SetDeadline(time.Now().Add(harness.DefaultTimeout))
	if _, err := c.conn.Write([]byte(req + "\n")); err != nil {
		c.t.Fatalf("%s: %v", req, err)
	}
	var out []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("%s: %v (after %q)", req, err, out)
		}
		out = append(out, strings.TrimSuffix(l, "\n"))
		if !strings.HasPrefix(l, "IRQ ") {
			return out
		}
	}
}

// one sends a request that has a single reply line.
func (c *qtestClient) one(req string) string {
	c.t.Helper()
	r := c.do(req)
	if len(r) != 1 {
		c.t.Fatalf("%s: %q", req, r)
	}
	return r[0]
}

// qtestScript is answered identically by QEMU 7.2 and tlcvm on "-machine pc -nodefaults
// -S" with the default accelerator: memory of every width and encoding, unassigned memory
// and ports, the i8042's data port, the I/O APIC's interception, the commands QEMU 7.2
// answers with ERR or FAIL.
var qtestScript = []string{
	"clock_step", "clock_set 50", // unknown without the qtest accelerator
	"readb 0x1000", "writeq 0x1000 0x1122334455667788", "readb 0x1000", "readw 0x1001",
	"readl 0x1000", "readq 0x1000", "read 0x1000 4", "b64read 0x1000 8", "b64read 0x1000 0",
	"write 0x1000 3 0xaabb", "read 0x1000 4", "write 0x1000 2 0xzz1", "read 0x1000 2",
	"memset 0x2000 0 5", "memset 0x2001 3 0x1a5", "read 0x2000 6",
	"b64write 0x3000 4 AAECAw==", "read 0x3000 4", "b64write 0x3000 2 A=B*C", "readw 0x3000",
	"writel 0x7fffffe 0xdeadbeef", "readl 0x7fffffe", "readq 0x7fffffc", // the end of 128 MiB
	"writeq 0x100000000 1", "readq 0x100000000", "readq -1",
	"writew 0x4000 -2", "readw 0x4000", "writeb 010000 0377", "readb 4096",
	"inb 0x60", "inw 0x1234", "inl 0x1234", "outb 0x80 1", "inb 0x3f8", "outl 0x1234 5",
	"endianness", "foo bar", "module_load a b",
	"write 0x1000 2 0x", "b64write 0x1000 2 AA",
	"irq_intercept_in nosuch", "set_irq_in ioapic unnamed-gpio-in 1 1",
	"irq_intercept_in ioapic", "irq_intercept_in ioapic",
	"set_irq_in ioapic unnamed-gpio-in 1 1", "set_irq_in ioapic unnamed-gpio-in 1 1",
	"set_irq_in ioapic unnamed-gpio-in 1 0", "set_irq_in ioapic unnamed-gpio-in 4 1",
	"irq_intercept_in /machine/i440fx", "irq_intercept_out ioapic",
}

func runQTestScript(t *testing.T, bin string) []string {
	c, _, _ := startQTest(t, bin, "-machine", "pc", "-m", "128M", "-S")
	var out []string
	for _, req := range qtestScript {
		out = append(out, "> "+req)
		out = append(out, c.do(req)...)
	}
	return out
}

// TestQTestDifferential replays qtestScript on QEMU 7.2 and on tlcvm.
func TestQTestDifferential(t *testing.T) {
	bin := requireCandidate(t)
	ref := requireReference(t)
	parallel(t)
	want := runQTestScript(t, ref)
	got := runQTestScript(t, bin)
	if d := harness.Diff(want, got); d != "" {
		t.Fatalf("qtest transcript differs from QEMU 7.2 (- QEMU, + tlcvm):\n%s", d)
	}
}

// TestQTestAccel: under the qtest accelerator the clock follows clock_step/clock_set, the
// vCPUs run nothing, and what qtest writes is guest RAM: xp, pmemsave and a checkpoint see
// it, and a restore gives it back to qtest.
func TestQTestAccel(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	for _, accel := range [][]string{{"-accel", "qtest"}, {"-machine", "accel=qtest"}} {
		t.Run(strings.Join(accel, " "), func(t *testing.T) {
			c, q, dir := startQTest(t, bin, append(accel, "-m", "256M", "-smp", "2")...)
			for _, x := range []struct{ req, want string }{
				{"clock_step", "OK 0"}, // no timer armed: the clock stays
				{"clock_step 1000", "OK 1000"},
				{"clock_set 500", "OK 1000"}, // never back
				{"clock_set 0x100000", "OK 1048576"},
				{"clock_step -7", "OK 1048576"},
				{"writeq 0x200000 0x0123456789abcdef", "OK"},
				{"b64write 0x300000 8 3q2+78r+ur4=", "OK"},
				{"readq 0x300000", "OK 0xbebafecaefbeadde"},
				{"readq 0x500", "OK 0x0000000000000000"}, // vCPU 0's pass counter: nothing ran
				{"readb", "FAIL assertion failed: (words[1])"},
			} {
				if got := c.one(x.req); got != x.want {
					t.Errorf("%s: %q, want %q", x.req, got, x.want)
				}
			}
			if s := status(t, q); s != "running" {
				t.Errorf("status %q, want running", s)
			}
			xp := execOK(t, q, "human-monitor-command", map[string]any{"command-line": "xp /1xg 0x200000"}).Str()
			if !strings.Contains(xp, "0x0123456789abcdef") {
				t.Errorf("xp: %q", xp)
			}
			mem := filepath.Join(dir, "mem.bin")
			execOK(t, q, "pmemsave", map[string]any{"val": 0x300000, "size": 8, "filename": mem})
			if b, err := os.ReadFile(mem); err != nil || !bytes.Equal(b, []byte{0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xba, 0xbe}) {
				t.Errorf("pmemsave: %x %v", b, err)
			}
			log, _ := os.ReadFile(filepath.Join(dir, "qtest.log"))
			if !bytes.Contains(log, []byte("] OPENED\n")) || !bytes.Contains(log, []byte("] writeq 0x200000 0x0123456789abcdef\n")) {
				t.Errorf("qtest log:\n%s", log)
			}
		})
	}
}

// TestQTestCheckpoint: a checkpoint taken after qtest wrote guest RAM restores it.
func TestQTestCheckpoint(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	args := []string{"-accel", "qtest", "-m", "128M"}
	c, q, dir := startQTest(t, bin, args...)
	if r := c.one("writeq 0x1234560 0xfeedface"); r != "OK" {
		t.Fatal(r)
	}
	chk := filepath.Join(dir, "a.chk")
	execOK(t, q, "migrate", map[string]any{"uri": "exec:cat > " + chk})
	waitMigrated(t, q)
	c2, q2, _ := startQTest(t, bin, append(args, "-incoming", "exec:cat "+chk)...)
	deadline := time.Now().Add(harness.DefaultTimeout)
	for status(t, q2) != "running" {
		if time.Now().After(deadline) {
			t.Fatalf("restored VM is %s", status(t, q2))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := c2.one("readq 0x1234560"); r != "OK 0x00000000feedface" {
		t.Fatalf("restored: %s", r)
	}
}

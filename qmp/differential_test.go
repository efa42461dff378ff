package qmp_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestTablesAgainstQEMU replays the exchange tables against the installed QEMU 7.2, so the
// expectations the other tests hold tlcvm to are QEMU's own. Skipped with -short or when
// qemu-system-x86_64 is not installed.
func TestTablesAgainstQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not starting QEMU")
	}
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	for _, tc := range []struct {
		name      string
		negotiate bool
		cases     []exchange
	}{
		{"negotiated", true, negotiatedCases},
		{"pre-negotiation", false, preNegotiationCases},
		{"limits", true, limitCases},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startQEMU(t, bin)
			if tc.negotiate {
				c.negotiate()
			} else if got := c.line(); got != greeting {
				t.Fatalf("greeting:\n got %s\nwant %s", got, greeting)
			}
			runExchanges(t, c, tc.cases)
		})
	}
}

func startQEMU(t *testing.T, bin string) *client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	cmd := exec.Command(bin, "-machine", "none", "-nodefaults", "-display", "none",
		"-chardev", "socket,id=m,path="+sock+",server=on,wait=on", "-mon", "chardev=m,mode=control")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var (
		conn net.Conn
		err  error
	)
	for i := 0; ; i++ { // QEMU creates the socket shortly after start
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		if i == 1000 {
			t.Fatalf("QEMU did not listen: %v", err)
		}
		if _, serr := os.Stat(sock); serr != nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

package tests_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// TestDisplayUpdate: after display-update a VNC client connects at the new address and
// completes the RFB handshake, the old address refuses connections, and the client
// connected before stays listed; QEMU 7.2 and tlcvm alike. (The replies and errors are
// compared in testdata/qmp/display.txt.)
func TestDisplayUpdate(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	dir := shortDir(t)
	for _, b := range []struct{ name, bin string }{{"qemu", ref}, {"tlcvm", bin}} {
		n := freeVNCDisplay(t)
		old := "127.0.0.1:" + strconv.Itoa(5900+n)
		v := startMigVM(t, b.bin, dir, b.name, "-machine", "none", "-display", "none",
			"-vnc", fmt.Sprintf("127.0.0.1:%d", n))
		c1, _, err := harness.RFBHandshake(old, 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		v.do("display-update", map[string]any{"type": "vnc", "addresses": []any{
			map[string]any{"type": "inet", "host": "127.0.0.1", "port": port}}})
		c2, desktop, err := harness.RFBHandshake("127.0.0.1:"+port, 30*time.Second)
		if err != nil {
			t.Fatalf("%s: the new address: %v", b.name, err)
		}
		if desktop != "QEMU" {
			t.Errorf("%s: desktop %q", b.name, desktop)
		}
		if c, err := net.DialTimeout("tcp", old, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("%s: the old address %s still accepts", b.name, old)
		}
		info := v.do("query-vnc", nil).String()
		if !strings.Contains(info, `"service": "`+port+`"`) || strings.Count(info, `"host": "127.0.0.1"`) != 3 {
			t.Errorf("%s: query-vnc after the update (two clients expected): %s", b.name, info)
		}
		c1.Close()
		c2.Close()
		v.quit()
	}
}

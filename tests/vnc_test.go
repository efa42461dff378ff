package tests_test

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// freeVNCDisplay returns a display number whose port (5900+N) is free now.
func freeVNCDisplay(t *testing.T) int {
	t.Helper()
	for n := 40 + os.Getpid()%200; n < 1000; n++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(5900+n))
		if err == nil {
			l.Close()
			return n
		}
	}
	t.Fatal("no free VNC port")
	return 0
}

// TestVNCBesideQEMU: a -vnc display answers query-vnc, query-vnc-servers and info vnc as
// QEMU 7.2's does (the port scrubbed), before and while a client is connected, and speaks
// RFB as QEMU's does up to the desktop name.
func TestVNCBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	dir := shortDir(t)
	type answers struct {
		before, servers, hmp, during, hmpDuring, desktop string
	}
	run := func(name, b string) answers {
		n := freeVNCDisplay(t)
		port := strconv.Itoa(5900 + n)
		v := startMigVM(t, b, dir, name, "-machine", "none", "-display", "none", "-name", "guest=vm1",
			"-vnc", fmt.Sprintf("127.0.0.1:%d", n))
		scrub := func(s string) string { return strings.ReplaceAll(s, port, "PORT") }
		var a answers
		a.before = scrub(v.do("query-vnc", nil).String())
		a.servers = scrub(v.do("query-vnc-servers", nil).String())
		a.hmp = scrub(v.do("human-monitor-command", map[string]any{"command-line": "info vnc"}).Str())
		c, desktop, err := harness.RFBHandshake("127.0.0.1:"+port, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		a.desktop = desktop
		cport := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
		scrubC := func(s string) string { return strings.ReplaceAll(scrub(s), cport, "CPORT") }
		a.during = scrubC(v.do("query-vnc", nil).String())
		a.hmpDuring = scrubC(v.do("human-monitor-command", map[string]any{"command-line": "info vnc"}).Str())
		c.Close()
		v.quit()
		return a
	}
	q, tl := run("qemu", ref), run("tlcvm", bin)
	t.Logf("QEMU: %+v", q)
	if !strings.Contains(q.during, `"clients": [{`) || q.desktop != "QEMU (vm1)" {
		t.Fatalf("the reference run did not see its client: %+v", q)
	}
	for _, f := range []struct{ what, q, tl string }{
		{"query-vnc", q.before, tl.before}, {"query-vnc-servers", q.servers, tl.servers},
		{"info vnc", q.hmp, tl.hmp}, {"query-vnc with a client", q.during, tl.during},
		{"info vnc with a client", q.hmpDuring, tl.hmpDuring}, {"desktop name", q.desktop, tl.desktop},
	} {
		if f.q != f.tl {
			t.Errorf("%s:\nQEMU:  %s\ntlcvm: %s", f.what, f.q, f.tl)
		}
	}
}

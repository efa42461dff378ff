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

// TestVNCPasswordBesideQEMU: -vnc password=on as libvirt starts a domain with a VNC password,
// then set_password, change-vnc-password and expire_password, each followed by clients
// answering the challenge with the right and a wrong password: the same replies, auth
// fields and handshake outcomes as QEMU 7.2's (whose server judges the client's DES
// answer, so the test's client, and tlcvm's server with it, compute it as QEMU does).
func TestVNCPasswordBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	dir := shortDir(t)
	run := func(name, b string) []string {
		n := freeVNCDisplay(t)
		addr := "127.0.0.1:" + strconv.Itoa(5900+n)
		v := startMigVM(t, b, dir, name, "-machine", "none", "-display", "none",
			"-vnc", fmt.Sprintf("127.0.0.1:%d,password=on", n))
		defer v.quit()
		var out []string
		note := func(s string) { out = append(out, s) }
		try := func(pw string) {
			r, err := harness.RFBPasswordHandshake(addr, pw, 30*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			note("client " + pw + ": " + r)
		}
		cmd := func(c string, args map[string]any) {
			var a any
			if args != nil {
				a = args
			}
			r, err := v.q.Execute(c, a)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, c, err)
			}
			note(c + ": " + strings.ReplaceAll(string(r.Raw), strconv.Itoa(5900+n), "PORT"))
		}
		cmd("query-vnc-servers", nil)
		try("") // no password set yet
		cmd("set_password", map[string]any{"protocol": "vnc", "password": "s3cret"})
		try("s3cret")
		try("wrong")
		cmd("set_password", map[string]any{"protocol": "vnc", "password": "longer-than-8", "connected": "fail"})
		cmd("set_password", map[string]any{"protocol": "vnc", "password": "longer-than-8", "display": "nosuch"})
		cmd("change-vnc-password", map[string]any{"password": "longer-than-8"})
		try("longer-t") // only the first 8 bytes count
		cmd("expire_password", map[string]any{"protocol": "vnc", "time": "+3600"})
		try("longer-than-8")
		cmd("expire_password", map[string]any{"protocol": "vnc", "time": "x1"})
		cmd("expire_password", map[string]any{"protocol": "vnc", "time": "now"})
		try("longer-than-8")
		cmd("expire_password", map[string]any{"protocol": "vnc", "time": "never"})
		try("longer-than-8")
		return out
	}
	q, tl := run("qemu", ref), run("tlcvm", bin)
	if len(q) != len(tl) {
		t.Fatalf("QEMU:\n%s\ntlcvm:\n%s", strings.Join(q, "\n"), strings.Join(tl, "\n"))
	}
	for i := range q {
		if q[i] != tl[i] {
			t.Errorf("step %d:\nQEMU:  %s\ntlcvm: %s", i, q[i], tl[i])
		}
	}
	t.Logf("QEMU:\n%s", strings.Join(q, "\n"))
}

package tests_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// TestAddClientBesideQEMU: add_client hands a socket passed with getfd to the -vnc display
// (libvirt's virDomainOpenGraphicsFD): the other end of the pair gets QEMU's RFB greeting
// and query-vnc lists a unix client; spice, D-Bus and unknown protocols are refused with
// QEMU's classes and texts, and a missing descriptor name too.
func TestAddClientBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	dir := shortDir(t)
	run := func(name, b string) []string {
		n := freeVNCDisplay(t)
		port := strconv.Itoa(5900 + n)
		v := startMigVM(t, b, dir, name, "-machine", "none", "-vnc", fmt.Sprintf("127.0.0.1:%d", n))
		defer v.quit()
		var out []string
		pair := func() (*os.File, *os.File) {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			return os.NewFile(uintptr(fds[0]), "server"), os.NewFile(uintptr(fds[1]), "client")
		}
		srv, cli := pair()
		defer cli.Close()
		v.doFiles("getfd", map[string]any{"fdname": "vc"}, srv)
		srv.Close()
		r, err := v.q.Execute("add_client", map[string]any{"protocol": "vnc", "fdname": "vc"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, "add_client vnc: "+string(r.Raw))
		_ = cli.SetReadDeadline(time.Now().Add(30 * time.Second))
		greeting, err := bufio.NewReader(cli).ReadString('\n')
		if err != nil && err != io.EOF {
			t.Fatalf("%s: reading the greeting: %v", name, err)
		}
		out = append(out, "greeting: "+strconv.Quote(greeting))
		out = append(out, "query-vnc: "+strings.ReplaceAll(v.do("query-vnc", nil).String(), port, "PORT"))
		for _, proto := range []string{"spice", "@dbus-display", "xyz"} {
			s, c := pair()
			v.doFiles("getfd", map[string]any{"fdname": "x"}, s)
			s.Close()
			c.Close()
			r, err := v.q.Execute("add_client", map[string]any{"protocol": proto, "fdname": "x"})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, "add_client "+proto+": "+string(r.Raw))
		}
		r, err = v.q.Execute("add_client", map[string]any{"protocol": "vnc", "fdname": "x"})
		if err != nil {
			t.Fatal(err)
		}
		return append(out, "add_client of a closed name: "+string(r.Raw))
	}
	q, tl := run("qemu", ref), run("tlcvm", bin)
	if !strings.Contains(q[1], "RFB 003.008") || !strings.Contains(q[2], `"family": "unix"`) {
		t.Fatalf("the reference run did not serve its client: %q", q)
	}
	for i := range q {
		if i >= len(tl) || q[i] != tl[i] {
			t.Errorf("QEMU:  %s\ntlcvm: %v", q[i], tl)
		}
	}
}

package netdev

import (
	"regexp"
	"strings"
	"testing"
)

// TestUserNetInfo checks the hostfwd rows' layout against QEMU 7.2's (descriptor numbers
// and ephemeral ports vary from run to run, so the differential case cannot hold them):
//
//	TCP[HOST_FORWARD]   9               * 38461       10.0.2.50    22     0     0
//	TCP[HOST_FORWARD]   3       127.0.0.1 34379        10.0.2.9    80     0     0
//	UDP[HOST_FORWARD]   8       127.0.0.1 52917       10.0.2.50    53     0     0
func TestUserNetInfo(t *testing.T) {
	n := New()
	defer n.Close()
	err := n.Add(Config{ID: "h1", Type: TypeUser, User: &User{DHCPStart: "10.0.2.50",
		HostFwd: []string{"tcp::0-:22", "udp:127.0.0.1:0-:53", "tcp:127.0.0.1:0-10.0.2.9:80"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Add(Config{ID: "h2", Type: TypeUser, User: &User{HostFwd: []string{"tcp:127.0.0.1:0-:22"}}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(n.UserNetInfo(), "\n"), "\n")
	want := []string{
		`^Hub -1 \(h1\):$`,
		`^  Protocol\[State\]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ$`,
		`^  TCP\[HOST_FORWARD\] [ 0-9]{3}               \* [ 0-9]{5}       10\.0\.2\.50    22     0     0$`,
		`^  TCP\[HOST_FORWARD\] [ 0-9]{3}       127\.0\.0\.1 [ 0-9]{5}        10\.0\.2\.9    80     0     0$`,
		`^  UDP\[HOST_FORWARD\] [ 0-9]{3}       127\.0\.0\.1 [ 0-9]{5}       10\.0\.2\.50    53     0     0$`,
		`^Hub -1 \(h2\):$`,
		`^  Protocol\[State\]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ$`,
		`^  TCP\[HOST_FORWARD\] [ 0-9]{3}       127\.0\.0\.1 [ 0-9]{5}       10\.0\.2\.15    22     0     0$`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d: %q does not match %s", i, lines[i], re)
		}
	}
	if strings.Contains(lines[2], " -1 ") {
		t.Errorf("no descriptor: %q", lines[2])
	}
}

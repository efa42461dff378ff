package nbd_test

import (
	"net"
	"strconv"
	"testing"

	"tlcvm/nbd"
)

// TestListenWildcardIPv6IsDualStack: "::" (libvirt's destination of a storage copy
// listens so) takes IPv4 clients too, as QEMU's inet_listen does.
func TestListenWildcardIPv6IsDualStack(t *testing.T) {
	l, err := nbd.Listen(nbd.SocketAddress{Type: "inet", Host: "::", Port: "0"})
	if err != nil {
		t.Skipf("no IPv6 here: %v", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("an IPv4 client of a server on [::]: %v", err)
	}
	c.Close()
}

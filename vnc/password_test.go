package vnc_test

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"testing"
	"time"

	"tlcvm/vnc"
)

// TestPasswordAuth: with password=on the server offers VNC authentication in 3.3 and 3.8
// and judges the answer to its challenge: no password set, a wrong one or an expired one
// fail (with the reason in 3.8), the right one passes; a display without password=on
// refuses a password. (The DES answer itself is checked against QEMU 7.2's server by
// tests/TestVNCPasswordBesideQEMU.)
func TestPasswordAuth(t *testing.T) {
	s, addr := start(t, vnc.Config{Password: true}, vnc.Options{})
	if got := s.Info().Auth; got != "vnc" {
		t.Fatalf("auth %q", got)
	}
	try := func(version, pw string) (ok bool, tail []byte) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		c := &rfbClient{t: t, conn: conn}
		c.read(12)
		c.write([]byte(version))
		if version == "RFB 003.003\n" {
			if typ := binary.BigEndian.Uint32(c.read(4)); typ != 2 {
				t.Fatalf("3.3 security type %d", typ)
			}
		} else {
			if types := c.read(int(c.read(1)[0])); len(types) != 1 || types[0] != 2 {
				t.Fatalf("security types %v", types)
			}
			c.write([]byte{2})
		}
		c.write(vnc.VNCAuthResponse(pw, c.read(16)))
		if binary.BigEndian.Uint32(c.read(4)) == 0 {
			return true, nil
		}
		return false, expectClosed(t, conn)
	}
	reason := "\x00\x00\x00\x16Authentication failed\x00"
	if ok, tail := try("RFB 003.008\n", ""); ok || string(tail) != reason {
		t.Fatalf("no password set: ok %v, then %q", ok, tail)
	}
	if err := s.SetPassword("secret-and-more"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		version, pw string
		ok          bool
	}{
		{"RFB 003.008\n", "secret-a", true}, // the first 8 bytes are the key
		{"RFB 003.003\n", "secret-and-more", true},
		{"RFB 003.008\n", "secret", false},
		{"RFB 003.003\n", "wrong", false},
	} {
		if ok, _ := try(c.version, c.pw); ok != c.ok {
			t.Errorf("%q with %q: ok %v", c.version, c.pw, ok)
		}
	}
	s.ExpirePassword(time.Now().Unix() - 1)
	if ok, _ := try("RFB 003.008\n", "secret-a"); ok {
		t.Error("an expired password passed")
	}
	s.ExpirePassword(math.MaxInt64)
	if ok, _ := try("RFB 003.008\n", "secret-a"); !ok {
		t.Error("the password failed once it never expires")
	}
	plain, _ := start(t, vnc.Config{}, vnc.Options{})
	if err := plain.SetPassword("x"); !errors.Is(err, vnc.ErrNoPasswordAuth) {
		t.Errorf("a password on a display without password=on: %v", err)
	}
}

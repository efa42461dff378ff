package vnc_test

import (
	"errors"
	"testing"

	"tlcvm/vnc"
)

// Accepted forms and the fields they produce; each argument was checked
// against qemu-system-x86_64 7.2 (-vnc ARG starts, query-vnc as noted).
func TestParseAccepted(t *testing.T) {
	tests := []struct {
		arg  string
		want func(c vnc.Config) bool
	}{
		{"127.0.0.1:0", func(c vnc.Config) bool { return c.Network == "tcp" && c.Host == "127.0.0.1" && c.Port == 5900 }},
		{"127.0.0.1:0,audiodev=audio1", func(c vnc.Config) bool { return c.Audiodev == "audio1" && c.Port == 5900 }},
		{":1", func(c vnc.Config) bool { return c.Host == "" && c.Port == 5901 }},
		{"none", func(c vnc.Config) bool { return c.Disabled }},
		{"", func(c vnc.Config) bool { return c.Disabled }},
		{"none,to=3", func(c vnc.Config) bool { return c.Disabled }},
		{"localhost:5900,to=5910", func(c vnc.Config) bool { return c.Port == 11800 && c.ToPort == 11810 && c.HasTo }},
		{":1,to=0", func(c vnc.Config) bool { return c.ToPort == 0 && c.HasTo }},
		{":1,to=0x3", func(c vnc.Config) bool { return c.ToPort == 5903 }},
		{"[::1]:1", func(c vnc.Config) bool { return c.Host == "::1" && c.Port == 5901 }},
		{"::1:1", func(c vnc.Config) bool { return c.Host == "::1" && c.Port == 5901 }},
		{"unix:/tmp/x.sock", func(c vnc.Config) bool { return c.Network == "unix" && c.Path == "/tmp/x.sock" }},
		{"unix:", func(c vnc.Config) bool { return c.Network == "unix" && c.Path == "" }},
		{"vnc=:1", func(c vnc.Config) bool { return c.Port == 5901 }},
		{":1,vnc=:2", func(c vnc.Config) bool { return c.Port == 5902 }},
		{":1,share=ignore", func(c vnc.Config) bool { return c.Share == vnc.ShareIgnore }},
		{":1,share=allow-exclusive", func(c vnc.Config) bool { return c.Share == vnc.ShareAllowExclusive }},
		{":1,share=force-shared", func(c vnc.Config) bool { return c.Share == vnc.ShareForceShared }},
		{":1,password=off", func(c vnc.Config) bool { return c.Port == 5901 && !c.Password }},
		{":1,password=on", func(c vnc.Config) bool { return c.Password }},
		{":1,sasl=off,reverse=off", func(c vnc.Config) bool { return c.Port == 5901 }},
		{":1,lossy=on", func(c vnc.Config) bool { return c.Lossy }},
		{":1,lossy=yes", func(c vnc.Config) bool { return c.Lossy }},
		{":1,non-adaptive=on", func(c vnc.Config) bool { return c.NonAdaptive }},
		{":1,key-delay-ms=10", func(c vnc.Config) bool { return c.KeyDelayMs == 10 }},
		{":1,lock-key-sync=off", func(c vnc.Config) bool { return !c.LockKeySync }},
		{":1,power-control=on", func(c vnc.Config) bool { return c.PowerControl }},
		{":1,id=foo", func(c vnc.Config) bool { return c.ID == "foo" }},
		{":1,id=a_b", func(c vnc.Config) bool { return c.ID == "a_b" }},
		{":1,ipv4=on", func(c vnc.Config) bool { return c.IPv4 }},
		{":1,ipv4", func(c vnc.Config) bool { return c.IPv4 }},
		{":1,noipv4", func(c vnc.Config) bool { return c.NoIPv4 }},
		{":1,ipv6=on,ipv4=off", func(c vnc.Config) bool { return c.IPv6 && c.NoIPv4 }},
		{":1,connections=2,head=1", func(c vnc.Config) bool { return c.Connections == 2 && c.Head == 1 }},
		{":1", func(c vnc.Config) bool { return c.Connections == vnc.DefaultConnections && c.LockKeySync }},
	}
	for _, tt := range tests {
		c, err := vnc.Parse(tt.arg)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.arg, err)
			continue
		}
		if !tt.want(c) {
			t.Errorf("Parse(%q) = %+v", tt.arg, c)
		}
	}
}

// Errors: the text after the sentinel's prefix is QEMU 7.2's.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		arg, msg string
		err      error
	}{
		{"foo", "no vnc port specified", vnc.ErrOption},
		{"127.0.0.1", "no vnc port specified", vnc.ErrOption},
		{",to=3", "no vnc port specified", vnc.ErrOption},
		{"localhost:", "vnc port cannot be empty", vnc.ErrOption},
		{":abc", "can't convert to a number: abc", vnc.ErrOption},
		{":-1", "can't convert to a number: -1", vnc.ErrOption},
		{":1,,share=x", "can't convert to a number: 1,share=x", vnc.ErrOption},
		{":65536", "port 65536 out of range", vnc.ErrOption},
		{":59636", "port 59636 out of range", vnc.ErrOption},
		{":1,to=abc", "Parameter 'to' expects a number", vnc.ErrOption},
		{":1,to=99999999999999999999", "Value '99999999999999999999' is too large for parameter 'to'", vnc.ErrOption},
		{":1,key-delay-ms=x", "Parameter 'key-delay-ms' expects a number", vnc.ErrOption},
		{":1,head=x", "Parameter 'head' expects a number", vnc.ErrOption},
		{":1,share=bogus", "unknown vnc share= option", vnc.ErrOption},
		{":1,share=", "unknown vnc share= option", vnc.ErrOption},
		{":1,lossy=bla", "Parameter 'lossy' expects 'on' or 'off'", vnc.ErrOption},
		{":1,non-adaptive", "Invalid parameter 'n-adaptive'", vnc.ErrOption},
		{":1,bogus=1", "Invalid parameter 'bogus'", vnc.ErrOption},
		{":1,acl", "Invalid parameter 'acl'", vnc.ErrOption},
		{":1,x509=/tmp", "Invalid parameter 'x509'", vnc.ErrOption},
		{":1,ipv4=off,ipv6=off", "Cannot disable IPv4 and IPv6 at same time", vnc.ErrOption},
		{":1,id=1abc", "Parameter 'id' expects an identifier", vnc.ErrOption},
		{"unix:/tmp/x,to=3", "Port range not support with UNIX socket", vnc.ErrOption},
		{":1,tls-creds=x", "No TLS credentials with id 'x'", vnc.ErrOption},
		{":1,tls-authz=x", "'tls-authz' provided but TLS is not enabled", vnc.ErrOption},
		{":1,sasl-authz=x", "'sasl-authz' provided but SASL auth is not enabled", vnc.ErrOption},
		{":1,password-secret=x", "No secret with id 'x'", vnc.ErrOption},
		{":1,password=on,password-secret=x", "'password' flag is redundant with 'password-secret'", vnc.ErrOption},
		{":1,display=foo", "Device 'foo' not found", vnc.ErrOption},
		{":1,display=", "Device '' not found", vnc.ErrOption},
		// Valid in QEMU, refused by tlcvm.
		{":1,sasl=on", "VNC SASL authentication is not supported by tlcvm", vnc.ErrUnsupported},
		{":1,websocket=5700", "VNC websockets are not supported by tlcvm", vnc.ErrUnsupported},
		{":1,reverse=on", "VNC reverse connections are not supported by tlcvm", vnc.ErrUnsupported},
	}
	for _, tt := range tests {
		_, err := vnc.Parse(tt.arg)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want %q", tt.arg, tt.msg)
			continue
		}
		if !errors.Is(err, tt.err) || err.Error() != tt.msg {
			t.Errorf("Parse(%q) = %v, want %v ... %q", tt.arg, err, tt.err, tt.msg)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"127.0.0.1:0,audiodev=audio1", ":1,to=3", "unix:/x", "none",
		"[::1]:1,ipv6=on", ":1,,x", ":1,noipv4,share=ignore,id=a", ",,,=,", "vnc=:0x1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := vnc.Parse(s)
		if err != nil {
			if !errors.Is(err, vnc.ErrOption) && !errors.Is(err, vnc.ErrUnsupported) {
				t.Fatalf("Parse(%q): unwrapped error %v", s, err)
			}
			return
		}
		if !c.Disabled && c.Network == "tcp" && (c.Port < 5900 || c.Port > 65535) {
			t.Fatalf("Parse(%q): port %d", s, c.Port)
		}
	})
}

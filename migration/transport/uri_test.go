package transport_test

import (
	"errors"
	"testing"

	"tlcvm/migration/transport"
)

func ptr(b bool) *bool { return &b }

// TestParse pins the parser; every error text was checked against QEMU 7.2
// (qemu-system-x86_64 -incoming URI, and migrate / migrate-incoming over QMP).
func TestParse(t *testing.T) {
	tests := []struct {
		uri     string
		want    transport.Address
		err     string
		errKind error
	}{
		{uri: "exec:cat > /dev/null", want: transport.Address{Scheme: transport.SchemeExec, Command: "cat > /dev/null"}},
		{uri: "exec: dd of=a.chk", want: transport.Address{Scheme: transport.SchemeExec, Command: " dd of=a.chk"}},
		{uri: "exec:", want: transport.Address{Scheme: transport.SchemeExec}},
		{uri: "fd:migrate", want: transport.Address{Scheme: transport.SchemeFD, FD: "migrate"}},
		{uri: "fd:27", want: transport.Address{Scheme: transport.SchemeFD, FD: "27"}},
		{uri: "file:/tmp/a.chk", want: transport.Address{Scheme: transport.SchemeFile, Path: "/tmp/a.chk"}},
		{uri: "file:/tmp/a.chk,offset=4096", want: transport.Address{Scheme: transport.SchemeFile, Path: "/tmp/a.chk", Offset: 4096}},
		{uri: "file:/tmp/a.chk,offset=0x1000", want: transport.Address{Scheme: transport.SchemeFile, Path: "/tmp/a.chk", Offset: 4096}},
		{uri: "file:/tmp/a.chk,offset=2M", want: transport.Address{Scheme: transport.SchemeFile, Path: "/tmp/a.chk", Offset: 2 << 20}},
		{uri: "file:/tmp/a.chk,offset=4x", err: "file URI has bad offset 4x: Invalid argument", errKind: transport.ErrBadURI},
		{uri: "file:/tmp/a.chk,offset=", err: "file URI has bad offset : Invalid argument", errKind: transport.ErrBadURI},
		{uri: "file:/tmp/a.chk,offset=1.5K", want: transport.Address{Scheme: transport.SchemeFile, Path: "/tmp/a.chk", Offset: 1536}},
		{uri: "file:/tmp/a.chk,offset=20E", err: "file URI has bad offset 20E: Numerical result out of range", errKind: transport.ErrBadURI},
		{uri: "file:", err: "file URI has no path", errKind: transport.ErrBadURI},
		{uri: "unix:/run/mig.sock", want: transport.Address{Scheme: transport.SchemeUnix, Path: "/run/mig.sock"}},
		{uri: "unix:", err: "invalid Unix socket address", errKind: transport.ErrBadURI},
		{uri: "unix:/" + string(make([]byte, 120)), errKind: transport.ErrBadURI},
		{uri: "tcp:127.0.0.1:4444", want: transport.Address{Scheme: transport.SchemeTCP, Host: "127.0.0.1", Port: "4444"}},
		{uri: "tcp::4444", want: transport.Address{Scheme: transport.SchemeTCP, Port: "4444"}},
		{uri: "tcp:[::1]:0", want: transport.Address{Scheme: transport.SchemeTCP, Host: "::1", Port: "0"}},
		{uri: "tcp:localhost:0,ipv4", want: transport.Address{Scheme: transport.SchemeTCP, Host: "localhost", Port: "0", IPv4: ptr(true)}},
		{uri: "tcp:localhost:0,ipv6=off,to=5", want: transport.Address{Scheme: transport.SchemeTCP, Host: "localhost", Port: "0", IPv6: ptr(false)}},
		{uri: "tcp:h:1,bogus", want: transport.Address{Scheme: transport.SchemeTCP, Host: "h", Port: "1"}},
		{uri: "tcp:x", err: "error parsing address 'x'", errKind: transport.ErrBadURI},
		{uri: "tcp:", err: "error parsing address ''", errKind: transport.ErrBadURI},
		{uri: "tcp:127.0.0.1:", err: "error parsing address '127.0.0.1:'", errKind: transport.ErrBadURI},
		{uri: "tcp::", err: "error parsing port in address ':'", errKind: transport.ErrBadURI},
		{uri: "tcp:[::1", err: "error parsing IPv6 address '[::1'", errKind: transport.ErrBadURI},
		{uri: "tcp:[::1]", err: "error parsing IPv6 address '[::1]'", errKind: transport.ErrBadURI},
		{uri: "tcp:[::1]:", err: "error parsing IPv6 address '[::1]:'", errKind: transport.ErrBadURI},
		{uri: "tcp:127.0.0.1:0,ipv4=foo", err: "error parsing 'ipv4' flag '=foo'", errKind: transport.ErrBadURI},
		{uri: "tcp:127.0.0.1:0,ipv4=yes", err: "error parsing 'ipv4' flag '=yes'", errKind: transport.ErrBadURI},
		{uri: "tcp:127.0.0.1:0,ipv4on", err: "error parsing 'ipv4' flag 'on'", errKind: transport.ErrBadURI},
		{uri: "tcp:127.0.0.1:0,to=x", err: "error parsing to= argument", errKind: transport.ErrBadURI},
		{uri: "foo:bar", err: "unknown migration protocol: foo:bar", errKind: transport.ErrUnknownProtocol},
		{uri: "exec", err: "unknown migration protocol: exec", errKind: transport.ErrUnknownProtocol},
		{uri: "defer", err: "unknown migration protocol: defer", errKind: transport.ErrUnknownProtocol},
		{uri: "rdma:127.0.0.1:5", err: "RDMA ERROR: could not create rdma event channel", errKind: transport.ErrUnsupported},
		{uri: "EXEC:true", err: "unknown migration protocol: EXEC:true", errKind: transport.ErrUnknownProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := transport.Parse(tt.uri)
			if tt.errKind != nil {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want error", tt.uri, got)
				}
				if !errors.Is(err, tt.errKind) {
					t.Errorf("error %v does not wrap %v", err, tt.errKind)
				}
				if tt.err != "" && err.Error() != tt.err {
					t.Errorf("error %q, want %q", err, tt.err)
				}
				if verr := transport.Validate(tt.uri); verr == nil || verr.Error() != err.Error() {
					t.Errorf("Validate = %v, want %v", verr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.uri, err)
			}
			tt.want.URI = tt.uri
			if !equalAddr(got, tt.want) {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.uri, got, tt.want)
			}
		})
	}
}

func equalAddr(a, b transport.Address) bool {
	eq := func(x, y *bool) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return eq(a.IPv4, b.IPv4) && eq(a.IPv6, b.IPv6) && a.Scheme == b.Scheme && a.URI == b.URI &&
		a.Command == b.Command && a.FD == b.FD && a.Path == b.Path && a.Offset == b.Offset &&
		a.Host == b.Host && a.Port == b.Port
}

// TestValidateOutgoing: QEMU 7.2's migrate refuses an unknown scheme with an
// InvalidParameterValue text, not the incoming one.
func TestValidateOutgoing(t *testing.T) {
	tests := []struct{ uri, err string }{
		{"foo:bar", "Parameter 'uri' expects a valid migration protocol"},
		{"file-ish", "Parameter 'uri' expects a valid migration protocol"},
		{"tcp:x", "error parsing address 'x'"},
		{"unix:", "invalid Unix socket address"},
		{"rdma:127.0.0.1:5", "RDMA ERROR: could not create CM channel"},
		{"exec:true", ""},
		{"fd:migrate", ""},
	}
	for _, tt := range tests {
		err := transport.ValidateOutgoing(tt.uri)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.err {
			t.Errorf("ValidateOutgoing(%q) = %q, want %q", tt.uri, got, tt.err)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"exec: dd of=a.chk", "fd:migrate", "fd:27", "file:/a,offset=0x10", "file:/a,offset=1K",
		"tcp:[::1]:0", "tcp::0,ipv4=on,ipv6=off", "tcp:h:p,to=3", "unix:/s", "defer", "tcp:[", "tcp::", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		a, err := transport.Parse(uri)
		if verr := transport.Validate(uri); (verr == nil) != (err == nil) {
			t.Fatalf("Validate and Parse disagree on %q: %v / %v", uri, verr, err)
		}
		if oerr := transport.ValidateOutgoing(uri); (oerr == nil) != (err == nil) {
			t.Fatalf("ValidateOutgoing and Parse disagree on %q: %v / %v", uri, oerr, err)
		}
		if err != nil {
			if !errors.Is(err, transport.ErrUnknownProtocol) && !errors.Is(err, transport.ErrBadURI) && !errors.Is(err, transport.ErrUnsupported) {
				t.Fatalf("Parse(%q): error %v wraps no sentinel", uri, err)
			}
			return
		}
		switch a.Scheme {
		case transport.SchemeExec, transport.SchemeFD:
		case transport.SchemeFile, transport.SchemeUnix:
			if a.Path == "" {
				t.Fatalf("Parse(%q): empty path", uri)
			}
		case transport.SchemeTCP:
			if a.Port == "" {
				t.Fatalf("Parse(%q): empty port", uri)
			}
		default:
			t.Fatalf("Parse(%q): scheme %q accepted", uri, a.Scheme)
		}
	})
}

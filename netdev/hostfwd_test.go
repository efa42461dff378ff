package netdev

import (
	"net/netip"
	"testing"
)

// glibc's inet_aton on the forms QEMU's rules take.
func TestInetAton(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // "" for rejected
	}{
		{"127.0.0.1", "127.0.0.1"}, {"127.1", "127.0.0.1"}, {"0x7f.1", "127.0.0.1"},
		{"1.2.3", "1.2.0.3"}, {"1.2", "1.0.0.2"}, {"16909060", "1.2.3.4"}, {"010.0.0.1", "8.0.0.1"},
		{"1.2.256", "1.2.1.0"}, {"1.2.3.256", ""}, {"1.2.3.4.5", ""}, {"", ""}, {"1-", ""},
		{"08.1", ""}, {"a.b", ""}, {"1..2", ""}, {"-1", ""}, {"0b1", ""}, {"1_0", ""}, {"1.2 x", "1.0.0.2"},
	} {
		a, ok := inetAton(c.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != c.want {
			t.Errorf("inetAton(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// slirp_hostfwd's reasons, as QEMU 7.2 gives them (tests/testdata/qmp/hmp-hostfwd.txt holds
// them against the binary).
func TestParseHostFwd(t *testing.T) {
	for _, c := range []struct{ rule, err string }{
		{"tcp::22-:22", ""},
		{"udp:127.1:0x10-10.0.2.9:024", ""},
		{"bad", "Invalid host forwarding rule 'bad' (No : separators)"},
		{"xx::1-:2", "Invalid host forwarding rule 'xx::1-:2' (Bad protocol name)"},
		{"tcp:1", "Invalid host forwarding rule 'tcp:1' (Missing : separator)"},
		{"tcp:1.2.3.4.5:1-:2", "Invalid host forwarding rule 'tcp:1.2.3.4.5:1-:2' (Bad host address)"},
		{"tcp::22", "Invalid host forwarding rule 'tcp::22' (Bad host port separator)"},
		{"tcp::08-:2", "Invalid host forwarding rule 'tcp::08-:2' (Bad host port)"},
		{"tcp::1-10.0.2.1", "Invalid host forwarding rule 'tcp::1-10.0.2.1' (Missing guest address)"},
		{"tcp::-1-:2", "Invalid host forwarding rule 'tcp::-1-:2' (Bad guest address)"},
		{"tcp::1-:0", "Invalid host forwarding rule 'tcp::1-:0' (Bad guest port)"},
	} {
		_, err := parseHostFwd(c.rule)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.err {
			t.Errorf("parseHostFwd(%q): %q, want %q", c.rule, got, c.err)
		}
	}
	r, _ := parseHostFwd("udp:127.1:0x10-10.0.2.9:024")
	if want := (hostFwdRule{udp: true, host: netip.MustParseAddr("127.0.0.1"), hostPort: 16,
		guest: netip.MustParseAddr("10.0.2.9"), gPort: 20}); r != want {
		t.Errorf("parsed %+v, want %+v", r, want)
	}
}

func FuzzParseHostFwd(f *testing.F) {
	for _, s := range []string{"tcp::22-:22", "udp:127.1:0x10-10.0.2.9:024", "tcp::-1-:2", ":::::", "tcp:0x:0x-0x:0x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rule string) {
		r, err := parseHostFwd(rule)
		if err != nil {
			return
		}
		if r.hostPort < 0 || r.hostPort > 65535 || r.gPort < 1 || r.gPort > 65535 || !r.host.Is4() {
			t.Fatalf("parseHostFwd(%q) = %+v", rule, r)
		}
	})
}

package chardev_test

import (
	"errors"
	"strings"
	"testing"

	"tlcvm/chardev"
)

// kv parses "k=v,k=v" (no escapes) into a lookup function, for tables.
func kv(s string) func(string) (string, bool) {
	m := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSpecFromKVErrors(t *testing.T) {
	// Texts as QEMU 7.2 prints them after "-chardev ...: ".
	cases := []struct {
		id, opts, want string
		sentinel       error
	}{
		{"", "backend=null", "chardev: no id specified", chardev.ErrInvalid},
		{"1x", "backend=null", "Parameter 'id' expects an identifier", chardev.ErrInvalid},
		{"x", "", `chardev: "x" missing backend`, chardev.ErrInvalid},
		{"x", "backend=bogus", "'bogus' is not a valid char driver name", chardev.ErrInvalid},
		{"x", "backend=socket,host=127.0.0.1", "chardev: socket: no port given", chardev.ErrInvalid},
		{"x", "backend=socket,path=/a,host=h", "None or one of 'path', 'fd' or 'host' option required.", chardev.ErrInvalid},
		{"x", "backend=socket,path=/a,server=bogus", "Parameter 'server' expects 'on' or 'off'", chardev.ErrInvalid},
		{"x", "backend=socket,path=/a,server=on,reconnect=abc", "Parameter 'reconnect' expects a number", chardev.ErrInvalid},
		{"x", "backend=socket,path=/a,delay=off,nodelay=on", "'delay' and 'nodelay' are mutually exclusive", chardev.ErrInvalid},
		{"x", "backend=file", "chardev: file: no filename given", chardev.ErrInvalid},
		{"x", "backend=file,path=/a,append=maybe", "Parameter 'append' expects 'on' or 'off'", chardev.ErrInvalid},
		{"x", "backend=pipe", "chardev: pipe: no device path given", chardev.ErrInvalid},
		{"x", "backend=serial", "chardev: serial/tty: no device path given", chardev.ErrInvalid},
		{"x", "backend=parallel", "chardev: parallel: no device path given", chardev.ErrInvalid},
		{"x", "backend=udp", "chardev: udp: remote port not specified", chardev.ErrInvalid},
		{"x", "backend=ringbuf,size=abc", "Parameter 'size' expects a non-negative number below 2^64", chardev.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.id+":"+tc.opts, func(t *testing.T) {
			_, err := chardev.SpecFromKV(kv(tc.opts), tc.id)
			if err == nil || err.Error() != tc.want || !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSpecFromKVDefaults(t *testing.T) {
	s, err := chardev.SpecFromKV(kv("backend=socket,path=/s,server=on"), "m")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Server || !s.Wait || !s.WaitSet || s.FD != -1 || s.Path != "/s" {
		t.Fatalf("server defaults: %+v", s)
	}
	s, _ = chardev.SpecFromKV(kv("backend=socket,fd=29,server=on,wait=off"), "charmonitor")
	if s.FD != 29 || s.Wait || !s.Server {
		t.Fatalf("libvirt fd spec: %+v", s)
	}
	s, _ = chardev.SpecFromKV(kv("backend=stdio"), "st")
	if !s.Signal {
		t.Fatal("stdio: signal must default to on")
	}
	s, _ = chardev.SpecFromKV(kv("backend=tty,path=/dev/null"), "t")
	if s.Backend != chardev.BackendSerial || len(s.Warnings) != 1 ||
		s.Warnings[0] != "The alias 'tty' is deprecated, use 'serial' instead" {
		t.Fatalf("tty alias: %+v", s)
	}
	s, _ = chardev.SpecFromKV(kv("backend=ringbuf,size=1k"), "r")
	if s.Size != 1024 {
		t.Fatalf("ringbuf size = %d", s.Size)
	}
	s, _ = chardev.SpecFromKV(kv("backend=socket,host=h,port=1,server=yes,wait=n,nodelay=true"), "t")
	if !s.Server || s.Wait || !s.NoDelay {
		t.Fatalf("boolean spellings: %+v", s)
	}
}

func TestParseLegacy(t *testing.T) {
	cases := []struct {
		in   string
		want chardev.Spec // only the fields checked below
	}{
		{"stdio", chardev.Spec{Backend: "stdio", Signal: true}},
		{"mon:stdio", chardev.Spec{Backend: "stdio", Mux: true, Signal: false}},
		{"mon:pty", chardev.Spec{Backend: "pty", Mux: true, Signal: true}},
		{"pty", chardev.Spec{Backend: "pty", Signal: true}},
		{"null", chardev.Spec{Backend: "null", Signal: true}},
		{"vc:80Cx24C", chardev.Spec{Backend: "vc", Signal: true}},
		{"none", chardev.Spec{Backend: chardev.BackendNone}},
		{"chardev:charserial0", chardev.Spec{Backend: chardev.BackendRef, Ref: "charserial0"}},
		{"file:/tmp/a,append=on", chardev.Spec{Backend: "file", Path: "/tmp/a,append=on", Signal: true}},
		{"pipe:/tmp/p", chardev.Spec{Backend: "pipe", Path: "/tmp/p", Signal: true}},
		{"/dev/ttyS0", chardev.Spec{Backend: "serial", Path: "/dev/ttyS0", Signal: true}},
		{"unix:/tmp/s,server,nowait", chardev.Spec{Backend: "socket", Path: "/tmp/s", Server: true, Wait: false, Signal: true}},
		{"unix:/tmp/a,,b,server=on,wait=off", chardev.Spec{Backend: "socket", Path: "/tmp/a,b", Server: true, Signal: true}},
		{"unix:/tmp/s", chardev.Spec{Backend: "socket", Path: "/tmp/s", Wait: true, Signal: true}},
		{"tcp:127.0.0.1:4444,server=on,wait=off", chardev.Spec{Backend: "socket", Host: "127.0.0.1", Port: "4444", Server: true, Signal: true}},
		{"tcp::4444,server,nowait", chardev.Spec{Backend: "socket", Port: "4444", Server: true, Signal: true}},
		{"telnet:localhost:23,server,nowait", chardev.Spec{Backend: "socket", Host: "localhost", Port: "23", Server: true, Telnet: true, Signal: true}},
		{"udp:127.0.0.1:5555@:6666", chardev.Spec{Backend: "udp", Host: "127.0.0.1", Port: "5555", LocalPort: "6666", Signal: true}},
		{"udp::5555", chardev.Spec{Backend: "udp", Host: "localhost", Port: "5555", LocalPort: "0", Signal: true}},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			s, err := chardev.ParseLegacy(tc.in, "serial0")
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			if s.Backend != w.Backend || s.Path != w.Path || s.Host != w.Host || s.Port != w.Port ||
				s.Server != w.Server || s.Wait != w.Wait || s.Telnet != w.Telnet || s.Mux != w.Mux ||
				s.Signal != w.Signal || s.Ref != w.Ref || s.LocalPort != w.LocalPort {
				t.Fatalf("got %+v\nwant %+v", s, w)
			}
		})
	}
}

func TestParseLegacyErrors(t *testing.T) {
	// Messages QEMU 7.2 prints for "-serial X" before its own
	// "could not connect serial device to character backend 'X'"; "" means
	// QEMU prints nothing of its own (Silent).
	cases := []struct{ in, want string }{
		{"bogus:", "'bogus:' is not a valid char driver"},
		{"bogus", "'bogus' is not a valid char driver"},
		{"null:", "'null:' is not a valid char driver"},
		{"stdio,signal=off", "'stdio,signal=off' is not a valid char driver"},
		{"mon:bogus", "'bogus' is not a valid char driver"},
		{"mon:", "'' is not a valid char driver"},
		{"tcp:", ""},
		{"tcp:127.0.0.1", ""},
		{"tcp:127.0.0.1:", ""},
		{"udp:", ""},
		{"vc:bad", ""},
		{"tcp:127.0.0.1:4480,server,nowait,bogus", "Invalid parameter 'bogus'"},
		{"unix:/tmp/x.sock,server,nowait,bogus=1", "Invalid parameter 'bogus'"},
		{"unix:/tmp/x.sock,server=maybe", "Parameter 'server' expects 'on' or 'off'"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			_, err := chardev.ParseLegacy(tc.in, "serial0")
			if err == nil || !errors.Is(err, chardev.ErrInvalid) {
				t.Fatalf("err = %v", err)
			}
			if tc.want == "" {
				if !chardev.Silent(err) {
					t.Fatalf("want a silent error, got %q", err)
				}
				return
			}
			if chardev.Silent(err) || err.Error() != tc.want {
				t.Fatalf("err = %q, want %q", err, tc.want)
			}
		})
	}
	if _, err := chardev.ParseLegacyNoMon("mon:stdio", "parallel0"); err == nil ||
		err.Error() != "mon: isn't supported in this context" {
		t.Fatalf("mon: in -parallel: %v", err)
	}
}

func TestHelpText(t *testing.T) {
	h := chardev.HelpText()
	if !strings.HasPrefix(h, "Available chardev backend types: \n  stdio\n  ringbuf\n") ||
		!strings.HasSuffix(h, "  pty\n  testdev\n") {
		t.Fatalf("help:\n%s", h)
	}
}

func FuzzParseLegacy(f *testing.F) {
	for _, s := range []string{"stdio", "mon:stdio", "tcp:127.0.0.1:4444,server,nowait",
		"unix:/tmp/a,,b,server=on", "udp:1.2.3.4:5@:6", "vc:80x24", "file:/x", "tcp::1,to=9",
		"telnet:h:p,nodelay", "chardev:x", "/dev/ttyS0", "tcp:[::1]:4481"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := chardev.ParseLegacy(s, "serial0")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
			return
		}
		if spec.Backend == "" {
			t.Fatalf("%q: no backend", s)
		}
	})
}

func FuzzSpecFromKV(f *testing.F) {
	f.Add("socket", "/p", "h", "1", "on", "off", "3")
	f.Add("ringbuf", "", "", "", "yes", "1k", "")
	f.Fuzz(func(t *testing.T, backend, path, host, port, server, size, fd string) {
		m := map[string]string{"backend": backend, "path": path, "host": host, "port": port,
			"server": server, "size": size, "fd": fd}
		for k, v := range m {
			if v == "" {
				delete(m, k)
			}
		}
		_, err := chardev.SpecFromKV(func(k string) (string, bool) { v, ok := m[k]; return v, ok }, "x")
		if err != nil && err.Error() == "" {
			t.Fatal("empty error text")
		}
	})
}

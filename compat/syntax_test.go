package compat_test

import (
	"errors"
	"strings"
	"testing"

	"tlcvm/compat"
	"tlcvm/compat/qerror"
)

func TestParseOpts(t *testing.T) {
	for _, tc := range []struct {
		in, implied, want, id string
	}{
		{"512M", "size", "size=512M", ""},
		{"pc,accel=tcg", "type", "type=pc,accel=tcg", ""},
		{"4", "cpus", "cpus=4", ""},
		{"foo,debug-threads=on", "guest", "guest=foo,debug-threads=on", ""},
		{"user,id=n0", "type", "type=user", "n0"},
		{"file=a,,b,if=none", "", "file=a,,b,if=none", ""},
		{"socket,id=c,server,nowait", "backend", "backend=socket,server=on,wait=off", "c"},
		{"a,,b,x=1", "name", "name=a,,b,x=1", ""},
		{"", "size", "", ""},
		{"k=", "", "k=", ""},
		{"help", "", "help=on", ""},
	} {
		o, err := compat.ParseOpts(tc.in, tc.implied)
		if err != nil {
			t.Errorf("ParseOpts(%q): %v", tc.in, err)
			continue
		}
		want := tc.want
		if tc.id != "" {
			if want != "" {
				want += ","
			}
			want += "id=" + tc.id
		}
		if got := o.String(); got != want || o.ID != tc.id {
			t.Errorf("ParseOpts(%q, %q) = %q id %q; want %q", tc.in, tc.implied, got, o.ID, want)
		}
	}
	o, _ := compat.ParseOpts("a=1,b=on,c=0x10,d=2G,a=2", "")
	if v, _ := o.Get("a"); v != "2" {
		t.Errorf("last value wins: %q", v)
	}
	if b, err := o.Bool("b", false); !b || err != nil {
		t.Errorf("Bool: %v %v", b, err)
	}
	if n, err := o.Number("c", 0); n != 16 || err != nil {
		t.Errorf("Number: %v %v", n, err)
	}
	if n, err := o.Size("d", 0); n != 2<<30 || err != nil {
		t.Errorf("Size: %v %v", n, err)
	}
	for _, tc := range []struct{ key, want string }{
		{"a", "Parameter 'a' expects 'on' or 'off'"},
	} {
		if _, err := o.Bool(tc.key, false); err == nil || err.Error() != tc.want {
			t.Errorf("Bool(%s) error %v", tc.key, err)
		}
	}
	for _, v := range []string{"on", "yes", "true", "y", "off", "no", "false", "n"} {
		o, _ := compat.ParseOpts("x="+v, "")
		if _, err := o.Bool("x", false); err != nil {
			t.Errorf("bool %q: %v", v, err)
		}
	}
	if _, err := compat.ParseOpts("id=1x", ""); err == nil || !strings.Contains(err.Error(), "an identifier") {
		t.Errorf("bad id: %v", err)
	}
}

func TestKeyval(t *testing.T) {
	k, err := compat.ParseKeyval("pc,accel=tcg,cache.direct=on,x=a,,b", "type")
	if err != nil {
		t.Fatal(err)
	}
	want := []compat.Opt{{Name: "type", Value: "pc"}, {Name: "accel", Value: "tcg"}, {Name: "cache.direct", Value: "on"}, {Name: "x", Value: "a,b"}}
	if len(k.Pairs) != len(want) {
		t.Fatalf("%+v", k.Pairs)
	}
	for i := range want {
		if k.Pairs[i] != want[i] {
			t.Errorf("pair %d: %+v", i, k.Pairs[i])
		}
	}
	for _, tc := range []struct{ in, msg string }{
		{",", "Invalid parameter ''"},
		{"=x", "Invalid parameter ''"},
		{"a", "Expected '=' after parameter 'a'"},
		{"a=1,a.b=2", "Parameters 'a.*' used inconsistently"},
		{"1a=1", "Invalid parameter '1a'"},
	} {
		_, err := compat.ParseKeyval(tc.in, "")
		if err == nil || err.Error() != tc.msg {
			t.Errorf("ParseKeyval(%q) = %v; want %q", tc.in, err, tc.msg)
		}
	}
	if k, _ := compat.ParseKeyval("help", "type"); !k.Help {
		t.Error("help not detected")
	}
}

func TestJSON(t *testing.T) {
	j, err := compat.ParseJSONObject(`{"driver":"virtio-blk-pci",'bus':'pci.0',"n":1,"b":true,"o":{"x":[1,null]}}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(j.Keys(), ","); got != "driver,bus,n,b,o" {
		t.Errorf("keys %q", got)
	}
	if j.Raw != `{"driver":"virtio-blk-pci","bus":"pci.0","n":1,"b":true,"o":{"x":[1,null]}}` {
		t.Errorf("raw %s", j.Raw)
	}
	if s, _ := j.String("bus"); s != "pci.0" || j.Get("o").Get("x.0").Int() != 1 {
		t.Errorf("get")
	}
	for _, tc := range []struct{ in, msg string }{
		{`{`, "JSON parse error, premature EOI"},
		{`{"a":}`, "JSON parse error, expecting value"},
		{`{a:1}`, "JSON parse error, invalid keyword 'a'"},
		{`{"a":1}{}`, "Expecting at most one JSON value"},
		{`{"a":1,"a":2}`, "JSON parse error, duplicate key"},
		{`{"a":[1 2]}`, "JSON parse error, expected separator in list"},
		{`{"a":$}`, "JSON parse error, stray '$'"},
	} {
		_, err := compat.ParseJSONObject(tc.in)
		if err == nil || err.Error() != tc.msg || !errors.Is(err, compat.ErrJSON) {
			t.Errorf("%s: %v; want %q", tc.in, err, tc.msg)
		}
	}
}

func TestLegacyChardev(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"stdio", "backend=stdio"},
		{"mon:stdio", "mux=on,signal=off,backend=stdio"},
		{"pty", "backend=pty"},
		{"null", "backend=null"},
		{"vc", "backend=vc"},
		{"vc:80Cx24C", "backend=vc,cols=80,rows=24"},
		{"vc:800x600", "backend=vc,width=800,height=600"},
		{"file:/tmp/a", "backend=file,path=/tmp/a"},
		{"unix:/tmp/s,server=on,wait=off", "backend=socket,path=/tmp/s,server=on,wait=off"},
		{"tcp:localhost:4444,server,nowait", "backend=socket,host=localhost,port=4444,server=on,wait=off"},
		{"tcp::4444", "backend=socket,host=,port=4444"},
		{"telnet::23,server=on", "backend=socket,host=,port=23,server=on,telnet=on"},
		{"udp:1.2.3.4:5@:6", "backend=udp,host=1.2.3.4,port=5,localaddr=,localport=6"},
		{"/dev/ttyS0", "backend=serial,path=/dev/ttyS0"},
		{"/dev/parport0", "backend=parallel,path=/dev/parport0"},
	} {
		o, err := compat.ChardevFromLegacy("c0", tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got := o.String(); got != tc.want+",id=c0" {
			t.Errorf("%s: %s", tc.in, got)
		}
	}
	for _, bad := range []string{"bogus", "tcp:localhost", "vc:80x"} {
		if _, err := compat.ChardevFromLegacy("c0", bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestSMPDefaults(t *testing.T) {
	for _, tc := range []struct {
		smp  string
		want compat.Topology
	}{
		{"4", compat.Topology{CPUs: 4, Sockets: 1, Dies: 1, Clusters: 1, Cores: 4, Threads: 1, MaxCPUs: 4}},
		{"4,sockets=2", compat.Topology{CPUs: 4, Sockets: 2, Dies: 1, Clusters: 1, Cores: 2, Threads: 1, MaxCPUs: 4}},
		{"4,cores=2", compat.Topology{CPUs: 4, Sockets: 2, Dies: 1, Clusters: 1, Cores: 2, Threads: 1, MaxCPUs: 4}},
		{"2,maxcpus=8", compat.Topology{CPUs: 2, Sockets: 1, Dies: 1, Clusters: 1, Cores: 8, Threads: 1, MaxCPUs: 8}},
		{"sockets=2,cores=2,threads=2", compat.Topology{CPUs: 8, Sockets: 2, Dies: 1, Clusters: 1, Cores: 2, Threads: 2, MaxCPUs: 8}},
		{"8,sockets=2,dies=2", compat.Topology{CPUs: 8, Sockets: 2, Dies: 2, Clusters: 1, Cores: 2, Threads: 1, MaxCPUs: 8}},
	} {
		c, err := compat.Parse([]string{"q", "-smp", tc.smp})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(compat.PCLimits("pc-i440fx-7.2")); err != nil {
			t.Errorf("%s: %v", tc.smp, err)
			continue
		}
		if c.Topology != tc.want {
			t.Errorf("-smp %s = %+v; want %+v", tc.smp, c.Topology, tc.want)
		}
	}
}

func TestErrorSentinels(t *testing.T) {
	for _, tc := range []struct {
		args string
		want error
	}{
		{"-zz", compat.ErrInvalidOption},
		{"-m", compat.ErrMissingArgument},
		{"-g 1", compat.ErrWrongTarget},
		{"-m 5X", compat.ErrBadValue},
		{"-m 1,foo=2", compat.ErrInvalidParameter},
		{"-chardev null,id=a -chardev null,id=a", compat.ErrDuplicateID},
		{"-device {", compat.ErrJSON},
		{"-append x", compat.ErrInvalid},
	} {
		_, err := compat.Parse(append([]string{"q"}, strings.Fields(tc.args)...))
		var e *qerror.Error
		if !errors.As(err, &e) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v (want %v)", tc.args, err, tc.want)
		}
	}
}

func FuzzParseOpts(f *testing.F) {
	for _, s := range []string{"512M", "a=b,,c,d", "socket,id=c,server,nowait", "noflag,help", ",,,", "=", "id=x,id=y"} {
		f.Add(s, "size")
	}
	f.Fuzz(func(t *testing.T, s, implied string) {
		if strings.ContainsAny(implied, ",=") {
			return // option names never contain the separators
		}
		o, err := compat.ParseOpts(s, implied)
		if err != nil {
			return
		}
		// Rendering and re-parsing without the implied key is stable.
		o2, err := compat.ParseOpts(o.String(), "")
		if err != nil {
			if strings.Contains(err.Error(), "identifier") {
				return
			}
			t.Fatalf("reparse %q: %v", o.String(), err)
		}
		if o2.String() != o.String() {
			t.Fatalf("%q -> %q -> %q", s, o.String(), o2.String())
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"-m 512M -hda x -localtime -net nic -net user", "-device {\"driver\":\"x\"}", "-smp 2,sockets=2 -machine pc,accel=kvm:tcg", "-serial mon:stdio -nographic", "-object secret,id=a -global a.b=c",
		"-runas 0x10:010 -chroot /x -sandbox on,spawn=deny -sandbox off,obsolete=allow",
		"-sandbox on,help", "-global help -rtc help", "-smp 2,help -boot ?", "-chardev help -vga help"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		argv := append([]string{"qemu"}, strings.Split(s, " ")...)
		c, err := compat.Parse(argv)
		if err != nil {
			var e *qerror.Error
			// No line break of its own at the end (report adds it), unless the input's
			// own text ends the message ("-qmp \n": "... parse error: \n").
			if !errors.As(err, &e) || !strings.HasPrefix(e.Msg, "qemu: ") || strings.HasSuffix(e.Msg, "\n") && !strings.Contains(s, "\n") {
				t.Fatalf("bad error %#v", err)
			}
			return
		}
		if c.Action == compat.ActionRun {
			lim := compat.PCLimits("pc")
			if err := c.ApplyDefaults(lim); err == nil {
				_ = c.Check(lim)
			}
		}
	})
}

package cmds_test

import (
	"strings"
	"testing"

	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

func kvs(s string) []cmds.KV {
	var out []cmds.KV
	for _, p := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(p, "=")
		out = append(out, cmds.KV{Key: k, Value: v})
	}
	return out
}

// TestNetdevFromOpts: -netdev's key=value form read as QEMU 7.2's opts visitor (texts from
// the binary, tests/testdata/cmdline.txt).
func TestNetdevFromOpts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // the decoded options, or the error
	}{
		{"type=user,id=u", `user u {}`},
		{"type=user,id=u,ipv4=off,restrict=yes,net=10.0.5.0/24", `user u {restrict:true ipv4:false net:10.0.5.0/24}`},
		{"type=user,id=u,hostfwd=tcp::2222-:22,hostfwd=tcp::2223-:23", `user u {hostfwd:[tcp::2222-:22 tcp::2223-:23]}`},
		{"type=user,id=u,ipv4=maybe", `Parameter 'ipv4' expects 'on' or 'off'`},
		{"type=user,id=u,foo=1", `Invalid parameter 'foo'`},
		{"type=user,id=u,hubid=1", `Invalid parameter 'hubid'`},
		{"type=hubport,id=h,hubid=x", `Parameter 'hubid' expects an int64 value`},
		{"type=hubport,id=h,hubid=3,netdev=u", `hubport h {hubid:3 netdev:u}`},
		{"type=tap,id=t,fd=3,vhost=off", `tap t {fd:3 vhost:false}`},
		{"type=tap,id=t,queues=x", `Parameter 'queues' expects a uint64 value`},
		{"type=bogus,id=x", `Parameter 'type' does not accept value 'bogus'`},
		{"id=x", `Parameter 'type' is missing`},
		{"type=user", `Parameter 'id' is missing`},
		{"type=stream,id=s,addr.type=inet,addr.host=127.0.0.1,addr.port=1", `stream s {addr:{type:inet host:127.0.0.1 port:1}}`},
		{"type=stream,id=s,addr.type=unix,addr.path=/x,server=on", `stream s {addr:{type:unix path:/x} server:true}`},
		{"type=stream,id=s,addr.type=unix,addr.host=x", `Invalid parameter 'addr.host'`},
	} {
		a, err := cmds.NetdevFromOpts(kvs(tc.in))
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = string(a.Type) + " " + a.ID + " " + describe(t, a)
		}
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// describe renders the variant's members that are set, in field order, compactly.
func describe(t *testing.T, a *cmds.Netdev) string {
	t.Helper()
	v, err := qmp.ToValue(a)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, m := range v.Members() {
		if m.Key == "id" || m.Key == "type" {
			continue
		}
		parts = append(parts, m.Key+":"+flat(m.Value))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func flat(v *qmp.Value) string {
	switch v.Kind() {
	case qmp.KindObject:
		if len(v.Members()) == 1 && v.Members()[0].Key == "str" {
			return flat(v.Members()[0].Value)
		}
		var parts []string
		for _, m := range v.Members() {
			parts = append(parts, m.Key+":"+flat(m.Value))
		}
		return "{" + strings.Join(parts, " ") + "}"
	case qmp.KindArray:
		var parts []string
		for _, e := range v.Elems() {
			parts = append(parts, flat(e))
		}
		return "[" + strings.Join(parts, " ") + "]"
	case qmp.KindString:
		s, _ := v.AsString()
		return s
	}
	b, _ := v.MarshalJSON()
	return string(b)
}

// FuzzNetdevFromOpts: any key=value list either decodes or fails with an error, never
// panics, and what decodes has the id and type it was given.
func FuzzNetdevFromOpts(f *testing.F) {
	for _, s := range []string{"type=user,id=u,ipv4=off", "type=stream,id=s,addr.type=inet,addr.host=h,addr.port=1",
		"type=tap,id=t,fds=a:b,vhost=on", "type=hubport,id=h,hubid=-1", "type=user,id=u,hostfwd=x,hostfwd=y",
		"type=dgram,id=d,local.type=unix,local.path=/x,remote.type=fd,remote.str=3", "type=user,id=u,addr.type=inet"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := kvs(s)
		a, err := cmds.NetdevFromOpts(in)
		if err != nil {
			return
		}
		// A repeated key takes its last value, as QEMU's qemu_opt_get does.
		last := ""
		for _, kv := range in {
			if kv.Key == "type" {
				last = kv.Value
			}
		}
		if string(a.Type) != last {
			t.Fatalf("type %q (the last given) decoded as %q", last, a.Type)
		}
	})
}

// TestObjectFromOpts: -object (opts visitor) and HMP object_add (keyval visitor) texts,
// from the binary.
func TestObjectFromOpts(t *testing.T) {
	for _, tc := range []struct {
		in     string
		keyval bool
		want   string
	}{
		{"qom-type=memory-backend-ram,id=m,size=1G,merge=off", false, ""},
		{"qom-type=memory-backend-ram,id=m,size=x", false, "Parameter 'size' expects a size value"},
		{"qom-type=memory-backend-ram,id=m,size=x", true, "Parameter 'size' expects size"},
		{"qom-type=memory-backend-ram,id=m,size=1G,merge=maybe", false, "Parameter 'merge' expects 'on' or 'off'"},
		{"qom-type=iothread,id=i,poll-max-ns=x", false, "Parameter 'poll-max-ns' expects an int64 value"},
		{"qom-type=iothread,id=i,poll-max-ns=x", true, "Parameter 'poll-max-ns' expects integer"},
		{"qom-type=secret,id=s,data=a,bogus=1", false, "Invalid parameter 'bogus'"},
		{"qom-type=secret,id=s,data=a,bogus=1", true, "Parameter 'bogus' is unexpected"},
		{"qom-type=throttle-group,id=t,limits.iops-total=x", false, "Invalid parameter 'limits.iops-total'"},
		{"qom-type=throttle-group,id=t,limits.iops-total=x", true, "Parameter 'limits.iops-total' expects integer"},
		{"qom-type=throttle-group,id=t,limits.iops-total=5", true, ""},
		{"qom-type=nope,id=x", false, "Parameter 'qom-type' does not accept value 'nope'"},
	} {
		a, err := cmds.ObjectFromOpts(kvs(tc.in), tc.keyval)
		got := ""
		if err != nil {
			got = err.Error()
		} else if a.ID == "" {
			got = "no id"
		}
		if got != tc.want {
			t.Errorf("%s (keyval %v): got %q, want %q", tc.in, tc.keyval, got, tc.want)
		}
	}
}

// FuzzObjectFromOpts: any key=value list decodes or fails cleanly, in both visitors.
func FuzzObjectFromOpts(f *testing.F) {
	for _, s := range []string{"qom-type=secret,id=s,data=a", "qom-type=memory-backend-file,id=m,size=1G,mem-path=/x,share=on",
		"qom-type=throttle-group,id=t,limits.bps-total=1", "qom-type=authz-list,id=a,rules.0.match=x", "qom-type=iothread,id=i,poll-grow=-1"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, keyval bool) {
		a, err := cmds.ObjectFromOpts(kvs(s), keyval)
		if err == nil && a == nil {
			t.Fatal("no object and no error")
		}
	})
}

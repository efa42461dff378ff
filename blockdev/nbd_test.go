package blockdev_test

import (
	"testing"

	"tlcvm/blockdev"
)

func TestParseNBDFilename(t *testing.T) {
	for _, c := range []struct {
		in                    string
		ok, bad               bool
		typ, host, port, path string
		export                string
	}{
		{in: "/var/lib/img.qcow2"},
		{in: "nbd://10.0.0.2:49153/drive-virtio-disk0", ok: true, typ: "inet", host: "10.0.0.2", port: "49153", export: "drive-virtio-disk0"},
		{in: "nbd://example", ok: true, typ: "inet", host: "example", port: "10809"},
		{in: "nbd://[::1]:10810/e", ok: true, typ: "inet", host: "::1", port: "10810", export: "e"},
		{in: "nbd+unix:///exp?socket=/run/s.sock", ok: true, typ: "unix", path: "/run/s.sock", export: "exp"},
		{in: "nbd+unix:///exp", ok: true, bad: true},
		{in: "nbd:10.0.0.2:49153:exportname=drive-virtio-disk0", ok: true, typ: "inet", host: "10.0.0.2", port: "49153", export: "drive-virtio-disk0"},
		{in: "nbd:unix:/tmp/x.sock:exportname=a", ok: true, typ: "unix", path: "/tmp/x.sock", export: "a"},
		{in: "nbd:unix:/tmp/x.sock", ok: true, typ: "unix", path: "/tmp/x.sock"},
		{in: "nbd:hostonly", ok: true, bad: true},
	} {
		o, ok, err := blockdev.ParseNBDFilename(c.in)
		if ok != c.ok || (err != nil) != c.bad {
			t.Errorf("%s: ok=%v err=%v", c.in, ok, err)
			continue
		}
		if !ok || err != nil {
			continue
		}
		s := o.Server
		if s.Type != c.typ || s.Host != c.host || s.Port != c.port || s.Path != c.path || o.Export != c.export {
			t.Errorf("%s: got %+v export %q", c.in, s, o.Export)
		}
	}
}

package cmds

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
	"tlcvm/nbd"
	"tlcvm/qmp"
)

// fakeNBD stands in for the NBD server (*nbd.Server): it records each call, fails the call
// named in failOn with err, keeps the exports added, and removes one as a server without
// clients does: at once, calling its Deleted.
type fakeNBD struct {
	recorder
	failOn  string // the method that returns err; "" for every method
	exports []nbd.ExportConfig
}

func (f *fakeNBD) call(method, format string, a ...any) error {
	err := f.rec(method+format, a...)
	if f.failOn != "" && f.failOn != method {
		return nil
	}
	return err
}

func (f *fakeNBD) CheckStart() error { return f.call("CheckStart", "") }

func (f *fakeNBD) Start(l net.Listener, maxConns uint32) error {
	err := f.call("Start", " %s max=%d", l.Addr().Network(), maxConns)
	if err == nil {
		l.Close() // the fake serves nothing
	}
	return err
}

func (f *fakeNBD) Stop() error { return f.call("Stop", "") }
func (f *fakeNBD) HasID(id string) bool {
	for _, e := range f.exports {
		if e.ID == id {
			return true
		}
	}
	return false
}

func (f *fakeNBD) CheckAdd(name, description string) error {
	return f.call("CheckAdd", " %q %q", name, description)
}

func (f *fakeNBD) Add(cfg nbd.ExportConfig) error {
	err := f.call("Add", " id=%s node=%s name=%s desc=%q size=%d writable=%v bitmaps=%d depth=%v", cfg.ID, cfg.Node,
		cfg.Name, cfg.Description, cfg.Size, cfg.Writable, len(cfg.Bitmaps), cfg.AllocationDepth)
	if err == nil {
		f.exports = append(f.exports, cfg)
	}
	return err
}

func (f *fakeNBD) Remove(id string, hard bool) error {
	if err := f.call("Remove", " %q hard=%v", id, hard); err != nil {
		return err
	}
	for i, e := range f.exports {
		if e.ID == id {
			f.exports = append(f.exports[:i], f.exports[i+1:]...)
			e.Deleted()
			return nil
		}
	}
	return qerror.Errorf(nbd.ErrNotFound, "Export '%s' is not found", id)
}

func (f *fakeNBD) Exports() []nbd.ExportInfo {
	var out []nbd.ExportInfo
	for _, e := range f.exports {
		out = append(out, nbd.ExportInfo{ID: e.ID, Node: e.Node})
	}
	return out
}

// exportGraph is a block layer with one 1 MiB image node, "disk", and an enabled bitmap
// "b" on it.
func exportGraph(t *testing.T) *blockdev.Graph {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	g := blockdev.New(blockdev.Config{})
	t.Cleanup(g.Close)
	if _, err := g.Add(&blockdev.Options{Driver: blockdev.DriverFile, NodeName: "disk", Filename: path}); err != nil {
		t.Fatal(err)
	}
	if err := g.RunStep(blockdev.BitmapAddStep(blockdev.BitmapAddOptions{Node: "disk", Name: "b"})); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestNBDCommands: the NBD server and block export commands in QEMU 7.2's order of checks
// and with its texts (the handler's own, the NBD server's and the block layer's, faked),
// BLOCK_EXPORT_DELETED before block-export-del's reply when no client holds the export, and
// an export's node released when the server refuses the export.
func TestNBDCommands(t *testing.T) {
	notRunning := qerror.New(nbd.ErrNotRunning, "NBD server not running")
	running := qerror.New(nbd.ErrRunning, "NBD server already running")
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	type step struct {
		cmd    string
		err    error  // what the fake server's failOn method returns
		failOn string // "": every method fails with err
		calls  string
		want   string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"start", []step{
			{cmd: `{"execute":"nbd-server-start","arguments":{"addr":{"type":"unix","data":{"path":"` + sock + `"}},"max-connections":4}}`,
				calls: "CheckStart\nStart unix max=4", want: `{}`},
			{cmd: `{"execute":"nbd-server-start","arguments":{"addr":{"type":"unix","data":{"path":"` + sock + `"}}}}`, err: running,
				failOn: "CheckStart", calls: "CheckStart", want: `GenericError: NBD server already running`},
			{cmd: `{"execute":"nbd-server-start","arguments":{"addr":{"type":"fd","data":{"str":"nope"}}}}`,
				calls: "CheckStart", want: `GenericError: File descriptor named 'nope' has not been found`},
			{cmd: `{"execute":"nbd-server-start","arguments":{"addr":{"type":"unix","data":{"path":"` + sock + `"}},"tls-creds":"t"}}`,
				calls: "CheckStart", want: `GenericError: No TLS credentials with id 't'`},
			{cmd: `{"execute":"nbd-server-start","arguments":{"addr":{"type":"bogus","data":{}}}}`,
				want: `GenericError: Parameter 'type' does not accept value 'bogus'`},
			{cmd: `{"execute":"nbd-server-start"}`, want: `GenericError: Parameter 'addr' is missing`},
			{cmd: `{"execute":"nbd-server-stop"}`, calls: "Stop", want: `{}`},
			{cmd: `{"execute":"nbd-server-stop"}`, err: notRunning, calls: "Stop", want: `GenericError: NBD server not running`},
		}},
		{"export", []step{
			{cmd: `{"execute":"block-export-add","arguments":{"type":"nbd","id":"1x","node-name":"disk"}}`,
				want: `GenericError: Invalid block export id`},
			{cmd: `{"execute":"block-export-add","arguments":{"type":"fuse","id":"f","node-name":"disk","mountpoint":"/m"}}`,
				want: `GenericError: tlcvm: block export type 'fuse' is not supported`},
			{cmd: `{"execute":"block-export-add","arguments":{"type":"nbd","id":"e","node-name":"nonode"}}`,
				want: `GenericError: Cannot find device='' nor node-name='nonode'`},
			{cmd: `{"execute":"block-export-add","arguments":{"type":"nbd","id":"e","node-name":"disk"}}`, err: notRunning,
				failOn: "CheckAdd", calls: `CheckAdd "disk" ""`, want: `GenericError: NBD server not running`},
			{cmd: `{"execute":"block-export-add","arguments":{"type":"nbd","id":"e","node-name":"disk","bitmaps":["nob"]}}`,
				calls: `CheckAdd "disk" ""`, want: `GenericError: Bitmap 'nob' is not found`},
			{cmd: `{"execute":"block-export-add","arguments":{"type":"nbd","id":"e","node-name":"disk","bitmaps":["b"]}}`,
				calls: `CheckAdd "disk" ""`, want: `GenericError: Enabled bitmap 'b' incompatible with readonly export`},
			{cmd: `{"execute":"block-export-add","arguments":{"type":"nbd","id":"e","node-name":"disk","bitmaps":[{"node":"disk","name":"x"}]}}`,
				calls: `CheckAdd "disk" ""`, want: `GenericError: Dirty bitmap 'x' not found`},
			{cmd: `{"execute":"block-export-add","arguments":{"type":"nbd","id":"e","node-name":"disk","writable":true,"name":"n","description":"d"}}`,
				err: qerror.New(nbd.ErrExists, "NBD server already has export named 'n'"), failOn: "Add",
				calls: `CheckAdd "n" "d"` + "\n" + `Add id=e node=disk name=n desc="d" size=1048576 writable=true bitmaps=0 depth=false`,
				want:  `GenericError: NBD server already has export named 'n'`},
			// the refused export released its hold on the node: a writable one can be made again
			{cmd: `{"execute":"block-export-add","arguments":{"type":"nbd","id":"e","node-name":"disk","writable":true,"bitmaps":["b"],"allocation-depth":true}}`,
				calls: `CheckAdd "disk" ""` + "\n" + `Add id=e node=disk name=disk desc="" size=1048576 writable=true bitmaps=1 depth=true`,
				want:  `{}`},
			{cmd: `{"execute":"block-export-add","arguments":{"type":"nbd","id":"e","node-name":"disk"}}`,
				want: `GenericError: Block export id 'e' is already in use`},
			{cmd: `{"execute":"query-block-exports"}`, want: `[{"node-name":"disk","shutting-down":false,"type":"nbd","id":"e"}]`},
			{cmd: `{"execute":"block-export-del","arguments":{"id":"e","mode":"soft"}}`,
				want: `GenericError: Parameter 'mode' does not accept value 'soft'`},
			{cmd: `{"execute":"block-export-del","arguments":{"id":"e"}}`, calls: `Remove "e" hard=false`,
				want: "BLOCK_EXPORT_DELETED {\"id\":\"e\"}\n{}"},
			{cmd: `{"execute":"block-export-del","arguments":{"id":"e","mode":"hard"}}`, calls: `Remove "e" hard=true`,
				want: `GenericError: Export 'e' is not found`},
			{cmd: `{"execute":"query-block-exports"}`, want: `[]`},
			{cmd: `{"execute":"nbd-server-add","arguments":{"device":"nodev"}}`,
				want: `GenericError: Cannot find device='nodev' nor node-name='nodev'`},
			{cmd: `{"execute":"nbd-server-add","arguments":{"device":"disk","name":"x","bitmap":"b","writable":true}}`,
				calls: `CheckAdd "x" ""` + "\n" + `Add id=x node=disk name=x desc="" size=1048576 writable=true bitmaps=1 depth=false`,
				want:  `{}`},
			{cmd: `{"execute":"nbd-server-remove","arguments":{"name":"x","mode":"hard"}}`, calls: `Remove "x" hard=true`,
				want: "BLOCK_EXPORT_DELETED {\"id\":\"x\"}\n{}"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeNBD{}
			g := exportGraph(t)
			w := newWire(t, func(r *qmp.Registry) { nbdCommands(r, f, g) })
			for _, s := range tc.steps {
				f.calls, f.err, f.failOn = nil, s.err, s.failOn
				if got := w.do(s.cmd); got != s.want {
					t.Errorf("%s:\n got %s\nwant %s", s.cmd, got, s.want)
				}
				if got := f.called(); got != s.calls {
					t.Errorf("%s: calls:\n got %s\nwant %s", s.cmd, got, s.calls)
				}
			}
		})
	}
}

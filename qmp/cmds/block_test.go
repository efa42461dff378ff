package cmds

import (
	"testing"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
	"tlcvm/qmp"
)

// TestBlockCommands: the node graph commands' arguments as the block layer gets them
// (transaction actions all decoded, at their paths, before any runs), QEMU 7.2's texts for
// bad arguments and the block layer's errors, and the queries reading under the lock.
func TestBlockCommands(t *testing.T) {
	noNode := qerror.Errorf(blockdev.ErrNotFound, "Cannot find device='%s' nor node-name='%s'", "a", "a")
	noDev := qerror.Errorf(blockdev.ErrDeviceNotFound, "Device '%s' not found", "d9")
	aborted := qerror.New(blockdev.ErrInvalid, "Transaction aborted using Abort action")
	cases := []handlerCase{
		{cmd: `{"execute":"query-block"}`, calls: `BackendsLocked locked=1`, want: `[]`},
		{cmd: `{"execute":"query-named-block-nodes"}`, calls: `NodesLocked locked=1`, want: `[]`},
		{cmd: `{"execute":"query-named-block-nodes","arguments":{"flat":1}}`,
			want: `GenericError: Invalid parameter type for 'flat', expected: boolean`},
		{cmd: `{"execute":"query-blockstats"}`, calls: `BackendsLocked locked=1`, want: `[]`},
		{cmd: `{"execute":"query-blockstats","arguments":{"query-nodes":true}}`, calls: `NodesLocked locked=1`, want: `[]`},
		{cmd: `{"execute":"blockdev-add","arguments":{"driver":"file","node-name":"n","filename":"/a.img","read-only":true}}`,
			calls: `Add {Driver:file NodeName:n ReadOnly:true Filename:/a.img}`, want: `{}`},
		{cmd: `{"execute":"blockdev-add","arguments":{"driver":"nope","node-name":"n"}}`,
			want: `GenericError: Parameter 'driver' does not accept value 'nope'`},
		{cmd: `{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n"}}`,
			err:   qerror.New(blockdev.ErrExists, "Duplicate nodes with node-name='n'"),
			calls: `Add {Driver:null-co NodeName:n Null:{}}`, want: `GenericError: Duplicate nodes with node-name='n'`},
		{cmd: `{"execute":"blockdev-del","arguments":{"node-name":"x"}}`,
			err:   qerror.New(blockdev.ErrNotFound, "Failed to find node with node-name='x'"),
			calls: `Del "x"`, want: `GenericError: Failed to find node with node-name='x'`},
		{cmd: `{"execute":"blockdev-del"}`, want: `GenericError: Parameter 'node-name' is missing`},
		{cmd: `{"execute":"block_resize","arguments":{"device":"x"}}`, want: `GenericError: Parameter 'size' is missing`},
		{cmd: `{"execute":"block_resize","arguments":{"node-name":"n","size":1048576}}`,
			calls: `Resize "" "n" 1048576`, want: `{}`},
		{cmd: `{"execute":"block_resize","arguments":{"device":"d9","size":1}}`, err: noDev,
			calls: `Resize "d9" "" 1`, want: `DeviceNotFound: Device 'd9' not found`},
		{cmd: `{"execute":"blockdev-snapshot","arguments":{"node":"a","overlay":"b"}}`, err: noNode,
			calls: `Snapshot [{Node:a Overlay:b}]`, want: `GenericError: Cannot find device='a' nor node-name='a'`},
		{cmd: `{"execute":"transaction","arguments":{"actions":[]}}`, want: `{}`},
		{cmd: `{"execute":"transaction","arguments":{"actions":[{"type":"abort"},{"type":"blockdev-snapshot","data":{"node":"a"}}]}}`,
			want: `GenericError: Parameter 'actions[0].data' is missing`},
		{cmd: `{"execute":"transaction","arguments":{"actions":[{"type":"bogus","data":{}}]}}`,
			want: `GenericError: Parameter 'type' does not accept value 'bogus'`},
		{cmd: `{"execute":"transaction","arguments":{"actions":[{"type":"block-dirty-bitmap-add","data":{"node":"a","name":"b","x":1}}]}}`,
			want: `GenericError: Parameter 'actions[0].data.x' is unexpected`},
		{cmd: `{"execute":"transaction","arguments":{"actions":[{"type":"abort","data":{}},{"type":"blockdev-snapshot","data":{"node":"a"}}]}}`,
			want: `GenericError: Parameter 'actions[1].data.overlay' is missing`},
		{cmd: `{"execute":"transaction","arguments":{"actions":[{"type":"abort","data":{}}],"properties":{"completion-mode":"grouped"}}}`,
			err: aborted, calls: `Transaction [{}] grouped=true`, want: `GenericError: Transaction aborted using Abort action`},
		{cmd: `{"execute":"transaction","arguments":{"actions":[{"type":"blockdev-snapshot","data":{"node":"a","overlay":"b"}},` +
			`{"type":"blockdev-backup","data":{"device":"d","target":"t","sync":"full"}},{"type":"block-dirty-bitmap-clear","data":{"node":"a","name":"b"}}]}}`,
			calls: `Transaction [{Node:a Overlay:b} {Options:{Device:d Target:t Sync:full OnSourceError:report OnTargetError:report}} {}] grouped=false`,
			want:  `{}`},
		{cmd: `{"execute":"blockdev-create","arguments":{"job-id":"j","options":{"driver":"file","filename":"/tmp/x","size":"1"}}}`,
			want: `GenericError: Parameter 'options.size' expects uint64`},
		{cmd: `{"execute":"blockdev-create","arguments":{"job-id":"l","options":{"driver":"qcow2","file":"x","size":1.5}}}`,
			want: `GenericError: Parameter 'options.size' expects uint64`},
		{cmd: `{"execute":"blockdev-create","arguments":{"job-id":"j","options":{"driver":"file","filename":"/tmp/x","size":-1}}}`,
			calls: `Create "j" {Driver:file Filename:/tmp/x Size:-1}`, want: `{}`},
		{cmd: `{"execute":"blockdev-create","arguments":{"job-id":"j","options":{"driver":"file","size":1}}}`,
			want: `GenericError: Parameter 'options.filename' is missing`},
		{cmd: `{"execute":"blockdev-create","arguments":{"job-id":"j","options":{"driver":"file","filename":"/tmp/x","size":1024}}}`,
			calls: `Create "j" {Driver:file Filename:/tmp/x Size:1024}`, want: `{}`},
		{cmd: `{"execute":"blockdev-create","arguments":{"job-id":"j","options":{"driver":"file","filename":"/tmp/x","size":1024,"preallocation":"full"}}}`,
			want: `GenericError: tlcvm: preallocation 'full' is not supported`},
		{cmd: `{"execute":"blockdev-create","arguments":{"job-id":"j","options":{"driver":"qcow2","file":"f","size":1024,"version":"v3","cluster-size":65536,"lazy-refcounts":true}}}`,
			calls: `Create "j" {Driver:qcow2 File:f Size:1024 Qcow2:{Version:v3 ClusterSize:65536 LazyRefcounts:true}}`, want: `{}`},
		{cmd: `{"execute":"blockdev-create","arguments":{"job-id":"j","options":{"driver":"qcow2","file":{"driver":"file","filename":"/x"},"size":1}}}`,
			want: `GenericError: tlcvm: blockdev-create needs 'file' to name an existing node`},
		{cmd: `{"execute":"blockdev-create","arguments":{"job-id":"j","options":{"driver":"qcow2","file":"f9","size":1}}}`,
			err: noNode, calls: `Create "j" {Driver:qcow2 File:f9 Size:1}`, want: `GenericError: ` + noNode.Error()},
	}
	runHandlerCases(t, cases, newFakeBlock, func(r *qmp.Registry, f *fakeBlock) { blockCommands(r, f) })
}

// TestBackingFileReopenSnapshots: change-backing-file, blockdev-reopen and HMP's
// `info snapshots` on the fake.
func TestBackingFileReopenSnapshots(t *testing.T) {
	noNode := qerror.Errorf(blockdev.ErrNotFound, "Cannot find device='%s' nor node-name='%s'", "a", "a")
	cases := []handlerCase{
		{cmd: `{"execute":"change-backing-file","arguments":{"device":"a","image-node-name":"b","backing-file":"c"}}`, err: noNode,
			calls: `ChangeBackingFile "a" "b" "c"`, want: `GenericError: Cannot find device='a' nor node-name='a'`},
		{cmd: `{"execute":"change-backing-file","arguments":{"device":"a","image-node-name":"b"}}`,
			want: `GenericError: Parameter 'backing-file' is missing`},
		{cmd: `{"execute":"blockdev-reopen","arguments":{"options":[{"driver":"raw"}]}}`,
			want: `GenericError: Parameter 'options[0].file' is missing`},
		{cmd: `{"execute":"blockdev-reopen","arguments":{"options":[]}}`, calls: `Reopen []`, want: `{}`},
		{cmd: `{"execute":"blockdev-reopen","arguments":{"options":[{"driver":"null-co","node-name":"n","read-only":true}]}}`,
			err:   qerror.New(blockdev.ErrPermission, "Cannot change the option 'size'"),
			calls: `Reopen [{Driver:null-co NodeName:n ReadOnly:true Null:{}}]`, want: `GenericError: Cannot change the option 'size'`},
	}
	runHandlerCases(t, cases, newFakeBlock, func(r *qmp.Registry, f *fakeBlock) {
		changeBackingFileCommand(r, f)
		reopenCommand(r, f)
	})
	f := &fakeBlock{report: blockdev.SnapshotReport{None: true}}
	got := execInternal(t, func(r *qmp.Registry) { r.Register(snapshotReportCommands(f)...) }, "x-tlcvm-snapshots", nil)
	if want := `{"none":true,"global":[],"partial":[]}`; got != want || f.called() != "SnapshotReport" {
		t.Errorf("x-tlcvm-snapshots: got %s (calls %s), want %s", got, f.called(), want)
	}
}

package cmds

import (
	"testing"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
	"tlcvm/qmp"
)

// TestBlockJobCommands: the arguments of the commands that start block jobs as the block
// layer gets them (defaults: on-error report, copy-mode background; auto-finalize and
// auto-dismiss false as ManualFinalize and ManualDismiss), the backups as one-action
// transactions, QEMU 7.2's texts for bad arguments and the block layer's errors under their
// classes.
func TestBlockJobCommands(t *testing.T) {
	notFound := qerror.Errorf(blockdev.ErrDeviceNotFound, "Device '%s' not found", "d9")
	both := qerror.New(blockdev.ErrInvalid, "'base' and 'base-node' cannot be specified at the same time")
	inUse := qerror.Errorf(blockdev.ErrInUse, "Node 'd0' is busy: block device is in use by block job: mirror")
	cases := []handlerCase{
		{cmd: `{"execute":"block-stream","arguments":{"device":"d0"}}`,
			calls: `Stream {Device:d0 OnError:report}`, want: `{}`},
		{cmd: `{"execute":"block-stream","arguments":{"job-id":"s","device":"d0","base-node":"b","backing-file":"b.img","speed":7,` +
			`"on-error":"stop","filter-node-name":"f","auto-finalize":false,"auto-dismiss":true}}`,
			calls: `Stream {JobID:s Device:d0 BaseNode:b BackingFile:b.img Speed:7 OnError:stop FilterNodeName:f ManualFinalize:true}`,
			want:  `{}`},
		{cmd: `{"execute":"block-stream","arguments":{"device":"d0","on-error":"bad"}}`,
			want: `GenericError: Parameter 'on-error' does not accept value 'bad'`},
		{cmd: `{"execute":"block-stream","arguments":{"device":"d0","base":"a","base-node":"b"}}`, err: both,
			calls: `Stream {Device:d0 Base:a BaseNode:b OnError:report}`, want: `GenericError: ` + both.Error()},
		{cmd: `{"execute":"block-stream","arguments":{"device":"d9"}}`, err: notFound,
			calls: `Stream {Device:d9 OnError:report}`, want: `DeviceNotFound: Device 'd9' not found`},
		{cmd: `{"execute":"block-commit","arguments":{}}`, want: `GenericError: Parameter 'device' is missing`},
		{cmd: `{"execute":"block-commit","arguments":{"device":"d0","top-node":"t","base-node":"b","auto-dismiss":false}}`,
			calls: `Commit {Device:d0 BaseNode:b TopNode:t OnError:report ManualDismiss:true}`, want: `{}`},
		{cmd: `{"execute":"block-commit","arguments":{"device":"d9","top":"t.img"}}`, err: notFound,
			calls: `Commit {Device:d9 Top:t.img OnError:report}`, want: `DeviceNotFound: Device 'd9' not found`},
		{cmd: `{"execute":"blockdev-mirror","arguments":{"device":"d0","target":"t","sync":"full"}}`,
			calls: `BlockdevMirror {Device:d0 Target:t Sync:full OnSourceError:report OnTargetError:report CopyMode:background}`, want: `{}`},
		{cmd: `{"execute":"blockdev-mirror","arguments":{"job-id":"m","device":"d0","target":"t","sync":"top","granularity":65536,` +
			`"buf-size":1024,"on-target-error":"ignore","copy-mode":"write-blocking","replaces":"r"}}`,
			calls: `BlockdevMirror {JobID:m Device:d0 Target:t Replaces:r Sync:top Granularity:65536 BufSize:1024 ` +
				`OnSourceError:report OnTargetError:ignore CopyMode:write-blocking}`, want: `{}`},
		{cmd: `{"execute":"blockdev-mirror","arguments":{"device":"d0","target":"t","sync":"full","granularity":-1}}`,
			want: `GenericError: Parameter 'granularity' expects uint32_t`},
		{cmd: `{"execute":"drive-mirror","arguments":{"device":"d0","target":"t","sync":"full","granularity":"x"}}`,
			want: `GenericError: Parameter 'granularity' expects uint64`},
		{cmd: `{"execute":"blockdev-mirror","arguments":{"device":"d0","target":"t","sync":"sideways"}}`,
			want: `GenericError: Parameter 'sync' does not accept value 'sideways'`},
		{cmd: `{"execute":"blockdev-mirror","arguments":{"device":"d0","target":"t","sync":"full"}}`, err: inUse,
			calls: `BlockdevMirror {Device:d0 Target:t Sync:full OnSourceError:report OnTargetError:report CopyMode:background}`,
			want:  `GenericError: ` + inUse.Error()},
		{cmd: `{"execute":"drive-mirror","arguments":{"device":"d","target":"t"}}`, want: `GenericError: Parameter 'sync' is missing`},
		{cmd: `{"execute":"drive-mirror","arguments":{"device":"d0","target":"/t.qcow2","format":"qcow2","sync":"full","mode":"existing","unmap":false}}`,
			calls: `DriveMirror {Device:d0 Target:/t.qcow2 Sync:full OnSourceError:report OnTargetError:report Unmap:false ` +
				`CopyMode:background Format:qcow2 Mode:existing}`, want: `{}`},
		{cmd: `{"execute":"drive-mirror","arguments":{"device":"d9","target":"/t","sync":"full"}}`, err: notFound,
			calls: `DriveMirror {Device:d9 Target:/t Sync:full OnSourceError:report OnTargetError:report CopyMode:background}`,
			want:  `DeviceNotFound: Device 'd9' not found`},
		{cmd: `{"execute":"blockdev-backup","arguments":{"device":"d0","target":"t","sync":"full"}}`,
			calls: `Transaction [{Options:{Device:d0 Target:t Sync:full OnSourceError:report OnTargetError:report}}] grouped=false`, want: `{}`},
		{cmd: `{"execute":"blockdev-backup","arguments":{"device":"d0","target":"t","sync":"bitmap","bitmap":"b","bitmap-mode":"never","compress":true}}`,
			calls: `Transaction [{Options:{Device:d0 Target:t Sync:bitmap Bitmap:b BitmapMode:never Compress:true ` +
				`OnSourceError:report OnTargetError:report}}] grouped=false`, want: `{}`},
		{cmd: `{"execute":"blockdev-backup","arguments":{"device":"d","target":"t","sync":"full","x-perf":{"max-chunk":"1"}}}`,
			want: `GenericError: Invalid parameter type for 'x-perf.max-chunk', expected: integer`},
		{cmd: `{"execute":"blockdev-backup","arguments":{"device":"d9","target":"t","sync":"full"}}`, err: notFound,
			calls: `Transaction [{Options:{Device:d9 Target:t Sync:full OnSourceError:report OnTargetError:report}}] grouped=false`,
			want:  `DeviceNotFound: Device 'd9' not found`},
		{cmd: `{"execute":"drive-backup","arguments":{"device":"d0","target":"/b.img","sync":"full","format":"raw","mode":"existing"}}`,
			calls: `Transaction [{Options:{Device:d0 Target:/b.img Sync:full OnSourceError:report OnTargetError:report ` +
				`Format:raw Mode:existing} Drive:true}] grouped=false`, want: `{}`},
		{cmd: `{"execute":"drive-backup","arguments":{"device":"d0","target":"/b.img","sync":"full","mode":"new"}}`,
			want: `GenericError: Parameter 'mode' does not accept value 'new'`},
	}
	runHandlerCases(t, cases, newFakeBlock, func(r *qmp.Registry, f *fakeBlock) { blockJobCommands(r, f) })
}

// TestCommitImage: HMP commit's internal command hands the device to the block layer and
// its error (HMP's line) back unchanged.
func TestCommitImage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, `{}`},
		{qerror.Errorf(blockdev.ErrDeviceNotFound, "Device '%s' not found", "d9"), `DeviceNotFound: Device 'd9' not found`},
	} {
		f := &fakeBlock{recorder: recorder{err: tc.err}}
		got := execInternal(t, func(r *qmp.Registry) { blockJobCommands(r, f) }, "x-tlcvm-commit", map[string]any{"device": "d0"})
		if got != tc.want || f.called() != `CommitImage "d0"` {
			t.Errorf("%v: got %s, calls %s; want %s", tc.err, got, f.called(), tc.want)
		}
	}
}

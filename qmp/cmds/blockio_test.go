package cmds

import (
	"bytes"
	"testing"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
	"tlcvm/qmp"
)

// TestBlockIOCommands: block_set_io_throttle's members as the buckets of the block layer's
// throttle config (QEMU's bucket order: bps, bps_rd, bps_wr, iops, iops_rd, iops_wr; burst
// length 1 unless given), block-set-write-threshold, and QEMU 7.2's texts for bad arguments.
func TestBlockIOCommands(t *testing.T) {
	const six = `"bps":1,"bps_rd":2,"bps_wr":3,"iops":4,"iops_rd":5,"iops_wr":6`
	notFound := qerror.Errorf(blockdev.ErrDeviceNotFound, "Device 'd9' not found")
	bad := qerror.Errorf(blockdev.ErrInvalid, "bps/iops/max values must be within [0, 1000000000000000]")
	cases := []handlerCase{
		{cmd: `{"execute":"block_set_io_throttle","arguments":{"id":"d0",` + six + `}}`,
			calls: `SetIOThrottle "" "d0" avg=[1 2 3 4 5 6] max=[0 0 0 0 0 0] len=[1 1 1 1 1 1] size=0 group=<nil>`, want: `{}`},
		{cmd: `{"execute":"block_set_io_throttle","arguments":{"device":"drive0",` + six +
			`,"bps_max":10,"iops_wr_max":60,"bps_rd_max_length":7,"iops_size":4096,"group":"g"}}`,
			calls: `SetIOThrottle "drive0" "" avg=[1 2 3 4 5 6] max=[10 0 0 0 0 60] len=[1 7 1 1 1 1] size=4096 group=g`, want: `{}`},
		{cmd: `{"execute":"block_set_io_throttle","arguments":{"id":"x"}}`,
			want: `GenericError: Parameter 'bps' is missing`},
		{cmd: `{"execute":"block_set_io_throttle","arguments":{"id":"x","bps":1,"bps_rd":0,"bps_wr":0,"iops":0,"iops_rd":0}}`,
			want: `GenericError: Parameter 'iops_wr' is missing`},
		{cmd: `{"execute":"block_set_io_throttle","arguments":{"id":"x","bps":1,"bps_rd":0,"bps_wr":0,"iops":0,"iops_rd":0,"iops_wr":"0"}}`,
			want: `GenericError: Invalid parameter type for 'iops_wr', expected: integer`},
		{cmd: `{"execute":"block_set_io_throttle","arguments":{"id":"d9",` + six + `}}`, err: notFound,
			calls: `SetIOThrottle "" "d9" avg=[1 2 3 4 5 6] max=[0 0 0 0 0 0] len=[1 1 1 1 1 1] size=0 group=<nil>`,
			want:  `DeviceNotFound: Device 'd9' not found`},
		{cmd: `{"execute":"block_set_io_throttle","arguments":{"id":"d0",` + six + `,"bps_max":-1}}`, err: bad,
			calls: `SetIOThrottle "" "d0" avg=[1 2 3 4 5 6] max=[18446744073709551615 0 0 0 0 0] len=[1 1 1 1 1 1] size=0 group=<nil>`,
			want:  `GenericError: ` + bad.Error()},
		{cmd: `{"execute":"block-set-write-threshold","arguments":{"node-name":"n","write-threshold":4096}}`,
			calls: `SetWriteThreshold "n" 4096`, want: `{}`},
		{cmd: `{"execute":"block-set-write-threshold","arguments":{"node-name":"n"}}`,
			want: `GenericError: Parameter 'write-threshold' is missing`},
		{cmd: `{"execute":"block-set-write-threshold","arguments":{"node-name":"n","write-threshold":1.5}}`,
			want: `GenericError: Parameter 'write-threshold' expects uint64`},
		{cmd: `{"execute":"block-set-write-threshold","arguments":{"node-name":"n","write-threshold":-1}}`,
			calls: `SetWriteThreshold "n" 18446744073709551615`, want: `{}`},
		{cmd: `{"execute":"block-set-write-threshold","arguments":{"node-name":"n","write-threshold":"x"}}`,
			want: `GenericError: Parameter 'write-threshold' expects uint64`},
		{cmd: `{"execute":"block-set-write-threshold","arguments":{"node-name":"n9","write-threshold":0}}`,
			err:   qerror.Errorf(blockdev.ErrDeviceNotFound, "Device 'n9' not found"),
			calls: `SetWriteThreshold "n9" 0`, want: `DeviceNotFound: Device 'n9' not found`},
	}
	runHandlerCases(t, cases, newFakeBlock, func(r *qmp.Registry, f *fakeBlock) { blockIOCommands(r, f, nil) })
}

// TestQemuIO: HMP qemu-io's internal command prints the command's output on the process's
// standard output and hands the monitor its text, error or not.
func TestQemuIO(t *testing.T) {
	for _, tc := range []struct {
		err        error
		want, out  string
		withStdout bool
	}{
		{want: `{"text":"monitor text"}`, out: "output of read 0 512\n", withStdout: true},
		{want: `{"text":"monitor text"}`},
		{err: qerror.Errorf(blockdev.ErrDeviceNotFound, "Device 'd9' not found"), want: `DeviceNotFound: Device 'd9' not found`,
			withStdout: true, out: "output of read 0 512\n"},
	} {
		f := &fakeBlock{recorder: recorder{err: tc.err}}
		var stdout bytes.Buffer
		reg := func(r *qmp.Registry) { blockIOCommands(r, f, nil) }
		if tc.withStdout {
			reg = func(r *qmp.Registry) { blockIOCommands(r, f, &stdout) }
		}
		got := execInternal(t, reg, "x-tlcvm-qemu-io", map[string]any{"device": "d0", "qdev": true, "command": "read 0 512"})
		if got != tc.want || stdout.String() != tc.out || f.called() != `QemuIO "d0" true "read 0 512"` {
			t.Errorf("%v: got %s, stdout %q, calls %s; want %s, stdout %q", tc.err, got, stdout.String(), f.called(), tc.want, tc.out)
		}
	}
}

package cmds

import (
	"testing"

	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// TestBlockEvents: the block layer's events as QMP puts them on the wire (BlockEvents):
// the job events' data types, the tray and the write threshold, anything else unchanged;
// members in QEMU 7.2's order (its QDict hash order: tests/testdata, the libvirt reference).
func TestBlockEvents(t *testing.T) {
	for _, tc := range []struct {
		name string
		data any
		want string
	}{
		{"DEVICE_TRAY_MOVED", blockdev.TrayMovedEvent{Device: "ide1-cd0", ID: "cd0", TrayOpen: true},
			`{"device":"ide1-cd0","tray-open":true,"id":"cd0"}`},
		{"BLOCK_WRITE_THRESHOLD", blockdev.WriteThresholdEvent{NodeName: "n", AmountExceeded: 512, WriteThreshold: 4096},
			`{"node-name":"n","write-threshold":4096,"amount-exceeded":512}`},
		{"JOB_STATUS_CHANGE", blockdev.JobStatusEvent{ID: "j", Status: blockdev.JobPending}, `{"status":"pending","id":"j"}`},
		{blockdev.EventBlockJobCompleted, blockdev.BlockJobEvent{Name: blockdev.EventBlockJobCompleted, Type: blockdev.JobTypeStream,
			Device: "j", Len: 10, Offset: 10, Speed: 1}, `{"device":"j","len":10,"offset":10,"speed":1,"type":"stream"}`},
		{blockdev.EventBlockJobCompleted, blockdev.BlockJobEvent{Name: blockdev.EventBlockJobCompleted, Type: blockdev.JobTypeCommit,
			Device: "j", Len: 10, Offset: 3, HasError: true, Error: "Input/output error"},
			`{"device":"j","len":10,"offset":3,"speed":0,"type":"commit","error":"Input/output error"}`},
		{blockdev.EventBlockJobCancelled, blockdev.BlockJobEvent{Name: blockdev.EventBlockJobCancelled, Type: blockdev.JobTypeMirror,
			Device: "j", Len: 10, Offset: 3}, `{"device":"j","len":10,"offset":3,"speed":0,"type":"mirror"}`},
		{blockdev.EventBlockJobReady, blockdev.BlockJobEvent{Name: blockdev.EventBlockJobReady, Type: blockdev.JobTypeMirror,
			Device: "j", Len: 10, Offset: 10}, `{"device":"j","len":10,"offset":10,"speed":0,"type":"mirror"}`},
		{blockdev.EventBlockJobPending, blockdev.BlockJobEvent{Name: blockdev.EventBlockJobPending, Type: blockdev.JobTypeBackup,
			PendingID: "b"}, `{"type":"backup","id":"b"}`},
		{blockdev.EventBlockJobError, blockdev.BlockJobEvent{Name: blockdev.EventBlockJobError, Device: "j",
			ErrorOperation: "write", ErrorAction: "stop"}, `{"device":"j","operation":"write","action":"stop"}`},
		{"OTHER", map[string]any{"x": 1}, `{"x":1}`},
	} {
		var gotName string
		var got any
		BlockEvents(func(name string, data any) { gotName, got = name, data }).Emit(tc.name, tc.data)
		b, err := qmp.Marshal(got)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if gotName != tc.name || compact(string(b)) != tc.want {
			t.Errorf("%s %+v:\n got %s %s\nwant %s %s", tc.name, tc.data, gotName, compact(string(b)), tc.name, tc.want)
		}
	}
}

package cmds

import (
	"testing"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
	"tlcvm/qmp"
)

// TestBitmapCommands: each dirty bitmap command runs its action on its own, QEMU 7.2's
// texts for bad arguments (the alternate's odd "'null'" included), the block layer's errors
// as GenericError, and x-debug-block-dirty-bitmap-sha256 over the bitmap's last level.
func TestBitmapCommands(t *testing.T) {
	noNode := qerror.Errorf(blockdev.ErrNotFound, "Node '%s' not found", "n9")
	exists := qerror.Errorf(blockdev.ErrExists, "Bitmap already exists: %s", "b")
	cases := []handlerCase{
		{cmd: `{"execute":"block-dirty-bitmap-add","arguments":{"node":"n","name":"b","granularity":65536,"persistent":true}}`,
			calls: `RunStep block-dirty-bitmap-add`, want: `{}`},
		{cmd: `{"execute":"block-dirty-bitmap-add","arguments":{"node":"n","name":"b","granularity":-1}}`,
			want: `GenericError: Parameter 'granularity' expects uint32_t`},
		{cmd: `{"execute":"block-dirty-bitmap-add","arguments":{"node":"n"}}`, want: `GenericError: Parameter 'name' is missing`},
		{cmd: `{"execute":"block-dirty-bitmap-add","arguments":{"node":"n","name":"b"}}`, err: exists,
			calls: `RunStep block-dirty-bitmap-add`, want: `GenericError: Bitmap already exists: b`},
		{cmd: `{"execute":"block-dirty-bitmap-merge","arguments":{"node":"n","target":"t","bitmaps":["a",{"node":"m","name":"c"}]}}`,
			calls: `RunStep block-dirty-bitmap-merge`, want: `{}`},
		{cmd: `{"execute":"block-dirty-bitmap-merge","arguments":{"node":"n","target":"t","bitmaps":[1]}}`,
			want: `GenericError: Invalid parameter type for 'null', expected: BlockDirtyBitmapOrStr`},
		{cmd: `{"execute":"block-dirty-bitmap-merge","arguments":{"node":"n","target":"t","bitmaps":[{"node":"a"}]}}`,
			want: `GenericError: Parameter 'bitmaps[0].name' is missing`},
		{cmd: `{"execute":"block-dirty-bitmap-merge","arguments":{"node":"n9","target":"t","bitmaps":[]}}`, err: noNode,
			calls: `RunStep block-dirty-bitmap-merge`, want: `GenericError: Node 'n9' not found`},
		{cmd: `{"execute":"block-dirty-bitmap-remove","arguments":{"node":"n","name":"b"}}`,
			calls: `RunStep block-dirty-bitmap-remove`, want: `{}`},
		{cmd: `{"execute":"block-dirty-bitmap-remove","arguments":{"node":"n9","name":"b"}}`, err: noNode,
			calls: `RunStep block-dirty-bitmap-remove`, want: `GenericError: Node 'n9' not found`},
		{cmd: `{"execute":"block-dirty-bitmap-clear","arguments":{"node":"n"}}`, want: `GenericError: Parameter 'name' is missing`},
		{cmd: `{"execute":"block-dirty-bitmap-clear","arguments":{"node":"n","name":"b"}}`,
			calls: `RunStep block-dirty-bitmap-clear`, want: `{}`},
		{cmd: `{"execute":"block-dirty-bitmap-enable","arguments":{"node":"n","name":"b"}}`,
			calls: `RunStep block-dirty-bitmap-enable`, want: `{}`},
		{cmd: `{"execute":"block-dirty-bitmap-disable","arguments":{"node":"n","name":"b"}}`,
			calls: `RunStep block-dirty-bitmap-disable`, want: `{}`},
		{cmd: `{"execute":"x-debug-block-dirty-bitmap-sha256","arguments":{"node":"n9","name":"b"}}`, err: noNode,
			calls: `LookupBitmap "n9" "b"`, want: `GenericError: Node 'n9' not found`},
	}
	runHandlerCases(t, cases, newFakeBlock, func(r *qmp.Registry, f *fakeBlock) { bitmapCommands(r, f) })

	// 1 MiB at 64 KiB: one 64-bit word; the digests are sha256 of its 8 little-endian bytes.
	for _, tc := range []struct {
		dirty []int64 // offsets set
		want  string
	}{
		{nil, `{"sha256":"af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc"}`},
		{[]int64{0, 2 << 16}, `{"sha256":"f13ee6ed54ea2aae9fc49a9faeb5da6e8ddef0e12ed5d30d35a624ae813e0485"}`},
	} {
		f := &fakeBlock{bitmap: blockdev.NewBitmap(1<<20, 1<<16)}
		for _, off := range tc.dirty {
			f.bitmap.Set(off, 1)
		}
		w := newWire(t, func(r *qmp.Registry) { bitmapCommands(r, f) })
		if got := w.do(`{"execute":"x-debug-block-dirty-bitmap-sha256","arguments":{"node":"n","name":"b"}}`); got != tc.want {
			t.Errorf("dirty %v: got %s, want %s", tc.dirty, got, tc.want)
		}
	}
}

// TestBitmapArgs: the arguments of block-dirty-bitmap-add and -merge as the block layer's
// options (a granularity of 0 given is kept apart from none, for QEMU's error).
func TestBitmapArgs(t *testing.T) {
	g0, g64k, yes := uint32(0), uint32(65536), true
	for _, tc := range []struct {
		in   BlockDirtyBitmapAdd
		want string
	}{
		{BlockDirtyBitmapAdd{Node: "n", Name: "b"}, `{Node:n Name:b}`},
		{BlockDirtyBitmapAdd{Node: "n", Name: "b", Granularity: &g0}, `{Node:n Name:b Granularity:1}`},
		{BlockDirtyBitmapAdd{Node: "n", Name: "b", Granularity: &g64k, Persistent: &yes, Disabled: &yes},
			`{Node:n Name:b Granularity:65536 Persistent:true Disabled:true}`},
	} {
		if got := show(bitmapAddOptions(&tc.in)); got != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.in, got, tc.want)
		}
	}
	src := []BlockDirtyBitmapOrStr{{Local: "a"}, {External: &BlockDirtyBitmap{Node: "m", Name: "c"}}}
	var got []blockdev.MergeSource
	for _, b := range src {
		got = append(got, b.Source())
	}
	if s := show(got); s != `[{Name:a} {Node:m Name:c}]` {
		t.Errorf("merge sources: %s", s)
	}
}

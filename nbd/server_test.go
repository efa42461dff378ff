package nbd_test

import (
	"bytes"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"tlcvm/nbd"
)

// memDevice is an in-memory Device: blocks of 4 KiB that were written hold data (depth
// 1), the rest reads as zeroes from a "backing" layer at depth 2 for the first half and
// from nothing (depth 0) for the second.
type memDevice struct {
	mu      sync.Mutex
	data    []byte
	written map[int64]bool
	flushes int
	failIO  bool
}

const blk = 4096

func newMem(size int) *memDevice {
	return &memDevice{data: make([]byte, size), written: map[int64]bool{}}
}

func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failIO {
		return 0, &nbd.Error{Errno: nbd.EIO, Err: errors.New("injected")}
	}
	return copy(p, m.data[off:]), nil
}

func (m *memDevice) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	copy(m.data[off:], p)
	for b := off / blk; b <= (off+int64(len(p))-1)/blk; b++ {
		m.written[b] = true
	}
	return len(p), nil
}

func (m *memDevice) WriteZeroes(off, length int64, mayTrim bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.data[off : off+length])
	for b := off / blk; b <= (off+length-1)/blk; b++ {
		m.written[b] = !mayTrim
	}
	return nil
}

func (m *memDevice) Trim(off, length int64) error { return m.WriteZeroes(off, length, true) }

func (m *memDevice) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushes++
	return nil
}

func (m *memDevice) Status(off, length int64) (nbd.Extent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	state := func(o int64) (bool, int) {
		if m.written[o/blk] {
			return true, 1
		}
		if o < int64(len(m.data))/2 {
			return false, 2
		}
		return false, 0
	}
	d0, depth0 := state(off)
	n := int64(0)
	for o := off; o < off+length; o = (o/blk + 1) * blk {
		d, dep := state(o)
		if d != d0 || dep != depth0 {
			break
		}
		n = min((o/blk+1)*blk, off+length) - off
	}
	return nbd.Extent{Length: n, Data: d0, Zero: !d0, Depth: depth0}, nil
}

// memBitmap is a DirtyBitmap over 64 KiB granules.
type memBitmap struct {
	name  string
	dirty map[int64]bool
	size  int64
}

func (b *memBitmap) Name() string { return b.name }

func (b *memBitmap) Extents(off, length int64, fn func(off, length int64, dirty bool) bool) {
	const g = 65536
	end := min(off+length, b.size)
	for o := off; o < end; {
		d := b.dirty[o/g]
		n := o
		for n < end && b.dirty[n/g] == d {
			n = (n/g + 1) * g
		}
		n = min(n, end)
		if !fn(o, n-o, d) {
			return
		}
		o = n
	}
}

// rig is a started server with one writable export "w" (1 MiB, description, a bitmap,
// allocation depth) and one read-only export "r".
type rig struct {
	t       *testing.T
	s       *nbd.Server
	sock    string
	w, r    *memDevice
	deleted chan string
}

func newRig(t *testing.T, maxConns uint32) *rig {
	t.Helper()
	g := &rig{t: t, s: nbd.NewServer(nbd.Config{}), sock: filepath.Join(t.TempDir(), "nbd.sock"),
		w: newMem(1 << 20), r: newMem(1 << 20), deleted: make(chan string, 8)}
	l, err := nbd.Listen(nbd.SocketAddress{Type: "unix", Path: g.sock})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.s.Start(l, maxConns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.s.Close)
	bm := &memBitmap{name: "b1", size: 1 << 20, dirty: map[int64]bool{1: true, 2: true, 15: true}}
	for _, c := range []nbd.ExportConfig{
		{ID: "ew", Node: "nw", Name: "w", Description: "the writable one", Device: g.w, Size: 1 << 20, Writable: true,
			Bitmaps: []nbd.DirtyBitmap{bm}, AllocationDepth: true},
		{ID: "er", Node: "nr", Name: "r", Device: g.r, Size: 1<<20 + 100},
	} {
		id := c.ID
		c.Deleted = func() { g.deleted <- id }
		if err := g.s.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func (g *rig) dial() *nbd.Client {
	g.t.Helper()
	nc, err := net.Dial("unix", g.sock)
	if err != nil {
		g.t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := nbd.NewClient(nc)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { c.Close() })
	return c
}

func optErr(err error) uint32 {
	var oe *nbd.OptError
	if errors.As(err, &oe) {
		return oe.Rep
	}
	return 0
}

func TestNegotiation(t *testing.T) {
	g := newRig(t, 0)
	c := g.dial()
	reps, err := c.Option(nbd.OptList, nil)
	if err != nil || len(reps) != 2 {
		t.Fatalf("LIST: %v %v", reps, err)
	}
	if string(reps[0].Data) != "\x00\x00\x00\x01wthe writable one" || string(reps[1].Data) != "\x00\x00\x00\x01r" {
		t.Errorf("LIST replies %q %q", reps[0].Data, reps[1].Data)
	}
	for _, x := range []struct {
		name string
		opt  uint32
		data []byte
		want uint32
	}{
		{"list with data", nbd.OptList, []byte{1}, nbd.RepErrInvalid},
		{"starttls without TLS", nbd.OptStartTLS, nil, nbd.RepErrPolicy},
		{"unknown option", 99, []byte("abc"), nbd.RepErrUnsup},
		{"structured reply with data", nbd.OptStructuredReply, []byte{0}, nbd.RepErrInvalid},
		{"meta before structured replies", nbd.OptListMetaContext, []byte{0, 0, 0, 1, 'w', 0, 0, 0, 0}, nbd.RepErrInvalid},
		{"info of an unknown export", nbd.OptInfo, []byte{0, 0, 0, 1, 'x', 0, 0}, nbd.RepErrUnknown},
		{"info with a short request list", nbd.OptInfo, []byte{0, 0, 0, 1, 'w', 0, 2, 0, 1}, nbd.RepErrInvalid},
		{"info with a name past the data", nbd.OptInfo, []byte{0, 0, 0, 9, 'w'}, nbd.RepErrInvalid},
		{"too long to read", nbd.OptGo, make([]byte, 70000), nbd.RepErrTooBig},
	} {
		_, err := c.Option(x.opt, x.data)
		if got := optErr(err); got != x.want {
			t.Errorf("%s: %v (0x%x), want 0x%x", x.name, err, got, x.want)
		}
	}
	// NBD_OPT_INFO: name (asked for), description (always), block sizes, export.
	reps, err = c.Option(nbd.OptInfo, []byte{0, 0, 0, 1, 'w', 0, 1, 0, nbd.InfoName})
	if err != nil || len(reps) != 4 {
		t.Fatalf("INFO: %v %v", reps, err)
	}
	want := [][]byte{{0, 1, 'w'}, append([]byte{0, 2}, "the writable one"...),
		{0, 3, 0, 0, 0, 1, 0, 0, 0x10, 0, 2, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0x0d, 0x6d}}
	for i, r := range reps {
		if r.Type != nbd.RepInfo || !bytes.Equal(r.Data, want[i]) {
			t.Errorf("INFO reply %d: %d % x, want % x", i, r.Type, r.Data, want[i])
		}
	}
	if err := c.StructuredReplies(); err != nil {
		t.Fatal(err)
	}
	if err := c.StructuredReplies(); optErr(err) != nbd.RepErrInvalid {
		t.Errorf("second structured reply: %v", err)
	}
	for _, x := range []struct {
		queries []string
		want    map[uint32]string
	}{
		{nil, map[uint32]string{0: "base:allocation", 1: "qemu:allocation-depth", 2: "qemu:dirty-bitmap:b1"}},
		{[]string{"base:"}, map[uint32]string{0: "base:allocation"}},
		{[]string{"qemu:"}, map[uint32]string{1: "qemu:allocation-depth", 2: "qemu:dirty-bitmap:b1"}},
		{[]string{"qemu:dirty-bitmap:"}, map[uint32]string{2: "qemu:dirty-bitmap:b1"}},
		{[]string{"qemu:dirty-bitmap:nope", "other:x"}, map[uint32]string{}},
	} {
		got, err := c.Meta(false, "w", x.queries...)
		if err != nil || len(got) != len(x.want) {
			t.Errorf("LIST_META %q = %v %v, want %v", x.queries, got, err, x.want)
			continue
		}
		for id, n := range x.want {
			if got[id] != n {
				t.Errorf("LIST_META %q: id %d = %q, want %q", x.queries, id, got[id], n)
			}
		}
	}
	if got, _ := c.Meta(true, "w", "qemu:"); len(got) != 0 {
		t.Errorf("SET with a namespace selected %v", got)
	}
	if got, _ := c.Meta(false, "r", "qemu:"); len(got) != 0 {
		t.Errorf("export r offers %v", got)
	}
	if _, err := c.Meta(true, "nope", "base:allocation"); optErr(err) != nbd.RepErrUnknown {
		t.Errorf("SET on an unknown export: %v", err)
	}
	if err := c.Go("nope"); optErr(err) != nbd.RepErrUnknown {
		t.Errorf("GO nope: %v", err)
	}
	if err := c.Go("w"); err != nil {
		t.Fatal(err)
	}
	if c.Size != 1<<20 || c.Flags != 0x0ded {
		t.Errorf("export: size %d flags %#x", c.Size, c.Flags)
	}
}

// TestExportName: the old way in, NBD_OPT_EXPORT_NAME (size, flags, no zeroes asked).
func TestExportName(t *testing.T) {
	g := newRig(t, 1)
	nc, err := net.Dial("unix", g.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	hello := make([]byte, 18)
	if _, err := readFull(nc, hello); err != nil {
		t.Fatal(err)
	}
	msg := []byte{0, 0, 0, 1} // fixed newstyle, zeroes wanted
	msg = append(msg, "IHAVEOPT"...)
	msg = append(msg, 0, 0, 0, 1, 0, 0, 0, 1, 'r')
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 8+2+124)
	if _, err := readFull(nc, reply); err != nil {
		t.Fatal(err)
	}
	// max-connections 1: no NBD_FLAG_CAN_MULTI_CONN; the size is whole sectors.
	if !bytes.Equal(reply[:10], []byte{0, 0, 0, 0, 0, 0x10, 0, 0, 0x04, 0x0f}) || !bytes.Equal(reply[10:], make([]byte, 124)) {
		t.Errorf("reply % x", reply[:12])
	}
}

func readFull(nc net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := nc.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestTransmission(t *testing.T) {
	g := newRig(t, 0)
	for _, structured := range []bool{false, true} {
		c := g.dial()
		if structured {
			if err := c.StructuredReplies(); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Go("w"); err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte{0xab}, 3*blk)
		if _, err := c.WriteAt(data, 5*blk); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 6*blk)
		if _, err := c.ReadAt(got, 4*blk); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[blk:4*blk], data) || !bytes.Equal(got[:blk], make([]byte, blk)) {
			t.Errorf("structured=%v: read back wrong data", structured)
		}
		errno := func(err error) uint32 {
			var e *nbd.ErrReply
			if errors.As(err, &e) {
				return e.Errno
			}
			return 0
		}
		for _, x := range []struct {
			name        string
			typ, flags  uint16
			off         int64
			len         uint32
			want        uint32
			wantStruct  uint32 // when structured (0: same)
			plainStruct bool
		}{
			{"write zeroes", nbd.CmdWriteZeroes, nbd.CmdFlagNoHole | nbd.CmdFlagFUA, 5 * blk, blk, 0, 0, false},
			{"trim", nbd.CmdTrim, 0, 6 * blk, blk, 0, 0, false},
			{"flush", nbd.CmdFlush, 0, 0, 0, 0, 0, false},
			{"cache", nbd.CmdCache, 0, 0, blk, 0, 0, false},
			{"read past the end", nbd.CmdRead, 0, 1 << 20, 1, nbd.EINVAL, 0, false},
			{"write zeroes past the end", nbd.CmdWriteZeroes, 0, 1<<20 - 1, 2, nbd.ENOSPC, 0, false},
			{"offset overflow", nbd.CmdTrim, 0, -1, 1, nbd.EINVAL, 0, false},
			{"unknown command", 42, 0, 0, 1, nbd.EINVAL, 0, false},
			{"flags a command does not take", nbd.CmdFlush, nbd.CmdFlagReqOne, 0, 0, nbd.EINVAL, 0, false},
			{"DF without structured replies", nbd.CmdRead, nbd.CmdFlagDF, 0, 1, nbd.EINVAL, 0, true},
			{"block status not negotiated", nbd.CmdBlockStatus, 0, 0, blk, nbd.EINVAL, 0, false},
			{"read too long", nbd.CmdRead, 0, 0, nbd.MaxBufferSize + 1, nbd.EINVAL, 0, false},
		} {
			want := x.want
			if structured && x.plainStruct {
				want = 0
			}
			if err := c.Command(x.typ, x.flags, x.off, x.len); errno(err) != want {
				t.Errorf("structured=%v %s: %v, want errno %d", structured, x.name, err, want)
			}
		}
		if g.w.data[5*blk] != 0 || g.w.data[6*blk] != 0 || g.w.data[7*blk] != 0xab {
			t.Errorf("structured=%v: zeroes and trim not applied", structured)
		}
		c.Disconnect()
	}
	// The read-only export refuses writes (EPERM), and past its whole sectors too.
	c := g.dial()
	if err := c.Go("r"); err != nil {
		t.Fatal(err)
	}
	if c.Size != 1<<20 {
		t.Errorf("read-only export size %d", c.Size)
	}
	if _, err := c.WriteAt([]byte{1}, 0); err == nil || err.(*nbd.ErrReply).Errno != nbd.EPERM {
		t.Errorf("write to read-only: %v", err)
	}
	if err := c.Command(nbd.CmdTrim, 0, 0, 1); err == nil || err.(*nbd.ErrReply).Errno != nbd.EPERM {
		t.Errorf("trim of read-only: %v", err)
	}
	g.r.failIO = true
	if _, err := c.ReadAt(make([]byte, 10), 0); err == nil || err.(*nbd.ErrReply).Errno != nbd.EIO {
		t.Errorf("failing read: %v", err)
	}
}

// TestSparseReadAndBlockStatus: structured reads send holes for what reads as zeroes;
// block status reports each selected context, merging equal neighbours.
func TestSparseReadAndBlockStatus(t *testing.T) {
	g := newRig(t, 0)
	c := g.dial()
	if err := c.StructuredReplies(); err != nil {
		t.Fatal(err)
	}
	ctx, err := c.Meta(true, "w", "base:allocation", "qemu:allocation-depth", "qemu:dirty-bitmap:b1")
	if err != nil || len(ctx) != 3 {
		t.Fatalf("SET_META: %v %v", ctx, err)
	}
	if err := c.Go("w"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteAt(bytes.Repeat([]byte{1}, 2*blk), 2*blk); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Do(nbd.CmdRead, 0, 0, 8*blk, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []uint16
	for _, ch := range rep.Chunks {
		kinds = append(kinds, ch.Type)
	}
	if len(kinds) != 3 || kinds[0] != nbd.ReplyTypeOffsetHole || kinds[1] != nbd.ReplyTypeOffsetData || kinds[2] != nbd.ReplyTypeOffsetHole ||
		rep.Chunks[2].Flags != nbd.ReplyFlagDone {
		t.Errorf("sparse read chunks %v", kinds)
	}
	rep, _ = c.Do(nbd.CmdRead, nbd.CmdFlagDF, 0, 8*blk, nil)
	if len(rep.Chunks) != 1 || rep.Chunks[0].Type != nbd.ReplyTypeOffsetData {
		t.Errorf("DF read: %d chunks", len(rep.Chunks))
	}
	st, err := c.BlockStatus(0, 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantBase := []nbd.Descriptor{{2 * blk, 3}, {2 * blk, 0}, {1<<20 - 4*blk, 3}}
	wantDepth := []nbd.Descriptor{{2 * blk, 2}, {2 * blk, 1}, {1<<19 - 4*blk, 2}, {1 << 19, 0}}
	wantBitmap := []nbd.Descriptor{{65536, 0}, {2 * 65536, 1}, {12 * 65536, 0}, {65536, 1}}
	for id, want := range map[uint32][]nbd.Descriptor{0: wantBase, 1: wantDepth, 2: wantBitmap} {
		if got := st[id]; len(got) != len(want) || !equal(got, want) {
			t.Errorf("context %d: %v, want %v", id, got, want)
		}
	}
	st, _ = c.BlockStatus(blk, 65536, nbd.CmdFlagReqOne)
	if len(st[0]) != 1 || st[0][0] != (nbd.Descriptor{blk, 3}) || len(st[2]) != 1 || st[2][0] != (nbd.Descriptor{65536 - blk, 0}) {
		t.Errorf("REQ_ONE: %v", st)
	}
	if err := c.Command(nbd.CmdBlockStatus, 0, 0, 0); err == nil {
		t.Error("block status of zero bytes succeeded")
	}
}

func equal(a, b []nbd.Descriptor) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestExportLifecycle: a safe removal refuses an export in use, a hard one closes its
// clients; the export is deleted once nothing holds it; Stop removes everything.
func TestExportLifecycle(t *testing.T) {
	g := newRig(t, 0)
	c := g.dial()
	if err := c.Go("w"); err != nil {
		t.Fatal(err)
	}
	err := g.s.Remove("ew", false)
	if err == nil || err.Error() != "export 'ew' still in use" {
		t.Errorf("safe removal: %v", err)
	}
	if err := g.s.Remove("nope", false); err == nil || err.Error() != "Export 'nope' is not found" {
		t.Errorf("unknown: %v", err)
	}
	if err := g.s.Add(nbd.ExportConfig{ID: "x", Name: "w"}); err == nil || err.Error() != "NBD server already has export named 'w'" {
		t.Errorf("name in use: %v", err)
	}
	if err := g.s.Remove("ew", true); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-g.deleted:
		if id != "ew" {
			t.Errorf("deleted %s", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("export not deleted after its client was closed")
	}
	if _, err := c.ReadAt(make([]byte, 1), 0); err == nil {
		t.Error("the client survived a hard removal")
	}
	if err := g.s.Remove("er", false); err != nil {
		t.Fatal(err)
	}
	if id := <-g.deleted; id != "er" {
		t.Errorf("deleted %s", id)
	}
	if len(g.s.Exports()) != 0 {
		t.Errorf("exports left: %v", g.s.Exports())
	}
	if err := g.s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := g.s.Stop(); err == nil || err.Error() != "NBD server not running" {
		t.Errorf("second stop: %v", err)
	}
	if err := g.s.Add(nbd.ExportConfig{ID: "y", Name: "y"}); err == nil || !errors.Is(err, nbd.ErrNotRunning) {
		t.Errorf("add while stopped: %v", err)
	}
}

// TestStopWaits: Stop closes connected clients and returns once their exports are gone.
func TestStopWaits(t *testing.T) {
	g := newRig(t, 0)
	c := g.dial()
	if err := c.Go("w"); err != nil {
		t.Fatal(err)
	}
	if err := g.s.Stop(); err != nil {
		t.Fatal(err)
	}
	if len(g.deleted) != 2 {
		t.Errorf("%d exports deleted by Stop", len(g.deleted))
	}
}

// TestMaxConnections: beyond the limit, a client waits until another leaves.
func TestMaxConnections(t *testing.T) {
	g := newRig(t, 1)
	a := g.dial()
	got := make(chan *nbd.Client, 1)
	go func() {
		nc, err := net.Dial("unix", g.sock)
		if err != nil {
			got <- nil
			return
		}
		_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := nbd.NewClient(nc)
		if err != nil {
			got <- nil
			return
		}
		got <- c
	}()
	select {
	case <-got:
		t.Fatal("a second client was served beyond max-connections 1")
	case <-time.After(200 * time.Millisecond):
	}
	a.Close()
	select {
	case c := <-got:
		if c == nil {
			t.Fatal("second client failed")
		}
		c.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("the second client was never served")
	}
}

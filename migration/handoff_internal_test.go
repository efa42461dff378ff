package migration

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"tlcvm/migration/stream"
)

// slowSink records what it is written, in order; it blocks each write until released
// when gate is set, and fails from the failAt-th write on.
type slowSink struct {
	mu     sync.Mutex
	got    bytes.Buffer
	writes int
	failAt int
	gate   chan struct{}
}

var errSink = errors.New("sink failed")

func (s *slowSink) Write(p []byte) (int, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.failAt > 0 && s.writes >= s.failAt {
		return 0, errSink
	}
	return s.got.Write(p)
}

// TestHandoffWriter: buffers handed off come out in order, each exactly once, while the
// caller fills the other one; Write and Flush wait for the write in flight; a failed write
// is returned by the next call and stays.
func TestHandoffWriter(t *testing.T) {
	sink := &slowSink{gate: make(chan struct{})}
	h := newHandoffWriter(sink)
	a := append(make([]byte, 0, 16), "first "...)
	b, err := h.Handoff(a)
	if err != nil || cap(b) != 16 || len(b) != 0 {
		t.Fatalf("Handoff = len %d cap %d, %v; want an empty buffer of cap 16", len(b), cap(b), err)
	}
	b = append(b, "second "...)
	done := make(chan []byte)
	go func() {
		next, _ := h.Handoff(b) // waits: "first " is still being written
		done <- next
	}()
	sink.gate <- struct{}{} // "first " goes
	next := <-done
	if &next[:1][0] != &a[:1][0] {
		t.Error("the buffer given back is not the one written")
	}
	go func() { sink.gate <- struct{}{}; sink.gate <- struct{}{} }() // "second ", then Write's
	if _, err := h.Write([]byte("third")); err != nil {
		t.Fatal(err)
	}
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := sink.got.String(); got != "first second third" {
		t.Errorf("sink got %q", got)
	}
	h.close()

	// A failure: the next Handoff returns it, without taking its buffer, and so does
	// every later call.
	fail := &slowSink{failAt: 1}
	h = newHandoffWriter(fail)
	if _, err := h.Handoff([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handoff([]byte("y")); !errors.Is(err, errSink) {
		t.Errorf("Handoff after a failed write = %v", err)
	}
	if _, err := h.Write([]byte("z")); !errors.Is(err, errSink) {
		t.Errorf("Write after a failed write = %v", err)
	}
	if err := h.Flush(); !errors.Is(err, errSink) {
		t.Errorf("Flush after a failed write = %v", err)
	}
	h.close()
}

// TestHandoffStream: a stream written through a handoffWriter reads back exactly (the
// stream writer's CRC covers each buffer before it is handed off).
func TestHandoffStream(t *testing.T) {
	var out bytes.Buffer
	h := newHandoffWriter(&out)
	w := stream.NewWriter(h, "pc")
	const pages = 600 // > 2 MiB: several buffers
	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := w.RAMSetup([]stream.Block{{Name: "pc.ram", Size: pages * pageSize}}); err != nil {
		t.Fatal(err)
	}
	if err := w.RAMIterBegin(); err != nil {
		t.Fatal(err)
	}
	page := make([]byte, pageSize)
	for p := 0; p < pages; p++ {
		for i := range page {
			page[i] = byte(p + i)
		}
		if err := w.RAMPage("pc.ram", uint64(p)*pageSize, page); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.RAMIterEnd(); err != nil {
		t.Fatal(err)
	}
	if err := w.RAMComplete(); err != nil {
		t.Fatal(err)
	}
	if err := w.RAMIterEnd(); err != nil {
		t.Fatal(err)
	}
	if err := w.Device("dev", 0, 1, bytes.Repeat([]byte{7}, 3<<20)); err != nil { // a large state: Write
		t.Fatal(err)
	}
	if err := w.Finish(nil); err != nil {
		t.Fatal(err)
	}
	h.close()
	r := stream.NewReader(&out)
	n := 0
	var err error
	for {
		var rec stream.Record
		rec, err = r.Next()
		if err != nil {
			break
		}
		if rec.Kind == stream.Page {
			p := int(rec.Offset / pageSize)
			if rec.Data[1] != byte(p+1) {
				t.Fatalf("page %d holds %d", p, rec.Data[1])
			}
			n++
		}
		if rec.Kind == stream.End {
			if n != pages {
				t.Fatalf("%d pages read back, want %d", n, pages)
			}
			return
		}
	}
	t.Fatalf("stream did not verify: %d pages, error %v", n, err)
}

package input

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// TestNumbers: the key numbers libvirt sends (Linux keycodes through its qnum map) name
// QEMU's qcodes, and the way back; 0x37 is kp_multiply (QEMU's later qcode wins).
func TestNumbers(t *testing.T) {
	for _, c := range []struct {
		name string
		num  int
	}{{"a", 0x1e}, {"esc", 0x01}, {"ret", 0x1c}, {"kp_enter", 0x9c}, {"up", 0xc8}, {"meta_l", 0xdb}, {"pause", 0xc6}, {"f12", 0x58}} {
		q, ok := QCode(c.name)
		if !ok || QNum(q) != c.num || QCodeOfNum(int64(c.num)) != q {
			t.Errorf("%s: qcode %d num %#x, back %d", c.name, q, QNum(q), QCodeOfNum(int64(c.num)))
		}
	}
	if q, _ := QCode("kp_multiply"); QCodeOfNum(0x37) != q {
		t.Errorf("0x37 is %s", QKeyCodes[QCodeOfNum(0x37)])
	}
	if QCodeOfNum(300) != 0 || QCodeOfNum(-1) != 0 {
		t.Errorf("out-of-range numbers are not unmapped")
	}
}

func TestSet1(t *testing.T) {
	q := func(n string) int { c, _ := QCode(n); return c }
	for _, c := range []struct {
		key  string
		down bool
		want []byte
	}{
		{"a", true, []byte{0x1e}}, {"a", false, []byte{0x9e}},
		{"right", true, []byte{0xe0, 0x4d}}, {"right", false, []byte{0xe0, 0xcd}},
		{"pause", true, []byte{0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5}}, {"pause", false, nil},
		{"print", true, []byte{0xe0, 0x2a, 0xe0, 0x37}}, {"lang1", true, nil},
	} {
		if got := Set1(q(c.key), c.down); !bytes.Equal(got, c.want) {
			t.Errorf("%s %v: % x, want % x", c.key, c.down, got, c.want)
		}
	}
}

type rec struct {
	mu  sync.Mutex
	got []Event
}

func (r *rec) Mask() uint32 { return 1 << KindKey }
func (r *rec) Event(e Event) {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
}
func (r *rec) Sync() {}

// TestRouterQueue: send-key's order (presses, then releases in reverse), each after the
// delay before it; nothing while the VM does not run.
func TestRouterQueue(t *testing.T) {
	h := &rec{}
	running := true
	r := &Router{Running: func() bool { return running }}
	r.Register(h)
	for _, k := range []int{1, 2} {
		r.SendKey(k, true)
		r.KeyDelay(time.Millisecond)
	}
	for _, k := range []int{2, 1} {
		r.SendKey(k, false)
		r.KeyDelay(time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !r.Idle() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	h.mu.Lock()
	got := h.got
	h.mu.Unlock()
	want := []Event{{QCode: 1, Down: true}, {QCode: 2, Down: true}, {QCode: 2}, {QCode: 1}}
	if len(got) != len(want) {
		t.Fatalf("events %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	running = false
	r.SendKey(3, true)
	r.Send(Event{QCode: 4})
	if len(h.got) != 4 || !r.Idle() {
		t.Errorf("events sent while stopped: %+v", h.got)
	}
	if r.Has(KindAbs) || !r.Has(KindKey) {
		t.Errorf("Has")
	}
}

func TestKeysyms(t *testing.T) {
	for sym, want := range map[uint32]int{'a': 0x1e, 'A': 0x1e, '!': 0x02, ' ': 0x39, 0xff0d: 0x1c, 0xffbe: 0x3b, 0xffc9: 0x58, 0xff52: 0xc8, 0x20ac: 0} {
		if got := KeysymToNum(sym); got != want {
			t.Errorf("keysym %#x: %#x, want %#x", sym, got, want)
		}
	}
}

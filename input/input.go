package input

import (
	"sync"
	"time"
)

// Kind is QAPI's InputEventKind.
type Kind int

// The event kinds, in QAPI order (a handler's mask is 1<<Kind).
const (
	KindKey Kind = iota
	KindBtn
	KindRel
	KindAbs
)

var kindNames = [...]string{"key", "btn", "rel", "abs"}

func (k Kind) String() string { return kindNames[k] }

// Buttons are QAPI's InputButton values; Axes InputAxis's.
var (
	Buttons = []string{"left", "middle", "right", "wheel-up", "wheel-down", "side", "extra", "wheel-left", "wheel-right"}
	Axes    = []string{"x", "y"}
)

// Event is one InputEvent: a key (QCode, Down), a button (Button, Down), or a relative
// or absolute move (Axis, Value).
type Event struct {
	Kind   Kind
	QCode  int
	Button int
	Axis   int
	Value  int64
	Down   bool
}

// Handler is an input device (QEMU's QemuInputHandler): the kinds it takes, its events,
// and the sync that ends a batch.
type Handler interface {
	Mask() uint32 // 1<<Kind for each kind taken
	Event(e Event)
	Sync()
}

// QCode returns the qcode of a QKeyCode name.
func QCode(name string) (int, bool) {
	for i, n := range QKeyCodes {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// QNum is qemu_input_key_value_to_number for a qcode: the "number" (XT scancode set 1,
// 0x80 marking an 0xe0-prefixed key); 0 when the key has none.
func QNum(qcode int) int {
	if qcode < 0 || qcode >= len(qcodeToNum) {
		return 0
	}
	return int(qcodeToNum[qcode])
}

var numToQCode = func() (m [256]int) {
	for q := range qcodeToNum { // later qcodes win, as QEMU fills its table in qcode order
		if n := qcodeToNum[q]; n != 0 {
			m[n] = q
		}
	}
	return m
}()

// QCodeOfNum is qemu_input_key_number_to_qcode: 0 (unmapped) outside the table.
func QCodeOfNum(num int64) int {
	if num < 0 || num >= int64(len(numToQCode)) {
		return 0
	}
	return numToQCode[num]
}

// Set1 is the PS/2 keyboard's scancode set 1 sequence for a key (what the i8042 gives
// the guest with translation on, as QEMU's ps2_keyboard_event produces it): the number,
// 0xe0-prefixed for grey keys, with bit 7 set on release; pause is e1 1d 45 e1 9d c5 on
// press and nothing on release; print screen is e0 2a e0 37 / e0 b7 e0 aa. Unmapped keys
// give nothing.
func Set1(qcode int, down bool) []byte {
	switch QKeyCodes[qcode] {
	case "pause":
		if down {
			return []byte{0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5}
		}
		return nil
	case "print":
		if down {
			return []byte{0xe0, 0x2a, 0xe0, 0x37}
		}
		return []byte{0xe0, 0xb7, 0xe0, 0xaa}
	}
	n := QNum(qcode)
	if n == 0 {
		return nil
	}
	var out []byte
	if n&0x80 != 0 {
		out = append(out, 0xe0)
	}
	code := byte(n & 0x7f)
	if !down {
		code |= 0x80
	}
	return append(out, code)
}

// Router is QEMU's ui/input.c: it gives each event to the first handler that takes its
// kind, only while the VM runs (events sent while it does not are dropped, as QEMU
// does), and queues keys with delays for send-key's hold time.
type Router struct {
	// Running reports whether the VM runs (or is suspended): set before use.
	Running func() bool

	mu       sync.Mutex
	handlers []Handler // +checklocks:mu
	queue    []queued  // +checklocks:mu; keys and delays waiting (kbd_queue)
	// activated are the pointer handler ids mouse_set activated, oldest first; +checklocks:mu
	activated []int64
	timer     *time.Timer
}

type queued struct {
	delay time.Duration // a delay entry when > 0
	e     Event
}

// DefaultKeyDelay is kbd_default_delay_ms.
const DefaultKeyDelay = 10 * time.Millisecond

// queueLimit is QEMU's queue_limit of queued keyboard events.
const queueLimit = 1024

// Register adds a handler (the devices of the machine).
func (r *Router) Register(h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handlers = append(r.handlers, h)
}

// Has reports whether some handler takes kind (qemu_input_find_handler).
func (r *Router) Has(k Kind) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.find(k) != nil
}

func (r *Router) find(k Kind) Handler {
	for _, h := range r.handlers {
		if h.Mask()&(1<<k) != 0 {
			return h
		}
	}
	return nil
}

func (r *Router) running() bool { return r.Running == nil || r.Running() }

// Send is qemu_input_event_send plus a sync of the handler (qemu_input_event_sync).
func (r *Router) Send(events ...Event) {
	if !r.running() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sendLocked(events...)
}

func (r *Router) sendLocked(events ...Event) {
	synced := map[Handler]bool{}
	var order []Handler
	for _, e := range events {
		if h := r.find(e.Kind); h != nil {
			h.Event(e)
			if !synced[h] {
				synced[h] = true
				order = append(order, h)
			}
		}
	}
	for _, h := range order {
		h.Sync()
	}
}

// SendKey is qemu_input_event_send_key: at once when nothing is queued, else after what
// is.
func (r *Router) SendKey(qcode int, down bool) {
	e := Event{Kind: KindKey, QCode: qcode, Down: down}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 {
		if r.running() {
			r.sendLocked(e)
		}
		return
	}
	if len(r.queue) < queueLimit {
		r.queue = append(r.queue, queued{e: e})
	}
}

// KeyDelay is qemu_input_event_send_key_delay: later keys wait d (DefaultKeyDelay for
// 0); nothing while the VM does not run.
func (r *Router) KeyDelay(d time.Duration) {
	if !r.running() {
		return
	}
	if d <= 0 {
		d = DefaultKeyDelay
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) >= queueLimit {
		return
	}
	r.queue = append(r.queue, queued{delay: d})
	if len(r.queue) == 1 {
		r.timer = time.AfterFunc(d, r.process)
	}
}

// process is qemu_input_queue_process: the delay at the head is over; send the keys up
// to the next delay and arm its timer.
func (r *Router) process() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 {
		return
	}
	r.queue = r.queue[1:] // the delay that expired
	for len(r.queue) > 0 {
		q := r.queue[0]
		if q.delay > 0 {
			r.timer = time.AfterFunc(q.delay, r.process)
			return
		}
		r.queue = r.queue[1:]
		if r.running() {
			r.sendLocked(q.e)
		}
	}
}

// Idle reports whether no queued key waits (tests wait for it with a deadline).
func (r *Router) Idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue) == 0
}

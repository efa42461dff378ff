package iothread

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

// Sentinel errors; the texts are QEMU's.
var (
	// ErrParam wraps a parameter value QEMU refuses.
	ErrParam = errors.New("iothread: bad parameter")
	// ErrNotFound wraps an id that names no iothread.
	ErrNotFound = errors.New("iothread: not found")
	// ErrDuplicate wraps an id already taken.
	ErrDuplicate = errors.New("iothread: duplicate id")
)

// Param names, as QOM properties, in qom-list's order.
const (
	ThreadPoolMin = "thread-pool-min"
	AIOMaxBatch   = "aio-max-batch"
	ThreadPoolMax = "thread-pool-max"
	PollMaxNS     = "poll-max-ns"
	PollGrow      = "poll-grow"
	PollShrink    = "poll-shrink"
)

// Params lists the parameter names in qom-list's order.
var Params = []string{ThreadPoolMin, AIOMaxBatch, ThreadPoolMax, PollMaxNS, PollGrow, PollShrink}

// defaults are the parameters of a new iothread (EVENT_LOOP_BACKEND_POLL_MAX_NS_DEFAULT,
// THREAD_POOL_MAX_THREADS_DEFAULT).
var defaults = map[string]int64{PollMaxNS: 32768, ThreadPoolMax: 64}

// Info is one thread as query-iothreads reports it.
type Info struct {
	ID                                           string
	ThreadID                                     int
	PollMaxNS, PollGrow, PollShrink, AIOMaxBatch int64
}

// Thread is one iothread.
type Thread struct {
	id   string
	tid  int
	work chan func() // closed by stop: the loop returns and the thread ends
	done chan struct{}

	mu     sync.Mutex
	params map[string]int64 // +checklocks:mu
}

// ID is the thread's object id.
func (t *Thread) ID() string { return t.id }

// Get returns a parameter (ok false for an unknown name).
func (t *Thread) Get(name string) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.params[name]
	return v, ok
}

// Set is qom-set of a parameter, with QEMU's errors (see the package doc).
func (t *Thread) Set(name string, v int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.params[name]; !ok {
		return fmt.Errorf("%w: %s", ErrParam, name)
	}
	if v < 0 {
		return qerror.Errorf(ErrParam, "%s value must be in range [0, %d]", name, int64(math.MaxInt64))
	}
	t.params[name] = v
	if name == ThreadPoolMin || name == ThreadPoolMax {
		return checkPool(t.params)
	}
	return nil
}

// checkPool is aio_context_set_thread_pool_params's check.
func checkPool(p map[string]int64) error {
	lo, hi := p[ThreadPoolMin], p[ThreadPoolMax]
	if lo > hi || hi == 0 || lo > math.MaxInt32 || hi > math.MaxInt32 {
		return qerror.New(ErrParam, "bad thread-pool-min/thread-pool-max values")
	}
	return nil
}

// Info returns what query-iothreads reports of the thread.
func (t *Thread) Info() Info {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Info{ID: t.id, ThreadID: t.tid, PollMaxNS: t.params[PollMaxNS], PollGrow: t.params[PollGrow],
		PollShrink: t.params[PollShrink], AIOMaxBatch: t.params[AIOMaxBatch]}
}

// Do runs f on the thread's loop and returns once it has run. It must not be called
// after the thread is deleted.
func (t *Thread) Do(f func()) {
	ran := make(chan struct{})
	t.work <- func() {
		defer close(ran)
		f()
	}
	<-ran
}

// loop is the thread: locked to its OS thread until it returns, which ends the thread.
func (t *Thread) loop(name string, started chan<- int) {
	runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
	if unix.Gettid() == unix.Getpid() {
		// The main thread: leave it locked to this goroutine's end and start again on
		// another (the runtime keeps the main thread; it never exits it).
		go t.loop(name, started)
		return
	}
	if name != "" {
		b := append([]byte(name), 0)
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
	}
	started <- unix.Gettid()
	defer close(t.done)
	for f := range t.work {
		f()
	}
}

// stop ends the loop and joins the thread.
func (t *Thread) stop() {
	close(t.work)
	<-t.done
}

// Set is the machine's iothreads, in creation order (QEMU's /objects order for them).
type Set struct {
	debugNames bool // name threads "IO <id>" (-name debug-threads=on)

	mu      sync.Mutex
	threads []*Thread // +checklocks:mu
}

// NewSet returns an empty set; debugNames names the threads as QEMU does with
// -name debug-threads=on.
func NewSet(debugNames bool) *Set { return &Set{debugNames: debugNames} }

// Prop is one creation parameter.
type Prop struct {
	Name  string
	Value int64
}

// Add creates and starts an iothread with the given parameters (applied in order, each
// with Set's checks, then the pool check), and returns once its thread runs. The id must
// be free in the caller's /objects; Add refuses only an id of another iothread.
func (s *Set) Add(id string, props []Prop) (*Thread, error) {
	t := &Thread{id: id, params: map[string]int64{}, work: make(chan func()), done: make(chan struct{})}
	for _, n := range Params {
		t.params[n] = defaults[n]
	}
	for _, p := range props {
		if _, ok := t.params[p.Name]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrParam, p.Name)
		}
		if p.Value < 0 {
			return nil, qerror.Errorf(ErrParam, "%s value must be in range [0, %d]", p.Name, int64(math.MaxInt64))
		}
		t.params[p.Name] = p.Value
	}
	if err := checkPool(t.params); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.threads {
		if o.id == id {
			return nil, qerror.Errorf(ErrDuplicate, "attempt to add duplicate property '%s' to object (type 'container')", id)
		}
	}
	name := ""
	if s.debugNames {
		name = "IO " + id
	}
	started := make(chan int)
	go t.loop(name, started)
	t.tid = <-started
	s.threads = append(s.threads, t)
	return t, nil
}

// Get returns the iothread with the id.
func (s *Set) Get(id string) (*Thread, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.threads {
		if t.id == id {
			return t, true
		}
	}
	return nil, false
}

// Del stops and joins an iothread and forgets it.
func (s *Set) Del(id string) error {
	s.mu.Lock()
	var t *Thread
	for i, o := range s.threads {
		if o.id == id {
			t = o
			s.threads = append(s.threads[:i:i], s.threads[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if t == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	t.stop()
	return nil
}

// List returns the iothreads in creation order.
func (s *Set) List() []*Thread {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Thread(nil), s.threads...)
}

// Close stops and joins every iothread.
func (s *Set) Close() {
	s.mu.Lock()
	l := s.threads
	s.threads = nil
	s.mu.Unlock()
	for _, t := range l {
		t.stop()
	}
}

package machine_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"tlcvm/machine"
)

type event struct {
	Name string
	Data any
}

// sink records events and lets a test block until a given one arrives.
type sink struct {
	mu     sync.Mutex
	events []event
	ch     chan event
}

func newSink() *sink { return &sink{ch: make(chan event, 1024)} }

func (s *sink) Emit(name string, data any) {
	s.mu.Lock()
	s.events = append(s.events, event{name, data})
	s.mu.Unlock()
	s.ch <- event{name, data}
}

// take returns and clears the recorded events.
func (s *sink) take() []event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	for len(s.ch) > 0 {
		<-s.ch
	}
	return out
}

// waitFor blocks until an event named name arrives (the test's timeout bounds it).
func (s *sink) waitFor(name string) event {
	for e := range s.ch {
		if e.Name == name {
			return e
		}
	}
	panic("unreachable")
}

// lineWriter collects serial output and signals each line containing a marker.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	mark  string
	found chan string
}

func newLineWriter(mark string) *lineWriter {
	return &lineWriter{mark: mark, found: make(chan string, 64)}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.mark != "" && strings.Contains(string(p), w.mark) {
		select {
		case w.found <- string(p):
		default:
		}
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func names(evs []event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return out
}

func newMachine(t testing.TB, cfg machine.Config) *machine.Machine {
	t.Helper()
	if cfg.Type == "" {
		cfg.Type = "pc-i440fx-7.2"
	}
	if cfg.RAMSize == 0 && cfg.Type != "none" {
		cfg.RAMSize = 64 << 20
	}
	m, err := machine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func idle() map[string][]byte { return map[string][]byte{machine.WorkloadKey: []byte("idle")} }

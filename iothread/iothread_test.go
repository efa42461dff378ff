package iothread_test

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/iothread"
)

func TestThreadLifecycle(t *testing.T) {
	s := iothread.NewSet(true)
	defer s.Close()
	th, err := s.Add("iothread1", nil)
	if err != nil {
		t.Fatal(err)
	}
	info := th.Info()
	want := iothread.Info{ID: "iothread1", ThreadID: info.ThreadID, PollMaxNS: 32768}
	if info != want || info.ThreadID == unix.Getpid() {
		t.Fatalf("info %+v, want %+v", info, want)
	}
	task := fmt.Sprintf("/proc/self/task/%d/comm", info.ThreadID)
	comm, err := os.ReadFile(task)
	if err != nil || strings.TrimSpace(string(comm)) != "IO iothread1" {
		t.Fatalf("thread %d: %q, %v", info.ThreadID, comm, err)
	}
	var on int
	th.Do(func() { on = unix.Gettid() })
	if on != info.ThreadID {
		t.Errorf("Do ran on %d, the thread is %d", on, info.ThreadID)
	}
	if _, err := s.Add("iothread2", []iothread.Prop{{Name: iothread.PollMaxNS, Value: 100}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range s.List() {
		ids = append(ids, x.ID())
	}
	if !reflect.DeepEqual(ids, []string{"iothread1", "iothread2"}) {
		t.Errorf("list %v", ids)
	}
	if err := s.Del("iothread1"); err != nil {
		t.Fatal(err)
	}
	// The goroutine's thread ends once the locked goroutine has returned.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d still exists after Del", info.ThreadID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Del("iothread1"); !errors.Is(err, iothread.ErrNotFound) {
		t.Errorf("second Del: %v", err)
	}
}

func TestParams(t *testing.T) {
	s := iothread.NewSet(false)
	defer s.Close()
	for _, c := range []struct {
		props []iothread.Prop
		err   string
	}{
		{[]iothread.Prop{{Name: iothread.PollGrow, Value: -1}}, "poll-grow value must be in range [0, 9223372036854775807]"},
		{[]iothread.Prop{{Name: iothread.ThreadPoolMin, Value: 5}, {Name: iothread.ThreadPoolMax, Value: 2}},
			"bad thread-pool-min/thread-pool-max values"},
		{[]iothread.Prop{{Name: iothread.ThreadPoolMax, Value: 0}}, "bad thread-pool-min/thread-pool-max values"},
	} {
		_, err := s.Add("x", c.props)
		if err == nil || err.Error() != c.err || !errors.Is(err, iothread.ErrParam) {
			t.Errorf("Add(%v) = %v, want %q", c.props, err, c.err)
		}
	}
	th, err := s.Add("io", nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		v    int64
		err  string
		want int64
	}{
		{iothread.PollMaxNS, 100, "", 100},
		{iothread.AIOMaxBatch, -1, "aio-max-batch value must be in range [0, 9223372036854775807]", 0},
		{iothread.ThreadPoolMin, 100, "bad thread-pool-min/thread-pool-max values", 100}, // stored anyway
		{iothread.ThreadPoolMax, 200, "", 200},
		{iothread.ThreadPoolMax, 1 << 31, "bad thread-pool-min/thread-pool-max values", 1 << 31},
	}
	for _, st := range steps {
		err := th.Set(st.name, st.v)
		if (err == nil) != (st.err == "") || err != nil && err.Error() != st.err {
			t.Errorf("Set(%s, %d) = %v, want %q", st.name, st.v, err, st.err)
		}
		if got, _ := th.Get(st.name); got != st.want {
			t.Errorf("%s = %d after Set(%d), want %d", st.name, got, st.v, st.want)
		}
	}
	if info := th.Info(); info.PollMaxNS != 100 || info.AIOMaxBatch != 0 {
		t.Errorf("info %+v", info)
	}
}

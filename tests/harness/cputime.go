package harness

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat (100 on Linux).
const clockTicks = 100

// CPUTime is the CPU time (user + system) a process has used, all its threads together
// (tid 0), or one of its threads (tid: a thread id from query-cpus-fast), read from
// /proc/PID/stat or /proc/PID/task/TID/stat as libvirt reads a vCPU's time.
func CPUTime(pid, tid int) (time.Duration, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	if tid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no ')' in %q", path, s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is the state (field 3): utime is field 14
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields", path, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: utime %q stime %q", path, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// CPUShare is the share of one core the process (tid 0) or thread used over d: CPU time
// used during d, divided by d.
func CPUShare(pid, tid int, d time.Duration) (float64, error) {
	a, err := CPUTime(pid, tid)
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	b, err := CPUTime(pid, tid)
	if err != nil {
		return 0, err
	}
	return float64(b-a) / float64(d), nil
}

// OnCPU0 runs start (which starts a process) on a thread whose CPU affinity is host CPU 0
// alone, so that the process inherits it, as `taskset -c 0` would give it.
func OnCPU0(start func() error) error {
	errc := make(chan error, 1)
	go func() {
		// This goroutine's thread is given a new affinity and thrown away with it: a
		// goroutine that ends locked takes its thread with it.
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(0)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			errc <- fmt.Errorf("sched_setaffinity: %w", err)
			return
		}
		errc <- start()
	}()
	return <-errc
}

package migration

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The checkpoint thread runs on its own OS thread, pinned to one CPU: x-checkpoint-cpu
// when set, else the highest CPU the process may use when it may use more than one. When
// the process has more CPUs than vCPUs, the vCPU threads are kept off that CPU for the
// checkpoint's duration (their masks are restored afterwards), so it runs no vCPU — the
// seed's "idle processor".

// allowedCPUs lists the CPUs in the calling thread's affinity mask.
func allowedCPUs() ([]int, unix.CPUSet, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, set, err
	}
	var out []int
	for c := 0; c < 1024 && len(out) < set.Count(); c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out, set, nil
}

// chooseCPU picks the checkpoint thread's CPU (-1: do not pin).
func (j *job) chooseCPU() (int, error) {
	cpus, set, err := allowedCPUs()
	if err != nil {
		return -1, nil
	}
	if j.wantCPU >= 0 {
		if j.wantCPU >= 1024 || !set.IsSet(j.wantCPU) {
			return -1, errorf(ErrInvalid, "Parameter 'x-checkpoint-cpu' expects a CPU this process may run on")
		}
		return j.wantCPU, nil
	}
	if len(cpus) < 2 {
		return -1, nil
	}
	return cpus[len(cpus)-1], nil
}

// pin binds the calling (locked) thread to j.cpu and moves the vCPU threads off it when
// there is room; the returned function restores the vCPUs' masks.
func (j *job) pin() (restore func()) {
	restore = func() {}
	if j.cpu < 0 {
		return
	}
	var one unix.CPUSet
	one.Set(j.cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		j.e.log.Debug().Err(err).Int("cpu", j.cpu).Msg("cannot pin the checkpoint thread")
		j.cpu = -1
		return
	}
	cpus, set, err := allowedCPUs2()
	tids := j.e.m.VCPUThreads()
	if err != nil || len(cpus) <= len(tids) || j.wantCPU >= 0 {
		return
	}
	others := set
	others.Clear(j.cpu)
	type saved struct {
		tid  int
		mask unix.CPUSet
	}
	var old []saved
	for _, tid := range tids {
		var m unix.CPUSet
		if tid <= 0 || unix.SchedGetaffinity(tid, &m) != nil {
			continue
		}
		if unix.SchedSetaffinity(tid, &others) == nil {
			old = append(old, saved{tid, m})
		}
	}
	return func() {
		for _, s := range old {
			_ = unix.SchedSetaffinity(s.tid, &s.mask)
		}
	}
}

// allowedCPUs2 is the process's mask (the main thread's), since the calling thread was
// just pinned.
func allowedCPUs2() ([]int, unix.CPUSet, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(unix.Getpid(), &set); err != nil {
		return nil, set, err
	}
	var out []int
	for c := 0; c < 1024 && len(out) < set.Count(); c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out, set, nil
}

// currentCPU is getcpu(2): the CPU the calling thread runs on (-1 on error).
func currentCPU() int {
	var cpu uint32
	if _, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); errno != 0 {
		return -1
	}
	return int(cpu)
}

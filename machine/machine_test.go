package machine_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlcvm/machine"
)

type step struct {
	op      string // stop cont reset powerdown
	want    string // state after
	events  []string
	errText string
}

// TestOpsPerState replays sequences recorded against QEMU 7.2 (qemu-system-x86_64
// -machine pc -m 256 -nodefaults -display none -qmp stdio [-S|-incoming defer]).
func TestOpsPerState(t *testing.T) {
	cases := []struct {
		name  string
		cfg   machine.Config
		steps []step
	}{
		{"-S", machine.Config{StartPaused: true}, []step{
			{"status", "prelaunch", nil, ""},
			{"stop", "prelaunch", nil, ""},
			{"cont", "running", []string{"RESUME"}, ""},
			{"cont", "running", nil, ""},
			{"stop", "paused", []string{"STOP"}, ""},
			{"stop", "paused", nil, ""},
			{"reset", "prelaunch", []string{"RESET"}, ""},
			{"powerdown", "prelaunch", []string{"POWERDOWN"}, ""},
			{"cont", "running", []string{"RESUME"}, ""},
			{"reset", "running", []string{"RESET"}, ""},
		}},
		{"autostart", machine.Config{}, []step{
			{"status", "running", []string{"RESUME"}, ""},
			{"stop", "paused", []string{"STOP"}, ""},
			{"cont", "running", []string{"RESUME"}, ""},
		}},
		{"incoming", machine.Config{Incoming: true}, []step{
			{"status", "inmigrate", nil, ""},
			{"stop", "inmigrate", nil, ""},
			{"cont", "inmigrate", nil, ""},
			{"reset", "inmigrate", []string{"RESET"}, ""},
			{"powerdown", "inmigrate", []string{"POWERDOWN"}, ""},
		}},
		{"-no-reboot -no-shutdown -S", machine.Config{StartPaused: true, NoReboot: true, NoShutdown: true}, []step{
			{"reset", "prelaunch", []string{"SHUTDOWN"}, ""},
			{"cont", "running", []string{"RESUME"}, ""},
			{"reset", "shutdown", []string{"SHUTDOWN", "STOP"}, ""},
			{"cont", "shutdown", nil, "Resetting the Virtual Machine is required"},
			{"stop", "shutdown", nil, ""},
			{"powerdown", "shutdown", []string{"POWERDOWN"}, ""},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSink()
			c.cfg.Events = s
			c.cfg.FwCfg = idle()
			m := newMachine(t, c.cfg)
			m.Start()
			for i, st := range c.steps {
				var err error
				switch st.op {
				case "stop":
					err = m.Stop()
				case "cont":
					err = m.Cont()
				case "reset":
					m.Reset(machine.CauseHostQMPSystemReset)
				case "powerdown":
					m.Powerdown()
				}
				if st.errText == "" && err != nil || st.errText != "" && (err == nil || err.Error() != st.errText) {
					t.Errorf("step %d %s: err %v, want %q", i, st.op, err, st.errText)
				}
				if got, running := m.Status(); got.String() != st.want || running != (st.want == "running") {
					t.Errorf("step %d %s: state %s, want %s", i, st.op, got, st.want)
				}
				if got := names(s.take()); !reflect.DeepEqual(got, st.events) {
					t.Errorf("step %d %s: events %v, want %v", i, st.op, got, st.events)
				}
			}
		})
	}
}

func TestEventData(t *testing.T) {
	s := newSink()
	m := newMachine(t, machine.Config{StartPaused: true, NoReboot: true, NoShutdown: true, Events: s, FwCfg: idle()})
	m.Start()
	m.Reset(machine.CauseHostQMPSystemReset)
	evs := s.take()
	if len(evs) != 1 || !reflect.DeepEqual(evs[0].Data, machine.ShutdownEvent{Guest: false, Reason: "host-qmp-system-reset"}) {
		t.Fatalf("events %+v", evs)
	}
	m2 := newMachine(t, machine.Config{StartPaused: true, Events: s, FwCfg: idle()})
	m2.Start()
	m2.Reset(machine.CauseGuestReset)
	evs = s.take()
	if len(evs) != 1 || evs[0].Name != "RESET" || !reflect.DeepEqual(evs[0].Data, machine.ResetEvent{Guest: true, Reason: "guest-reset"}) {
		t.Fatalf("events %+v", evs)
	}
}

func TestQuitAndSignal(t *testing.T) {
	for _, c := range []struct {
		name string
		do   func(*machine.Machine)
		data machine.ShutdownEvent
	}{
		{"quit", (*machine.Machine).Quit, machine.ShutdownEvent{Guest: false, Reason: "host-qmp-quit"}},
		{"signal", (*machine.Machine).HostSignal, machine.ShutdownEvent{Guest: false, Reason: "host-signal"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSink()
			// -no-shutdown does not keep quit/signal alive
			m := newMachine(t, machine.Config{NoShutdown: true, Events: s, FwCfg: idle()})
			m.Start()
			s.take()
			c.do(m)
			<-m.Done()
			evs := s.take()
			if len(evs) != 1 || evs[0].Name != "SHUTDOWN" || !reflect.DeepEqual(evs[0].Data, c.data) {
				t.Fatalf("events %+v", evs)
			}
			if st, _ := m.Status(); st != machine.StateShutdown {
				t.Errorf("state %s after exit, want shutdown", st)
			}
		})
	}
}

// TestPowerdown: the running guest notices the ACPI button, prints and powers off.
func TestPowerdown(t *testing.T) {
	for _, noShutdown := range []bool{true, false} {
		t.Run(map[bool]string{true: "-no-shutdown", false: "exit"}[noShutdown], func(t *testing.T) {
			s := newSink()
			out := newLineWriter("tlcvm guest:")
			m := newMachine(t, machine.Config{NoShutdown: noShutdown, Events: s, Serial: out,
				FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=1M,rate=1M")}, CPUs: 2})
			m.Start()
			<-out.found // booted: banner printed
			s.take()
			m.Powerdown()
			e := s.waitFor("SHUTDOWN")
			if !reflect.DeepEqual(e.Data, machine.ShutdownEvent{Guest: true, Reason: "guest-shutdown"}) {
				t.Fatalf("SHUTDOWN data %+v", e.Data)
			}
			if noShutdown {
				s.waitFor("STOP")
				if st, _ := m.Status(); st != machine.StateShutdown {
					t.Fatalf("state %s", st)
				}
				if err := m.Cont(); !errors.Is(err, machine.ErrNeedsReset) {
					t.Fatalf("cont: %v", err)
				}
				m.Reset(machine.CauseHostQMPSystemReset)
				if st, _ := m.Status(); st != machine.StatePrelaunch {
					t.Fatalf("after reset: %s", st)
				}
			} else {
				<-m.Done()
			}
			if !strings.Contains(out.String(), "powering off\r\n") {
				t.Errorf("serial: %q", out.String())
			}
		})
	}
}

func TestFinishMigrate(t *testing.T) {
	s := newSink()
	m := newMachine(t, machine.Config{Events: s, FwCfg: idle()})
	m.Start()
	s.take()
	was, err := m.EnterFinishMigrate()
	if err != nil || !was {
		t.Fatal(was, err)
	}
	if err := m.Cont(); err == nil || err.Error() != "Migration is not finalized yet" {
		t.Fatalf("cont in finish-migrate: %v", err)
	}
	if got := names(s.take()); !reflect.DeepEqual(got, []string{"STOP"}) {
		t.Fatal(got)
	}
	if err := m.LeaveFinishMigrate(true); err != nil {
		t.Fatal(err)
	}
	if got := names(s.take()); !reflect.DeepEqual(got, []string{"RESUME"}) {
		t.Fatal(got)
	}
	if _, err := m.EnterFinishMigrate(); err != nil {
		t.Fatal(err)
	}
	if err := m.LeaveFinishMigrate(false); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status(); st != machine.StatePostMigrate {
		t.Fatal(st)
	}
	s.take()
	if err := m.Cont(); err != nil { // QEMU: cont after migration runs the source again
		t.Fatal(err)
	}
	if got := names(s.take()); !reflect.DeepEqual(got, []string{"RESUME"}) {
		t.Fatal(got)
	}
	if err := m.LeaveFinishMigrate(true); !errors.Is(err, machine.ErrInvalidTransition) {
		t.Fatal(err)
	}
}

func TestIncomingDone(t *testing.T) {
	for _, c := range []struct {
		name      string
		stop      bool
		src       machine.RunState
		known     bool
		want      machine.RunState
		wantEvent []string
	}{
		{"running-autostart", false, machine.StateRunning, true, machine.StateRunning, []string{"RESUME"}},
		{"running-stopped", true, machine.StateRunning, true, machine.StatePaused, nil},
		{"unknown", false, 0, false, machine.StateRunning, []string{"RESUME"}},
		{"never-started", false, machine.StatePrelaunch, true, machine.StatePrelaunch, nil},
		{"paused", false, machine.StatePaused, true, machine.StatePaused, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSink()
			m := newMachine(t, machine.Config{Incoming: true, Events: s, FwCfg: idle()})
			m.Start()
			if c.stop {
				_ = m.Stop()
			}
			if err := m.IncomingDone(c.src, c.known); err != nil {
				t.Fatal(err)
			}
			if st, _ := m.Status(); st != c.want {
				t.Fatalf("state %s, want %s", st, c.want)
			}
			if got := names(s.take()); !reflect.DeepEqual(got, c.wantEvent) {
				t.Fatalf("events %v", got)
			}
		})
	}
}

// TestStopParksVCPUs: Stop returns only when no vCPU executes: the guest's counters and
// registers do not move while paused, and do after cont.
func TestStopParksVCPUs(t *testing.T) {
	m := newMachine(t, machine.Config{CPUs: 2, FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=2M,rate=max")}})
	m.Start()
	for cpu := 0; cpu < 2; cpu++ { // both vCPUs are rewriting pages
		for m.CPUStateOf(cpu).Regs[machine.R8] <= 2000 {
			runtime.Gosched()
		}
	}
	for i := 0; i < 20; i++ {
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
		a0, a1 := m.CPUStateOf(0), m.CPUStateOf(1)
		clk := m.GuestClock()
		b0, b1 := m.CPUStateOf(0), m.CPUStateOf(1)
		if a0 != b0 || a1 != b1 || clk != m.GuestClock() {
			t.Fatal("vCPU state moved while paused")
		}
		if err := m.Cont(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestThreadsAndCPUs(t *testing.T) {
	m := newMachine(t, machine.Config{CPUs: 8, Sockets: 2, Dies: 2, Cores: 2, Threads: 1, MaxCPUs: 8,
		DebugThreads: true, StartPaused: true, FwCfg: idle()})
	cpus := m.CPUs()
	// query-cpus-fast of QEMU 7.2 for -smp 8,sockets=2,dies=2,cores=2,threads=1
	want := []struct {
		path    string
		s, d, c int
	}{
		{"/machine/unattached/device[0]", 0, 0, 0}, {"/machine/unattached/device[2]", 0, 0, 1},
		{"/machine/unattached/device[3]", 0, 1, 0}, {"/machine/unattached/device[4]", 0, 1, 1},
		{"/machine/unattached/device[5]", 1, 0, 0}, {"/machine/unattached/device[6]", 1, 0, 1},
		{"/machine/unattached/device[7]", 1, 1, 0}, {"/machine/unattached/device[8]", 1, 1, 1},
	}
	if len(cpus) != len(want) {
		t.Fatalf("%d CPUs", len(cpus))
	}
	for i, c := range cpus {
		w := want[i]
		if c.QOMPath != w.path || c.Props != (machine.CPUProps{SocketID: w.s, DieID: w.d, CoreID: w.c, HasDie: true, NodeID: -1}) ||
			!c.Plugged || c.Type != "qemu64-x86_64-cpu" || c.Index != i {
			t.Errorf("cpu %d: %+v", i, c)
		}
		comm, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(c.ThreadID) + "/comm")
		if err != nil || string(comm) != "CPU "+strconv.Itoa(i)+"/TCG\n" {
			t.Errorf("cpu %d thread %d comm %q %v", i, c.ThreadID, comm, err)
		}
	}
	m2 := newMachine(t, machine.Config{CPUs: 2, MaxCPUs: 4, StartPaused: true, FwCfg: idle()})
	c2 := m2.CPUs()
	if len(c2) != 4 || !c2[1].Plugged || c2[2].Plugged || c2[2].QOMPath != "" || c2[3].Props.CoreID != 3 || c2[3].Props.HasDie {
		t.Errorf("maxcpus: %+v", c2)
	}
	if none := newMachine(t, machine.Config{Type: "none"}); len(none.CPUs()) != 0 || none.Registers(0) != "" {
		t.Error("machine none has CPUs")
	}
}

// TestResetReboots: a reset of a running guest restarts the workload from its boot.
func TestResetReboots(t *testing.T) {
	out := newLineWriter("workload")
	m := newMachine(t, machine.Config{Serial: out, FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=1M,rate=1M")}})
	m.Start()
	<-out.found
	m.Reset(machine.CauseHostQMPSystemReset)
	<-out.found // the banner again
	if st, _ := m.Status(); st != machine.StateRunning {
		t.Fatalf("state %s", st)
	}
	if n := strings.Count(out.String(), "tlcvm guest: 1 vCPU(s), 64 MiB RAM, workload ws=1M,rate=1M\r\n"); n != 2 {
		t.Fatalf("%d banners: %q", n, out.String())
	}
}

// A checkpoint that keeps the VM (x-tlc) returns it to the state it had: running again,
// or still paused, or still prelaunch.
func TestReturnFromFinishMigrate(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(m *machine.Machine)
		want  machine.RunState
		evs   []string
	}{
		{"running", func(m *machine.Machine) { m.Start() }, machine.StateRunning, []string{"STOP", "RESUME"}},
		{"paused", func(m *machine.Machine) { m.Start(); m.Stop() }, machine.StatePaused, nil},
		{"prelaunch", func(*machine.Machine) {}, machine.StatePrelaunch, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSink()
			cfg := machine.Config{Events: s, FwCfg: idle(), StartPaused: c.name == "prelaunch"}
			m := newMachine(t, cfg)
			c.setup(m)
			s.take()
			if _, err := m.EnterFinishMigrate(); err != nil {
				t.Fatal(err)
			}
			if err := m.ReturnFromFinishMigrate(); err != nil {
				t.Fatal(err)
			}
			if st, _ := m.Status(); st != c.want {
				t.Fatalf("state %s, want %s", st, c.want)
			}
			if got := names(s.take()); !reflect.DeepEqual(got, c.evs) {
				t.Fatalf("events %v, want %v", got, c.evs)
			}
			if err := m.ReturnFromFinishMigrate(); err == nil {
				t.Fatal("second return from finish-migrate accepted")
			}
		})
	}
}

// threadCPU is the CPU time of this process's threads tids, from /proc/self/task/TID/stat
// (utime + stime, in clock ticks of 10 ms).
func threadCPU(t *testing.T, tids []int) time.Duration {
	t.Helper()
	var sum time.Duration
	for _, tid := range tids {
		b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		ut, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		sum += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return sum
}

// TestParkedVCPUsSleep: parked vCPU threads use no CPU, in prelaunch and after a stop,
// whatever their number (the wake-up rules in vcpu.go). Before those rules, 8 parked vCPUs
// woke each other forever and took a whole core.
func TestParkedVCPUsSleep(t *testing.T) {
	m := newMachine(t, machine.Config{CPUs: 8, MaxCPUs: 8, StartPaused: true,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=8M,rate=max")}})
	var tids []int
	for _, c := range m.CPUs() {
		tids = append(tids, c.ThreadID)
	}
	m.Start()
	check := func(state string) {
		t.Helper()
		const window = time.Second
		before := threadCPU(t, tids)
		time.Sleep(window)
		// Generous: the target is 0; a tick or two of accounting noise is allowed.
		if used := threadCPU(t, tids) - before; used > window/20 {
			t.Errorf("%s: 8 parked vCPU threads used %v of CPU in %v", state, used, window)
		}
	}
	check("prelaunch")
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	check("paused")
}

// TestCPUThrottle: at 99 % a vCPU running the unpaced workload runs 10 ms a second, so
// it does a small fraction of the work it does unthrottled (the margin, a factor of 5
// where 100 is expected, leaves room for a loaded host), and it still stops at once.
func TestCPUThrottle(t *testing.T) {
	m := newMachine(t, machine.Config{RAMSize: 32 << 20, CPUs: 1,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=4M,rate=max")}})
	m.Start()
	written := func() uint64 {
		b := make([]byte, 8)
		if err := m.ReadPhys(0x508, b); err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(b)
	}
	measure := func() float64 {
		a, t0 := written(), time.Now()
		time.Sleep(300 * time.Millisecond)
		return float64(written()-a) / time.Since(t0).Seconds()
	}
	deadline := time.Now().Add(10 * time.Second)
	for written() < 2000 {
		if time.Now().After(deadline) {
			t.Fatal("the workload does not run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	free := measure()
	m.SetCPUThrottle(99)
	if m.CPUThrottle() != 99 {
		t.Fatalf("throttle %d", m.CPUThrottle())
	}
	time.Sleep(20 * time.Millisecond) // the current timeslice ends
	throttled := measure()
	if throttled*5 > free {
		t.Errorf("99%% throttle: %.0f pages/s, unthrottled %.0f", throttled, free)
	}
	if err := m.Stop(); err != nil { // parks although the vCPUs sleep in their throttle
		t.Fatal(err)
	}
	m.SetCPUThrottle(0)
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	if again := measure(); again < throttled {
		t.Errorf("lifted: %.0f pages/s, throttled %.0f", again, throttled)
	}
}

// trays counts the guest's LockTrays calls.
type trays struct{ locks chan struct{} }

func (tr trays) LockTrays() { tr.locks <- struct{}{} }

// TestGuestLocksTrays: with the workload's cdlock the guest locks the CD-ROM trays at every
// boot, after its banner; without it, never.
func TestGuestLocksTrays(t *testing.T) {
	for _, w := range []string{"idle,cdlock", "idle"} {
		out := newLineWriter("tlcvm guest:")
		tr := trays{locks: make(chan struct{}, 4)}
		m := newMachine(t, machine.Config{Serial: out, Media: tr, FwCfg: map[string][]byte{machine.WorkloadKey: []byte(w)}})
		m.Start()
		for boot := 0; boot < 2; boot++ {
			if boot > 0 {
				m.Reset(machine.CauseHostQMPSystemReset)
			}
			<-out.found
			if w == "idle" {
				continue
			}
			select {
			case <-tr.locks:
			case <-time.After(30 * time.Second): // a deadline, not a timing assertion
				t.Fatalf("%s: boot %d locked no tray", w, boot)
			}
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if n := len(tr.locks); n != 0 {
			t.Errorf("%s: %d unexpected locks", w, n)
		}
	}
}

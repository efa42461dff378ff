package machine_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"tlcvm/machine"
)

func TestCPUSlot(t *testing.T) {
	m := newMachine(t, machine.Config{CPUs: 1, MaxCPUs: 4, Sockets: 2, Cores: 2, Threads: 1, StartPaused: true, FwCfg: idle()})
	for _, c := range []struct {
		a    machine.CPUAddress
		want int
		err  string
	}{
		{machine.CPUAddress{SocketID: 0, DieID: -1, CoreID: 1, ThreadID: 0}, 1, ""},
		{machine.CPUAddress{SocketID: 1, DieID: -1, CoreID: 1, ThreadID: 0}, 3, ""},
		{machine.CPUAddress{SocketID: 0, DieID: -1, CoreID: 0, ThreadID: 0}, 0, "CPU[0] with APIC ID 0 exists"},
		{machine.CPUAddress{SocketID: 5, DieID: -1, CoreID: 0, ThreadID: 0}, 0, "Invalid CPU socket-id: 5 must be in range 0:1"},
		{machine.CPUAddress{SocketID: 1, DieID: -1, CoreID: 0, ThreadID: -1}, 0, "CPU thread-id is not set"},
		{machine.CPUAddress{SocketID: -1, DieID: -1, CoreID: -1, ThreadID: -1}, 0, "CPU socket-id is not set"},
		{machine.CPUAddress{SocketID: 1, DieID: -1, CoreID: 3, ThreadID: 0}, 0, "Invalid CPU core-id: 3 must be in range 0:1"},
		{machine.CPUAddress{SocketID: 1, DieID: -1, CoreID: 0, ThreadID: 1}, 0, "Invalid CPU thread-id: 1 must be in range 0:0"},
		{machine.CPUAddress{SocketID: 1, DieID: 1, CoreID: 0, ThreadID: 0}, 0, "Invalid CPU die-id: 1 must be in range 0:0"},
	} {
		got, err := m.CPUSlot(c.a)
		if c.err != "" {
			if err == nil || err.Error() != c.err || !errors.Is(err, machine.ErrCPUSlot) {
				t.Errorf("CPUSlot(%+v) = %d, %v; want %q", c.a, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("CPUSlot(%+v) = %d, %v; want %d", c.a, got, err, c.want)
		}
	}
}

// waitSerial polls the serial output for s (the test's deadline bounds it).
func waitSerial(t *testing.T, out *lineWriter, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("serial lacks %q: %q", s, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCPUHotplug: a vCPU plugged into a running guest gets a thread and stays offline
// (announced, halted in its reset state); unplug is refused before the guest's boot
// (legacy ACPI CPU hotplug) and for the boot CPU, works after it (the guest ejects, the
// thread is joined, done runs), is taken on resume when requested while paused; after a
// reset the plugged CPU boots with the others.
func TestCPUHotplug(t *testing.T) {
	out := newLineWriter("")
	m := newMachine(t, machine.Config{CPUs: 1, MaxCPUs: 4, Sockets: 4, Cores: 1, Threads: 1, StartPaused: true,
		Serial: out, DebugThreads: true, FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=1M,rate=1M")}})
	m.Start()
	// Prelaunch: plugged before the boot, a boot CPU; unplug is refused (legacy mode).
	if err := m.PlugCPU(1, "/machine/peripheral/vcpu1", true); err != nil {
		t.Fatal(err)
	}
	if err := m.UnplugCPU(1, nil); err == nil ||
		err.Error() != "acpi: device unplug request for not supported device type: qemu64-x86_64-cpu" {
		t.Fatalf("unplug before the boot: %v", err)
	}
	if err := m.UnplugCPU(0, nil); err == nil || err.Error() != "Boot CPU is unpluggable" {
		t.Fatalf("unplug of CPU 0: %v", err)
	}
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, out, "tlcvm guest: 2 vCPU(s)")
	// Running: CPU 2 is announced and stays offline in its reset state.
	if err := m.PlugCPU(2, "/machine/peripheral-anon/device[0]", true); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, out, "tlcvm guest: CPU 2 hot-added\r\n")
	if strings.Contains(out.String(), "CPU 1 hot-added") {
		t.Errorf("a boot CPU announced as hot-added: %q", out.String())
	}
	cpus := m.CPUs()
	if len(cpus) != 4 || !cpus[2].Plugged || cpus[2].QOMPath != "/machine/peripheral-anon/device[0]" || cpus[3].Plugged {
		t.Fatalf("CPUs %+v", cpus)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", cpus[2].ThreadID))
	if err != nil || strings.TrimSpace(string(comm)) != "CPU 2/TCG" {
		t.Errorf("CPU 2's thread %d: %q, %v", cpus[2].ThreadID, comm, err)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := m.CPUStateOf(2); st.RIP != 0xfff0 || !st.Halted {
		t.Errorf("hot-added CPU 2 left its reset state: rip %#x halted %v", st.RIP, st.Halted)
	}
	if st := m.CPUStateOf(1); st.RIP == 0xfff0 {
		t.Errorf("boot CPU 1 did not boot: rip %#x", st.RIP)
	}
	// Paused: the request waits for the guest.
	ejected := make(chan int, 4)
	if err := m.UnplugCPU(2, func() { ejected <- 2 }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ejected:
		t.Fatal("a paused guest ejected a CPU")
	case <-time.After(100 * time.Millisecond):
	}
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	<-ejected
	if !strings.Contains(out.String(), "tlcvm guest: ACPI eject CPU 2\r\n") {
		t.Errorf("serial: %q", out.String())
	}
	if c := m.CPUs()[2]; c.Plugged {
		t.Fatalf("CPU 2 still plugged: %+v", c)
	}
	// The goroutine has returned; the runtime ends its locked thread right after.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", cpus[2].ThreadID)); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU 2's thread %d still exists", cpus[2].ThreadID)
		}
	}
	// The slot is free again; a CPU plugged now boots with the others after a reset.
	if err := m.PlugCPU(3, "/machine/peripheral/vcpu3", true); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, out, "tlcvm guest: CPU 3 hot-added\r\n")
	m.Reset(machine.CauseHostQMPSystemReset)
	waitSerial(t, out, "tlcvm guest: 3 vCPU(s)")
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range m.Snapshotters() {
		ids = append(ids, s.SectionID())
	}
	if got := strings.Join(ids, " "); !strings.HasPrefix(got, "cpu/0 cpu/1 cpu/3 clock acpi") {
		t.Errorf("sections %s", got)
	}
	deadline := time.Now().Add(60 * time.Second)
	for m.CPUStateOf(3).RIP == 0xfff0 {
		if err := m.Cont(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("CPU 3 did not boot after the reset")
		}
	}
}

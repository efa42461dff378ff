package machine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"tlcvm/machine"
)

// TestInjectNMI: every vCPU takes the NMI (halted or not) and logs it once; NMIs injected
// while paused are latched (one per vCPU) and taken on resume; a machine without CPUs
// refuses with QEMU's text.
func TestInjectNMI(t *testing.T) {
	out := newLineWriter("NMI received on CPU 2")
	m := newMachine(t, machine.Config{Serial: out, CPUs: 3, StartPaused: true, FwCfg: idle()})
	m.Start()
	if err := m.InjectNMI(); err != nil { // before the boot: held pending
		t.Fatal(err)
	}
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	waitLines := func(n int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Count(out.String(), "NMI received on CPU") >= n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("serial: %q", out.String())
	}
	waitLines(3)
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := m.InjectNMI(); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Count(out.String(), "NMI received") != 3 {
		t.Fatalf("a paused guest took an NMI: %q", out.String())
	}
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	waitLines(6)
	s := out.String()
	banner := strings.Index(s, "tlcvm guest: 3 vCPU(s)")
	for cpu := 0; cpu < 3; cpu++ {
		line := "tlcvm guest: NMI received on CPU " + string(rune('0'+cpu)) + "\r\n"
		if n := strings.Count(s, line); n != 2 {
			t.Errorf("%q %d times, want 2 (serial %q)", line, n, s)
		}
		if i := strings.Index(s, line); i < banner {
			t.Errorf("CPU %d took the NMI before the guest booted: %q", cpu, s)
		}
	}

	none := newMachine(t, machine.Config{Type: "none"})
	err := none.InjectNMI()
	if !errors.Is(err, machine.ErrUnsupported) || err.Error() != "this feature or command is not currently supported" {
		t.Errorf("-machine none: %v", err)
	}
}

package tests_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// TestGuestEjectsCPU: a vCPU added with device_add is a device of the device tree; its
// device_del is refused while ACPI CPU hotplug is in its legacy mode (before the guest has
// booted, as on QEMU with no guest OS), and once tlcvm's guest has switched it at boot the
// guest ejects the vCPU: DEVICE_DELETED follows, the slot is free in
// query-hotpluggable-cpus, and the id can be used again. The boot CPU is never unpluggable.
// (QEMU without a guest OS refuses every CPU unplug: no differential case beyond
// tests/testdata/qmp/cpuhotplug.txt.)
func TestGuestEjectsCPU(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	for _, machine := range []string{"pc", "q35"} {
		t.Run(machine, func(t *testing.T) {
			dir := shortDir(t)
			log := filepath.Join(dir, "serial.log")
			_, q, _ := startVM(t, bin, "-machine", machine, "-accel", "tcg", "-m", "64", "-S",
				"-smp", "1,maxcpus=2,sockets=2,cores=1,threads=1", "-serial", "file:"+log,
				"-fw_cfg", "name=opt/tlcvm/workload,string=ws=1M,,rate=1M")
			cpu := map[string]any{"driver": "qemu64-x86_64-cpu", "id": "vcpu1", "socket-id": 1, "core-id": 0, "thread-id": 0}
			execOK(t, q, "device_add", cpu)
			if r := execOK(t, q, "query-cpus-fast", nil).String(); !strings.Contains(r, "/machine/peripheral/vcpu1") {
				t.Fatalf("query-cpus-fast without the new vCPU: %s", r)
			}
			wantErr := func(cmd string, args any, text string) {
				t.Helper()
				m, err := q.Execute(cmd, args)
				if err != nil || !strings.Contains(string(m.Raw), text) {
					t.Fatalf("%s: %s %v, want %q", cmd, m.Raw, err, text)
				}
			}
			wantErr("device_del", map[string]any{"id": "vcpu1"},
				"acpi: device unplug request for not supported device type: qemu64-x86_64-cpu")
			wantErr("device_del", map[string]any{"id": "/machine/unattached/device[0]"}, "Boot CPU is unpluggable")
			execOK(t, q, "cont", nil)
			waitConsole(t, log, "tlcvm guest: 2 vCPU(s)") // vcpu1 was there at boot
			// The guest's boot switched ACPI CPU hotplug to its modern interface: the request
			// reaches it, and it ejects the vCPU.
			deadline := time.Now().Add(harness.DefaultTimeout)
			for {
				m, err := q.Execute("device_del", map[string]any{"id": "vcpu1"})
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := m.Value.Get("return"); ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("device_del still refused after the boot: %s", m.Raw)
				}
				time.Sleep(20 * time.Millisecond)
			}
			evs, err := q.WaitEvent("DEVICE_DELETED")
			if err != nil {
				t.Fatal(err)
			}
			if ev := string(evs[len(evs)-1].Raw); !strings.Contains(ev, `"device": "vcpu1", "path": "/machine/peripheral/vcpu1"`) {
				t.Fatalf("DEVICE_DELETED %s, want vcpu1's", ev)
			}
			waitConsole(t, log, "tlcvm guest: ACPI eject CPU 1")
			if r := execOK(t, q, "query-cpus-fast", nil).String(); strings.Contains(r, "vcpu1") {
				t.Errorf("vcpu1 still in query-cpus-fast: %s", r)
			}
			if r := execOK(t, q, "qom-list", map[string]any{"path": "/machine/peripheral"}).String(); strings.Contains(r, "vcpu1") {
				t.Errorf("vcpu1 still in /machine/peripheral: %s", r)
			}
			// The slot and the id are free again.
			execOK(t, q, "device_add", cpu)
			if r := execOK(t, q, "query-cpus-fast", nil).String(); !strings.Contains(r, "vcpu1") {
				t.Errorf("vcpu1 not back in query-cpus-fast: %s", r)
			}
		})
	}
}

// waitConsole waits until the serial log holds text; the deadline fails the test.
func waitConsole(t *testing.T, log, text string) {
	t.Helper()
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), text) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serial console without %q: %q", text, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

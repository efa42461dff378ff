package tests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// differentialScript runs a case written in the case-file language (tests/doc.go) against
// QEMU 7.2 and tlcvm, as TestDifferential does with the files of testdata/qmp; for cases whose
// command line names files the test makes first.
func differentialScript(t *testing.T, src string) {
	t.Helper()
	ref, cand := requireReference(t), requireCandidate(t)
	scripts, err := harness.ParseScript(t.Name(), t.Name(), []byte(src), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scripts {
		differential(t, ref, cand, sc)
	}
}

// TestSATAOnPC: a pc domain with a SATA disk and a SATA cdrom, exactly as libvirt 9.0 and
// virt-install (--disk …,bus=sata) start it: -device ahci (an alias of ich9-ahci) on pci.0,
// then ide-hd and ide-cd on its ports. It starts as QEMU's does, with the same PCI
// function, buses, block devices and QOM paths.
func TestSATAOnPC(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	differentialScript(t, fmt.Sprintf(`args: -machine pc-i440fx-7.2,usb=off,dump-guest-core=off -accel tcg -m 128 -nodefaults -display none -S -device '{"driver":"piix3-usb-uhci","id":"usb","bus":"pci.0","addr":"0x1.0x2"}' -device '{"driver":"ahci","id":"sata0","bus":"pci.0","addr":"0x4"}' -blockdev '{"driver":"file","filename":"%s","node-name":"libvirt-2-storage","auto-read-only":true,"discard":"unmap"}' -blockdev '{"node-name":"libvirt-2-format","read-only":false,"driver":"raw","file":"libvirt-2-storage"}' -device '{"driver":"ide-hd","bus":"sata0.0","drive":"libvirt-2-format","id":"sata0-0-0","bootindex":1}' -device '{"driver":"ide-cd","bus":"sata0.1","id":"sata0-0-1"}'
negotiate
-> {"execute": "query-pci"}
# (not query-block: QEMU lists the empty cdrom's anonymous backend there; tlcvm's block
# layer has no empty backends yet)
-> {"execute": "query-named-block-nodes", "arguments": {"flat": true}}
-> {"execute": "qom-list", "arguments": {"path": "/machine/peripheral"}}
-> {"execute": "qom-get", "arguments": {"path": "/machine/peripheral/sata0", "property": "type"}}
<- {"return": "ich9-ahci"}
-> {"execute": "qom-get", "arguments": {"path": "/machine/peripheral/sata0-0-0", "property": "parent_bus"}}
<- {"return": "/machine/peripheral/sata0/sata0.0"}
-> {"execute": "qom-get", "arguments": {"path": "/machine/peripheral/sata0-0-1", "property": "parent_bus"}}
-> {"execute": "qom-get", "arguments": {"path": "/machine/peripheral/sata0-0-0", "property": "drive"}}
-> {"execute": "device_del", "arguments": {"id": "sata0-0-0"}}
<- {"error": {"class": "GenericError", "desc": "Bus 'sata0.0' does not support hotplugging"}}
-> {"execute": "device_add", "arguments": {"driver": "ide-cd", "bus": "sata0.2", "id": "late"}}
-> {"execute": "cont"}
-> {"execute": "query-status"}
`, img))
}

// TestGuestEjectsPCI: device_del of a PCI device is a request to the guest, as in QEMU with
// a guest OS; tlcvm's guest ejects the slot from its ACPI handler once it runs, and then
// DEVICE_DELETED comes (the virtio back-end's first), the device leaves query-pci and its id
// is free again. Under -S nothing happens until cont.
func TestGuestEjectsPCI(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	for _, machine := range []string{"pc", "q35"} {
		t.Run(machine, func(t *testing.T) {
			dir := shortDir(t)
			log := filepath.Join(dir, "serial.log")
			args := []string{"-machine", machine, "-accel", "tcg", "-m", "64", "-S", "-serial", "file:" + log,
				"-fw_cfg", "name=opt/tlcvm/workload,string=ws=1M,,rate=1M"}
			bus := "pci.0"
			if machine == "q35" {
				args = append(args, "-device", "pcie-root-port,id=pci.1,chassis=1,bus=pcie.0,addr=0x2")
				bus = "pci.1"
			}
			_, q, _ := startVM(t, bin, args...)
			execOK(t, q, "device_add", map[string]any{"driver": "virtio-net-pci", "id": "n0", "bus": bus})
			execOK(t, q, "device_del", map[string]any{"id": "n0"})
			execOK(t, q, "device_del", map[string]any{"id": "n0"}) // a repeated request: {}
			m, err := q.Execute("device_add", map[string]any{"driver": "e1000", "id": "n0", "bus": bus})
			if err != nil || !strings.Contains(string(m.Raw), "Duplicate device ID 'n0'") {
				t.Fatalf("id not taken before the guest ejected: %s %v", m.Raw, err)
			}
			// The guest has not run: it cannot have ejected anything.
			for _, ev := range q.Pending() {
				if strings.Contains(string(ev.Raw), "DEVICE_DELETED") {
					t.Fatalf("DEVICE_DELETED under -S: %s", ev.Raw)
				}
			}
			execOK(t, q, "cont", nil)
			evs, err := q.WaitEvent("DEVICE_DELETED")
			if err != nil {
				t.Fatal(err)
			}
			if ev := evs[len(evs)-1].Raw; !strings.Contains(string(ev), `"path": "/machine/peripheral/n0/virtio-backend"`) {
				t.Fatalf("first DEVICE_DELETED %s, want the back-end's", ev)
			}
			evs, err = q.WaitEvent("DEVICE_DELETED")
			if err != nil {
				t.Fatal(err)
			}
			if ev := evs[len(evs)-1].Raw; !strings.Contains(string(ev), `"device": "n0", "path": "/machine/peripheral/n0"`) {
				t.Fatalf("second DEVICE_DELETED %s, want n0's", ev)
			}
			if r := execOK(t, q, "query-pci", nil); strings.Contains(fmt.Sprint(r), "n0") {
				t.Errorf("n0 still in query-pci: %v", r)
			}
			execOK(t, q, "device_add", map[string]any{"driver": "e1000", "id": "n0", "bus": bus})
			waitConsole(t, log, "tlcvm guest: ACPI eject PCI")
		})
	}
}

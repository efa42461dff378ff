package libvirt_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lv "tlcvm/internal/libvirttest"
)

// Hotplug stories: what `virsh attach-device … --live` and its detach counterparts send
// (netdev_add + device_add of a NIC, chardev-add + device_add of a serial port or a
// virtio-serial channel, object-add + device_add of a DIMM) and the guest's part in the
// unplug (tlcvm's guest ejects PCI slots and DIMMs through ACPI, as Linux does).

// step is one step of a story.
type step struct {
	name string
	f    func(t *testing.T)
}

// runStory runs the steps in order and stops at the first that fails.
func runStory(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			return
		}
	}
}

// writeXML writes a device XML into dir and returns its path.
func writeXML(t *testing.T, dir, name, xml string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// monitor runs a QMP command through virsh and returns the raw reply.
func monitor(t *testing.T, dom, cmd string) string {
	t.Helper()
	return mustRun(t, "qemu-monitor-command", dom, cmd)
}

// hmp runs an HMP command through virsh.
func hmp(t *testing.T, dom, line string) string {
	t.Helper()
	return mustRun(t, "qemu-monitor-command", "--hmp", dom, line)
}

func userNIC(mac, model string) string {
	return fmt.Sprintf("<interface type='user'>\n  <mac address='%s'/>\n  <model type='%s'/>\n</interface>\n", mac, model)
}

// domiflist returns virsh domiflist's MAC → model.
func domiflist(t *testing.T, dom string) map[string]string {
	t.Helper()
	out := mustRun(t, "domiflist", dom)
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 5 && strings.Count(f[4], ":") == 5 {
			m[f[4]] = f[3]
		}
	}
	return m
}

// detachChardevAlias detaches a chardev device by alias and waits until the domain XML
// no longer has mark; libvirt must have removed its chardev ("char"+alias) too.
func detachChardevAlias(t *testing.T, dom, alias, mark string) {
	t.Helper()
	mustRun(t, "detach-device-alias", dom, alias, "--live")
	err := lv.Poll(stateDeadline, 100*time.Millisecond, alias+" gone", func() (bool, error) {
		return !strings.Contains(mustRun(t, "dumpxml", dom), mark), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := monitor(t, dom, `{"execute":"query-chardev"}`); strings.Contains(out, `"char`+alias+`"`) {
		t.Fatalf("chardev left behind: %s", out)
	}
}

// defineAndStart defines d and starts it, waiting until its guest has booted.
func defineAndStart(t *testing.T, d lv.Domain, dir string) {
	t.Helper()
	if err := virsh.Define(d, dir); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "start", d.Name)
	wantState(t, d.Name, "running", "booted")
}

// TestHotplugNIC: NICs of every model libvirt offers on pc, attached and detached live
// (attach-device, detach-device, detach-interface), with their place in the PCI topology,
// MAC, receive filter and link state as QEMU reports them.
func TestHotplugNIC(t *testing.T) {
	need(t)
	d, dir := newDomain(t, lv.PC, "idle")
	name := d.Name
	const macV, macE, macR, macE2 = "52:54:00:aa:bb:01", "52:54:00:aa:bb:02", "52:54:00:aa:bb:03", "52:54:00:aa:bb:04"
	virtio := writeXML(t, dir, "virtio.xml", userNIC(macV, "virtio"))
	var con *console
	top := t
	runStory(t, []step{
		{"start", func(t *testing.T) { defineAndStart(t, d, dir); con = openConsole(t, top, name) }},
		{"attach-device virtio", func(t *testing.T) {
			mustRun(t, "attach-device", name, virtio, "--live")
			if got := domiflist(t, name); got[macV] != "virtio" {
				t.Fatalf("domiflist = %v", got)
			}
			if out := hmp(t, name, "info network"); !strings.Contains(out, "net0: index=0,type=nic,model=virtio-net-pci,macaddr="+macV) ||
				!strings.Contains(out, "hostnet0: index=0,type=user") {
				t.Fatalf("info network:\n%s", out)
			}
			if out := monitor(t, name, `{"execute":"query-pci"}`); !strings.Contains(out, `"qdev_id":"net0"`) {
				t.Fatalf("query-pci without net0: %s", out)
			}
			if out := monitor(t, name, `{"execute":"query-rx-filter","arguments":{"name":"net0"}}`); !strings.Contains(out, `"main-mac":"`+macV+`"`) {
				t.Fatalf("query-rx-filter: %s", out)
			}
		}},
		{"domif-setlink", func(t *testing.T) {
			mustRun(t, "domif-setlink", name, macV, "down")
			if out := mustRun(t, "domif-getlink", name, macV); !strings.Contains(out, "down") {
				t.Fatalf("domif-getlink = %q", out)
			}
			mustRun(t, "domif-setlink", name, macV, "up")
		}},
		{"attach e1000, rtl8139, e1000e", func(t *testing.T) {
			for _, n := range []struct{ mac, model string }{{macE, "e1000"}, {macR, "rtl8139"}, {macE2, "e1000e"}} {
				mustRun(t, "attach-device", name, writeXML(t, dir, n.model+".xml", userNIC(n.mac, n.model)), "--live")
			}
			got := domiflist(t, name)
			if got[macE] != "e1000" || got[macR] != "rtl8139" || got[macE2] != "e1000e" || len(got) != 4 {
				t.Fatalf("domiflist = %v", got)
			}
		}},
		{"detach-device (the guest ejects the slot)", func(t *testing.T) {
			mustRun(t, "detach-device", name, virtio, "--live")
			if got := domiflist(t, name); got[macV] != "" {
				t.Fatalf("domiflist after detach = %v", got)
			}
			con.waitFor(t, "tlcvm guest: ACPI eject PCI", serialDeadline)
			if out := hmp(t, name, "info network"); strings.Contains(out, macV) || strings.Contains(out, "hostnet0:") {
				t.Fatalf("info network after detach:\n%s", out)
			}
		}},
		{"detach-interface", func(t *testing.T) {
			mustRun(t, "detach-interface", name, "user", "--mac", macE, "--live")
			if got := domiflist(t, name); got[macE] != "" || len(got) != 2 {
				t.Fatalf("domiflist after detach-interface = %v", got)
			}
		}},
		{"destroy", func(t *testing.T) { mustRun(t, "destroy", name) }},
	})
}

// TestHotplugSerial: a pci-serial port attached and detached live (chardev-add + device_add;
// device_del, the guest ejects, chardev-remove); an isa-serial port fails as with QEMU and
// libvirt removes the chardev it added.
func TestHotplugSerial(t *testing.T) {
	need(t)
	d, dir := newDomain(t, lv.PC, "idle")
	name := d.Name
	chardevs := func(t *testing.T) string { return monitor(t, name, `{"execute":"query-chardev"}`) }
	runStory(t, []step{
		{"start", func(t *testing.T) { defineAndStart(t, d, dir) }},
		{"attach pci-serial", func(t *testing.T) {
			mustRun(t, "attach-device", name, writeXML(t, dir, "pci.xml",
				"<serial type='pty'>\n  <target type='pci-serial' port='1'/>\n</serial>\n"), "--live")
			x := mustRun(t, "dumpxml", name)
			if !strings.Contains(x, "<model name='pci-serial'/>") || !strings.Contains(x, "<alias name='serial1'/>") {
				t.Fatalf("dumpxml lacks the pci-serial port:\n%s", x)
			}
			if out := chardevs(t); !strings.Contains(out, `"label":"charserial1"`) || !strings.Contains(out, `"filename":"pty:/dev/pts/`) {
				t.Fatalf("query-chardev: %s", out)
			}
		}},
		{"detach pci-serial", func(t *testing.T) { detachChardevAlias(t, name, "serial1", "pci-serial") }},
		{"attach isa-serial fails and rolls back", func(t *testing.T) {
			_, err := virsh.Run("attach-device", name, writeXML(t, dir, "isa.xml",
				"<serial type='pty'>\n  <target type='isa-serial' port='2'/>\n</serial>\n"), "--live")
			if err == nil || !strings.Contains(err.Error(), "Bus 'isa.0' does not support hotplugging") {
				t.Fatalf("attach isa-serial: %v, want QEMU's refusal", err)
			}
			if out := chardevs(t); strings.Contains(out, "charserial1") || strings.Contains(out, "charserial2") {
				t.Fatalf("chardev left behind: %s", out)
			}
		}},
		{"destroy", func(t *testing.T) { mustRun(t, "destroy", name) }},
	})
}

// TestHotplugChannel: a virtio-serial channel attached to and detached from anchor2's model
// (which has the virtio-serial controller libvirt needs: it never hot-plugs one):
// chardev-add of a listening unix socket, device_add virtserialport, and back.
func TestHotplugChannel(t *testing.T) {
	need(t)
	d, dir := newDomain(t, lv.Q35, "idle")
	d.NoBalloon, d.NoVNC = true, true
	name := d.Name
	runStory(t, []step{
		{"start", func(t *testing.T) { defineAndStart(t, d, dir) }},
		{"attach channel", func(t *testing.T) {
			mustRun(t, "attach-device", name, writeXML(t, dir, "chan.xml",
				"<channel type='unix'>\n  <target type='virtio' name='org.example.tlcvm.1'/>\n</channel>\n"), "--live")
			x := mustRun(t, "dumpxml", name)
			if !strings.Contains(x, "name='org.example.tlcvm.1'") || !strings.Contains(x, "<alias name='channel1'/>") {
				t.Fatalf("dumpxml lacks the channel:\n%s", x)
			}
			out := monitor(t, name, `{"execute":"query-chardev"}`)
			if !strings.Contains(out, `"label":"charchannel1"`) {
				t.Fatalf("query-chardev: %s", out)
			}
			if out := monitor(t, name, `{"execute":"qom-get","arguments":{"path":"/machine/peripheral/channel1","property":"name"}}`); !strings.Contains(out, "org.example.tlcvm.1") {
				t.Fatalf("qom-get channel1 name: %s", out)
			}
		}},
		{"detach channel", func(t *testing.T) { detachChardevAlias(t, name, "channel1", "org.example.tlcvm.1") }},
		{"attach a NIC behind a root port", func(t *testing.T) {
			const mac = "52:54:00:aa:cc:01"
			mustRun(t, "attach-device", name, writeXML(t, dir, "nic.xml", userNIC(mac, "virtio")), "--live")
			if got := domiflist(t, name); got[mac] != "virtio" {
				t.Fatalf("domiflist = %v", got)
			}
			mustRun(t, "detach-interface", name, "user", "--mac", mac, "--live")
			if got := domiflist(t, name); got[mac] != "" {
				t.Fatalf("domiflist after detach = %v", got)
			}
		}},
		{"destroy", func(t *testing.T) { mustRun(t, "destroy", name) }},
	})
}

// TestHotplugMemory: a DIMM attached live (<memory model='dimm'>: object-add
// memory-backend-ram + device_add pc-dimm) that the guest onlines and writes (workload
// dimm=all), carried by virsh save and restore (libvirt puts the DIMM on the restoring
// command line), then detached: the guest ejects it through ACPI and libvirt frees it.
func TestHotplugMemory(t *testing.T) {
	need(t)
	d, dir := newDomain(t, lv.PC, "idle,,rate=max,,dimm=all")
	d.MemSlots = 4
	name := d.Name
	mem := writeXML(t, dir, "mem.xml", "<memory model='dimm'>\n  <target>\n    <size unit='MiB'>128</size>\n    <node>0</node>\n  </target>\n</memory>\n")
	lastWord := func(t *testing.T) string {
		// the last 8 bytes of the DIMM, as the guest's dimm= fill writes them
		return strings.TrimSpace(hmp(t, name, "xp /1gx 0x107fffff8"))
	}
	const want = "0000000107fffff8: 0xd1d1d1d120ffffff"
	var con *console
	top := t
	runStory(t, []step{
		{"start", func(t *testing.T) { defineAndStart(t, d, dir); con = openConsole(t, top, name) }},
		{"attach-device dimm", func(t *testing.T) {
			mustRun(t, "attach-device", name, mem, "--live")
			x := mustRun(t, "dumpxml", name)
			if !strings.Contains(x, "<alias name='dimm0'/>") || !strings.Contains(x, "<address type='dimm' slot='0' base='0x100000000'/>") {
				t.Fatalf("dumpxml lacks the DIMM:\n%s", x)
			}
			wantKV(t, kv(t, mustRun(t, "dominfo", name)), "Used memory", "393216 KiB")
			con.waitFor(t, "tlcvm guest: ACPI memory online DIMM 0 dimm0: 128 MiB at 0x100000000", serialDeadline)
			err := lv.Poll(serialDeadline, 50*time.Millisecond, "the guest writes the DIMM", func() (bool, error) {
				return lastWord(t) == want, nil
			})
			if err != nil {
				t.Fatalf("%v: %q", err, lastWord(t))
			}
			if out := hmp(t, name, "info memory-devices"); !strings.Contains(out, "memdev: /objects/memdimm0") || !strings.Contains(out, "hotplugged: true") {
				t.Fatalf("info memory-devices:\n%s", out)
			}
		}},
		{"save and restore carry the DIMM", func(t *testing.T) {
			img := filepath.Join(dir, "dom.save")
			mustRun(t, "save", name, img)
			mustRun(t, "restore", img)
			wantState(t, name, "running", "restored")
			if got := lastWord(t); got != want {
				t.Fatalf("DIMM after restore: %q, want %q", got, want)
			}
			if out := hmp(t, name, "info memory-devices"); !strings.Contains(out, "addr: 0x100000000") || !strings.Contains(out, "hotplugged: false") {
				t.Fatalf("info memory-devices after restore:\n%s", out)
			}
		}},
		{"detach-device dimm (the guest ejects it)", func(t *testing.T) {
			mustRun(t, "detach-device", name, mem, "--live")
			if x := mustRun(t, "dumpxml", name); strings.Contains(x, "model='dimm'") {
				t.Fatalf("dumpxml still has the DIMM:\n%s", x)
			}
			wantKV(t, kv(t, mustRun(t, "dominfo", name)), "Used memory", "262144 KiB")
			if out := monitor(t, name, `{"execute":"query-memdev"}`); strings.Contains(out, "memdimm0") {
				t.Fatalf("the back-end is left: %s", out)
			}
		}},
		{"destroy", func(t *testing.T) { mustRun(t, "destroy", name) }},
	})
}

// TestVirtInstallSATA: virt-install of a pc domain with a SATA disk and a SATA cdrom
// (libvirt writes -device ahci, ide-hd and ide-cd on its ports) starts on tlcvm.
func TestVirtInstallSATA(t *testing.T) {
	need(t)
	if _, err := exec.LookPath("virt-install"); err != nil {
		t.Skip("virt-install not installed (Debian package virtinst: scripts/deps.sh)")
	}
	dir := t.TempDir()
	name := lv.NewName("tlcvm-test")
	disk := filepath.Join(dir, "disk.qcow2")
	if err := lv.CreateDisk(disk, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := virsh.Remove(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	cmd := exec.Command("virt-install", "--name", name, "--memory", "256", "--vcpus", "1", "--machine", "pc",
		"--virt-type", "qemu", "--import", "--disk", "path="+disk+",bus=sata", "--disk", "device=cdrom,bus=sata",
		"--boot", "hd", "--noautoconsole", "--graphics", "none", "--network", "none",
		"--osinfo", "detect=on,require=off", "--xml", "./devices/emulator="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("virt-install: %v\n%s", err, out)
	}
	wantState(t, name, "running", "")
	m, err := lv.ParseBlkList(mustRun(t, "domblklist", name))
	if err != nil {
		t.Fatal(err)
	}
	if m["sda"] != disk || m["sdb"] != "-" {
		t.Fatalf("domblklist = %v, want sda → %s, sdb → -", m, disk)
	}
	out := monitor(t, name, `{"execute":"query-pci"}`)
	if !strings.Contains(out, `"qdev_id":"sata0"`) || !strings.Contains(out, `10530`) {
		t.Fatalf("query-pci lacks the AHCI controller: %s", out)
	}
	if out := monitor(t, name, `{"execute":"query-block"}`); !strings.Contains(out, `sata0-0-0`) {
		t.Fatalf("query-block: %s", out)
	}
}

package libvirttest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// Kind selects the domain model.
type Kind int

// Domain models, after /work/shared/reference/libvirt/domain/anchor{1,2}.xml.
const (
	PC  Kind = iota // anchor1: pc, 256 MiB, 1 vCPU, qcow2 virtio disk, pty serial, no balloon
	Q35             // anchor2: q35, 2 vCPUs, virt-install devices
	// PCFull is anchor2's devices on a pc: an IDE CD-ROM (hdc) for the SATA one, the
	// rest as Q35 (virtio NIC, agent channel, USB tablet, VNC, virtio video, balloon, rng).
	PCFull
)

// String is the model's name in test names and tables: "pc", "q35", "pc-full".
func (k Kind) String() string {
	switch k {
	case PC:
		return "pc"
	case Q35:
		return "q35"
	case PCFull:
		return "pc-full"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Domain is a test domain.
type Domain struct {
	Kind      Kind
	Name      string // unique: tlcvm-test-<random>
	UUID      string // fixed so that a redefinition replaces the domain; NewUUID
	Emulator  string
	Disk      string // qcow2 image path
	Workload  string // the fw_cfg entry opt/tlcvm/workload; "" for none
	NoVNC     bool   // Q35 and PCFull: leave out anchor2's <graphics type='vnc'>
	NoBalloon bool   // Q35 and PCFull: <memballoon model='none'/> instead of anchor2's virtio balloon
	VCPUs     int    // vCPUs; 0: the model's (PC 1, Q35 and PCFull 2)
	CPUSet    string // host CPUs the domain may use (<vcpu cpuset=…>); "" for any
	// MaxVCPUs above VCPUs makes room for vCPU hotplug: <vcpu current='VCPUs'>MaxVCPUs</vcpu>,
	// which libvirt turns into -smp VCPUs,maxcpus=MaxVCPUs.
	MaxVCPUs  int
	MAC       string // Q35 and PCFull: the NIC's MAC address; "" lets libvirt choose
	IOThreads int    // <iothreads>N</iothreads> (-object iothread,id=iothreadN)
	// RootPorts (Q35 only) declares that many pcie-root-port controllers, as virt-install
	// does (14): libvirt puts the model's PCIe devices on the first ones (six), and the rest
	// are free for hotplug. 0 lets libvirt add exactly the ports the devices need.
	RootPorts int
	// MemSlots > 0 makes room for memory hotplug: <maxMemory slots=MemSlots> 1 GiB and the
	// one NUMA cell libvirt then requires (-m …,slots=,maxmem= and -numa node,memdev=).
	MemSlots int
	Media    []Medium
}

// Medium is a removable drive added after the model's disks: a CD-ROM (bus ide or sata,
// read-only) or a floppy (bus fdc), empty or holding a raw image.
type Medium struct {
	Device string // "cdrom" or "floppy"
	Bus    string // "ide", "sata" or "fdc"
	Target string // e.g. "hdc", "sdb", "fda"
	Source string // the image; "" for an empty drive
}

// NewName returns prefix-<8 random hex digits>.
func NewName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// CreateDisk creates a 64 MiB qcow2 at path with qemu-img; when mbr is not
// empty, that boot sector is written into it first (QEMU needs a bootable
// disk to power off on the ACPI button).
func CreateDisk(path, mbr string) error {
	if mbr != "" {
		raw := path + ".raw"
		b, err := os.ReadFile(mbr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(raw, b, 0o644); err != nil {
			return err
		}
		defer os.Remove(raw)
		if err := os.Truncate(raw, 64<<20); err != nil {
			return err
		}
		if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, path).CombinedOutput(); err != nil {
			return fmt.Errorf("qemu-img convert: %v: %s", err, out)
		}
		return nil
	}
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", path, "64M").CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img create: %v: %s", err, out)
	}
	return nil
}

var domTmpl = template.Must(template.New("d").Parse(`<domain type='qemu'>
  <name>{{.Name}}</name>
{{- if .UUID}}
  <uuid>{{.UUID}}</uuid>
{{- end}}
{{- if .MemSlots}}
  <maxMemory slots='{{.MemSlots}}' unit='MiB'>1024</maxMemory>
{{- end}}
  <memory unit='MiB'>256</memory>
  <currentMemory unit='MiB'>256</currentMemory>
{{- if .CPUSet}}
  <vcpu placement='static' cpuset='{{.CPUSet}}'>{{.VCPUs}}</vcpu>
{{- else if gt .MaxVCPUs .VCPUs}}
  <vcpu placement='static' current='{{.VCPUs}}'>{{.MaxVCPUs}}</vcpu>
{{- else if .Full}}
  <vcpu>{{.VCPUs}}</vcpu>
{{- else}}
  <vcpu placement='static'>{{.VCPUs}}</vcpu>
{{- end}}
{{- if .IOThreads}}
  <iothreads>{{.IOThreads}}</iothreads>
{{- end}}
{{- if .Workload}}
  <sysinfo type='fwcfg'>
    <entry name='opt/tlcvm/workload'>{{.Workload}}</entry>
  </sysinfo>
{{- end}}
{{- if .MemSlots}}
  <cpu>
    <numa>
      <cell id='0' cpus='0-{{.LastCPU}}' memory='256' unit='MiB'/>
    </numa>
  </cpu>
{{- end}}
  <os>
    <type arch='x86_64' machine='{{if .Q35}}q35{{else}}pc{{end}}'>hvm</type>
    <boot dev='hd'/>
  </os>
{{- if .Full}}
  <features><acpi/><apic/></features>
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
    <timer name='pit' tickpolicy='delay'/>
    <timer name='hpet' present='no'/>
  </clock>
  <pm><suspend-to-mem enabled='no'/><suspend-to-disk enabled='no'/></pm>
{{- else}}
  <features>
    <acpi/>
  </features>
  <clock offset='utc'/>
{{- end}}
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{{.Emulator}}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'{{if .Full}} discard='unmap'{{end}}/>
      <source file='{{.Disk}}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
{{- range .Media}}
    <disk type='file' device='{{.Device}}'>
      <driver name='qemu' type='raw'/>
{{- if .Source}}
      <source file='{{.Source}}'/>
{{- end}}
      <target dev='{{.Target}}' bus='{{.Bus}}'/>
{{- if eq .Device "cdrom"}}
      <readonly/>
{{- end}}
    </disk>
{{- end}}
{{- if .Full}}
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='{{if .Q35}}sda{{else}}hdc{{end}}' bus='{{if .Q35}}sata{{else}}ide{{end}}'/>
      <readonly/>
    </disk>
{{- if .RootPorts}}
    <controller type='pci' index='0' model='pcie-root'/>
{{- range .RootPorts}}
    <controller type='pci' model='pcie-root-port'/>
{{- end}}
{{- end}}
    <interface type='user'>
{{- if .MAC}}
      <mac address='{{.MAC}}'/>
{{- end}}
      <model type='virtio'/>
    </interface>
{{- end}}
    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
{{- if .Full}}
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <input type='tablet' bus='usb'/>
{{- if .VNC}}
    <graphics type='vnc' port='-1' listen='127.0.0.1'/>
{{- end}}
    <video><model type='virtio'/></video>
{{- if .Balloon}}
    <memballoon model='virtio'>
      <stats period='5'/>
    </memballoon>
{{- else}}
    <memballoon model='none'/>
{{- end}}
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
{{- else}}
    <memballoon model='none'/>
{{- end}}
  </devices>
</domain>
`))

// XML renders the domain.
func (d Domain) XML() string {
	var b strings.Builder
	esc := func(s string) string {
		return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;").Replace(s)
	}
	full := d.Kind == Q35 || d.Kind == PCFull
	vcpus := d.VCPUs
	if vcpus <= 0 {
		vcpus = 1
		if full {
			vcpus = 2
		}
	}
	var ports []struct{}
	if d.Kind == Q35 {
		ports = make([]struct{}, d.RootPorts)
	}
	media := make([]Medium, len(d.Media))
	for i, m := range d.Media {
		media[i] = Medium{esc(m.Device), esc(m.Bus), esc(m.Target), esc(m.Source)}
	}
	_ = domTmpl.Execute(&b, struct {
		Name, UUID, Emulator, Disk, Workload, CPUSet, MAC string
		Q35, Full, VNC, Balloon                           bool
		VCPUs, MaxVCPUs, IOThreads, MemSlots, LastCPU     int
		RootPorts                                         []struct{}
		Media                                             []Medium
	}{esc(d.Name), esc(d.UUID), esc(d.Emulator), esc(d.Disk), esc(d.Workload), esc(d.CPUSet), esc(d.MAC),
		d.Kind == Q35, full, !d.NoVNC, !d.NoBalloon, vcpus, d.MaxVCPUs, d.IOThreads, d.MemSlots,
		max(vcpus, d.MaxVCPUs) - 1, ports, media})
	return b.String()
}

// Define writes the XML into dir and runs virsh define.
func (v *Virsh) Define(d Domain, dir string) error {
	p := filepath.Join(dir, d.Name+".xml")
	if err := os.WriteFile(p, []byte(d.XML()), 0o644); err != nil {
		return err
	}
	_, err := v.Run("define", p)
	return err
}

// Remove destroys (if running) and undefines the domain with its managed
// save image, snapshot and checkpoint metadata. It retries for up to 30 s (libvirtd may
// be restarting) and succeeds once the domain is gone.
func (v *Virsh) Remove(name string) error {
	err := Poll(30*time.Second, 200*time.Millisecond, "undefine "+name, func() (bool, error) {
		_, _ = v.Run("destroy", name)
		_, err := v.Run("undefine", "--managed-save", "--snapshots-metadata", "--checkpoints-metadata", name)
		if err == nil || strings.Contains(err.Error(), "failed to get domain") || strings.Contains(err.Error(), "Domain not found") {
			return true, nil
		}
		return false, err
	})
	// libvirt keeps the domain's log after undefine; the names are unique, so drop it.
	_ = os.Remove(filepath.Join("/var/log/libvirt/qemu", name+".log"))
	return err
}

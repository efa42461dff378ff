package libvirt_test

import (
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	lv "tlcvm/internal/libvirttest"
)

// Scrubs shared by several flows.
var (
	// numbers in "key value" and "key=value" lines (counters that depend on the guest and
	// on time: QEMU runs SeaBIOS and a boot sector, tlcvm its synthetic guest).
	scrubCounters = re(`(?m)^.*[ =:]\s*(\d+)\s*$`)
	scrubVcpuinfo = re(`(?m)^CPU:\s+(\d+)$`, `(?m)^CPU Affinity:\s+(\S+)$`)
	scrubEventTS  = re(`at (\d+\.\d+) for`)
	// domstats values that count time or memory the guest used.
	scrubStats = re(`(?m)(?:time|rss|update|usable|available|unused|caches|fault|swap_in|swap_out|delay|wait)=(\d+)$`)
	// virsh vcpuinfo prints a vCPU's "CPU time" only once its thread has used a clock tick.
	dropCPUTime = re(`(?m)^CPU time:.*\n`)
)

// cmd is a flow running one virsh command.
func cmd(name string, args ...string) flow { return flow{name: name, args: args} }

// prep is a story step that must succeed on both sides.
func prep(name string, args ...string) flow { return flow{name: name, args: args, prep: true} }

// scrubbed adds scrubs to a flow.
func (f flow) scrubbed(rs ...[]*regexp.Regexp) flow {
	for _, r := range rs {
		f.scrub = append(f.scrub, r...)
	}
	return f
}

// dropping removes what matches from both outputs.
func (f flow) dropping(rs ...[]*regexp.Regexp) flow {
	for _, r := range rs {
		f.drop = append(f.drop, r...)
	}
	return f
}

// waiting makes a flow wait for a domstate on both sides.
func (f flow) waiting(state string) flow { f.wait = state; return f }

// flowDevices are the device XMLs of the attach/detach flows, by file name (in each
// side's directory, $DIR expanded).
func flowDevices(k lv.Kind) map[string]string {
	cd := `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='$DIR/cd.iso'/><target dev='$CDROM' bus='%s'/><readonly/></disk>`
	bus := "ide"
	if k == lv.Q35 {
		bus = "sata"
	}
	return map[string]string{
		"disk-virtio":  `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$DIR/hot.qcow2'/><target dev='vdb' bus='virtio'/></disk>`,
		"ctl-scsi":     `<controller type='scsi' index='0' model='virtio-scsi'/>`,
		"disk-scsi":    `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$DIR/scsi.qcow2'/><target dev='sdc' bus='scsi'/></disk>`,
		"disk-usb":     `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$DIR/usb.qcow2'/><target dev='sdd' bus='usb'/></disk>`,
		"cdrom-insert": fmt.Sprintf(cd, bus),
		"nic-virtio":   `<interface type='user'><mac address='52:54:00:7c:f1:10'/><model type='virtio'/></interface>`,
		"nic-e1000e":   `<interface type='user'><mac address='52:54:00:7c:f1:11'/><model type='e1000e'/></interface>`,
		"channel":      `<channel type='unix'><target type='virtio' name='org.example.flow.0'/></channel>`,
		"console":      `<console type='pty'><target type='virtio' port='1'/></console>`,
		"serial-usb":   `<serial type='pty'><target type='usb-serial' port='1'><model name='usb-serial'/></target></serial>`,
		"rng":          `<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>`,
		"input-usb":    `<input type='keyboard' bus='usb'/>`,
		"input-virtio": `<input type='mouse' bus='virtio'/>`,
		"watchdog":     `<watchdog model='i6300esb' action='reset'/>`,
		"shmem":        `<shmem name='flowshm'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem>`,
		"vsock":        `<vsock model='virtio'><cid auto='yes'/></vsock>`,
		"redirdev":     `<redirdev bus='usb' type='tcp'><source mode='connect' host='127.0.0.1' service='1'/></redirdev>`,
		"ctl-usb":      `<controller type='usb' index='1' model='qemu-xhci'/>`,
		"memballoon":   `<memballoon model='virtio'/>`,
	}
}

// qemuImg is a flow running qemu-img on a side's files (expand's placeholders), as a user
// looks at a domain's disks: its output is compared like virsh's.
func qemuImg(name string, args ...string) flow {
	return flow{name: name, shows: "`qemu-img " + strings.Join(args, " ") + "`", do: func(t *testing.T, d *flowDom) lv.Result {
		x := make([]string, len(args))
		for i, a := range args {
			x[i] = d.expand(a)
		}
		var so, se strings.Builder
		c := exec.Command("qemu-img", x...)
		c.Stdout, c.Stderr = &so, &se
		r := lv.Result{}
		if err := c.Run(); err != nil {
			r.Code = 1
			if ee, ok := err.(*exec.ExitError); ok {
				r.Code = ee.ExitCode()
			}
		}
		r.Stdout, r.Stderr = so.String(), se.String()
		return r
	}}
}

// attach and detach are the flows of one device class.
func attach(class string) []flow {
	return []flow{
		cmd("attach-device "+class, "attach-device", "$D", "$DIR/"+class+".xml", "--live"),
		cmd("detach-device "+class, "detach-device", "$D", "$DIR/"+class+".xml", "--live"),
	}
}

// flowStory is the story every model goes through. Flows that look come before flows that
// change; each starts from the state the previous ones left, so the order keeps one side's
// leftovers from changing the other flows: the hotplugged vCPU stays through save and
// restore (libvirt starts the restored domain with it on the command line), and the
// device classes are attached and detached last, since a PCI device QEMU's guest never
// ejects stays (and a USB serial port blocks migration, hence save and snapshots).
func flowStory() []flow {
	story := []flow{
		prep("start", "start", "$D"),
		// Looking at a running domain.
		cmd("dominfo", "dominfo", "$D"),
		cmd("domstate", "domstate", "--reason", "$D"),
		cmd("domid", "domid", "$D").scrubbed(re(`(?m)^(\d+)$`)),
		cmd("domuuid", "domuuid", "$D"),
		cmd("domname", "domname", "$UUID"),
		cmd("domcontrol", "domcontrol", "$D"),
		cmd("domjobinfo", "domjobinfo", "$D"),
		cmd("dumpxml", "dumpxml", "$D"),
		cmd("dumpxml --inactive", "dumpxml", "--inactive", "$D"),
		cmd("dumpxml --migratable", "dumpxml", "--migratable", "$D"),
		cmd("domxml-to-native", "domxml-to-native", "qemu-argv", "--domain", "$D").scrubbed(re(`"?fd"?[=:]"?(\d+)`)),
		cmd("ttyconsole", "ttyconsole", "$D"),
		cmd("domdisplay", "domdisplay", "$D"),
		cmd("vncdisplay", "vncdisplay", "$D"),
		cmd("domblklist", "domblklist", "--details", "$D"),
		cmd("domblkinfo", "domblkinfo", "$D", "vda"),
		cmd("domblkinfo cdrom", "domblkinfo", "$D", "$CDROM"),
		cmd("domblkinfo --all", "domblkinfo", "--all", "$D"),
		cmd("domblkstat", "domblkstat", "$D", "vda").scrubbed(scrubCounters),
		cmd("domblkerror", "domblkerror", "$D"),
		cmd("domiflist", "domiflist", "$D"),
		cmd("domifstat", "domifstat", "$D", "$MAC"),
		cmd("domifaddr", "domifaddr", "$D"),
		cmd("domifaddr --source lease", "domifaddr", "$D", "--source", "lease"),
		cmd("domifaddr --source arp", "domifaddr", "$D", "--source", "arp"),
		cmd("domifaddr --source agent", "domifaddr", "$D", "--source", "agent"),
		cmd("domif-getlink", "domif-getlink", "$D", "$MAC"),
		cmd("domiftune", "domiftune", "$D", "$MAC"),
		cmd("dommemstat", "dommemstat", "$D").scrubbed(scrubCounters),
		cmd("vcpucount", "vcpucount", "$D"),
		cmd("vcpuinfo", "vcpuinfo", "$D").scrubbed(scrubVcpuinfo).dropping(dropCPUTime),
		cmd("vcpupin", "vcpupin", "$D"),
		cmd("emulatorpin", "emulatorpin", "$D"),
		cmd("iothreadinfo", "iothreadinfo", "$D"),
		cmd("numatune", "numatune", "$D"),
		cmd("memtune", "memtune", "$D"),
		cmd("blkiotune", "blkiotune", "$D"),
		cmd("schedinfo", "schedinfo", "$D"),
		cmd("perf", "perf", "$D"),
		cmd("cpu-stats", "cpu-stats", "$D", "--total").scrubbed(re(`(?m)^\s+\S+\s+(\d+\.\d+) seconds$`)),
		cmd("domstats", "domstats", "$D").scrubbed(re(`(?m)=(.+)$`)),
		cmd("domstats --state --vcpu --balloon --iothread", "domstats", "--state", "--vcpu", "--balloon", "--iothread", "$D").
			scrubbed(scrubStats),
		cmd("metadata", "metadata", "$D", "http://example.org/flow"),
		cmd("desc", "desc", "$D"),
		cmd("domlaunchsecinfo", "domlaunchsecinfo", "$D"),
		cmd("blockjob --info", "blockjob", "$D", "vda", "--info"),
		cmd("domjobabort", "domjobabort", "$D"),
		cmd("migrate-getspeed", "migrate-getspeed", "$D"),
		cmd("migrate-getmaxdowntime", "migrate-getmaxdowntime", "$D"),
		cmd("migrate-compcache", "migrate-compcache", "$D"),
		cmd("blkdeviotune", "blkdeviotune", "$D", "vda"),
		// qemu-img beside the running domain: the image is locked as QEMU locks it (OFD
		// locks on the file), -U (force share) reads it.
		qemuImg("qemu-img info locked", "info", "$DIR/disk.qcow2"),
		qemuImg("qemu-img info -U", "info", "-U", "--output=json", "$DIR/disk.qcow2").scrubbed(re(`"actual-size": (\d+)`)),
		qemuImg("qemu-img check -U", "check", "-U", "$DIR/disk.qcow2").scrubbed(scrubCounters,
			re(`(?m)^(\d+/\d+ = [\d.]+% allocated, [\d.]+% fragmented, [\d.]+% compressed clusters)$`)),
		qemuImg("qemu-img snapshot -l -U", "snapshot", "-l", "-U", "$DIR/disk.qcow2"),
		qemuImg("qemu-img map -U", "map", "-U", "--output=json", "$DIR/disk.qcow2"),
		qemuImg("qemu-img resize locked", "resize", "$DIR/disk.qcow2", "+1M"),
		qemuImg("qemu-img bitmap locked", "bitmap", "--add", "$DIR/disk.qcow2", "b0"),
		// The monitor, raw.
		cmd("qemu-monitor-command query-status", "qemu-monitor-command", "$D", `{"execute":"query-status"}`),
		cmd("qemu-monitor-command query-name", "qemu-monitor-command", "$D", "--pretty", `{"execute":"query-name"}`),
		cmd("qemu-monitor-command --hmp info status", "qemu-monitor-command", "$D", "--hmp", "info status"),
		cmd("qemu-monitor-command --hmp info cpus", "qemu-monitor-command", "$D", "--hmp", "info cpus").
			scrubbed(re(`thread_id=(\d+)`, `pc=(0x[0-9a-f]+)`)),
		cmd("qemu-monitor-command query-iothreads", "qemu-monitor-command", "$D", `{"execute":"query-iothreads"}`).
			scrubbed(re(`"thread-id":(\d+)`)),
		cmd("qemu-monitor-command --hmp info iothreads", "qemu-monitor-command", "$D", "--hmp", "info iothreads").
			scrubbed(re(`thread_id=(\d+)`)),
		cmd("qemu-monitor-command query-hotpluggable-cpus", "qemu-monitor-command", "$D", "--pretty", `{"execute":"query-hotpluggable-cpus"}`),
		cmd("qemu-monitor-command query-balloon", "qemu-monitor-command", "$D", `{"execute":"query-balloon"}`),
		cmd("qemu-monitor-command query-current-machine", "qemu-monitor-command", "$D", `{"execute":"query-current-machine"}`),
		// The guest agent: the channel is there, no agent answers on it.
		cmd("domhostname", "domhostname", "$D"),
		cmd("domhostname --source lease", "domhostname", "$D", "--source", "lease"),
		cmd("domtime", "domtime", "$D"),
		cmd("domtime --sync", "domtime", "$D", "--sync"),
		cmd("guestvcpus", "guestvcpus", "$D"),
		cmd("guestinfo", "guestinfo", "$D"),
		cmd("domfsinfo", "domfsinfo", "$D"),
		cmd("domfsfreeze", "domfsfreeze", "$D"),
		cmd("domfsthaw", "domfsthaw", "$D"),
		cmd("domfstrim", "domfstrim", "$D"),
		cmd("qemu-agent-command", "qemu-agent-command", "$D", `{"execute":"guest-info"}`),
		cmd("get-user-sshkeys", "get-user-sshkeys", "$D", "root"),
		cmd("set-user-password", "set-user-password", "$D", "root", "secret"),
		cmd("dompmsuspend", "dompmsuspend", "$D", "mem"),
		cmd("dompmwakeup", "dompmwakeup", "$D"),
		cmd("setvcpus --guest", "setvcpus", "$D", "1", "--guest"),
		// libvirt API calls without a virsh twin.
		{name: "go-libvirt DomainMemoryPeek", do: goLibvirt(memoryPeek), shows: "DomainMemoryPeek(16 bytes, physical and virtual)"},
		{name: "go-libvirt DomainBlockPeek", do: goLibvirt(blockPeek), shows: "DomainBlockPeek(vda, 16 bytes)"},
		{name: "go-libvirt DomainGetMessages", do: goLibvirt(getMessages), shows: "DomainGetMessages"},
		{name: "python openGraphicsFD", do: openGraphicsFD, shows: "`dom.openGraphicsFD(0)` (libvirt-python), reading the RFB greeting"},
		// Snapshots.
		cmd("snapshot-create-as internal", "snapshot-create-as", "$D", "s1"),
		cmd("snapshot-list", "snapshot-list", "--name", "$D"),
		// libvirt takes an internal snapshot with HMP savevm and only looks for QEMU's error
		// texts in the reply: whether the images hold it is for info snapshots to say.
		cmd("qemu-monitor-command --hmp info snapshots", "qemu-monitor-command", "$D", "--hmp", "info snapshots").
			scrubbed(re(`(?m)^--\s+s1\s+(.*)$`)),
		cmd("snapshot-info", "snapshot-info", "$D", "s1"),
		cmd("snapshot-current", "snapshot-current", "--name", "$D"),
		cmd("snapshot-revert", "snapshot-revert", "$D", "s1"),
		cmd("domstate after revert", "domstate", "--reason", "$D"),
		// A side whose revert failed (libvirt restarts the domain with -loadvm) goes on
		// from a fresh start, so that the flows after it compare what they are about.
		{name: "running again", prep: true, do: ensureRunning},
		cmd("snapshot-delete", "snapshot-delete", "$D", "s1"),
		cmd("snapshot-create-as disk-only", "snapshot-create-as", "$D", "s2", "--disk-only", "--atomic",
			"--diskspec", "vda,file=$DIR/s2.qcow2"),
		cmd("domblklist after disk-only snapshot", "domblklist", "$D"),
		cmd("snapshot-create-as external live", "snapshot-create-as", "$D", "s3", "--live",
			"--memspec", "file=$DIR/s3.mem,snapshot=external", "--diskspec", "vda,snapshot=external,file=$DIR/s3.qcow2"),
		cmd("domstate after external snapshot", "domstate", "--reason", "$D"),
		// libvirt prints the memory bandwidth only when the job's mbps is not 0, which it is on
		// both when the save took under a millisecond (QEMU's formula; tlcvm is often that fast).
		cmd("domjobinfo --completed", "domjobinfo", "--completed", "$D").scrubbed(re(`(?m):\s+(\d.*)$`)).
			dropping(re(`(?m)^Memory bandwidth:.*\n`)),
		// Changing the running domain.
		cmd("desc --live", "desc", "$D", "--live", "--new-desc", "a flow"),
		cmd("metadata --live", "metadata", "$D", "http://example.org/flow", "--live", "--key", "f", "--set", "<f>1</f>"),
		cmd("set-lifecycle-action", "set-lifecycle-action", "$D", "reboot", "restart", "--live"),
		cmd("setmem", "setmem", "$D", "200M", "--live"),
		cmd("dominfo after setmem", "dominfo", "$D"),
		cmd("dommemstat --period", "dommemstat", "$D", "--period", "2", "--live"),
		cmd("setmem back", "setmem", "$D", "256M", "--live"),
		cmd("setmaxmem", "setmaxmem", "$D", "300M", "--live"),
		// vCPU hotplug; the new vCPU stays through save and restore.
		cmd("setvcpus", "setvcpus", "$D", "2", "--live"),
		cmd("vcpucount after setvcpus", "vcpucount", "$D"),
		cmd("vcpupin after setvcpus", "vcpupin", "$D", "1", "0", "--live"),
		cmd("vcpuinfo after setvcpus", "vcpuinfo", "$D").scrubbed(scrubVcpuinfo).dropping(dropCPUTime),
		cmd("domstats --vcpu after setvcpus", "domstats", "--vcpu", "$D").scrubbed(scrubStats),
		cmd("qemu-monitor-command query-cpus-fast", "qemu-monitor-command", "$D", "--pretty", `{"execute":"query-cpus-fast"}`).
			scrubbed(re(`"thread-id": (\d+),\n\s+"props"`)),
		cmd("qemu-monitor-command query-hotpluggable-cpus after setvcpus", "qemu-monitor-command", "$D", "--pretty", `{"execute":"query-hotpluggable-cpus"}`),
		cmd("iothreadpin", "iothreadpin", "$D", "1", "0", "--live"),
		cmd("iothreadinfo after iothreadpin", "iothreadinfo", "$D"),
		cmd("iothreadadd", "iothreadadd", "$D", "2", "--live"),
		cmd("iothreadinfo after add", "iothreadinfo", "$D"),
		cmd("iothreadset", "iothreadset", "$D", "2", "--poll-max-ns", "100", "--live"),
		cmd("domstats --iothread after iothreadset", "domstats", "--iothread", "$D"),
		cmd("iothreaddel", "iothreaddel", "$D", "2", "--live"),
		cmd("iothreadinfo after del", "iothreadinfo", "$D"),
		cmd("inject-nmi", "inject-nmi", "$D"),
		cmd("send-key", "send-key", "$D", "KEY_A"),
		cmd("screenshot", "screenshot", "$D", "$DIR/screen"),
		cmd("domif-setlink down", "domif-setlink", "$D", "$MAC", "down"),
		cmd("domif-getlink after setlink", "domif-getlink", "$D", "$MAC"),
		cmd("domif-setlink up", "domif-setlink", "$D", "$MAC", "up"),
		cmd("blockresize", "blockresize", "$D", "vda", "128M"),
		cmd("domblkinfo after blockresize", "domblkinfo", "$D", "vda"),
		cmd("blkdeviotune set", "blkdeviotune", "$D", "vda", "--total-bytes-sec", "10000000", "--live"),
		cmd("domblkthreshold", "domblkthreshold", "$D", "vda", "1G"),
		cmd("update-device cdrom", "update-device", "$D", "$DIR/cdrom-insert.xml", "--live"),
		cmd("domblklist after update-device", "domblklist", "$D"),
		cmd("change-media --eject", "change-media", "$D", "$CDROM", "--eject", "--live"),
		cmd("change-media --insert", "change-media", "$D", "$CDROM", "$DIR/cd.iso", "--insert", "--live"),
		cmd("domblklist after change-media --insert", "domblklist", "$D"),
		// The dirty rate: the figures are each guest's own, the status and mode are compared.
		cmd("domdirtyrate-calc", "domdirtyrate-calc", "$D", "--seconds", "1"),
		flow{name: "domstats --dirtyrate", shows: "`domstats --dirtyrate $D`", do: domstatsDirtyRate}.scrubbed(
			re(`(?m)^\s+dirtyrate\.(?:start_time|megabytes_per_second|calc_period|vcpu\.\d+\.megabytes_per_second)=(\d+)$`)),
		// Run state.
		cmd("suspend", "suspend", "$D"),
		cmd("domstate after suspend", "domstate", "--reason", "$D"),
		cmd("resume", "resume", "$D"),
		flow{name: "event --all", shows: "`event $D --all --loop` around suspend, resume", do: func(t *testing.T, d *flowDom) lv.Result {
			return background(t, d, []string{"event", "$D", "--all", "--loop"},
				[][]string{{"suspend", "$D"}, {"resume", "$D"}}, "Resumed")
		}},
		flow{name: "qemu-monitor-event", shows: "`qemu-monitor-event $D --loop --pretty` around suspend, resume", do: func(t *testing.T, d *flowDom) lv.Result {
			return background(t, d, []string{"qemu-monitor-event", "$D", "--loop", "--pretty"},
				[][]string{{"suspend", "$D"}, {"resume", "$D"}}, "event RESUME")
		}, scrub: scrubEventTS},
		cmd("reset", "reset", "$D"),
		cmd("domstate after reset", "domstate", "--reason", "$D"),
		flow{name: "event during reset", shows: "`qemu-monitor-event $D --loop` around reset, suspend, resume", do: func(t *testing.T, d *flowDom) lv.Result {
			return background(t, d, []string{"qemu-monitor-event", "$D", "--loop"},
				[][]string{{"reset", "$D"}, {"suspend", "$D"}, {"resume", "$D"}}, "event RESUME")
		}, scrub: scrubEventTS},
		cmd("reboot", "reboot", "$D", "--mode", "acpi").waiting("running"),
		cmd("domstate after reboot", "domstate", "--reason", "$D"),
		// Save, restore, managed save: the hotplugged vCPU comes back through -device.
		cmd("save", "save", "$D", "$DIR/save.img"),
		cmd("domstate after save", "domstate", "--reason", "$D"),
		cmd("save-image-dumpxml", "save-image-dumpxml", "$DIR/save.img"),
		cmd("restore", "restore", "$DIR/save.img"),
		cmd("domstate after restore", "domstate", "--reason", "$D"),
		cmd("vcpucount after restore", "vcpucount", "$D"),
		cmd("save --paused", "save", "$D", "$DIR/save2.img", "--paused"),
		cmd("restore of a paused save", "restore", "$DIR/save2.img"),
		cmd("domstate after paused restore", "domstate", "--reason", "$D"),
		cmd("resume after paused restore", "resume", "$D"),
		cmd("managedsave", "managedsave", "$D"),
		cmd("managedsave-dumpxml", "managedsave-dumpxml", "$D"),
		cmd("start from managedsave", "start", "$D"),
		cmd("domstate after managedsave start", "domstate", "--reason", "$D"),
		cmd("dump --memory-only --format kdump-zlib", "dump", "$D", "$DIR/core.kdump", "--memory-only", "--format", "kdump-zlib"),
		cmd("domstate after dump", "domstate", "--reason", "$D"),
		// Other owners' areas: block jobs, dumps.
		cmd("blockcommit --active", "blockcommit", "$D", "vda", "--active", "--pivot", "--wait"),
		cmd("blockpull", "blockpull", "$D", "vda", "--wait"),
		cmd("dump --memory-only", "dump", "$D", "$DIR/core", "--memory-only"),
		cmd("blockcopy", "blockcopy", "$D", "vda", "$DIR/copy.qcow2", "--wait", "--finish", "--transient-job"),
		cmd("checkpoint-create-as", "checkpoint-create-as", "$D", "c1"),
		cmd("checkpoint-list", "checkpoint-list", "--name", "$D"),
		cmd("migrate-setspeed", "migrate-setspeed", "$D", "100"),
		cmd("migrate-getspeed after setspeed", "migrate-getspeed", "$D"),
		cmd("migrate-setmaxdowntime", "migrate-setmaxdowntime", "$D", "500"),
		// Unplugging the vCPU, then every device class.
		cmd("setvcpus unplug", "setvcpus", "$D", "1", "--live"),
		cmd("vcpucount after unplug", "vcpucount", "$D"),
		cmd("setvcpu --enable", "setvcpu", "$D", "1", "--enable", "--live"),
		cmd("vcpucount after setvcpu", "vcpucount", "$D"),
	}
	for _, c := range []string{"disk-virtio", "ctl-scsi", "disk-usb", "nic-virtio", "nic-e1000e", "channel", "console",
		"serial-usb", "rng", "input-usb", "input-virtio", "watchdog", "shmem", "vsock", "redirdev", "ctl-usb", "memballoon"} {
		story = append(story, attach(c)...)
	}
	story = append(story,
		// The shorthands a user reaches for first (on q35 the root ports may be taken by now:
		// QEMU's guest ejects nothing).
		cmd("attach-disk", "attach-disk", "$D", "$DIR/hot2.qcow2", "vdc", "--live", "--driver", "qemu", "--subdriver", "qcow2"),
		cmd("detach-disk", "detach-disk", "$D", "vdc", "--live"),
		cmd("attach-interface", "attach-interface", "$D", "user", "--model", "virtio", "--mac", "52:54:00:7c:f1:12", "--live"),
		cmd("detach-interface", "detach-interface", "$D", "user", "--mac", "52:54:00:7c:f1:12", "--live"),
		cmd("domblklist after hotplug", "domblklist", "$D"),
		cmd("domiflist after hotplug", "domiflist", "$D"),
		// Shutting down.
		cmd("shutdown --mode acpi", "shutdown", "$D", "--mode", "acpi").waiting("shut off"),
		cmd("domstate after shutdown", "domstate", "--reason", "$D"),
		cmd("domrename", "domrename", "$D", "$D-renamed"),
		prep("domrename back", "domrename", "$D-renamed", "$D"),
		cmd("start --paused", "start", "--paused", "$D"),
		cmd("domstate paused", "domstate", "--reason", "$D"),
		cmd("destroy", "destroy", "$D"),
		cmd("domstate after destroy", "domstate", "--reason", "$D"),
		// The process is gone: its locks with it, and the images it wrote are consistent.
		qemuImg("qemu-img check after destroy", "check", "$DIR/disk.qcow2").scrubbed(
			re(`(?m)^(\d+/\d+ = [\d.]+% allocated, [\d.]+% fragmented, [\d.]+% compressed clusters)$`, `(?m)^Image end offset: (\d+)$`)),
		qemuImg("qemu-img info after destroy", "info", "$DIR/s3.qcow2").scrubbed(re(`(?m)^disk size: (.*)$`)),
		flow{name: "virt-install --import", do: virtInstall, shows: "`virt-install --import` of a new disk (same machine, 2 vCPUs, VNC, user NIC), then `dumpxml`, `domstate`"},
	)
	return story
}

// ensureRunning starts the side's domain when it is not running (a flow before it made it
// fail) and waits until it runs; a story step.
func ensureRunning(t *testing.T, d *flowDom) lv.Result {
	if st, err := virsh.WaitState(d.Name, "running", time.Second); err == nil && st.State == "running" {
		return lv.Result{}
	}
	r, err := virsh.Exec("start", d.Name)
	if err != nil {
		return lv.Result{Code: -1, Stderr: err.Error()}
	}
	if r.Code != 0 {
		return r
	}
	if _, err := virsh.WaitState(d.Name, "running", stateDeadline); err != nil {
		return lv.Result{Code: -1, Stderr: err.Error()}
	}
	return lv.Result{}
}

// goLibvirt wraps a go-libvirt call as a flow: its text (or error) is the output.
func goLibvirt(f func(l *golibvirt.Libvirt, dom golibvirt.Domain, d *flowDom) (string, error)) func(*testing.T, *flowDom) lv.Result {
	return func(t *testing.T, d *flowDom) lv.Result {
		l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithLocalTimeout(30 * time.Second)))
		if err := l.Connect(); err != nil {
			return lv.Result{Code: -1, Stderr: err.Error()}
		}
		defer l.Disconnect()
		dom, err := l.DomainLookupByName(d.Name)
		if err != nil {
			return lv.Result{Code: 1, Stderr: err.Error()}
		}
		out, err := f(l, dom, d)
		if err != nil {
			return lv.Result{Code: 1, Stdout: out, Stderr: err.Error()}
		}
		return lv.Result{Stdout: out}
	}
}

// memoryPeek reads 16 bytes of guest-physical and guest-virtual memory (libvirt: pmemsave
// and memsave into a temporary file). The bytes are the guest's own; only their count is
// compared.
func memoryPeek(l *golibvirt.Libvirt, dom golibvirt.Domain, _ *flowDom) (string, error) {
	var out []string
	for _, fl := range []golibvirt.DomainMemoryFlags{golibvirt.MemoryPhysical, golibvirt.MemoryVirtual} {
		b, err := l.DomainMemoryPeek(dom, 0x1000, 16, fl)
		if err != nil {
			return strings.Join(out, "\n"), err
		}
		out = append(out, fmt.Sprintf("flags %d: %d bytes", fl, len(b)))
	}
	return strings.Join(out, "\n"), nil
}

// blockPeek reads the disk's first sector (libvirt reads the image itself).
func blockPeek(l *golibvirt.Libvirt, dom golibvirt.Domain, _ *flowDom) (string, error) {
	b, err := l.DomainBlockPeek(dom, "vda", 0, 16, 0)
	return hex.EncodeToString(b), err
}

// openGraphicsFD asks libvirt for a connected VNC client socket: libvirt makes a socket
// pair and hands QEMU one end (getfd, then QMP add_client). go-libvirt cannot take the
// descriptor libvirt sends back (its reader panics on it), so libvirt's Python binding
// (python3-libvirt, which virtinst brings) makes the call and reads the RFB greeting.
func openGraphicsFD(t *testing.T, d *flowDom) lv.Result {
	const py = `import libvirt, os, sys
c = libvirt.open("qemu:///system")
fd = c.lookupByName(sys.argv[1]).openGraphicsFD(0)
print(os.read(fd, 12))
`
	var so, se strings.Builder
	c := exec.Command("/usr/bin/python3", "-c", py, d.Name)
	c.Stdout, c.Stderr = &so, &se
	r := lv.Result{}
	if err := c.Run(); err != nil {
		r.Code = 1
	}
	r.Stdout, r.Stderr = so.String(), se.String()
	return r
}

// getMessages lists the domain's taint and deprecation messages.
func getMessages(l *golibvirt.Libvirt, dom golibvirt.Domain, _ *flowDom) (string, error) {
	m, err := l.DomainGetMessages(dom, 0)
	return strings.Join(m, "\n"), err
}

// virtInstall imports the side's disk as a new domain of the same model with virt-install
// (Debian package virtinst), as a user would: the emulator set through --xml. The new
// domain's XML is compared, then it is removed.
func virtInstall(t *testing.T, d *flowDom) lv.Result {
	if _, err := exec.LookPath("virt-install"); err != nil {
		return lv.Result{Code: -1, Stderr: "virt-install not installed (scripts/deps.sh installs virtinst)"}
	}
	name := d.Name + "-vi"
	disk := filepath.Join(d.dir, "vi.qcow2")
	if err := lv.CreateDisk(disk, ""); err != nil {
		return lv.Result{Code: -1, Stderr: err.Error()}
	}
	defer func() { _ = virsh.Remove(name) }()
	machine := "pc"
	if d.Kind == lv.Q35 {
		machine = "q35"
	}
	c := exec.Command("virt-install", "--connect", lv.URI, "--import", "--name", name, "--memory", "256",
		"--vcpus", "2", "--disk", "path="+disk+",format=qcow2,bus=virtio", "--osinfo", "detect=on,require=off",
		"--virt-type", "qemu", "--machine", machine, "--xml", "./devices/emulator="+d.Emulator,
		"--graphics", "vnc,listen=127.0.0.1", "--network", "user,mac="+flowMAC, "--noautoconsole")
	out, err := c.CombinedOutput()
	r := lv.Result{Stdout: string(out)}
	if err != nil {
		r.Code = 1
		r.Stderr = err.Error()
		return r
	}
	x, err := virsh.Exec("dumpxml", name)
	if err != nil {
		r.Code = -1
		r.Stderr = err.Error()
		return r
	}
	st, _ := virsh.Exec("domstate", "--reason", name)
	r.Stdout += x.Stdout + st.Stdout
	r.Stdout = strings.ReplaceAll(r.Stdout, name, "$D-vi")
	r.Stdout = regexp.MustCompile(`<uuid>[^<]*</uuid>`).ReplaceAllString(r.Stdout, "<uuid>UUID</uuid>")
	return r
}

// domstatsDirtyRate reads `domstats --dirtyrate` once the measurement domdirtyrate-calc
// started has ended (calc_status no longer 1, "measuring"; deadline 30 s): both sides run
// the calc at once, but on a loaded host one side's read can come more than the second
// after its calc and the other's within it, and a measuring status has fewer lines.
func domstatsDirtyRate(t *testing.T, d *flowDom) lv.Result {
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := virsh.Exec("domstats", "--dirtyrate", d.Name)
		if err != nil {
			r.Code, r.Stderr = -1, r.Stderr+err.Error()
		}
		if err != nil || r.Code != 0 || !strings.Contains(r.Stdout, "dirtyrate.calc_status=1\n") || time.Now().After(deadline) {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
}

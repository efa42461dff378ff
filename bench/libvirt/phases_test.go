package libvirt

import (
	"strings"
	"testing"
	"time"
)

// Excerpts of libvirtd 9.0 debug logs of one migration (the bed's filters), trimmed.
const srcLog = `2026-12-06 23:50:49.926+0000: 20237: debug : qemuMigrationSrcStoreDomainState:217 : Storing pre-migration state=1 domain=0x7f1c241d7840
2026-12-06 23:50:49.927+0000: 20237: debug : qemuMigrationSrcBeginPhase:2544 : driver=0x55c7570a1900, vm=0x7f1c241d7840, xmlin=<null>
2026-12-06 23:50:49.929+0000: 20237: debug : qemuMigrationCookieFormat:1485 : cookielen=928 cookie=<qemu-migration>
  <name>lvm-tl</name>
  <hostname>qemuMigrationSrcPerform:</hostname>
</qemu-migration>
2026-12-06 23:50:50.104+0000: 20240: debug : qemuMigrationSrcPerform:6226 : driver=0x55c7570a1900, conn=0x7f1c24003460
2026-12-06 23:50:50.123+0000: 20240: info : qemuMonitorSend:861 : QEMU_MONITOR_SEND_MSG: mon=0x7f1c440035d0 msg={"execute":"migrate","arguments":{"detach":true,"resume":false,"uri":"fd:migrate"},"id":"libvirt-423"}
2026-12-06 23:50:50.144+0000: 21256: info : qemuMonitorJSONIOProcessLine:203 : QEMU_MONITOR_RECV_EVENT: mon=0x7f1c440035d0 event={"timestamp": {"seconds": 1796601050, "microseconds": 144246}, "event": "STOP"}
2026-12-06 23:50:50.153+0000: 21256: info : qemuMonitorJSONIOProcessLine:203 : QEMU_MONITOR_RECV_EVENT: mon=0x7f1c440035d0 event={"timestamp": {"seconds": 1796601050, "microseconds": 145062}, "event": "MIGRATION", "data": {"status": "pre-switchover"}}
2026-12-06 23:50:50.157+0000: 21256: info : qemuMonitorJSONIOProcessLine:203 : QEMU_MONITOR_RECV_EVENT: mon=0x7f1c440035d0 event={"timestamp": {"seconds": 1796601050, "microseconds": 156907}, "event": "MIGRATION", "data": {"status": "completed"}}
2026-12-06 23:50:50.228+0000: 20239: debug : qemuMigrationSrcConfirm:6399 : driver=0x55c7570a1900, vm=0x7f1c241d7840, flags=0x301, cancelled=0
2026-12-06 23:50:50.245+0000: 20239: debug : qemuProcessKill:8300 : vm=0x7f1c241d7840 name=lvm-tl pid=21249 flags=0x5
`

const dstLog = `2026-12-06 23:50:49.936+0000: 20518: debug : qemuMigrationDstPrepareDirect:3682 : driver=0x5633cf24c000, dconn=0x7f125804b620
2026-12-06 23:50:49.988+0000: 20517: debug : qemuProcessLaunch:7872 : Handshake complete, child running
2026-12-06 23:50:49.989+0000: 20517: info : qemuMonitorSend:861 : QEMU_MONITOR_SEND_MSG: mon=0x7f124801c2f0 msg={"execute":"qmp_capabilities","id":"libvirt-1"}
2026-12-06 23:50:50.010+0000: 21562: info : qemuMonitorJSONIOProcessLine:208 : QEMU_MONITOR_RECV_REPLY: mon=0x7f124801c2f0 reply={"return": {}, "id": "libvirt-1"}
2026-12-06 23:50:50.011+0000: 21562: info : qemuMonitorJSONIOProcessLine:208 : QEMU_MONITOR_RECV_REPLY: mon=0x7f124801c2f0 reply={"return": {}, "id": "libvirt-12"}
2026-12-06 23:50:50.099+0000: 20517: info : qemuMonitorSend:861 : QEMU_MONITOR_SEND_MSG: mon=0x7f124801c2f0 msg={"execute":"migrate-incoming","arguments":{"uri":"tcp:[::]:49152"},"id":"libvirt-410"}
2026-12-06 23:50:50.184+0000: 20515: debug : qemuMigrationDstFinish:6581 : driver=0x5633cf24c000, dconn=0x7f125804b620
2026-12-06 23:50:50.196+0000: 20515: info : qemuMonitorSend:861 : QEMU_MONITOR_SEND_MSG: mon=0x7f124801c2f0 msg={"execute":"cont","id":"libvirt-414"}
2026-12-06 23:50:50.208+0000: 21562: info : qemuMonitorJSONIOProcessLine:208 : QEMU_MONITOR_RECV_REPLY: mon=0x7f124801c2f0 reply={"return": {}, "id": "libvirt-415"}
2026-12-06 23:50:50.212+0000: 21562: info : qemuMonitorJSONIOProcessLine:208 : QEMU_MONITOR_RECV_REPLY: mon=0x7f124801c2f0 reply={"return": {}, "id": "libvirt-416"}
`

func at(s string) time.Time {
	t, err := time.Parse(logTimeLayout, "2026-12-06 "+s+"+0000")
	if err != nil {
		panic(err)
	}
	return t
}

// TestParseBreakdown: every mark is found once, in order, on its host's log: the first entry
// holding its strings (a cookie's continuation line does not count, nor does a reply to
// another id), the last for the destination's last reply; the mirror's marks are absent
// without storage copy.
func TestParseBreakdown(t *testing.T) {
	start, exit := at("23:50:49.846"), at("23:50:50.482")
	got := ParseBreakdown([]byte(srcLog), []byte(dstLog), start, exit)
	want := []Mark{
		{"virsh migrate started", start},
		{"Begin (source)", at("23:50:49.927")},
		{"Prepare (destination)", at("23:50:49.936")},
		{"emulator exec'd", at("23:50:49.988")},
		{"qmp_capabilities answered", at("23:50:50.010")},
		{"migrate-incoming sent", at("23:50:50.099")},
		{"Perform (source)", at("23:50:50.104")},
		{"migrate sent", at("23:50:50.123")},
		{"STOP (source)", at("23:50:50.144")},
		{"MIGRATION completed (source)", at("23:50:50.157")},
		{"Finish (destination)", at("23:50:50.184")},
		{"cont sent", at("23:50:50.196")},
		{"last reply (destination)", at("23:50:50.212")},
		{"Confirm (source)", at("23:50:50.228")},
		{"SIGTERM to the source", at("23:50:50.245")},
		{"virsh migrate exited", exit},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d marks, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Name != want[i].Name || !got[i].At.Equal(want[i].At) {
			t.Errorf("mark %d: got %s at %s, want %s at %s", i, got[i].Name, got[i].At.Format("15:04:05.000"),
				want[i].Name, want[i].At.Format("15:04:05.000"))
		}
	}
}

// TestPhaseTable: each span is the median over a side's migrations, the whole command's
// too; a span whose marks a side lacks shows a dash, and other steps are left out.
func TestPhaseTable(t *testing.T) {
	ms := func(names []string, offsets ...int) []Mark {
		var out []Mark
		for i, n := range names {
			out = append(out, Mark{n, at("00:00:00.000").Add(time.Duration(offsets[i]) * time.Millisecond)})
		}
		return out
	}
	abc := []string{"a", "b", "c"}
	bs := []Breakdown{
		{"tlcvm", "migrate", ms(abc, 0, 10, 100)},
		{"tlcvm", "migrate", ms(abc, 0, 20, 300)},
		{"tlcvm", "migrate", ms(abc, 0, 30, 200)},
		{"qemu", "migrate", ms([]string{"a", "c"}, 0, 700)},
		{"tlcvm", "other", ms(abc, 0, 5000, 9000)},
	}
	got := PhaseTable(bs, "migrate")
	want := "| phase (median ms) | tlcvm | QEMU 7.2 |\n|---|---:|---:|\n" +
		"| a → b | 20 | — |\n" +
		"| b → c | 170 | — |\n" +
		"| **whole virsh command** | 200 | 700 |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if PhaseTable(bs, "none") != "" {
		t.Error("a step without samples has a table")
	}
}

// FuzzParseBreakdown: any log content parses without panicking, and the virsh marks bound
// the result.
func FuzzParseBreakdown(f *testing.F) {
	f.Add([]byte(srcLog), []byte(dstLog))
	f.Add([]byte("2026-12-06 23:50:49.927+0000: qemuMigrationSrcBeginPhase:"), []byte("\n\n"))
	f.Fuzz(func(t *testing.T, src, dst []byte) {
		start, exit := at("23:50:49.846"), at("23:50:50.482")
		m := ParseBreakdown(src, dst, start, exit)
		if len(m) < 2 || m[0].Name != "virsh migrate started" || !strings.HasPrefix(m[len(m)-1].Name, "virsh migrate exited") {
			t.Fatalf("marks %v", m)
		}
	})
}

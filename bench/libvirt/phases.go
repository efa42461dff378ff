package libvirt

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"

	"tlcvm/bench/stats"
)

// A migration's phases, read from both hosts' libvirtd debug logs (scripts/two-hosts.sh
// logs qemu.qemu_migration, qemu.qemu_monitor*, qemu.qemu_process and util.command at
// debug level). Every log entry starts with its time, in milliseconds:
//
//	2026-12-06 23:50:49.989+0000: 20517: info : qemuMonitorSend:861 : QEMU_MONITOR_SEND_MSG: mon=0x7f… msg={"execute":"qmp_capabilities","id":"libvirt-1"}
//
// A mark is the first entry (the last, for Last) of the source's (Dst false) or the
// destination's log that holds all of its strings; the phases are the spans between
// consecutive marks found, from the virsh command's start to its exit.
type markDef struct {
	Name string
	Dst  bool
	Has  []string
	Last bool
}

// migrationMarks are the marks of `virsh migrate --live [--copy-storage-all]`, in the order
// libvirt 9.0 reaches them (the mirror's only with storage copy).
var migrationMarks = []markDef{
	{Name: "Begin (source)", Has: []string{"qemuMigrationSrcBeginPhase:"}},
	{Name: "Prepare (destination)", Dst: true, Has: []string{"qemuMigrationDstPrepareDirect:"}},
	{Name: "emulator exec'd", Dst: true, Has: []string{"Handshake complete, child running"}},
	{Name: "qmp_capabilities answered", Dst: true, Has: []string{"QEMU_MONITOR_RECV_REPLY", `"id": "libvirt-1"}`}},
	{Name: "migrate-incoming sent", Dst: true, Has: []string{"QEMU_MONITOR_SEND_MSG", `"execute":"migrate-incoming"`}},
	{Name: "Perform (source)", Has: []string{"qemuMigrationSrcPerform:"}},
	{Name: "blockdev-mirror sent", Has: []string{"QEMU_MONITOR_SEND_MSG", `"execute":"blockdev-mirror"`}},
	{Name: "BLOCK_JOB_READY", Has: []string{"QEMU_MONITOR_RECV_EVENT", `"event": "BLOCK_JOB_READY"`}},
	{Name: "migrate sent", Has: []string{"QEMU_MONITOR_SEND_MSG", `"execute":"migrate",`}},
	{Name: "STOP (source)", Has: []string{"QEMU_MONITOR_RECV_EVENT", `"event": "STOP"`}},
	{Name: "MIGRATION completed (source)", Has: []string{"QEMU_MONITOR_RECV_EVENT", `"status": "completed"`}},
	{Name: "Finish (destination)", Dst: true, Has: []string{"qemuMigrationDstFinish:"}},
	{Name: "cont sent", Dst: true, Has: []string{"QEMU_MONITOR_SEND_MSG", `"execute":"cont"`}},
	{Name: "last reply (destination)", Dst: true, Has: []string{"QEMU_MONITOR_RECV_REPLY"}, Last: true},
	{Name: "Confirm (source)", Has: []string{"qemuMigrationSrcConfirm:"}},
	{Name: "SIGTERM to the source", Has: []string{"qemuProcessKill:"}},
}

// Mark is one point of a migration's timeline.
type Mark struct {
	Name string
	At   time.Time
}

// Breakdown is one migration's timeline: virsh's start, the marks found, virsh's exit.
type Breakdown struct {
	Side, Step string
	Marks      []Mark
}

// logTimeLayout is libvirt's log time stamp.
const logTimeLayout = "2006-01-02 15:04:05.000-0700"

// ParseBreakdown reads the marks of one migration from the source's and the destination's
// debug logs; start and exit bound the virsh command. Entries without a time stamp (the
// continuation lines of multi-line messages) and marks not found are skipped.
func ParseBreakdown(src, dst []byte, start, exit time.Time) []Mark {
	marks := []Mark{{"virsh migrate started", start}}
	for _, m := range migrationMarks {
		log := src
		if m.Dst {
			log = dst
		}
		if at, ok := findMark(log, m); ok {
			marks = append(marks, Mark{m.Name, at})
		}
	}
	return append(marks, Mark{"virsh migrate exited", exit})
}

// findMark returns the time of m's entry in log.
func findMark(log []byte, m markDef) (time.Time, bool) {
	var found time.Time
	ok := false
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < len(logTimeLayout) || !hasAll(line, m.Has) {
			continue
		}
		t, err := time.Parse(logTimeLayout, line[:len(logTimeLayout)])
		if err != nil {
			continue
		}
		found, ok = t, true
		if !m.Last {
			break
		}
	}
	return found, ok
}

func hasAll(s string, subs []string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// PhaseTable renders the breakdowns of step as a Markdown table: each span between
// consecutive marks, the median over each side's migrations in milliseconds, and the
// median of the whole. A span is shown when both sides' migrations have both its marks
// (a mark missing in one sample drops that sample from the span's median).
func PhaseTable(bs []Breakdown, step string) string {
	var names []string // the marks, in order, as the samples have them
	seen := map[string]bool{}
	for _, b := range bs {
		if b.Step != step {
			continue
		}
		for _, m := range b.Marks {
			if !seen[m.Name] {
				seen[m.Name] = true
				names = append(names, m.Name)
			}
		}
	}
	if len(names) < 2 {
		return ""
	}
	span := func(side, from, to string) float64 {
		var xs []float64
		for _, b := range bs {
			if b.Step != step || b.Side != side {
				continue
			}
			var t0, t1 time.Time
			for _, m := range b.Marks {
				switch m.Name {
				case from:
					t0 = m.At
				case to:
					t1 = m.At
				}
			}
			if !t0.IsZero() && !t1.IsZero() {
				xs = append(xs, float64(t1.Sub(t0))/float64(time.Millisecond))
			}
		}
		v, err := stats.Median(xs)
		if err != nil {
			return math.NaN()
		}
		return v
	}
	cellMS := func(v float64) string {
		if math.IsNaN(v) {
			return "—"
		}
		return fmt.Sprintf("%.0f", v)
	}
	var b strings.Builder
	b.WriteString("| phase (median ms) | tlcvm | QEMU 7.2 |\n|---|---:|---:|\n")
	for i := 1; i < len(names); i++ {
		fmt.Fprintf(&b, "| %s → %s | %s | %s |\n", names[i-1], names[i],
			cellMS(span("tlcvm", names[i-1], names[i])), cellMS(span("qemu", names[i-1], names[i])))
	}
	first, last := names[0], names[len(names)-1]
	fmt.Fprintf(&b, "| **whole virsh command** | %s | %s |\n", cellMS(span("tlcvm", first, last)), cellMS(span("qemu", first, last)))
	return b.String()
}

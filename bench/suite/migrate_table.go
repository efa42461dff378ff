package suite

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"tlcvm/bench/stats"
)

// MigRow is one line of the migration table: a scenario and mode, the figures of each side
// (medians over its tries) and the targets judged on tlcvm's.
type MigRow struct {
	Label string  `json:"label"`
	Mode  string  `json:"mode"`
	WSMiB int     `json:"ws_mib"`
	TLCVM MigAgg  `json:"tlcvm"`
	QEMU  MigAgg  `json:"qemu"`
	Link  float64 `json:"link_mb_s"`
	// Targets and whether tlcvm met them ("" when a row has none).
	Targets []string `json:"targets,omitempty"`
	Met     []bool   `json:"met,omitempty"`
}

// MigAgg is one side's tries of one row.
type MigAgg struct {
	Tries, Converged int
	InPostcopy       int     // converged tries that entered postcopy (ram.postcopy-bytes > 0)
	TotalMS          float64 // median of converged; NaN without
	DowntimeMS       float64
	MB               float64 // median RAM transferred, every try (unconverged: until cancelled)
	MBs              float64 // median throughput of converged tries
	CappedS          float64 // the cap, when a try was capped
	// Pass1MBs and Stage3MBs are the medians of tlcvm's stage 1 (the first pass, guest
	// running) and stage 3 (guest stopped) rates, from query-migrate's x-tlc-stages
	// (NaN for QEMU, or a stage that sent nothing).
	Pass1MBs, Stage3MBs float64
	// CPUPerMB is the median over converged tries of the CPU both processes spent (source
	// from migrate to the end, destination until it left inmigrate) per MB transferred,
	// in ms; NaN when not read, or when no try moved cpuMinMB (CPUTooLittle).
	CPUPerMB float64
	// CPUTooLittle: the CPU was read but the tries moved too little RAM for a figure per
	// MB to mean anything (an idle guest sends a few KB: its setup's CPU over ~0 MB).
	CPUTooLittle bool
}

// cpuMinMB is the least RAM transferred (MB) a try's CPU per MB is computed on.
const cpuMinMB = 1.0

// stageRates returns a try's stage 1 and stage 3 rates (MB/s) from its final
// query-migrate's x-tlc-stages, NaN where there is none.
func stageRates(info json.RawMessage) (pass1, stage3 float64) {
	pass1, stage3 = math.NaN(), math.NaN()
	var v struct {
		Stages []struct {
			Stage     string `json:"stage"`
			ElapsedMS int64  `json:"elapsed-ms"`
			Bytes     int64  `json:"bytes"`
		} `json:"x-tlc-stages"`
	}
	if json.Unmarshal(info, &v) != nil {
		return pass1, stage3
	}
	for _, st := range v.Stages {
		if st.ElapsedMS <= 0 || st.Bytes < 1<<20 {
			continue
		}
		r := float64(st.Bytes) / 1e6 / (float64(st.ElapsedMS) / 1e3)
		switch st.Stage {
		case "stage 1":
			pass1 = r
		case "stage 3":
			stage3 = r
		}
	}
	return pass1, stage3
}

func median(v []float64) float64 {
	m, err := stats.Median(v)
	if err != nil {
		return math.NaN()
	}
	return m
}

func migAgg(recs []MigRecord) MigAgg {
	a := MigAgg{TotalMS: math.NaN(), DowntimeMS: math.NaN(), MB: math.NaN(), MBs: math.NaN()}
	var total, down, mb, mbs, p1, s3, cpu []float64
	for _, r := range recs {
		a.Tries++
		if r.Err != "" && r.Transferred == 0 {
			continue
		}
		mb = append(mb, float64(r.Transferred)/1e6)
		if r.Capped {
			a.CappedS = r.WallMS / 1e3
		}
		if !r.Converged {
			continue
		}
		a.Converged++
		if r.PostcopyB > 0 {
			a.InPostcopy++
		}
		if r.TotalMS != nil {
			total = append(total, float64(*r.TotalMS))
			mbs = append(mbs, r.ThroughputMBs())
		}
		if r.DowntimeMS != nil {
			down = append(down, float64(*r.DowntimeMS))
		}
		if mb := float64(r.Transferred) / 1e6; r.SrcCPUMS > 0 && r.DstCPUMS > 0 && mb >= cpuMinMB {
			cpu = append(cpu, (r.SrcCPUMS+r.DstCPUMS)/mb)
		} else if r.SrcCPUMS > 0 && r.DstCPUMS > 0 {
			a.CPUTooLittle = true
		}
		if x, y := stageRates(r.Info); finite(x) || finite(y) {
			if finite(x) {
				p1 = append(p1, x)
			}
			if finite(y) {
				s3 = append(s3, y)
			}
		}
	}
	a.TotalMS, a.DowntimeMS, a.MB, a.MBs = median(total), median(down), median(mb), median(mbs)
	a.Pass1MBs, a.Stage3MBs, a.CPUPerMB = median(p1), median(s3), median(cpu)
	a.CPUTooLittle = a.CPUTooLittle && len(cpu) == 0
	return a
}

// MigRows groups the records by scenario and mode (in the order first seen) and judges the
// issue's targets on tlcvm: every migration converges; postcopy downtime ≤ 5 ms; precopy
// throughput ≥ 80 % of the link (the "written" rows: RAM to send and no vCPU running).
func MigRows(recs []MigRecord, linkMBs float64) []MigRow {
	type key struct {
		mem, ws int
		stopped bool
		mode    string
	}
	var order []key
	by := map[key][]MigRecord{}
	for _, r := range recs {
		k := key{r.MemMiB, r.WSMiB, r.Stopped, r.Mode}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], r)
	}
	var rows []MigRow
	for _, k := range order {
		var t, q []MigRecord
		for _, r := range by[k] {
			if r.Side == QEMU {
				q = append(q, r)
			} else {
				t = append(t, r)
			}
		}
		sc := CkScenario{MemMiB: k.mem, WSMiB: k.ws, Stopped: k.stopped}
		label := sc.Label()
		if sc.Idle() {
			label = strings.TrimSuffix(label, " never started")
		}
		row := MigRow{Label: label, Mode: k.mode, WSMiB: k.ws, TLCVM: migAgg(t), QEMU: migAgg(q), Link: linkMBs}
		judge := func(target string, ok bool) {
			row.Targets, row.Met = append(row.Targets, target), append(row.Met, ok)
		}
		if row.TLCVM.Tries > 0 {
			judge("converges", row.TLCVM.Converged == row.TLCVM.Tries)
			if k.mode == MigPostcopy {
				judge("downtime ≤ 5 ms", row.TLCVM.DowntimeMS <= 5)
			} else if k.ws > 0 {
				judge("downtime ≤ 300 ms (the limit)", row.TLCVM.DowntimeMS <= 300)
				// The throughput target is the precopy's own: judged where the guest's vCPUs
				// do not run (a hot guest's vCPU holds a CPU the link's figure had).
				if k.stopped && finite(linkMBs) && linkMBs > 0 {
					judge("≥ 80 % of link", row.TLCVM.MBs >= 0.8*linkMBs)
				}
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// MigMarkdown renders the migration table.
func MigMarkdown(rows []MigRow) string {
	var b strings.Builder
	b.WriteString("| guest | mode | side | converged | total time (ms) | downtime (ms) | RAM transferred (MB) | throughput (MB/s, % of link) | first pass, stage 3 (MB/s) | CPU, both ends (ms per MB) |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	f := func(v float64, d int) string {
		if !finite(v) {
			return "—"
		}
		return strconv.FormatFloat(v, 'f', d, 64)
	}
	for _, r := range rows {
		for _, s := range []struct {
			name string
			a    MigAgg
		}{{"tlcvm", r.TLCVM}, {"QEMU 7.2", r.QEMU}} {
			if s.a.Tries == 0 {
				continue
			}
			conv := fmt.Sprintf("%d of %d", s.a.Converged, s.a.Tries)
			if r.Mode == MigPostcopy {
				conv += fmt.Sprintf(", %d entered postcopy", s.a.InPostcopy)
			}
			if s.a.CappedS > 0 {
				conv += fmt.Sprintf(" (cancelled at %.0f s)", s.a.CappedS)
			}
			tp := f(s.a.MBs, 0)
			if finite(s.a.MBs) && finite(r.Link) && r.Link > 0 {
				tp += fmt.Sprintf(" (%.0f %%)", 100*s.a.MBs/r.Link)
			}
			stages := "—"
			if finite(s.a.Pass1MBs) || finite(s.a.Stage3MBs) {
				stages = f(s.a.Pass1MBs, 0) + ", " + f(s.a.Stage3MBs, 0)
			}
			cpu := f(s.a.CPUPerMB, 2)
			if s.a.CPUTooLittle {
				cpu = "n/a"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Label, r.Mode, s.name, conv,
				f(s.a.TotalMS, 0), f(s.a.DowntimeMS, 0), f(s.a.MB, 1), tp, stages, cpu)
		}
	}
	var tg strings.Builder
	for _, r := range rows {
		for i, t := range r.Targets {
			fmt.Fprintf(&tg, "| %s, %s | %s | %s |\n", r.Label, r.Mode, t, map[bool]string{true: "**yes**", false: "no"}[r.Met[i]])
		}
	}
	if tg.Len() > 0 {
		b.WriteString("\nTargets, judged on tlcvm:\n\n| row | target | met? |\n|---|---|---|\n")
		b.WriteString(tg.String())
	}
	return b.String()
}

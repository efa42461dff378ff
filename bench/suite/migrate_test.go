package suite_test

import (
	"strings"
	"testing"

	"tlcvm/bench/suite"
)

// migRecords is a made-up run: tlcvm converges everywhere, QEMU's 512 MiB hot precopy is
// capped, tlcvm's postcopy enters postcopy with a 3 ms downtime.
func migRecords() []suite.MigRecord {
	mk := func(side, mode string, ws int, conv bool, total, down, bytes, pcBytes int64) suite.MigRecord {
		r := suite.MigRecord{Kind: "migrate", Side: side, Mode: mode, MemMiB: 1024, WSMiB: ws, Converged: conv,
			Transferred: bytes, PostcopyB: pcBytes, Status: "completed"}
		if conv {
			r.TotalMS, r.DowntimeMS = p64(total), p64(down)
		} else {
			r.Status, r.Capped, r.WallMS = "cancelled", true, 60000
		}
		return r
	}
	withStages := func(r suite.MigRecord) suite.MigRecord {
		r.Info = []byte(`{"status":"completed","x-tlc-stages":[{"stage":"setup","elapsed-ms":2,"bytes":79},` +
			`{"stage":"stage 1","elapsed-ms":1000,"bytes":500000000},{"stage":"stage 2","elapsed-ms":0,"bytes":0},` +
			`{"stage":"stage 3","elapsed-ms":250,"bytes":250000000}]}`)
		return r
	}
	withCPU := func(r suite.MigRecord, srcCPU, dstCPU float64) suite.MigRecord {
		r.SrcCPUMS, r.DstCPUMS = srcCPU, dstCPU
		return r
	}
	written := func(r suite.MigRecord, srcCPU, dstCPU float64) suite.MigRecord {
		r.Stopped, r.Scenario, r.SrcCPUMS, r.DstCPUMS = true, "written", srcCPU, dstCPU
		return r
	}
	return []suite.MigRecord{
		mk(suite.QEMU, suite.MigPrecopy, 0, true, 1000, 3, 3e6, 0),
		withCPU(mk(suite.TLCVM, suite.MigPrecopy, 0, true, 100, 2, 3000, 0), 15, 40), // 3 KB: no figure per MB
		mk(suite.QEMU, suite.MigPrecopy, 512, false, 0, 0, 36e9, 0),
		withStages(mk(suite.TLCVM, suite.MigPrecopy, 512, true, 1000, 250, 1000e6, 0)), // 1000 MB/s; passes 500, 1000 MB/s
		mk(suite.TLCVM, suite.MigPostcopy, 512, true, 800, 3, 600e6, 100e6),
		mk(suite.QEMU, suite.MigPostcopy, 512, true, 2000, 40, 700e6, 200e6),
		written(mk(suite.TLCVM, suite.MigPrecopy, 1022, true, 1000, 1, 1070e6, 0), 700, 400), // 1070 MB/s, 1.03 ms/MB
		written(mk(suite.QEMU, suite.MigPrecopy, 1022, true, 5000, 300, 1070e6, 0), 3000, 2000),
	}
}

func TestMigRows(t *testing.T) {
	rows := suite.MigRows(migRecords(), 1100)
	if len(rows) != 4 {
		t.Fatalf("rows = %d, want 4 (idle, 512 precopy, 512 postcopy, written)", len(rows))
	}
	tests := []struct {
		row     int
		targets []string
		met     []bool
	}{
		{0, []string{"converges"}, []bool{true}},                                                                // idle: nothing to send, no throughput target
		{1, []string{"converges", "downtime ≤ 300 ms (the limit)"}, []bool{true, true}},                         // 250 ms; a hot guest: no throughput target
		{2, []string{"converges", "downtime ≤ 5 ms"}, []bool{true, true}},                                       // 3 ms
		{3, []string{"converges", "downtime ≤ 300 ms (the limit)", "≥ 80 % of link"}, []bool{true, true, true}}, // 1070 of 1100 MB/s
	}
	for _, tc := range tests {
		r := rows[tc.row]
		if strings.Join(r.Targets, ";") != strings.Join(tc.targets, ";") || len(r.Met) != len(tc.met) {
			t.Fatalf("row %d targets %q met %v, want %q %v", tc.row, r.Targets, r.Met, tc.targets, tc.met)
		}
		for i := range tc.met {
			if r.Met[i] != tc.met[i] {
				t.Errorf("row %d %s: met %v, want %v", tc.row, r.Targets[i], r.Met[i], tc.met[i])
			}
		}
	}
	if q := rows[1].QEMU; q.Converged != 0 || q.Tries != 1 || q.CappedS != 60 || q.MB != 36e3 {
		t.Errorf("QEMU 512 hot precopy = %+v, want 0 of 1 capped at 60 s, 36000 MB", q)
	}
	if r := rows[2].TLCVM; r.InPostcopy != 1 {
		t.Errorf("tlcvm postcopy entered %d, want 1", r.InPostcopy)
	}
	// A slow tlcvm fails the throughput target; an unconverged one fails "converges".
	recs := migRecords()
	recs[6].TotalMS = p64(2000)
	recs[4].Converged, recs[4].Status = false, "cancelled"
	rows = suite.MigRows(recs, 1100)
	if rows[3].Met[2] || rows[2].Met[0] {
		t.Errorf("slow/unconverged tlcvm judged met: %v %v", rows[3].Met, rows[2].Met)
	}
}

func TestMigMarkdown(t *testing.T) {
	md := suite.MigMarkdown(suite.MigRows(migRecords(), 1100))
	for _, want := range []string{
		"| 1 GiB, idle | precopy | tlcvm | 1 of 1 | 100 | 2 | 0.0 | 0 (0 %) | — | n/a |",
		"| 1 GiB, 512 MiB hot | precopy | QEMU 7.2 | 0 of 1 (cancelled at 60 s) | — | — | 36000.0 | — | — | — |",
		"| 1 GiB, 512 MiB hot | postcopy | tlcvm | 1 of 1, 1 entered postcopy | 800 | 3 | 600.0 | 750 (68 %) | — | — |",
		"| 1 GiB, 512 MiB hot, postcopy | downtime ≤ 5 ms | **yes** |",
		"| 1 GiB, 512 MiB hot | precopy | tlcvm | 1 of 1 | 1000 | 250 | 1000.0 | 1000 (91 %) | 500, 1000 | — |",
		"| 1 GiB, all written, stopped | precopy | tlcvm | 1 of 1 | 1000 | 1 | 1070.0 | 1070 (97 %) | — | 1.03 |",
		"| 1 GiB, all written, stopped | precopy | QEMU 7.2 | 1 of 1 | 5000 | 300 | 1070.0 | 214 (19 %) | — | 4.67 |",
		"| 1 GiB, all written, stopped, precopy | ≥ 80 % of link | **yes** |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

func TestWrap(t *testing.T) {
	bin, args := suite.Wrap("ns1", "/usr/bin/qemu", []string{"-m", "1G"})
	if got := bin + " " + strings.Join(args, " "); got != "ip netns exec ns1 /usr/bin/qemu -m 1G" {
		t.Errorf("Wrap = %q", got)
	}
}

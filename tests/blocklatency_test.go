package tests_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// block-latency-histogram-set against QEMU 7.2: replies and errors (unknown ids, a drive
// name, a virtio-blk proxy without a backend of its own, bad boundaries, the 8.0-only
// boundaries-zap, clearing) and the histograms query-blockstats then shows; an HMP qemu-io
// write in between, which QEMU does not account.

const latencyVirtio = "/machine/peripheral/vd0/virtio-backend"

var latencySteps = []string{
	`{"id":"` + latencyVirtio + `","boundaries":[10,50,100],"boundaries-write":[1000,5000000000]}`,
	`{"id":"nope"}`, `{"id":"d1"}`, `{"id":"vd0","boundaries":[1]}`, `{"id":"ide0","boundaries-flush":[7]}`,
	`{"id":"` + latencyVirtio + `","boundaries":[10,10]}`,
	`{"id":"` + latencyVirtio + `","boundaries-flush":[0]}`,
	`{"id":"` + latencyVirtio + `","boundaries":[5],"boundaries-write":[5,1]}`,
	`{"id":"` + latencyVirtio + `","boundaries-zap":[1]}`,
	`{"id":"` + latencyVirtio + `","boundaries-read":[]}`,
	`stats`,
	`{"id":"` + latencyVirtio + `"}`,
	`stats`,
}

// latencyStats is each device's histograms in query-blockstats, as received.
func latencyStats(t *testing.T, q *harness.QMP) string {
	t.Helper()
	var out []string
	for _, b := range execOK(t, q, "query-blockstats", nil).Arr {
		dev, _ := b.Get("device")
		line := "device " + dev.Str() + ":"
		st, _ := b.Get("stats")
		for _, k := range []string{"rd_latency_histogram", "wr_latency_histogram", "flush_latency_histogram"} {
			if h, ok := st.Get(k); ok {
				line += fmt.Sprintf(" %s=%s", k, h)
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func runLatency(t *testing.T, bin, dir string) string {
	p, q, _ := startVM(t, bin, "-machine", "pc", "-S",
		"-blockdev", "driver=file,filename="+filepath.Join(dir, "a.qcow2")+",node-name=f0",
		"-blockdev", "driver=qcow2,file=f0,node-name=q0", "-device", "virtio-blk-pci,drive=q0,id=vd0",
		"-drive", "if=none,id=d1,file="+filepath.Join(dir, "b.qcow2")+",format=qcow2,readonly=on",
		"-device", "ide-cd,drive=d1,id=ide0")
	var out []string
	for i, s := range latencySteps {
		if s == "stats" {
			out = append(out, latencyStats(t, q))
			continue
		}
		m, err := q.Execute("block-latency-histogram-set", json.RawMessage(s))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(m.Raw))
		if i == 0 {
			hmpIO(t, q, "-d "+latencyVirtio, "write 0 4k")
			out = append(out, latencyStats(t, q))
		}
	}
	execOK(t, q, "quit", nil)
	_ = p
	return strings.Join(out, "\n")
}

func TestBlockLatencyHistogramDifferential(t *testing.T) {
	bin, ref := imageDifferential(t)
	run := func(b string) string {
		dir := t.TempDir()
		tool(t, "qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "a.qcow2"), "1M")
		tool(t, "qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "b.qcow2"), "1M")
		return runLatency(t, b, dir)
	}
	want, got := run(ref), run(bin)
	if !strings.Contains(want, "set write boundaries fail") || !strings.Contains(want, `"bins": [0, 0, 0]`) {
		t.Errorf("QEMU's replies lack what the test is for:\n%s", want)
	}
	if d := harness.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); d != "" {
		t.Errorf("block-latency-histogram-set differs from QEMU 7.2 (- QEMU, + tlcvm):\n%s", d)
	}
}

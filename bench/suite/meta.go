package suite

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"tlcvm/bench/qmpc"
	"tlcvm/bench/stats"
)

// Meta describes the run: when, where, what was compared.
type Meta struct {
	Kind         string        `json:"kind"` // "meta"
	Date         string        `json:"date"` // RFC 3339, UTC
	Invocation   string        `json:"invocation,omitempty"`
	Command      string        `json:"command"`
	Kernel       string        `json:"kernel"`
	CPUs         int           `json:"cpus"`
	CPUModel     string        `json:"cpu_model"`
	LoadBefore   string        `json:"loadavg_before"`
	LoadAfter    string        `json:"loadavg_after,omitempty"`
	GoVersion    string        `json:"go"`
	TLCVMBin     string        `json:"tlcvm_bin"`
	TLCVMVersion string        `json:"tlcvm_version"`
	QEMUBin      string        `json:"qemu_bin"`
	QEMUVersion  string        `json:"qemu_version"`
	StandIn      bool          `json:"tlcvm_is_stand_in"` // the tlcvm side is not tlcvm
	ExecFloorMS  stats.Summary `json:"exec_floor_ms"`     // fork/exec/wait of /bin/true
	// RTCeiling is the round-trip rate of the same client against an
	// in-process server that answers each line with a canned reply: the
	// most the harness can measure on this machine.
	RTCeiling float64 `json:"rt_ceiling_per_s"`
}

// Describe gathers the run's metadata. It runs each binary with -version
// and times n fork/exec/wait cycles of /bin/true: the floor under any
// start-up figure on this machine.
func Describe(ctx context.Context, o Options, n int) Meta {
	m := Meta{
		Kind:       "meta",
		Date:       time.Now().UTC().Format(time.RFC3339),
		Kernel:     firstLine(readFile("/proc/sys/kernel/osrelease")),
		CPUs:       runtime.NumCPU(),
		CPUModel:   cpuModel(),
		LoadBefore: LoadAvg(),
		GoVersion:  runtime.Version(),
		TLCVMBin:   o.TLCVM.Bin,
		QEMUBin:    o.QEMU.Bin,
	}
	m.TLCVMVersion = version(ctx, o.TLCVM.Bin)
	m.QEMUVersion = version(ctx, o.QEMU.Bin)
	// tlcvm reports itself as QEMU 7.2.x with a package string naming tlcvm.
	m.StandIn = !strings.Contains(strings.ToLower(m.TLCVMVersion), "tlcvm")
	if fl, err := execFloor(ctx, n); err == nil {
		m.ExecFloorMS = fl
	}
	if o.wants(BenchRT) {
		if c, err := rtCeiling(o.BaseDir, 500*time.Millisecond); err == nil {
			m.RTCeiling = c
		}
	}
	return m
}

// rtCeiling runs the round-trip loop for d against a goroutine that
// answers every request line with query-status's reply over a unix socket.
func rtCeiling(baseDir string, d time.Duration) (float64, error) {
	dir, err := os.MkdirTemp(baseDir, "tlcvm-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("unix", filepath.Join(dir, "echo.sock"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		reply := []byte(`{"return": {"status": "running", "singlestep": false, "running": true}}` + "\r\n")
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadSlice('\n'); err != nil {
				return
			}
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		return 0, err
	}
	conn := qmpc.New(c)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(d + 10*time.Second))
	n, start := 0, time.Now()
	for time.Since(start) < d {
		if err := conn.RoundTrip(rtRequest); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// LoadAvg returns the first three fields of /proc/loadavg.
func LoadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}

func cpuModel() string {
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/cpuinfo")))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func version(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-version")
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return "error: " + err.Error()
	}
	return firstLine(string(bytes.TrimSpace(out)))
}

func execFloor(ctx context.Context, n int) (stats.Summary, error) {
	bin, err := exec.LookPath("true")
	if err != nil {
		return stats.Summary{}, err
	}
	var s []float64
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := exec.CommandContext(ctx, bin).Run(); err != nil {
			return stats.Summary{}, err
		}
		s = append(s, ms(time.Since(t0)))
	}
	return stats.Summarize(s)
}

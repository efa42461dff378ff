package suite

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"tlcvm/bench/stats"
)

// Limits are the machine's own bandwidths, measured in the same run as the
// checkpoints (as /work/shared/bench/limits does): medians of Reps.
type Limits struct {
	Kind       string  `json:"kind"` // "limits"
	MiB        int     `json:"mib"`
	Reps       int     `json:"reps"`
	CopyGBs    float64 `json:"memcpy_gb_s"`    // Go copy() between two faulted-in buffers
	PipeFileMB float64 `json:"pipe_file_mb_s"` // harness → pipe → cat > FILE (page cache, no sync)
	ReadBackMB float64 `json:"read_back_mb_s"` // cat FILE → pipe → harness (what -incoming exec:cat does)
	Err        string  `json:"err,omitempty"`
}

// MeasureLimits measures memory copy, the pipe into a file and the file
// read back through a pipe, with buffers and files of mib MiB, reps times
// each; the file goes under dir and is removed.
func MeasureLimits(ctx context.Context, dir string, mib, reps int) (Limits, error) {
	l := Limits{Kind: "limits", MiB: mib, Reps: reps}
	n := mib << 20
	src, dst := make([]byte, n), make([]byte, n)
	for i := 0; i < n; i += 4096 {
		src[i], dst[i] = byte(i>>12)|1, 1
	}
	var cp, pw, rb []float64
	for i := 0; i < reps; i++ {
		t := time.Now()
		copy(dst, src)
		cp = append(cp, float64(n)/time.Since(t).Seconds()/1e9)
	}
	dst = nil
	f := filepath.Join(dir, "limits-pipe.bin")
	defer os.Remove(f)
	for i := 0; i < reps; i++ {
		if err := ctx.Err(); err != nil {
			return l, err
		}
		_ = os.Remove(f)
		d, err := pipeInto(ctx, src, f)
		if err != nil {
			return l, err
		}
		pw = append(pw, float64(n)/d.Seconds()/1e6)
		d, err = readBack(ctx, f)
		if err != nil {
			return l, err
		}
		rb = append(rb, float64(n)/d.Seconds()/1e6)
	}
	l.CopyGBs, _ = stats.Median(cp)
	l.PipeFileMB, _ = stats.Median(pw)
	l.ReadBackMB, _ = stats.Median(rb)
	return l, nil
}

// pipeInto writes buf in 1 MiB writes into "cat > FILE" and times it until
// cat has exited.
func pipeInto(ctx context.Context, buf []byte, file string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", `exec cat > "$0"`, file)
	w, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	for off := 0; off < len(buf); off += 1 << 20 {
		if _, err := w.Write(buf[off:min(off+1<<20, len(buf))]); err != nil {
			_ = cmd.Wait()
			return 0, fmt.Errorf("suite: pipe: %w", err)
		}
	}
	w.Close()
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("suite: pipe: %w", err)
	}
	return time.Since(t), nil
}

// readBack reads FILE through "cat FILE" into the harness and discards it.
func readBack(ctx context.Context, file string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "cat", file)
	r, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
		_ = cmd.Wait()
		return 0, fmt.Errorf("suite: read back: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("suite: read back: %w", err)
	}
	return time.Since(t), nil
}

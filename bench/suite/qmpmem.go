package suite

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"tlcvm/bench/emu"
	"tlcvm/bench/procmem"
)

// Memory on single huge QMP lines (QPartMemory): each input goes to tlcvm and to QEMU 7.2 at
// the same time, on a fresh "-machine none" each, followed by query-status; the figures are
// VmRSS before, VmHWM (the peak) once query-status is answered, and VmRSS then (tlcvm:
// once it has come back near idle, given up to 30 s). QEMU reads its monitor one byte per
// main-loop iteration, so its side of the two big inputs takes minutes.

// LineInput is one huge QMP line.
type LineInput struct {
	Name, Label string
	Line        func() []byte
}

// LineInputs are the inputs of the memory benchmark: a 50 MiB string argument (under the
// 64 MiB limit: parsed, then refused by the command), a 100 MiB token (cut at 64 MiB, the rest
// lexed anew), nesting past 1024 levels, and 2 Mi + 2 small tokens.
var LineInputs = []LineInput{
	{"str50", "a 50 MiB string argument", func() []byte { return stringArg(50 << 20) }},
	{"tok100", "a 100 MiB token", func() []byte { return stringArg(100 << 20) }},
	{"deep", "2000 nested brackets", func() []byte {
		return []byte(strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + "\n")
	}},
	{"many", "2 Mi + 3 small tokens", func() []byte { return []byte("[" + strings.Repeat("1,", 1<<20) + "1]\n") }},
}

func stringArg(n int) []byte {
	b := make([]byte, 0, n+64)
	b = append(b, `{"execute": "qmp_capabilities", "arguments": {"x": "`...)
	b = append(b, bytes.Repeat([]byte{'a'}, n)...)
	return append(b, "\"}}\n"...)
}

// LineResult is what one emulator did with one line.
type LineResult struct {
	Kind    string   `json:"kind"` // "qmp-line"
	Side    string   `json:"side"`
	Input   string   `json:"input"`
	Replies []string `json:"-"`
	NReply  int      `json:"replies"`
	First   string   `json:"first_reply"` // cut to 300 bytes
	Idle    uint64   `json:"idle_rss"`
	Peak    uint64   `json:"peak_rss"` // VmHWM
	After   uint64   `json:"after_rss"`
	TookMS  float64  `json:"answer_ms"` // line written → query-status answered
	Err     string   `json:"err,omitempty"`
}

// RunLine starts bin, sends line and then query-status (id "after") on one QMP connection,
// and measures; it waits up to release for the RSS to come back within 16 MiB of idle.
// timeout bounds the whole exchange.
func RunLine(ctx context.Context, bin, baseDir string, line []byte, release, timeout time.Duration) (r LineResult, err error) {
	r.Kind = "qmp-line"
	p, conn, err := launchNegotiated(ctx, emu.Config{Bin: bin, Args: []string{"-machine", "none", "-nodefaults", "-display", "none"}, BaseDir: baseDir}, time.Minute)
	defer func() {
		if serr := p.Stop(conn, 10*time.Second); err == nil && serr != nil {
			err = serr
		}
	}()
	if err != nil {
		return r, err
	}
	st, err := procmem.ReadStatus(p.Pid())
	if err != nil {
		return r, err
	}
	r.Idle = st.VmRSS
	_ = conn.SetDeadline(time.Now().Add(timeout))
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(line)
		if err == nil {
			_, err = conn.Write([]byte(`{"execute": "query-status", "id": "after"}` + "\n"))
		}
		werr <- err
	}()
	for {
		msg, err := conn.ReadMessage()
		if err != nil {
			return r, fmt.Errorf("suite: reply %d: %w%s", len(r.Replies)+1, err, afterMortem(p))
		}
		r.Replies = append(r.Replies, string(msg))
		if bytes.Contains(msg, []byte(`"id": "after"`)) {
			break
		}
	}
	r.TookMS = ms(time.Since(start))
	if err := <-werr; err != nil {
		return r, err
	}
	r.NReply, r.First = len(r.Replies), r.Replies[0]
	if len(r.First) > 300 {
		r.First = r.First[:300]
	}
	if st, err = procmem.ReadStatus(p.Pid()); err != nil {
		return r, err
	}
	r.Peak, r.After = st.VmHWM, st.VmRSS
	for deadline := time.Now().Add(release); r.After > r.Idle+16<<20 && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if st, err := procmem.ReadStatus(p.Pid()); err == nil {
			r.After = st.VmRSS
		}
	}
	return r, nil
}

// afterMortem describes the emulator once its connection failed: whether it exited (within a
// second) and the end of its output, so that a failure says why the monitor went away.
func afterMortem(p *emu.Process) string {
	select {
	case <-p.Exited():
		return fmt.Sprintf(" (the emulator exited: %v; its output: %q)", p.Cmd.ProcessState, p.Output(2048))
	case <-time.After(time.Second):
		return fmt.Sprintf(" (the emulator still runs; its output: %q)", p.Output(2048))
	}
}

func runQMemory(ctx context.Context, o *QOptions) ([]QRow, error) {
	var rows []QRow
	for _, in := range LineInputs {
		if o.MemInputs != nil && !contains(o.MemInputs, in.Name) {
			continue
		}
		line := in.Line()
		var (
			wg         sync.WaitGroup
			mine, qemu LineResult
			merr, qerr error
		)
		wg.Add(2)
		o.progress("qmp-memory %s: tlcvm and QEMU at once (QEMU reads a byte per main-loop turn: minutes for the big ones)", in.Name)
		go func() {
			defer wg.Done()
			mine, merr = RunLine(ctx, o.TLCVM, o.BaseDir, line, 30*time.Second, 30*time.Minute)
		}()
		go func() { defer wg.Done(); qemu, qerr = RunLine(ctx, o.QEMU, o.BaseDir, line, 0, 30*time.Minute) }()
		wg.Wait()
		for _, x := range []struct {
			r    *LineResult
			side string
			err  error
		}{{&mine, TLCVM, merr}, {&qemu, QEMU, qerr}} {
			x.r.Side, x.r.Input = x.side, in.Name
			if x.err != nil {
				x.r.Err = x.err.Error()
			}
			if err := o.record(*x.r); err != nil {
				return rows, err
			}
		}
		if err := ctx.Err(); err != nil {
			return rows, err
		}
		same := merr == nil && qerr == nil && strings.Join(mine.Replies, "\n") == strings.Join(qemu.Replies, "\n")
		o.progress("qmp-memory %s: peak tlcvm %d MiB, QEMU %d MiB; after: tlcvm %d MiB (idle %d); replies equal: %v",
			in.Name, mine.Peak>>20, qemu.Peak>>20, mine.After>>20, mine.Idle>>20, same)
		errOf := func(err error) string {
			if err == nil {
				return ""
			}
			return short(err)
		}
		mibOf := func(v uint64, err error) float64 {
			if err != nil {
				return math.NaN()
			}
			return float64(v) / mib
		}
		repl := "same replies as QEMU"
		if !same {
			repl = "**replies differ from QEMU's**"
		}
		peak := QRow{Metric: fmt.Sprintf("one line with %s (%d replies, %s): peak RSS, VmHWM (MiB)", in.Label, mine.NReply, repl),
			TLCVM: mibOf(mine.Peak, merr), QEMU: mibOf(qemu.Peak, qerr), Floor: math.NaN(),
			TLCVMErr: errOf(merr), QEr: errOf(qerr), Target: QQEMUAtMost, Value: 2, Text: "≤ 2× QEMU's"}
		after := QRow{Metric: fmt.Sprintf("… RSS once answered (MiB; idle before: tlcvm %d, QEMU %d)", mine.Idle>>20, qemu.Idle>>20),
			TLCVM: mibOf(mine.After, merr), QEMU: mibOf(qemu.After, qerr), Floor: math.NaN(),
			TLCVMErr: errOf(merr), QEr: errOf(qerr), Target: QAtMost, Value: float64(mine.Idle+16<<20) / mib,
			Text: "≤ tlcvm's idle + 16 MiB"}
		rows = append(rows, peak, after)
	}
	return rows, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

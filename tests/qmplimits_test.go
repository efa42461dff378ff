package tests_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"tlcvm/bench/suite"
)

// TestHugeToken sends one QMP line holding a 100 MiB string token to QEMU 7.2 and to tlcvm at
// the same time (suite.RunLine, what the benchmark uses). Both must answer with QEMU's errors
// (the streamer's size limit at 64 MiB, then the rest of the token lexed anew: an invalid
// keyword, cut at parse_error's 1023 bytes, and a stray quote) and keep serving; tlcvm's
// peak RSS must stay within twice QEMU's, and tlcvm must give the memory back afterwards.
//
// QEMU reads its monitor one byte per main-loop iteration, so its side takes 8 minutes on an
// idle machine here, 15 on a busy one (tlcvm's: about a second); the test is skipped under
// -short. QEMU gets the time the test binary has left: when that runs out, tlcvm's replies are
// still checked against QEMU's texts recorded in hugeReplies, and only the comparison of
// peaks is skipped.
func TestHugeToken(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: QEMU needs minutes to read 100 MiB")
	}
	bin := requireCandidate(t)
	ref := requireReference(t)
	parallel(t)

	var line []byte
	for _, in := range suite.LineInputs {
		if in.Name == "tok100" {
			line = in.Line()
		}
	}
	ctx := context.Background()
	qemuTime := 30 * time.Minute
	if d, ok := t.Deadline(); ok {
		qemuTime = time.Until(d) - time.Minute
	}
	var (
		wg         sync.WaitGroup
		qemu, mine suite.LineResult
		qerr, merr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		qemu, qerr = suite.RunLine(ctx, ref, t.TempDir(), line, 0, qemuTime)
	}()
	go func() {
		defer wg.Done()
		mine, merr = suite.RunLine(ctx, bin, t.TempDir(), line, 30*time.Second, 30*time.Minute)
	}()
	wg.Wait()
	if merr != nil {
		t.Fatalf("tlcvm: %v", merr)
	}
	t.Logf("tlcvm: idle %d MiB, peak %d MiB, after %d MiB, %.0f ms to answer", mine.Idle>>20, mine.Peak>>20,
		mine.After>>20, mine.TookMS)
	if got, want := strings.Join(mine.Replies, "\n"), strings.Join(hugeReplies, "\n"); got != want {
		t.Errorf("replies:\n got %.600s\nwant %.600s", got, want)
	}
	if mine.After > mine.Idle+16<<20 {
		t.Errorf("RSS %d MiB after the line, idle %d MiB: memory not given back", mine.After>>20, mine.Idle>>20)
	}
	if qerr != nil {
		t.Skipf("QEMU did not answer within the %v the test had left (%v): peaks not compared", qemuTime, qerr)
	}
	t.Logf("QEMU 7.2: idle %d MiB, peak %d MiB, after %d MiB, %.0f ms to answer", qemu.Idle>>20, qemu.Peak>>20,
		qemu.After>>20, qemu.TookMS)
	if got, want := strings.Join(qemu.Replies, "\n"), strings.Join(hugeReplies, "\n"); got != want {
		t.Errorf("QEMU's replies (the reference) changed:\n got %.600s\nwant %.600s", got, want)
	}
	if mine.Peak > 2*qemu.Peak {
		t.Errorf("peak RSS %d MiB, more than twice QEMU's %d MiB", mine.Peak>>20, qemu.Peak>>20)
	}
}

// hugeReplies are QEMU 7.2.22's replies to suite's tok100 line and the query-status after it:
// the size limit; what is left of the token, 36 MiB of "a"s, lexed as a keyword and reported
// cut at 1023 bytes; the closing quote starting a string that the newline ends as a stray.
var hugeReplies = []string{
	`{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}`,
	`{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword '` + strings.Repeat("a", 1023-len("invalid keyword '")) + `"}}`,
	`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\"}}\n'"}}`,
	`{"return": {"status": "running", "singlestep": false, "running": true}, "id": "after"}`,
}

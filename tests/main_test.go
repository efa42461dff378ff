package tests_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"tlcvm/tests/harness"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from the binary under test")

var (
	candidate       string // the binary under test; "" when there is none
	candidateReason string // why there is none
)

func TestMain(m *testing.M) {
	flag.Parse()
	tmp, err := os.MkdirTemp("", "tlcvm-build-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	candidate, candidateReason, err = harness.FindCandidate("..", tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(tmp)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// requireCandidate returns the binary under test or skips the test.
func requireCandidate(t *testing.T) string {
	t.Helper()
	if candidate == "" {
		t.Skip(candidateReason)
	}
	return candidate
}

// requireReference returns QEMU or skips the test.
func requireReference(t *testing.T) string {
	t.Helper()
	return harness.Reference(t)
}

// slots allows at most two cases to run at once: each starts processes and
// the machine has two cores shared with others.
var slots = make(chan struct{}, 2)

// parallel marks t parallel and holds a slot until t ends.
func parallel(t *testing.T) {
	t.Helper()
	t.Parallel()
	slots <- struct{}{}
	t.Cleanup(func() { <-slots })
}

package tests_test

import (
	"regexp"
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// The null-co and null-aio drivers through HMP qemu-io, against QEMU 7.2: what reads
// return with and without read-zeroes (qemu-io's 0xab fill left untouched), writes,
// write zeroes, discards and flushes that succeed storing nothing, lengths rounded up to
// 512 bytes, through a raw node and a -drive too (testdata/qmp/nullblock.txt compares
// the nodes' query output).

var nullScript = []string{
	`qemu-io n0 "read -v 0 16"`, `qemu-io n1 "read -v 0 16"`, `qemu-io n1 "read -v 1000 16"`,
	`qemu-io n1 "read -v 1020 16"`, `qemu-io r0 "write -P 1 0 512"`, `qemu-io r0 "read -P 1 0 512"`,
	`qemu-io r0 "read -P 0xab 0 512"`, `qemu-io n1 "write -P 1 0 512"`, `qemu-io n1 "read -P 0 0 512"`,
	`qemu-io n0 "discard 0 512"`, `qemu-io n0 "write -z 0 512"`, `qemu-io n0 "flush"`,
	`qemu-io n0 "length"`, `qemu-io n1 "length"`, `qemu-io n2 "read -v 4090 8"`,
	`qemu-io d0 "read -v 0 8"`, `qemu-io d1 "read -v 0 8"`, `qemu-io d1 "length"`,
}

func runNullQemuIO(t *testing.T, bin string) string {
	p, q, _ := startVM(t, bin, "-machine", "none", "-S",
		"-blockdev", `{"driver":"null-co","node-name":"n0"}`,
		"-blockdev", `{"driver":"null-aio","node-name":"n1","size":1000,"read-zeroes":true}`,
		"-blockdev", `{"driver":"raw","node-name":"r0","file":"n0"}`,
		"-blockdev", "driver=null-co,node-name=n2,size=4096,latency-ns=1000",
		"-drive", "if=none,id=d0,driver=null-aio",
		"-drive", "if=none,id=d1,file=null-co://,format=raw,read-only=on")
	for _, c := range nullScript {
		if r := execOK(t, q, "human-monitor-command", map[string]any{"command-line": c}).Str(); r != "" {
			t.Fatalf("%s: %q", c, r)
		}
	}
	execOK(t, q, "quit", nil)
	out, err := p.Stdout.ReadAll(harness.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`(?m)^\d+ bytes, \d+ ops;.*\n`).ReplaceAllString(string(out), "")
}

func TestNullQemuIODifferential(t *testing.T) {
	bin := requireCandidate(t)
	ref := requireReference(t)
	parallel(t)
	want := runNullQemuIO(t, ref)
	got := runNullQemuIO(t, bin)
	if d := harness.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); d != "" {
		t.Errorf("qemu-io output differs from QEMU 7.2 (- QEMU, + tlcvm):\n%s", d)
	}
	for _, s := range []string{"ab ab ab ab", "Pattern verification failed", "1 KiB"} {
		if !strings.Contains(want, s) {
			t.Errorf("QEMU's output lacks %q:\n%s", s, want)
		}
	}
}

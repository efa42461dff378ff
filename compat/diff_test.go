package compat_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"tlcvm/compat"
	"tlcvm/compat/qerror"
	"tlcvm/tests/harness"
)

var update = flag.Bool("update", false, "regenerate testdata/errors.golden from /usr/bin/qemu-system-x86_64")

const qemuBin = "/usr/bin/qemu-system-x86_64"

type golden struct {
	Args   []string `json:"args"`
	Stderr string   `json:"stderr"`
	Status int      `json:"status"`
}

func readCases(t *testing.T) [][]string {
	t.Helper()
	f, err := os.Open("testdata/errors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var args []string
		if err := json.Unmarshal([]byte(line), &args); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out = append(out, args)
	}
	return out
}

// limitsFor picks the machine limits cmd/ would pass for this command line.
func limitsFor(c *compat.Config) compat.MachineLimits {
	if c.Machine.Type == "none" {
		return compat.NoneLimits()
	}
	return compat.PCLimits("pc-i440fx-7.2")
}

// ours runs the whole compat pipeline the way cmd/ does.
func ours(prog string, args []string) (string, int) {
	c, err := compat.Parse(append([]string{prog}, args...))
	if err == nil && c.Action == compat.ActionRun {
		lim := limitsFor(c)
		if err = c.ApplyDefaults(lim); err == nil {
			err = c.Check(lim)
		}
	}
	if err != nil {
		var e *qerror.Error
		if !errors.As(err, &e) {
			return "not a *qerror.Error: " + err.Error(), -1
		}
		return qerror.Report(e), 1
	}
	return strings.Join(c.Warnings, ""), 0
}

// runQEMU runs the real binary with a short deadline; a run that starts a
// VM is killed and reported as status -1.
func runQEMU(t *testing.T, args []string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemuBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdin = nil
	err := cmd.Run()
	if ctx.Err() != nil {
		return stderr.String(), -1
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return stderr.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return stderr.String(), 0
}

// TestErrorsGolden compares every failing command line of
// testdata/errors.txt with QEMU 7.2's recorded stderr and exit status.
func TestErrorsGolden(t *testing.T) {
	cases := readCases(t)
	if *update {
		harness.Reference(t)
		var b bytes.Buffer
		for _, args := range cases {
			stderr, status := runQEMU(t, args)
			line, _ := json.Marshal(golden{Args: args, Stderr: stderr, Status: status})
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile("testdata/errors.golden", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile("testdata/errors.golden")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]golden{}
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var g golden
		if err := json.Unmarshal(line, &g); err != nil {
			t.Fatal(err)
		}
		k, _ := json.Marshal(g.Args)
		want[string(k)] = g
	}
	for _, args := range cases {
		k, _ := json.Marshal(args)
		g, ok := want[string(k)]
		if !ok {
			t.Errorf("%s: not in errors.golden (run with -update)", k)
			continue
		}
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			got, status := ours("qemu-system-x86_64", args)
			if got != g.Stderr || status != g.Status {
				t.Errorf("args %q\n got (%d): %q\nwant (%d): %q", args, status, got, g.Status, g.Stderr)
			}
		})
	}
}

// TestErrorsLive runs the real binary for a sample of cases, from a full
// path and through a renamed link, to pin the program-name rule.
func TestErrorsLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	harness.Reference(t)
	link := t.TempDir() + "/my-qemu"
	if err := os.Symlink(qemuBin, link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-zz"}, {"-m", "5X"}, {"-chardev", "null"}, {"-smp", "x"}} {
		for _, prog := range []string{qemuBin, link} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cmd := exec.CommandContext(ctx, prog, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			cancel()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			}
			got, gotStatus := ours(prog, args)
			if got != stderr.String() || gotStatus != status {
				t.Errorf("%s %q\n got (%d): %q\nwant (%d): %q", prog, args, gotStatus, got, status, stderr.String())
			}
		}
	}
}

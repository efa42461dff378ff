package suite_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"tlcvm/bench/suite"
)

// The test binary doubles as a fake emulator: with FAKE_EMU set it serves
// just enough QMP on the -qmp socket for the suite to run end to end.
func TestMain(m *testing.M) {
	switch os.Getenv("FAKE_EMU") {
	case "":
		// Under -race every process sleeps 1 s at exit by default; the fake
		// emulators are this binary, so spare them that.
		os.Setenv("GORACE", "atexit_sleep_ms=0")
		os.Exit(m.Run())
	case "qmp":
		os.Exit(fakeEmu(os.Args[1:]))
	default: // "fail": refuse like QEMU refusing an option
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: -fw_cfg: unsupported")
		os.Exit(1)
	}
}

func fakeEmu(args []string) int {
	var sock string
	for i, a := range args {
		if a == "-version" {
			fmt.Println("QEMU emulator version 7.2.0 (tlcvm fake)")
			return 0
		}
		if a == "-qmp" && i+1 < len(args) {
			sock, _, _ = strings.Cut(strings.TrimPrefix(args[i+1], "unix:"), ",")
		}
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		fmt.Fprint(c, `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "tlcvm"}, "capabilities": ["oob"]}}`+"\r\n")
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var req struct{ Execute string }
			_ = json.Unmarshal(sc.Bytes(), &req)
			switch req.Execute {
			case "query-status":
				fmt.Fprint(c, `{"return": {"status": "running", "singlestep": false, "running": true}}`+"\r\n")
			case "quit":
				fmt.Fprint(c, `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}`+"\r\n")
				fmt.Fprint(c, `{"return": {}}`+"\r\n")
				return 0
			default:
				fmt.Fprint(c, `{"return": {}}`+"\r\n")
			}
		}
		c.Close()
	}
}

func options(t *testing.T) (suite.Options, *[]map[string]any) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	o := suite.Options{
		TLCVM: suite.Side{Bin: self}, QEMU: suite.Side{Bin: self},
		N: 3, Warmup: 1, RTCount: 50, RTReps: 2, MemReps: 1, Idle: time.Millisecond,
		Timeout: time.Minute, BaseDir: t.TempDir(),
		Record: func(r any) error {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			recs = append(recs, m)
			return nil
		},
	}
	return o, &recs
}

func count(recs []map[string]any, kind, side string) int {
	n := 0
	for _, r := range recs {
		if r["kind"] == kind && (side == "" || r["side"] == side) {
			n++
		}
	}
	return n
}

func TestRunAgainstFake(t *testing.T) {
	t.Setenv("FAKE_EMU", "qmp")
	o, recs := options(t)
	rows, err := suite.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 9 {
		t.Fatalf("%d rows, want 9", len(rows))
	}
	for _, r := range rows {
		if math.IsNaN(r.TLCVM) || math.IsNaN(r.QEMU) || r.TLCVMErr != "" || r.QEMUErr != "" {
			t.Errorf("row %+v", r)
		}
	}
	// 2 machines × (1 warm-up + 3) per side; 2 round-trip reps; 1 memory rep.
	for _, side := range []string{suite.TLCVM, suite.QEMU} {
		if n := count(*recs, "startup", side); n != 8 {
			t.Errorf("%s: %d startup records, want 8", side, n)
		}
		if n := count(*recs, "qmp-rt", side); n != 2 {
			t.Errorf("%s: %d qmp-rt records, want 2", side, n)
		}
		if n := count(*recs, "memory", side); n != 1 {
			t.Errorf("%s: %d memory records, want 1", side, n)
		}
	}
	for _, r := range *recs {
		if r["kind"] == "qmp-rt" && r["count"] != float64(50) {
			t.Errorf("round trips %v, want 50", r["count"])
		}
		if e, ok := r["err"]; ok {
			t.Errorf("record error: %v", e)
		}
	}
	// Interleaving: the first two start-ups are tlcvm then QEMU, the next
	// two QEMU then tlcvm.
	var order []string
	for _, r := range *recs {
		if r["kind"] == "startup" && len(order) < 4 {
			order = append(order, r["side"].(string))
		}
	}
	if strings.Join(order, ",") != "tlcvm,qemu,qemu,tlcvm" {
		t.Errorf("order %v", order)
	}
	meta := suite.Describe(context.Background(), o, 2)
	if meta.StandIn || !strings.Contains(meta.TLCVMVersion, "tlcvm") || meta.ExecFloorMS.N != 2 || meta.RTCeiling <= 0 {
		t.Errorf("meta %+v", meta)
	}
}

// A side that cannot start is reported, skipped after its first failure,
// and does not stop the other side.
func TestRunSideFails(t *testing.T) {
	t.Setenv("FAKE_EMU", "qmp")
	o, recs := options(t)
	fail := t.TempDir() + "/fail.sh"
	if err := os.WriteFile(fail, []byte("#!/bin/sh\necho 'qemu-system-x86_64: nope' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o.TLCVM.Bin = fail
	o.Only = map[string]bool{suite.BenchStartup: true, suite.BenchMemory: true}
	rows, err := suite.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 8 {
		t.Fatalf("%d rows, want 8", len(rows))
	}
	for _, r := range rows {
		if !strings.Contains(r.TLCVMErr, "exited") || r.QEMUErr != "" || math.IsNaN(r.QEMU) {
			t.Errorf("row %+v", r)
		}
	}
	if n := count(*recs, "startup", suite.TLCVM); n != 2 { // one per machine, then skipped
		t.Errorf("%d failed tlcvm start-ups recorded, want 2", n)
	}
}

func TestOptionsInvalid(t *testing.T) {
	_, err := suite.Run(context.Background(), suite.Options{})
	if err == nil {
		t.Fatal("no binaries accepted")
	}
}

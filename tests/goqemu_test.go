package tests_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"

	"tlcvm/tests/harness"
)

// statusReply is query-status's reply as a go-qemu user decodes it.
type statusReply struct {
	Return struct {
		Status     string `json:"status"`
		Running    bool   `json:"running"`
		Singlestep bool   `json:"singlestep"`
	} `json:"return"`
}

type qmpCommand struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shortDir is a temporary directory with a path short enough for a unix
// socket (108 bytes), removed when the test ends.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "tlcvm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// goQemuMonitor connects go-qemu's SocketMonitor and forwards its events
// into a buffered channel (go-qemu's own channel is unbuffered and blocks
// its reader while nobody receives).
func goQemuMonitor(t *testing.T, sock string) (*qmp.SocketMonitor, <-chan qmp.Event) {
	t.Helper()
	mon, err := qmp.NewSocketMonitor("unix", sock, harness.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Connect(); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	raw, err := mon.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan qmp.Event, 64)
	go func() {
		defer close(events)
		for e := range raw {
			events <- e
		}
	}()
	return mon, events
}

func awaitEvent(t *testing.T, events <-chan qmp.Event, name string) qmp.Event {
	t.Helper()
	timeout := time.After(harness.DefaultTimeout)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("event stream ended before %s", name)
			}
			if e.Event == name {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event (harness timeout)", name)
		}
	}
}

func queryStatus(t *testing.T, mon *qmp.SocketMonitor) statusReply {
	t.Helper()
	out, err := mon.Run(mustJSON(t, qmpCommand{Execute: "query-status"}))
	if err != nil {
		t.Fatalf("query-status: %v", err)
	}
	var r statusReply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("query-status reply %s: %v", out, err)
	}
	return r
}

// TestGoQemu drives the binary with github.com/digitalocean/go-qemu/qmp the
// way its users do: connect, run commands, read events, pass a descriptor,
// disconnect and reconnect.
func TestGoQemu(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	sock := shortDir(t) + "/qmp.sock"
	p := harness.Start(t, harness.Config{Bin: bin, Args: []string{
		"-machine", "pc", "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
		"-qmp", "unix:" + sock + ",server=on,wait=off",
	}})
	c, err := harness.DialUnix(sock, p, harness.DefaultTimeout) // wait until it listens
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	mon, events := goQemuMonitor(t, sock)
	if v := mon.Version; v == nil || v.QEMU.Major != 7 || v.QEMU.Minor != 2 {
		t.Errorf("greeting version = %+v, want 7.2.x", v)
	}
	if strings.Join(mon.Capabilities, ",") != "oob" {
		t.Errorf("greeting capabilities = %q, want [oob]", mon.Capabilities)
	}

	if r := queryStatus(t, mon); r.Return.Status != "prelaunch" || r.Return.Running {
		t.Errorf("status at start = %+v, want prelaunch, not running", r.Return)
	}
	if _, err := mon.Run(mustJSON(t, qmpCommand{Execute: "cont"})); err != nil {
		t.Fatalf("cont: %v", err)
	}
	if e := awaitEvent(t, events, "RESUME"); e.Timestamp.Seconds == 0 {
		t.Errorf("RESUME without timestamp: %+v", e)
	}
	if r := queryStatus(t, mon); r.Return.Status != "running" || !r.Return.Running {
		t.Errorf("status after cont = %+v", r.Return)
	}
	if _, err := mon.Run(mustJSON(t, qmpCommand{Execute: "stop"})); err != nil {
		t.Fatalf("stop: %v", err)
	}
	awaitEvent(t, events, "STOP")
	if r := queryStatus(t, mon); r.Return.Status != "paused" {
		t.Errorf("status after stop = %+v", r.Return)
	}
	if _, err := mon.Run(mustJSON(t, qmpCommand{Execute: "system_reset"})); err != nil {
		t.Fatalf("system_reset: %v", err)
	}
	if e := awaitEvent(t, events, "RESET"); e.Data["reason"] != "host-qmp-system-reset" || e.Data["guest"] != false {
		t.Errorf("RESET data = %v", e.Data)
	}
	// QEMU 7.2: a reset while paused leaves the VM in prelaunch.
	if r := queryStatus(t, mon); r.Return.Status != "prelaunch" {
		t.Errorf("status after reset while paused = %+v, want prelaunch", r.Return)
	}

	// go-qemu reports QMP errors as Go errors carrying QEMU's desc.
	_, err = mon.Run(mustJSON(t, qmpCommand{Execute: "no-such-command"}))
	if err == nil || err.Error() != "The command no-such-command has not been found" {
		t.Errorf("unknown command error = %v", err)
	}
	_, err = mon.Run(mustJSON(t, qmpCommand{Execute: "query-status", Arguments: map[string]any{"x": 1}}))
	if err == nil || err.Error() != "Parameter 'x' is unexpected" {
		t.Errorf("extra argument error = %v", err)
	}

	// A descriptor with SCM_RIGHTS (go-qemu requires the oob capability).
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := mon.RunWithFile(mustJSON(t, qmpCommand{Execute: "getfd", Arguments: map[string]string{"fdname": "gofd"}}), f); err != nil {
		t.Fatalf("getfd with a descriptor: %v", err)
	}
	if _, err := mon.Run(mustJSON(t, qmpCommand{Execute: "closefd", Arguments: map[string]string{"fdname": "gofd"}})); err != nil {
		t.Fatalf("closefd: %v", err)
	}

	// Disconnect; the monitor accepts a new client, state is kept.
	if err := mon.Disconnect(); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	mon2, events2 := goQemuMonitor(t, sock)
	if r := queryStatus(t, mon2); r.Return.Status != "prelaunch" {
		t.Errorf("status after reconnect = %+v, want prelaunch (kept)", r.Return)
	}
	if _, err := mon2.Run(mustJSON(t, qmpCommand{Execute: "cont"})); err != nil {
		t.Fatalf("cont: %v", err)
	}
	awaitEvent(t, events2, "RESUME")
	if _, err := mon2.Run(mustJSON(t, qmpCommand{Execute: "quit"})); err != nil {
		t.Fatalf("quit: %v", err)
	}
	if e := awaitEvent(t, events2, "SHUTDOWN"); e.Data["reason"] != "host-qmp-quit" {
		t.Errorf("SHUTDOWN data = %v", e.Data)
	}
	st, err := p.Wait(harness.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if st.String() != "exit 0" {
		t.Errorf("after quit: %s, want exit 0", st)
	}
	mon2.Disconnect()
}

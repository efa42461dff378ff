package tests_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// waitSerial polls the serial log until it holds every line of want, in order, after
// the banner; the deadline fails the test (no timing asserted).
func waitSerial(t *testing.T, log string, want []string) {
	t.Helper()
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		b, _ := os.ReadFile(log)
		got := keyLines(string(b))
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keyLines are the guest's key and mouse lines.
func keyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "tlcvm guest: key ") || strings.HasPrefix(l, "tlcvm guest: mouse ") {
			out = append(out, strings.TrimPrefix(l, "tlcvm guest: "))
		}
	}
	return out
}

// TestKeysReachTheGuest: keys from send-key (qcodes and numbers, as libvirt sends them),
// input-send-event (keys, buttons, motion), HMP sendkey and a VNC client (a KeyEvent's
// keysym and QEMU's extended key event) reach the guest through the i8042 and IRQ 1/12,
// as PS/2 scancode set 1, in order; a paused VM drops them as QEMU does.
func TestKeysReachTheGuest(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	log := filepath.Join(dir, "serial.log")
	n := freeVNCDisplay(t)
	v := startMigVM(t, bin, dir, "vm", "-machine", "q35", "-m", "64", "-serial", "file:"+log,
		"-vnc", fmt.Sprintf("127.0.0.1:%d", n))
	waitBanner(t, log)
	var want []string
	send := func(cmd string, args any, lines ...string) {
		v.do(cmd, args)
		want = append(want, lines...)
		waitSerial(t, log, want)
	}
	send("send-key", map[string]any{"keys": []any{
		map[string]any{"type": "qcode", "data": "shift"}, map[string]any{"type": "number", "data": 30}}},
		"key 2a press", "key 1e press", "key 9e release", "key aa release")
	send("send-key", map[string]any{"keys": []any{map[string]any{"type": "qcode", "data": "kp_enter"}}, "hold-time": 30},
		"key e0 1c press", "key e0 9c release")
	send("input-send-event", map[string]any{"events": []any{
		map[string]any{"type": "key", "data": map[string]any{"key": map[string]any{"type": "qcode", "data": "pause"}, "down": true}},
		map[string]any{"type": "rel", "data": map[string]any{"axis": "x", "value": 10}},
		map[string]any{"type": "rel", "data": map[string]any{"axis": "y", "value": -5}},
		map[string]any{"type": "btn", "data": map[string]any{"button": "right", "down": true}},
	}}, "key e1 1d 45 press", "key e1 9d c5 release", "mouse buttons=2 dx=10 dy=-5")
	send("human-monitor-command", map[string]any{"command-line": "sendkey ctrl-alt-delete"},
		"key 1d press", "key 38 press", "key e0 53 press", "key e0 d3 release", "key b8 release", "key 9d release")

	c, _, err := harness.RFBHandshake(fmt.Sprintf("127.0.0.1:%d", 5900+n), harness.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := func(down bool, sym uint32) []byte {
		m := []byte{4, 0, 0, 0, 0, 0, 0, 0}
		if down {
			m[1] = 1
		}
		binary.BigEndian.PutUint32(m[4:], sym)
		return m
	}
	ext := func(down bool, sym, code uint32) []byte {
		m := make([]byte, 12)
		m[0] = 255
		if down {
			m[3] = 1
		}
		binary.BigEndian.PutUint32(m[4:], sym)
		binary.BigEndian.PutUint32(m[8:], code)
		return m
	}
	msgs := bytes.Join([][]byte{key(true, 'Q'), key(false, 'Q'), key(true, 0xff52), key(false, 0xff52),
		ext(true, 0, 0x2c), ext(false, 0, 0x2c)}, nil)
	if _, err := c.Write(msgs); err != nil {
		t.Fatal(err)
	}
	want = append(want, "key 10 press", "key 90 release", "key e0 48 press", "key e0 c8 release", "key 2c press", "key ac release")
	waitSerial(t, log, want)

	v.do("stop", nil)
	v.do("send-key", map[string]any{"keys": []any{map[string]any{"type": "qcode", "data": "b"}}})
	v.do("cont", nil)
	send("send-key", map[string]any{"keys": []any{map[string]any{"type": "qcode", "data": "c"}}}, "key 2e press", "key ae release")
	v.quit()
}

// waitBanner waits for the guest's boot banner (its firmware has set up the i8042).
func waitBanner(t *testing.T, log string) {
	t.Helper()
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		if b, _ := os.ReadFile(log); bytes.Contains(b, []byte("tlcvm guest: ")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no banner on the serial console")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

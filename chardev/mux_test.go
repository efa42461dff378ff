package chardev_test

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"tlcvm/chardev"
)

// Captured from QEMU 7.2: -serial mon:stdio, then C-a h.
const qemuMuxHelp = "\n\rC-a h    print this help\n\rC-a x    exit emulator\n\rC-a s    save disk data back to file (if -snapshot)\n\rC-a t    toggle console timestamps\n\rC-a b    send break (magic sysrq)\n\rC-a c    switch between console and monitor\n\rC-a C-a  sends C-a\n\r"

func TestMuxHelpText(t *testing.T) {
	if chardev.MuxHelp() != qemuMuxHelp {
		t.Fatalf("%q", chardev.MuxHelp())
	}
}

// -serial mon:stdio: a monitor and a serial port share stdio.
func TestMuxMonitorAndSerial(t *testing.T) {
	o, kbd, screen := stdioPipes(t)
	quit := make(chan struct{})
	o.Quit = func() { close(quit) }
	o.DeferMuxOpen = true
	reg := chardev.NewRegistry()
	s, err := chardev.ParseLegacy("mon:stdio", "serial0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := reg.Open(s, o)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	// The monitor attaches first (QEMU creates it with the chardev) ...
	mon, err := c.Attach()
	if err != nil {
		t.Fatal(err)
	}
	monEv := make(chan chardev.Event, 16)
	mon.SetEventHandler(func(e chardev.Event) { monEv <- e })
	monIn := make(chan string, 16)
	mon.Serve(func(conn chardev.Conn) {
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			monIn <- line
			io.WriteString(conn, "(qemu) "+strings.ToUpper(line))
		}
	})
	// ... the serial port later, and it takes the focus.
	ser, err := c.Attach()
	if err != nil {
		t.Fatal(err)
	}
	serIn := make(chan []byte, 16)
	ser.SetInput(func(b []byte) { serIn <- b })
	serEv := make(chan chardev.Event, 16)
	ser.SetEventHandler(func(e chardev.Event) { serEv <- e })
	if !ser.Focused() || mon.Focused() {
		t.Fatal("the newest front end must have the focus")
	}
	if e := <-monEv; e != chardev.EventMuxOut {
		t.Fatalf("monitor event %v", e)
	}
	// Opened is held back until the command line is done.
	select {
	case e := <-monEv:
		t.Fatalf("event before ResumeMuxOpen: %v", e)
	default:
	}
	reg.ResumeMuxOpen()
	waitEvent(t, monEv, chardev.EventOpened)
	waitEvent(t, serEv, chardev.EventOpened)

	if got := reg.List(); len(got) != 2 ||
		got[0] != (chardev.Info{FrontendOpen: true, Filename: "mux", Label: "serial0"}) ||
		got[1] != (chardev.Info{FrontendOpen: true, Filename: "stdio", Label: "serial0-base"}) {
		t.Fatalf("query-chardev %+v", got)
	}

	kbd.Write([]byte("abc"))
	if b := <-serIn; string(b) != "abc" {
		t.Fatalf("serial got %q", b)
	}
	kbd.Write([]byte{chardev.EscapeChar, 'h'})
	if got := readN(t, screen, len(qemuMuxHelp)); got != qemuMuxHelp {
		t.Fatalf("help %q", got)
	}
	kbd.Write([]byte{chardev.EscapeChar, 'c'})
	waitEvent(t, serEv, chardev.EventMuxOut)
	waitEvent(t, monEv, chardev.EventMuxIn)
	kbd.Write([]byte("info status\n"))
	if line := <-monIn; line != "info status\n" {
		t.Fatalf("monitor got %q", line)
	}
	if got := readN(t, screen, len("(qemu) INFO STATUS\n")); got != "(qemu) INFO STATUS\n" {
		t.Fatalf("monitor output %q", got)
	}
	// Guest output still reaches the screen while the monitor has the focus.
	ser.Write([]byte("guest\n"))
	if got := readN(t, screen, 6); got != "guest\n" {
		t.Fatalf("guest output %q", got)
	}
	// C-a C-a sends one C-a to the focused front end; C-a b a break.
	kbd.Write([]byte{chardev.EscapeChar, 'c', chardev.EscapeChar, chardev.EscapeChar})
	if b := <-serIn; string(b) != "\x01" {
		t.Fatalf("serial got %q", b)
	}
	kbd.Write([]byte{chardev.EscapeChar, 'b'})
	waitEvent(t, serEv, chardev.EventBreak)

	kbd.Write([]byte{chardev.EscapeChar, 'x'})
	<-quit
	if got := readN(t, screen, len("QEMU: Terminated\n\r")); got != "QEMU: Terminated\n\r" {
		t.Fatalf("exit text %q", got)
	}

	// A mux carries at most four front ends.
	c.Attach()
	c.Attach()
	if _, err := c.Attach(); err == nil || err.Error() != "Device 'serial0' is in use" {
		t.Fatalf("fifth front end: %v", err)
	}
	if err := reg.Remove("serial0"); err == nil || err.Error() != "Chardev 'serial0' is busy" {
		t.Fatalf("remove: %v", err)
	}
}

func TestMuxFocusNextWraps(t *testing.T) {
	c := open(t, "mon:null", chardev.Options{})
	defer c.Close()
	a, _ := c.Attach()
	b, _ := c.Attach()
	c.FocusNext()
	if !a.Focused() {
		t.Fatal("C-a c from the last front end wraps to the first")
	}
	b.TakeFocus()
	if !b.Focused() {
		t.Fatal("TakeFocus")
	}
	b.Detach()
	if !a.Focused() {
		t.Fatal("detach of the focused front end")
	}
}

func TestRegistry(t *testing.T) {
	reg := chardev.NewRegistry()
	defer reg.Close()
	if _, err := reg.Open(chardev.Spec{ID: "n1", Backend: "null"}, chardev.Options{}); err != nil {
		t.Fatal(err)
	}
	_, err := reg.Open(chardev.Spec{ID: "n1", Backend: "null"}, chardev.Options{})
	if err == nil || err.Error() != "Chardev with id 'n1' already exists" || !errors.Is(err, chardev.ErrDuplicate) {
		t.Fatalf("dup: %v", err)
	}
	if _, ok := reg.Get("n1"); !ok {
		t.Fatal("get")
	}
	if err := reg.Remove("nope"); err == nil || err.Error() != "Chardev 'nope' not found" {
		t.Fatalf("remove: %v", err)
	}
	if err := reg.Remove("n1"); err != nil {
		t.Fatal(err)
	}
	if len(reg.List()) != 0 {
		t.Fatal("list after remove")
	}
}

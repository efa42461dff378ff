package machine

import (
	"strings"
	"testing"

	"tlcvm/input"
)

// TestI8042GuestPath: keys and mouse events through the devices reach the guest's
// handler as its log lines, once the firmware set the controller up; before that the
// interrupts are not raised (the command byte has them off) and the firmware's
// initialisation flushes what waited, as SeaBIOS's does.
func TestI8042GuestPath(t *testing.T) {
	var raised []int
	k := &i8042{raise: func(l int) { raised = append(raised, l) }}
	kb, mouse := PS2Keyboard{k}, PS2Mouse{k}
	q := func(n string) int { c, _ := input.QCode(n); return c }
	kb.Event(input.Event{Kind: input.KindKey, QCode: q("a"), Down: true})
	kb.Sync()
	if len(raised) != 0 {
		t.Fatalf("IRQ raised before the guest enabled it: %v", raised)
	}
	k.guestInit()
	kb.Event(input.Event{Kind: input.KindKey, QCode: q("delete"), Down: false})
	kb.Sync()
	mouse.Event(input.Event{Kind: input.KindRel, Axis: 0, Value: -300})
	mouse.Event(input.Event{Kind: input.KindBtn, Button: 0, Down: true})
	mouse.Sync()
	if len(raised) != 2 || raised[0] != irqKeyboard || raised[1] != irqMouse {
		t.Fatalf("raised %v", raised)
	}
	got := strings.Join(k.guestDrain(), "")
	want := "tlcvm guest: key e0 d3 release\r\ntlcvm guest: mouse buttons=1 dx=-256 dy=0\r\n"
	if got != want {
		t.Errorf("guest logged %q, want %q", got, want)
	}
	if k.In(i8042Status)&i8042StatOBF != 0 {
		t.Errorf("output buffer still full")
	}
}

// TestI8042QueueLimit: past the buffer the keyboard drops keys, as QEMU's ps2 queue does.
func TestI8042QueueLimit(t *testing.T) {
	k := &i8042{raise: func(int) {}}
	kb := PS2Keyboard{k}
	q, _ := input.QCode("up")
	for i := 0; i < 1000; i++ {
		kb.Event(input.Event{Kind: input.KindKey, QCode: q, Down: i%2 == 0})
	}
	if len(k.kbd) > ps2QueueSize || len(k.kbd)%2 != 0 {
		t.Errorf("%d bytes queued", len(k.kbd))
	}
}

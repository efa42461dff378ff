// Package input is QEMU's ui/input.c and its key tables: QAPI's QKeyCode (a qcode is an
// index of QKeyCodes), the key "numbers" of send-key and input-send-event (XT scancode
// set 1, 0x80 marking an 0xe0-prefixed key; qcode ↔ number as QEMU 7.2 maps them), the
// scancode set 1 sequences a PS/2 keyboard sends with translation on, the X11 keysyms of
// a VNC client through QEMU's en-us keymap, and the Router that carries events from the
// monitor and the VNC server to the machine's input devices:
//
//	send-key: for each key  press, delay(hold)     then in reverse  release, delay(hold)
//	          a press with nothing queued goes at once; the rest waits in the queue, each
//	          delay (10 ms unless hold-time) released by a timer, as QEMU's kbd_queue
//	input-send-event: all events at once, then one sync per handler
//	every event is dropped while the VM does not run (qemu_input_event_send)
//
// Handlers (the machine's PS/2 keyboard and mouse) take the kinds of their Mask: the
// first registered that takes a kind gets its events.
package input

package hmp_test

import (
	"reflect"
	"testing"

	"tlcvm/hmp"
)

// TestMouseCommands: mouse_move and mouse_button send QEMU's events (its legacy button map
// takes 2 as right and 4 as middle, whatever help says), print nothing, and mouse_button
// sends only what changed.
func TestMouseCommands(t *testing.T) {
	rel := func(x, y string) string {
		return `{"events":[{"data":{"axis":"x","value":` + x + `},"type":"rel"},{"data":{"axis":"y","value":` + y + `},"type":"rel"}`
	}
	f := newFake()
	m := hmp.New(f, hmp.Options{})
	for _, line := range []string{"mouse_move 10 -0x10", "mouse_move 1 2 -3", "mouse_move 1z 012 0",
		"mouse_button 1", "mouse_button 1", "mouse_button 6", "mouse_button 0"} {
		if out := m.RunLine(line); out != "" {
			t.Errorf("%q printed %q", line, out)
		}
	}
	btn := func(b string, down string) string {
		return `{"data":{"button":"` + b + `","down":` + down + `},"type":"btn"}`
	}
	want := []string{
		rel("10", "-16") + "]}",
		rel("1", "2") + "," + btn("wheel-down", "true") + "]}",
		`{"events":[` + btn("wheel-down", "false") + "]}",
		rel("1", "10") + "]}",
		`{"events":[` + btn("left", "true") + "]}",
		`{"events":[` + btn("left", "false") + "," + btn("middle", "true") + "," + btn("right", "true") + "]}",
		`{"events":[` + btn("middle", "false") + "," + btn("right", "false") + "]}",
	}
	var got []string
	for _, c := range f.Calls() {
		if c.Name != "input-send-event" {
			t.Errorf("unexpected call %s", c.Name)
		}
		got = append(got, c.Args)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
}

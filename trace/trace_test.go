package trace

import (
	"errors"
	"testing"

	"tlcvm/internal/gentest"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pat, ev string
		want    bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"*c", "abc", true},
		{"a*c", "abc", true}, {"a*c", "ac", true}, {"a*c", "acb", false}, {"abc", "abc", true},
		{"ab", "abc", false}, {"abcd", "abc", false}, {"*b*", "abc", true}, {"*x*", "abc", false},
		{"a**", "a", true}, {"*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"migrate_set_stat*", "migrate_set_state", true}, {"", "", true}, {"", "a", false},
	} {
		if got := glob(c.pat, c.ev); got != c.want {
			t.Errorf("glob(%q, %q) = %v", c.pat, c.ev, got)
		}
	}
}

func TestGetSet(t *testing.T) {
	ev := New()
	cpus := []int{0, 1}
	zero, one, bad := int64(0), int64(1), int64(-1)
	for _, c := range []struct {
		name    string
		run     func() error
		wantErr error
		text    string
	}{
		{"unknown", func() error { _, err := ev.Get("nope", nil, nil); return err }, ErrUnknownEvent, `unknown event "nope"`},
		{"not vcpu", func() error { _, err := ev.Get("migrate_set_state", &zero, cpus); return err }, ErrNotVCPU, `event "migrate_set_state" is not vCPU-specific`},
		{"bad vcpu", func() error { _, err := ev.Get("nope", &bad, cpus); return err }, ErrBadVCPU, "invalid vCPU index 4294967295"},
		{"static", func() error { return ev.Set("qxl_io_write_vga", true, false, nil, cpus) }, ErrUnavailable, `event "qxl_io_write_vga" is disabled`},
		{"static pattern", func() error { return ev.Set("qxl_*", true, false, nil, cpus) }, ErrUnavailable, ""},
		{"set unknown", func() error { return ev.Set("nope", true, true, nil, cpus) }, ErrUnknownEvent, `unknown event "nope"`},
		{"empty pattern", func() error { return ev.Set("nope*", true, true, nil, cpus) }, nil, ""},
	} {
		err := c.run()
		if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.wantErr)
		} else if c.text != "" && err.Error() != c.text {
			t.Errorf("%s: %q, want %q", c.name, err, c.text)
		}
	}

	if err := ev.Set("migrate_set_stat*", true, true, nil, cpus); err != nil {
		t.Fatal(err)
	}
	got, _ := ev.Get("migrate_set_state", nil, cpus)
	if len(got) != 1 || got[0].State != Enabled || !ev.Enabled("migrate_set_state") {
		t.Errorf("after set: %+v", got)
	}
	// a per-vCPU event switched for vCPU 1 only
	if err := ev.Set("guest_cpu_enter", true, true, &one, cpus); err != nil {
		t.Fatal(err)
	}
	got, _ = ev.Get("guest_cpu_enter", &zero, cpus)
	if got[0].State != Disabled {
		t.Errorf("vcpu 0: %+v", got)
	}
	got, _ = ev.Get("guest_cpu_enter", nil, cpus)
	if got[0].State != Enabled {
		t.Errorf("any vcpu: %+v", got)
	}
	// with a vCPU, a pattern lists only the per-vCPU events
	got, _ = ev.Get("*", &zero, cpus)
	for _, e := range got {
		if !e.VCPU {
			t.Errorf("%s listed for a vCPU", e.Name)
		}
	}
	if len(got) == 0 {
		t.Error("no per-vCPU events")
	}
	all, _ := ev.Get("*", nil, cpus)
	if len(all) != len(Names()) || len(all) < 1000 {
		t.Errorf("%d events", len(all))
	}
	got, _ = ev.Get("qxl_io_write_vga", nil, cpus)
	if got[0].State != Unavailable {
		t.Errorf("static event: %+v", got)
	}
}

// TestGeneratedUpToDate regenerates the table from the reference binary and requires it
// to equal the committed one.
func TestGeneratedUpToDate(t *testing.T) {
	gentest.UpToDate(t, "zz_generated_events.go", "./trace")
}

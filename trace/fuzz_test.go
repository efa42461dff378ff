package trace

import "testing"

// FuzzGet feeds trace-event-get-state's name (untrusted monitor input) through the pattern
// matcher: it must never panic, and a name without '*' selects at most one event.
func FuzzGet(f *testing.F) {
	for _, s := range []string{"*", "migrate_*", "nope", "**a*", ""} {
		f.Add(s)
	}
	ev := New()
	f.Fuzz(func(t *testing.T, name string) {
		got, err := ev.Get(name, nil, nil)
		if err == nil && !isPattern(name) && len(got) != 1 {
			t.Fatalf("%q: %d events", name, len(got))
		}
	})
}

package qmp_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"tlcvm/qmp"
)

func TestInternalCommandsAreHMPOnly(t *testing.T) {
	r := qmp.NewRegistry()
	r.Register(qmp.Command{Name: "x-secret", Internal: true, Returns: "",
		Run: func(*qmp.Call) (any, error) { return "hidden", nil }})
	r.Register(qmp.Command{Name: "visible", Returns: "",
		Run: func(c *qmp.Call) (any, error) {
			raw, err := c.Exec("x-secret", nil)
			return string(raw), err
		}})
	s := qmp.NewServer(r, qmp.Options{Version: testVersion, Now: func() time.Time { return time.Unix(1, 0) }})
	t.Cleanup(func() { s.Close() })

	if slices.Contains(r.Commands(), "x-secret") || r.Has("x-secret") {
		t.Fatal("internal command listed")
	}
	if strings.Contains(string(r.Schema()), "x-secret") {
		t.Fatal("internal command in the schema")
	}
	raw, err := s.Execute(s.NewSession(), "x-secret", nil)
	if err != nil || string(raw) != `"hidden"` {
		t.Fatalf("Execute: %s, %v", raw, err)
	}
	c := dial(t, s, false)
	c.negotiate()
	c.send(`{"execute":"x-secret"}`)
	if got, want := c.line(), `{"error": {"class": "CommandNotFound", "desc": "The command x-secret has not been found"}}`; got != want {
		t.Fatalf("wire: %s, want %s", got, want)
	}
	c.send(`{"execute":"visible"}`)
	if got, want := c.line(), `{"return": "\"hidden\""}`; got != want {
		t.Fatalf("inline: %s, want %s", got, want)
	}
}

package cmds_test

import (
	"testing"

	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// Registration leaves working out the QAPI description of the types to their first use:
// every type of the command table (with the protocol commands) must be one QAPI expresses.
func TestRegisteredTypes(t *testing.T) {
	r := qmp.NewRegistry()
	cmds.Register(r, &cmds.Deps{})
	cmds.RegisterEvents(r)
	qmp.NewServer(r, qmp.Options{}).Close()
	r.Check()
	if len(r.Schema()) == 0 {
		t.Error("empty schema")
	}
}

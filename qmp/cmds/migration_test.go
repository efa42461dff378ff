package cmds

import (
	"errors"
	"fmt"
	"testing"

	"tlcvm/compat/qerror"
	"tlcvm/migration"
	"tlcvm/qmp"
)

// fakeMigrator stands in for the migration engine (*migration.Engine) behind migrator and
// switchover: it records each call and fails with err.
type fakeMigrator struct {
	recorder
	info   migration.Info
	caps   []migration.CapabilityStatus
	params migration.Params
}

func (f *fakeMigrator) Migrate(uri string, o migration.MigrateOptions) error {
	var blocked error
	if o.Blocked != nil {
		blocked = o.Blocked()
	}
	if err := f.rec("Migrate %q blk=%v inc=%v resume=%v fd=%v blocked=%v", uri, o.Blk, o.Inc, o.Resume,
		o.LookupFD != nil, blocked); err != nil {
		return err
	}
	return blocked // the engine refuses a blocked migration
}

func (f *fakeMigrator) Cancel()              { f.rec("Cancel") }
func (f *fakeMigrator) Info() migration.Info { f.rec("Info"); return f.info }

func (f *fakeMigrator) SetCapabilities(list []migration.CapabilityStatus) error {
	return f.rec("SetCapabilities %s", show(list))
}

func (f *fakeMigrator) Capabilities() []migration.CapabilityStatus {
	f.rec("Capabilities")
	return f.caps
}
func (f *fakeMigrator) SetParams(u migration.Params) error { return f.rec("SetParams %s", show(u)) }
func (f *fakeMigrator) Params() migration.Params           { f.rec("Params"); return f.params }

func (f *fakeMigrator) Incoming(uri string, o migration.IncomingOptions) error {
	return f.rec("Incoming %q fd=%v", uri, o.LookupFD != nil)
}

func (f *fakeMigrator) Continue(state migration.Status) error { return f.rec("Continue %s", state) }
func (f *fakeMigrator) StartPostcopy() error                  { return f.rec("StartPostcopy") }
func (f *fakeMigrator) Pause() error                          { return f.rec("Pause") }

func (f *fakeMigrator) Recover(uri string, o migration.IncomingOptions) error {
	return f.rec("Recover %q fd=%v", uri, o.LookupFD != nil)
}

func newFakeMigrator(err error) (*fakeMigrator, *recorder) {
	f := &fakeMigrator{recorder: recorder{err: err}}
	return f, &f.recorder
}

// TestMigrationCommands: the migration commands' arguments as the engine gets them (fd:
// names resolved through the monitor's session), QEMU 7.2's texts for bad arguments, the
// engine's errors as GenericError (QEMU gives none of them a class of its own), and
// migrate refused while dump-guest-memory runs.
func TestMigrationCommands(t *testing.T) {
	active := qerror.New(migration.ErrActive, "There's a migration process in progress")
	badURI := qerror.Errorf(migration.ErrInvalid, "Invalid parameter '%s'", "uri")
	cases := []handlerCase{
		{cmd: `{"execute":"migrate","arguments":{"uri":"exec:cat>/dev/null"}}`,
			calls: `Migrate "exec:cat>/dev/null" blk=false inc=false resume=false fd=true blocked=<nil>`, want: `{}`},
		{cmd: `{"execute":"migrate","arguments":{"uri":"fd:mig","blk":true,"inc":true,"detach":true}}`,
			calls: `Migrate "fd:mig" blk=true inc=true resume=false fd=true blocked=<nil>`, want: `{}`},
		{cmd: `{"execute":"migrate"}`, want: `GenericError: Parameter 'uri' is missing`},
		{cmd: `{"execute":"migrate","arguments":{"uri":"exec:cat>/dev/null","blk":"x"}}`,
			want: `GenericError: Invalid parameter type for 'blk', expected: boolean`},
		{cmd: `{"execute":"migrate","arguments":{"uri":"tcp:h:1"}}`, err: active,
			calls: `Migrate "tcp:h:1" blk=false inc=false resume=false fd=true blocked=<nil>`, want: `GenericError: ` + active.Error()},
		{cmd: `{"execute":"migrate","arguments":{"uri":"nope:"}}`, err: badURI,
			calls: `Migrate "nope:" blk=false inc=false resume=false fd=true blocked=<nil>`, want: `GenericError: Invalid parameter 'uri'`},
		{cmd: `{"execute":"migrate_cancel"}`, calls: `Cancel`, want: `{}`},
		{cmd: `{"execute":"migrate_cancel","arguments":{"x":1}}`, want: `GenericError: Parameter 'x' is unexpected`},
		{cmd: `{"execute":"query-migrate"}`, calls: `Info`, want: `{}`},
		{cmd: `{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"xbzrle","state":true},{"capability":"x-tlc","state":false}]}}`,
			calls: `SetCapabilities [{Capability:xbzrle State:true} {Capability:x-tlc}]`, want: `{}`},
		{cmd: `{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"xbzrle"}]}}`,
			want: `GenericError: Parameter 'capabilities[0].state' is missing`},
		{cmd: `{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"nope","state":true}]}}`,
			want: `GenericError: Parameter 'capability' does not accept value 'nope'`},
		{cmd: `{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"postcopy-ram","state":true}]}}`,
			err:   qerror.New(migration.ErrUnsupported, "tlcvm: migration capability 'postcopy-ram' is not supported"),
			calls: `SetCapabilities [{Capability:postcopy-ram State:true}]`, want: `GenericError: tlcvm: migration capability 'postcopy-ram' is not supported`},
		{cmd: `{"execute":"query-migrate-capabilities"}`, calls: `Capabilities`, want: `[]`},
		{cmd: `{"execute":"migrate-set-parameters","arguments":{"compress-level":300}}`,
			want: `GenericError: Parameter 'compress-level' expects uint8_t`},
		{cmd: `{"execute":"migrate-set-parameters","arguments":{"tls-creds":null,"multifd-compression":"lz4"}}`,
			want: `GenericError: Parameter 'multifd-compression' does not accept value 'lz4'`},
		{cmd: `{"execute":"migrate-set-parameters","arguments":{"tls-creds":null,"tls-hostname":"h","downtime-limit":300,"x-checkpoint-cpu":1}}`,
			calls: `SetParams {TLSCreds: TLSHostname:h DowntimeLimit:300 XCheckpointCPU:1}`, want: `{}`},
		{cmd: `{"execute":"migrate-set-parameters","arguments":{"downtime-limit":2000001}}`,
			err:   qerror.New(migration.ErrInvalid, "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 milliseconds"),
			calls: `SetParams {DowntimeLimit:2000001}`,
			want:  `GenericError: Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 milliseconds`},
		{cmd: `{"execute":"query-migrate-parameters"}`, calls: `Params`, want: `{}`},
		{cmd: `{"execute":"migrate-incoming","arguments":{"uri":5}}`, want: `GenericError: Invalid parameter type for 'uri', expected: string`},
		{cmd: `{"execute":"migrate-incoming","arguments":{"uri":"tcp:127.0.0.1:0"}}`, calls: `Incoming "tcp:127.0.0.1:0" fd=true`, want: `{}`},
		{cmd: `{"execute":"migrate-incoming","arguments":{"uri":"defer"}}`,
			err:   qerror.New(migration.ErrState, "'-incoming' was not specified on the command line"),
			calls: `Incoming "defer" fd=true`, want: `GenericError: '-incoming' was not specified on the command line`},
	}
	runHandlerCases(t, cases, newFakeMigrator, func(r *qmp.Registry, f *fakeMigrator) { migrationCommands(r, f, nil) })

	// A dump in progress blocks migrate (migrate_add_blocker's text).
	dumping := true
	f := &fakeMigrator{}
	w := newWire(t, func(r *qmp.Registry) { migrationCommands(r, f, func() bool { return dumping }) })
	if got, want := w.do(`{"execute":"migrate","arguments":{"uri":"exec:true"}}`),
		`GenericError: Live migration disabled: dump-guest-memory in progress`; got != want {
		t.Errorf("migrate while dumping: got %s, want %s", got, want)
	}
	dumping = false
	if got := w.do(`{"execute":"migrate","arguments":{"uri":"exec:true"}}`); got != `{}` {
		t.Errorf("migrate after the dump: got %s", got)
	}
}

// TestMigrationQueries: query-migrate, query-migrate-capabilities and
// query-migrate-parameters from what the engine reports, in QEMU 7.2's key order (the
// figures are those of a completed migration in the libvirt reference).
func TestMigrationQueries(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	creds := ""
	f := &fakeMigrator{
		info: migration.Info{Status: migration.StatusCompleted, HasStatus: true, SetupTime: i64(2), Downtime: i64(0), TotalTime: i64(0),
			RAM: &migration.RAMStats{Total: 268967936, DirtySyncCount: 2, DowntimeBytes: 1086581, PageSize: 4096,
				Transferred: 1086581, Duplicate: 65545, NormalBytes: 495616, Normal: 121}},
		caps:   []migration.CapabilityStatus{{Capability: "xbzrle"}, {Capability: "events", State: true}},
		params: migration.Params{DowntimeLimit: u64(300), TLSCreds: &creds},
	}
	w := newWire(t, func(r *qmp.Registry) { migrationCommands(r, f, nil) })
	for _, tc := range []struct{ cmd, want string }{
		{`{"execute":"query-migrate"}`, `{"status":"completed","setup-time":2,"downtime":0,"total-time":0,"ram":{"total":268967936,` +
			`"postcopy-requests":0,"dirty-sync-count":2,"multifd-bytes":0,"pages-per-second":0,"downtime-bytes":1086581,"page-size":4096,` +
			`"remaining":0,"postcopy-bytes":0,"mbps":0,"transferred":1086581,"dirty-sync-missed-zero-copy":0,"precopy-bytes":0,` +
			`"duplicate":65545,"dirty-pages-rate":0,"skipped":0,"normal-bytes":495616,"normal":121}}`},
		{`{"execute":"query-migrate-capabilities"}`, `[{"state":false,"capability":"xbzrle"},{"state":true,"capability":"events"}]`},
		{`{"execute":"query-migrate-parameters"}`, `{"downtime-limit":300,"tls-creds":""}`},
	} {
		if got := w.do(tc.cmd); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.cmd, got, tc.want)
		}
	}
}

// TestSwitchoverCommands: migrate-continue, migrate-start-postcopy, migrate-pause and
// migrate-recover on the fake engine.
func TestSwitchoverCommands(t *testing.T) {
	wrong := qerror.Errorf(migration.ErrState, "Migration not in expected state: %s", "active")
	cases := []handlerCase{
		{cmd: `{"execute":"migrate-continue","arguments":{"state":"pre-switchover"}}`, calls: `Continue pre-switchover`, want: `{}`},
		{cmd: `{"execute":"migrate-continue","arguments":{"state":"nope"}}`,
			want: `GenericError: Parameter 'state' does not accept value 'nope'`},
		{cmd: `{"execute":"migrate-continue","arguments":{"state":"device"}}`, err: wrong,
			calls: `Continue device`, want: `GenericError: Migration not in expected state: active`},
		{cmd: `{"execute":"migrate-start-postcopy"}`, err: errors.New("Enable postcopy with migrate_set_capability before the start of migration"),
			calls: `StartPostcopy`, want: `GenericError: Enable postcopy with migrate_set_capability before the start of migration`},
		{cmd: `{"execute":"migrate-pause"}`, calls: `Pause`, want: `{}`},
		{cmd: `{"execute":"migrate-pause"}`, err: fmt.Errorf("migrate-pause is currently only supported during postcopy-active state: %w", migration.ErrState),
			calls: `Pause`, want: `GenericError: migrate-pause is currently only supported during postcopy-active state: ` + migration.ErrState.Error()},
		{cmd: `{"execute":"migrate-recover"}`, want: `GenericError: Parameter 'uri' is missing`},
		{cmd: `{"execute":"migrate-recover","arguments":{"uri":"tcp:127.0.0.1:0"}}`, err: wrong,
			calls: `Recover "tcp:127.0.0.1:0" fd=true`, want: `GenericError: Migration not in expected state: active`},
	}
	runHandlerCases(t, cases, newFakeMigrator, func(r *qmp.Registry, f *fakeMigrator) { switchoverCommands(r, f) })
}

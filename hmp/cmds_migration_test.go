package hmp

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzMigrateSetParameter runs migrate_set_parameter's value parsing on arbitrary input:
// it never panics, and whatever it sends to QMP is one member of the parameter's type.
func FuzzMigrateSetParameter(f *testing.F) {
	for _, s := range []string{"downtime-limit 500", "max-bandwidth 1.5G", "compress-level 300",
		"x-checkpoint-delay 0x10", "tls-creds 'a b'", "compress-wait-thread on", "x-checkpoint-cpu -1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var sent []byte
		m := New(ExecFunc(func(name string, args any) ([]byte, error) {
			if name == "migrate-set-parameters" {
				sent, _ = json.Marshal(args)
			}
			return []byte("{}"), nil
		}), Options{})
		RegisterMigration(m)
		out := m.RunLine("migrate_set_parameter " + line)
		if sent != nil {
			var v map[string]json.RawMessage
			if err := json.Unmarshal(sent, &v); err != nil || len(v) != 1 {
				t.Fatalf("sent %s", sent)
			}
			if strings.Contains(out, "Error") {
				t.Fatalf("sent %s and printed %q", sent, out)
			}
		}
	})
}

// TestInfoMigrateFile: info migrate's lines for a checkpoint to file: and a restore from one.
func TestInfoMigrateFile(t *testing.T) {
	for _, tc := range []struct{ reply, want string }{
		{`{"status":"completed","x-tlc-file":{"mode":"mapped","incremental":true,"written-bytes":2097152}}`,
			"checkpoint file: mapped, incremental, 2048 kbytes written\r\n"},
		{`{"status":"completed","x-tlc-file":{"mode":"mapped","incremental":false,"written-bytes":4096,"reason":"x-tlc is off"}}`,
			"checkpoint file: mapped, full, 4 kbytes written (not incremental: x-tlc is off)\r\n"},
		{`{"status":"completed","x-tlc-file":{"mode":"mapped","populate":"background","pages-eager":10,"pages-lazy":3,"pages-left":2}}`,
			"restore from file: mapped, populate background, pages populated eagerly: 10, lazily: 3, not yet: 2\r\n"},
	} {
		m := New(ExecFunc(func(name string, args any) ([]byte, error) {
			if name == "query-migrate" {
				return []byte(tc.reply), nil
			}
			return []byte("{}"), nil
		}), Options{})
		RegisterMigration(m)
		if out := m.RunLine("info migrate"); !strings.HasSuffix(out, tc.want) {
			t.Errorf("info migrate with %s:\n%q\nwant it to end with %q", tc.reply, out, tc.want)
		}
	}
}

// TestInfoMigrateStagesHeading: the stage report is headed "checkpoint stages" for an
// x-tlc checkpoint and "migration stages" otherwise; a postcopy's last phase keeps its name.
func TestInfoMigrateStagesHeading(t *testing.T) {
	const reply = `{"status":"completed","total-time":9,"downtime":1,"x-tlc-stages":[` +
		`{"stage":"setup","elapsed-ms":1,"bytes":79,"iterations":0,"thread-id":7,"cpu":1},` +
		`{"stage":"stage 1","elapsed-ms":5,"bytes":4096,"iterations":0,"thread-id":7,"cpu":1},` +
		`{"stage":"postcopy","elapsed-ms":3,"bytes":8192,"iterations":0,"thread-id":7,"cpu":1}]}`
	for _, tc := range []struct {
		tlc  bool
		want string
	}{
		{false, "migration stages:\r\nsetup: 1 ms, 0 kbytes, thread 7, cpu 1\r\nstage 1: 5 ms, 4 kbytes, thread 7, cpu 1\r\n" +
			"postcopy: 3 ms, 8 kbytes, thread 7, cpu 1\r\ntotal: 9 ms, ram transferred: 0 kbytes, downtime: 1 ms\r\n"},
		{true, "checkpoint stages:\r\nsetup: 1 ms"},
	} {
		m := New(ExecFunc(func(name string, args any) ([]byte, error) {
			switch name {
			case "query-migrate":
				return []byte(reply), nil
			case "query-migrate-capabilities":
				return json.Marshal([]map[string]any{{"capability": "xbzrle", "state": true}, {"capability": "x-tlc", "state": tc.tlc}})
			}
			return []byte("{}"), nil
		}), Options{})
		RegisterMigration(m)
		if out := m.RunLine("info migrate"); !strings.Contains(out, tc.want) {
			t.Errorf("info migrate (x-tlc %v):\n%q\nwant it to contain %q", tc.tlc, out, tc.want)
		}
	}
}

package cmds_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
	"tlcvm/tests/harness"
)

const qemuBin = "/usr/bin/qemu-system-x86_64"

// cmdlineScript is sent to tlcvm and to QEMU; each line is answered by one reply.
var cmdlineScript = []string{
	`{"execute":"query-command-line-options"}`,
	`{"execute":"query-command-line-options","arguments":{}}`,
	`{"execute":"query-command-line-options","arguments":{"option":"drive"},"id":7}`,
	`{"execute":"query-command-line-options","arguments":{"option":"chardev"}}`,
	`{"execute":"query-command-line-options","arguments":{"option":"machine"}}`,
	`{"execute":"query-command-line-options","arguments":{"option":"smp-opts"}}`,
	`{"execute":"query-command-line-options","arguments":{"option":"spice"}}`,
	`{"execute":"query-command-line-options","arguments":{"option":""}}`,
	`{"execute":"query-command-line-options","arguments":{"option":"device"}}`,
	`{"execute":"query-command-line-options","arguments":{"option":"smp"}}`,
	`{"execute":"query-command-line-options","arguments":{"option":"a%sb"},"id":"x"}`,
	`{"execute":"query-command-line-options","arguments":{"option":5}}`,
	`{"execute":"query-command-line-options","arguments":{"option":null}}`,
	`{"execute":"query-command-line-options","arguments":{"opt":"drive"}}`,
}

// tlcvmReplies runs the script against a server with this package's commands.
func tlcvmReplies(t *testing.T, script []string) []string {
	t.Helper()
	r := qmp.NewRegistry()
	r.SetErrorClasses(cmds.ErrorClasses())
	cmds.Register(r, &cmds.Deps{})
	s := qmp.NewServer(r, qmp.Options{})
	defer s.Close()
	server, client := net.Pipe()
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(server, false) }()
	defer func() { client.Close(); <-done }()
	in := bufio.NewReader(client)
	readLine := func() string {
		line, err := in.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimSuffix(line, "\r\n")
	}
	readLine() // greeting
	var out []string
	for _, cmd := range append([]string{`{"execute":"qmp_capabilities"}`}, script...) {
		if _, err := client.Write([]byte(cmd + "\n")); err != nil {
			t.Fatal(err)
		}
		out = append(out, readLine())
	}
	return out[1:]
}

// TestQueryCommandLineOptions checks replies whose texts were read from QEMU 7.2.
func TestQueryCommandLineOptions(t *testing.T) {
	got := tlcvmReplies(t, cmdlineScript)
	tests := []struct {
		i    int
		want string // prefix of the reply
	}{
		{0, `{"return": [{"parameters": [{"name": "loadparm", "help": "Up to 8 chars in set of [A-Za-z0-9. ](lower case chars converted to upper case) to pass to machine loader, boot manager, and guest kernel", "type": "string"}, {"name": "dea-key-wrap", `},
		{2, `{"return": [{"parameters": [{"name": "copy-on-read", "help": "copy read data from backing file into image file", "type": "boolean"}, `},
		{3, `{"return": [{"parameters": [{"name": "abstract", "type": "boolean"}, {"name": "tight", "default": "on", "type": "boolean"}, `},
		{6, `{"return": [{"parameters": [{"name": "rendernode", "type": "string"}, {"name": "gl", "type": "boolean"}, `},
		{7, `{"return": [{"parameters": [], "option": ""}]}`},
		{8, `{"return": [{"parameters": [], "option": "device"}]}`},
		{9, `{"error": {"class": "GenericError", "desc": "invalid option name: smp"}}`},
		{10, `{"id": "x", "error": {"class": "GenericError", "desc": "invalid option name: a%sb"}}`},
		{11, `{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'option', expected: string"}}`},
		{13, `{"error": {"class": "GenericError", "desc": "Parameter 'opt' is unexpected"}}`},
	}
	for _, tt := range tests {
		if !strings.HasPrefix(got[tt.i], tt.want) {
			t.Errorf("%s:\n got %.300s\nwant %s", cmdlineScript[tt.i], got[tt.i], tt.want)
		}
	}
	if got[0] != got[1] {
		t.Error("{} arguments answer differently from none")
	}
	if n := len(gjson.Get(got[0], "return").Array()); n != 36 {
		t.Errorf("%d groups, want 36", n)
	}
	if !strings.HasSuffix(got[2], `"option": "drive"}], "id": 7}`) {
		t.Errorf("drive reply ends %s", got[2][len(got[2])-60:])
	}
}

// TestQueryCommandLineOptionsAgainstQEMU requires byte-identical replies from QEMU 7.2 and
// tlcvm. QEMU is sent qom-list-types first, as libvirt does: it loads the modules, so
// QEMU lists the spice group that tlcvm always lists.
func TestQueryCommandLineOptionsAgainstQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not running QEMU")
	}
	harness.Reference(t)
	script := append([]string{`{"execute":"qmp_capabilities"}`, `{"execute":"qom-list-types"}`}, cmdlineScript...)
	cmd := exec.Command(qemuBin, "-machine", "none", "-nodefaults", "-display", "none", "-qmp", "stdio")
	cmd.Stdin = strings.NewReader(strings.Join(append(script, `{"execute":"quit"}`), "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", qemuBin, err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.Contains(line, `"event": `) {
			want = append(want, strings.TrimSuffix(line, "\r"))
		}
	}
	if len(want) != len(script)+2 { // greeting, quit
		t.Fatalf("%d lines from QEMU for %d commands", len(want), len(script))
	}
	want = want[3 : 3+len(cmdlineScript)]
	got := tlcvmReplies(t, cmdlineScript)
	for i := range cmdlineScript {
		if got[i] != want[i] {
			n := 0
			for n < len(got[i]) && n < len(want[i]) && got[i][n] == want[i][n] {
				n++
			}
			t.Errorf("%s: first difference at byte %d:\n got …%.200s\nwant …%.200s", cmdlineScript[i], n, got[i][n:], want[i][n:])
		}
	}
}

// TestQueryCommandLineOptionsSchema checks the introspection entry against the one libvirt
// received from QEMU 7.2 (probe-qmp-x86_64-full): member names, types, optionality, order.
func TestQueryCommandLineOptionsSchema(t *testing.T) {
	r := qmp.NewRegistry()
	cmds.Register(r, &cmds.Deps{})
	schema := gjson.ParseBytes(r.Schema())
	byName := map[string]gjson.Result{}
	for _, e := range schema.Array() {
		byName[e.Get("name").String()] = e
	}
	c := byName["query-command-line-options"]
	if c.Get("meta-type").String() != "command" {
		t.Fatalf("no command entry: %s", c.Raw)
	}
	if a := compact(byName[c.Get("arg-type").String()].Get("members").Raw); a != `[{"name":"option","default":null,"type":"str"}]` {
		t.Errorf("arguments %s", a)
	}
	ret := byName[c.Get("ret-type").String()]
	info := byName[ret.Get("element-type").String()]
	if got := compact(info.Get("members.#.name").Raw); got != `["option","parameters"]` {
		t.Errorf("CommandLineOptionInfo members %s", got)
	}
	param := byName[byName[info.Get("members.1.type").String()].Get("element-type").String()]
	if got := compact(param.Get("members.#.name").Raw); got != `["name","type","help","default"]` {
		t.Errorf("CommandLineParameterInfo members %s", got)
	}
	var optional []string
	for _, m := range param.Get("members").Array() {
		if m.Get("default").Exists() {
			optional = append(optional, m.Get("name").String())
		}
	}
	if got := strings.Join(optional, ","); got != "help,default" {
		t.Errorf("optional members %s", got)
	}
	if got := compact(byName[param.Get("members.1.type").String()].Get("values").Raw); got != `["string","boolean","number","size"]` {
		t.Errorf("CommandLineParameterType values %s", got)
	}
}

func compact(raw string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(raw)); err != nil {
		return raw
	}
	return b.String()
}

// TestErrorClasses: with ErrorClasses the catalogue's "not found" is QEMU's DeviceNotFound,
// for device-list-properties and qom-list-properties alike (QEMU 7.2 answers both so).
func TestErrorClasses(t *testing.T) {
	got := tlcvmReplies(t, []string{
		`{"execute":"device-list-properties","arguments":{"typename":"virtio-net-ccw"}}`,
		`{"execute":"qom-list-properties","arguments":{"typename":"nonexist"}}`,
	})
	want := []string{
		`{"error": {"class": "DeviceNotFound", "desc": "Device 'virtio-net-ccw' not found"}}`,
		`{"error": {"class": "DeviceNotFound", "desc": "Class 'nonexist' not found"}}`,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reply %d: got %s, want %s", i, got[i], want[i])
		}
	}
}

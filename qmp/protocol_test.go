package qmp_test

import (
	"strings"
	"testing"
)

type exchange struct {
	in   string
	want []string
}

const statusRet = `{"return": {"status": "running", "singlestep": false, "running": true}`

// negotiatedCases are replies of QEMU 7.2.22 (qemu-system-x86_64 -machine none, a QMP unix
// socket, after qmp_capabilities), recorded from the real binary. They run in order on one
// connection: some inputs leave a partial value for the next.
var negotiatedCases = []exchange{
	{`{"execute":"foo"}`, []string{`{"error": {"class": "CommandNotFound", "desc": "The command foo has not been found"}}`}},
	{`{"execute":"foo","id":"x"}`, []string{`{"id": "x", "error": {"class": "CommandNotFound", "desc": "The command foo has not been found"}}`}},
	{`{"execute":"é","id":1}`, []string{`{"id": 1, "error": {"class": "CommandNotFound", "desc": "The command \u00E9 has not been found"}}`}},
	{`[1,2]`, []string{`{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}`}},
	{`"abc"`, []string{`{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}`}},
	{`123 `, []string{`{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}`}},
	{`{"id":1}`, []string{`{"id": 1, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}`}},
	{`{"execute":1,"id":2}`, []string{`{"id": 2, "error": {"class": "GenericError", "desc": "QMP input member 'execute' must be a string"}}`}},
	{`{"execute":"query-status","arguments":[]}`, []string{`{"error": {"class": "GenericError", "desc": "QMP input member 'arguments' must be an object"}}`}},
	{`{"execute":"query-status","foo":1,"id":3}`, []string{`{"id": 3, "error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}}`}},
	{`{"execute":"query-status","arguments":{}}`, []string{statusRet + `}`}},
	{`{"execute":"query-status","arguments":{"a":1}}`, []string{`{"error": {"class": "GenericError", "desc": "Parameter 'a' is unexpected"}}`}},
	{`{"execute":"qmp_capabilities","id":"x"}`, []string{`{"id": "x", "error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}`}},
	{`{'execute':'query-status','id':'sq'}`, []string{statusRet + `, "id": "sq"}`}},
	{`{"execute":"query-status",}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}`}},
	{`{"execute" "query-status"}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, missing : in object pair"}}`}},
	{`{"execute":"query-status"`, nil},
	{`}`, []string{statusRet + `}`}},
	{`]`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}`}},
	{"\xff{\"execute\":\"query-status\",\"id\":\"after-ff\"}", []string{
		`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}}`, statusRet + `, "id": "after-ff"}`}},
	{`garbage{"execute":"query-status","id":"g"}`, []string{
		`{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword 'garbage'"}}`, statusRet + `, "id": "g"}`}},
	{`{"execute":"query-status","id":tru}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword 'tru'"}}`}},
	{`{"execute":"query-status","id":01}`, []string{
		`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '01'"}}`,
		`{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}`}},
	{`{"execute":"query-status","id":"\x"}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, invalid escape sequence in string"}}`}},
	{`{"execute":"query-status","id":"\u00e9\ud83d\ude00"}`, []string{statusRet + `, "id": "\u00E9\uD83D\uDE00"}`}},
	{`{"execute":"query-status","id":"a\tb\u0001\u007f/"}`, []string{statusRet + `, "id": "a\tb\u0001\u007F/"}`}},
	{`{"execute":"query-status","id":1e400}`, []string{statusRet + `, "id": inf}`}},
	{`{"execute":"query-status","id":18446744073709551615}`, []string{statusRet + `, "id": 18446744073709551615}`}},
	{`{"execute":"query-status","id":18446744073709551616}`, []string{statusRet + `, "id": 1.8446744073709552e+19}`}},
	{`{"execute":"query-status","id":-9223372036854775809}`, []string{statusRet + `, "id": -9.2233720368547758e+18}`}},
	{`{"execute":"query-status","id":0.1}`, []string{statusRet + `, "id": 0.10000000000000001}`}},
	{`{"execute":"query-status","id":1e2}`, []string{statusRet + `, "id": 100}`}},
	{`{"execute":"query-status","id":-0.0}`, []string{statusRet + `, "id": -0}`}},
	{`{"execute":"query-status","id":1e-7}`, []string{statusRet + `, "id": 9.9999999999999995e-08}`}},
	{`{"execute":"query-status","id":"a","id":"b"}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, duplicate key"}}`}},
	{"{\"execute\":\"query-status\",\"id\":\"ctl\x01\"}", []string{
		`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\"ctl\u0001'"}}`,
		`{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}`}},
	{"{\"execute\":\"query-status\",\"id\":\"\xc3\"}", []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, invalid UTF-8 sequence in string"}}`}},
	{"{\"execute\":\"query-status\",\"id\":\"\xed\xa0\x80\"}", []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, invalid UTF-8 sequence in string"}}`}},
	{"{\"execute\":\"query-status\",\"id\":\"\xc0\x80\"}", []string{statusRet + `, "id": "\u0000"}`}},
	{"{\"execute\":\"query-status\",\"id\":\"\xf0\x9f\x98\x80\"}", []string{statusRet + `, "id": "\uD83D\uDE00"}`}},
	{"{\"execute\":\"query-status\",\"id\":\"\xfe\"}", []string{
		`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\"\uFFFD'"}}`,
		`{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}`}},
	{"\x00{\"execute\":\"query-status\",\"id\":\"nul\"}", []string{
		`{"error": {"class": "GenericError", "desc": "JSON parse error, stray ''"}}`, statusRet + `, "id": "nul"}`}},
	{"\x01\x02{\"execute\":\"query-status\",\"id\":\"ctl\"}", []string{
		`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\u0001'"}}`,
		`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\u0002'"}}`, statusRet + `, "id": "ctl"}`}},
	{"\"unterminated\n{\"execute\":\"query-status\",\"id\":\"u\"}", []string{
		`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\"unterminated\n'"}}`, statusRet + `, "id": "u"}`}},
	{`{"execute":"query-status","id":{"b":1,"a":2,"c":3}}`, []string{statusRet + `, "id": {"a": 2, "b": 1, "c": 3}}`}},
	{`{"execute":"query-status","id":"\ud800"}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, \\ud800 is not a valid Unicode character"}}`}},
	{`{"execute":"query-status","id":"\uzzzz"}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, \\uzzzz is not a valid Unicode character"}}`}},
	{`{"execute":"query-status","id":"\ud83d\u0041"}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, \\ud83d is not a valid Unicode character"}}`}},
	{`{"execute":"query-status","id":"\u12"}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, \\u12\" is not a valid Unicode character"}}`}},
	{`{"execute":"query-status","id":-0}`, []string{statusRet + `, "id": 0}`}},
	{`{"execute":"query-status","id":1.}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '1.}'"}}`}},
	{`{1:2}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, key is not a string in object"}}`}},
	{`[1 2]`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, expected separator in list"}}`}},
	{`{"a":1 "b":2}`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, expected separator in dict"}}`}},
	{`%d`, []string{`{"error": {"class": "GenericError", "desc": "JSON parse error, stray '%'"}}`}},
	{`{"execute":"query-status","id":"%s"}{"execute":"query-status","id":null}`, []string{statusRet + `, "id": "%s"}`, statusRet + `, "id": null}`}},
	{`{"exec-oob":"query-status","id":"oob"}`, []string{`{"id": "oob", "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`}},
	{`{"execute":"migrate-pause","id":"mp"}`, []string{`{"id": "mp", "error": {"class": "GenericError", "desc": "migrate-pause is currently only supported during postcopy-active state"}}`}},
	{`{"execute":"human-monitor-command","arguments":{},"id":"h"}`, []string{`{"id": "h", "error": {"class": "GenericError", "desc": "Parameter 'command-line' is missing"}}`}},
	{`{"execute":"human-monitor-command","arguments":{"command-line":1},"id":"h"}`, []string{`{"id": "h", "error": {"class": "GenericError", "desc": "Invalid parameter type for 'command-line', expected: string"}}`}},
	{`{"execute":"human-monitor-command","arguments":{"command-line":"x","cpu-index":"a"},"id":"h"}`, []string{`{"id": "h", "error": {"class": "GenericError", "desc": "Invalid parameter type for 'cpu-index', expected: integer"}}`}},
	{`{"execute":"human-monitor-command","arguments":{"command-line":"x","cpu-index":1.5},"id":"h"}`, []string{`{"id": "h", "error": {"class": "GenericError", "desc": "Invalid parameter type for 'cpu-index', expected: integer"}}`}},
	{`{"execute":"human-monitor-command","arguments":{"command-line":"x","cpu-index":99999999999},"id":"h"}`, []string{`{"id": "h", "error": {"class": "GenericError", "desc": "Parameter 'cpu-index' expects a CPU number"}}`}},
	{`{"execute":"human-monitor-command","arguments":{"command-line":null},"id":"h"}`, []string{`{"id": "h", "error": {"class": "GenericError", "desc": "Invalid parameter type for 'command-line', expected: string"}}`}},
	{`{"execute":"human-monitor-command","arguments":{"command-line":"x","foo":1,"bar":2},"id":"h"}`, []string{`{"id": "h", "error": {"class": "GenericError", "desc": "Parameter 'bar' is unexpected"}}`}},
	{`{"execute":"human-monitor-command","arguments":{"foo":1},"id":"h"}`, []string{`{"id": "h", "error": {"class": "GenericError", "desc": "Parameter 'command-line' is missing"}}`}},
	{`{"execute":"getfd","arguments":{"fdname":"x"},"id":"g"}`, []string{`{"id": "g", "error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}`}},
	{`{"execute":"closefd","arguments":{"fdname":"x"},"id":"g"}`, []string{`{"id": "g", "error": {"class": "GenericError", "desc": "File descriptor named 'x' not found"}}`}},
	{`{"execute":"remove-fd","arguments":{"fdset-id":1},"id":"g"}`, []string{`{"id": "g", "error": {"class": "GenericError", "desc": "File descriptor named 'fdset-id:1' not found"}}`}},
	{`{"execute":"remove-fd","arguments":{"fdset-id":1,"fd":3},"id":"g"}`, []string{`{"id": "g", "error": {"class": "GenericError", "desc": "File descriptor named 'fdset-id:1, fd:3' not found"}}`}},
	{`{"execute":"add-fd","id":"g"}`, []string{`{"id": "g", "error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}`}},
	{`{"execute":"query-fdsets","id":"g"}`, []string{`{"return": [], "id": "g"}`}},
	{`{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"xbzrle","state":1}]},"id":"n"}`, []string{`{"id": "n", "error": {"class": "GenericError", "desc": "Invalid parameter type for 'capabilities[0].state', expected: boolean"}}`}},
	{`{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"xbzrlex","state":true}]},"id":"n"}`, []string{`{"id": "n", "error": {"class": "GenericError", "desc": "Parameter 'capability' does not accept value 'xbzrlex'"}}`}},
	{`{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{}]},"id":"n"}`, []string{`{"id": "n", "error": {"class": "GenericError", "desc": "Parameter 'capabilities[0].capability' is missing"}}`}},
	{`{"execute":"migrate-set-capabilities","arguments":{"capabilities":{}},"id":"n"}`, []string{`{"id": "n", "error": {"class": "GenericError", "desc": "Invalid parameter type for 'capabilities', expected: array"}}`}},
	{`{"execute":"migrate-set-parameters","arguments":{"downtime-limit":-1},"id":"n"}`, []string{`{"id": "n", "error": {"class": "GenericError", "desc": "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms"}}`}},
	{`{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":1.0},"id":"n"}`, []string{`{"id": "n", "error": {"class": "GenericError", "desc": "Parameter 'max-bandwidth' expects uint64"}}`}},
	{`{"execute":"migrate-set-parameters","arguments":{"compress-level":300},"id":"n"}`, []string{`{"id": "n", "error": {"class": "GenericError", "desc": "Parameter 'compress-level' expects uint8_t"}}`}},
	{`{"execute":"migrate-set-parameters","arguments":{"throttle-trigger-threshold":-5},"id":"n"}`, []string{`{"id": "n", "error": {"class": "GenericError", "desc": "Parameter 'throttle-trigger-threshold' expects uint8_t"}}`}},
	{`{"execute":"migrate-set-parameters","arguments":{"tls-creds":1},"id":"n"}`, []string{`{"id": "n", "error": {"class": "GenericError", "desc": "Invalid parameter type for 'tls-creds', expected: StrOrNull"}}`}},
	{`{"execute":"migrate-set-parameters","arguments":{"block-bitmap-mapping":[{"node-name":"a","alias":"b","bitmaps":[{"name":1}]}]},"id":"n"}`, []string{`{"id": "n", "error": {"class": "GenericError", "desc": "Invalid parameter type for 'block-bitmap-mapping[0].bitmaps[0].name', expected: string"}}`}},
	{`{"execute":"query-qmp-schema","arguments":{},"id":"qs","extra":1}`, []string{`{"id": "qs", "error": {"class": "GenericError", "desc": "QMP input member 'extra' is unexpected"}}`}},
	{`{"execute":"stop"}{"execute":"cont"}`, []string{
		`{"timestamp": {"seconds": TS, "microseconds": US}, "event": "STOP"}`, `{"return": {}}`,
		`{"timestamp": {"seconds": TS, "microseconds": US}, "event": "RESUME"}`, `{"return": {}}`}},
	{`{"execute":"query-version","id":[1,{"a":null}]}`, []string{`{"return": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "id": [1, {"a": null}]}`}},
}

// preNegotiationCases are QEMU's replies before qmp_capabilities, then with OOB enabled.
var preNegotiationCases = []exchange{
	{`{"execute":"query-status","id":1}`, []string{`{"id": 1, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`}},
	{`{"execute":"foo","id":1}`, []string{`{"id": 1, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`}},
	{`{"id":1}`, []string{`{"id": 1, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}`}},
	{`[1]`, []string{`{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}`}},
	{`{"execute":"stop"}`, []string{`{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`}},
	{`{"execute":"qmp_capabilities","arguments":{"enable":["foo"]},"id":2}`, []string{`{"id": 2, "error": {"class": "GenericError", "desc": "Parameter 'null' does not accept value 'foo'"}}`}},
	{`{"execute":"qmp_capabilities","arguments":{"enable":"oob"},"id":2}`, []string{`{"id": 2, "error": {"class": "GenericError", "desc": "Invalid parameter type for 'enable', expected: array"}}`}},
	{`{"execute":"qmp_capabilities","arguments":{"enable":[1]},"id":2}`, []string{`{"id": 2, "error": {"class": "GenericError", "desc": "Invalid parameter type for 'enable[0]', expected: string"}}`}},
	{`{"execute":"qmp_capabilities","arguments":{"enable":["oob","oob"],"x":1},"id":2}`, []string{`{"id": 2, "error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}}`}},
	{`{"exec-oob":"qmp_capabilities","id":2}`, []string{`{"id": 2, "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`}},
	{`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":3}`, []string{`{"return": {}, "id": 3}`}},
	{`{"exec-oob":"query-status","id":"oob"}`, []string{`{"id": "oob", "error": {"class": "GenericError", "desc": "The command query-status does not support OOB"}}`}},
	{`{"exec-oob":"migrate-pause","id":"oob2"}`, []string{`{"id": "oob2", "error": {"class": "GenericError", "desc": "migrate-pause is currently only supported during postcopy-active state"}}`}},
	{`{"execute":"query-status","exec-oob":"query-status","id":"both"}`, []string{`{"id": "both", "error": {"class": "GenericError", "desc": "QMP input member 'execute' clashes with 'exec-oob'"}}`}},
	{`{"exec-oob":1,"id":"oob3"}`, []string{`{"id": "oob3", "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' must be a string"}}`}},
	{`{"exec-oob":"nope","id":"oob4"}`, []string{`{"id": "oob4", "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}`}},
	{`{"execute":"query-status","control":{"run-oob":true},"id":"c"}`, []string{`{"id": "c", "error": {"class": "GenericError", "desc": "QMP input member 'control' is unexpected"}}`}},
}

const greeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}`

// scrub replaces event timestamps, which differ from run to run.
func scrub(l string) string {
	if !strings.HasPrefix(l, `{"timestamp": {"seconds": `) {
		return l
	}
	i := strings.Index(l, `}, "event"`)
	return `{"timestamp": {"seconds": TS, "microseconds": US` + l[i:]
}

func runExchanges(t *testing.T, c *client, cases []exchange) {
	t.Helper()
	for _, tc := range cases {
		c.send(tc.in)
		for _, want := range tc.want {
			if got := scrub(c.line()); got != want {
				t.Errorf("input %.200q:\n got %.300s\nwant %.300s", tc.in, got, want)
			}
		}
	}
}

func TestNegotiatedErrors(t *testing.T) {
	c := dial(t, newServer(t, optionsNone()), false)
	c.negotiate()
	runExchanges(t, c, negotiatedCases)
}

func TestPreNegotiation(t *testing.T) {
	c := dial(t, newServer(t, optionsNone()), false)
	if got := c.line(); got != greeting {
		t.Fatalf("greeting:\n got %s\nwant %s", got, greeting)
	}
	runExchanges(t, c, preNegotiationCases)
}

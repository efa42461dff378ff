package hmp

import (
	"strings"
	"testing"
)

// TestPrettyJSON: qom-get's printing, against what QEMU 7.2's HMP printed for the same
// QMP values (qom-get /machine smp, nested arrays, empty containers, escapes).
func TestPrettyJSON(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"cpus": 1, "maxcpus": 1, "threads": 1, "cores": 1, "dies": 1, "sockets": 1, "clusters": 1}`,
			"{\n    \"cpus\": 1,\n    \"maxcpus\": 1,\n    \"threads\": 1,\n    \"cores\": 1,\n    \"dies\": 1,\n    \"sockets\": 1,\n    \"clusters\": 1\n}"},
		{`[{"cpuid-register": "EDX", "cpuid-input-ecx": 1, "features": 0}, {"cpuid-register": "ECX", "features": 0}]`,
			"[\n    {\n        \"cpuid-register\": \"EDX\",\n        \"cpuid-input-ecx\": 1,\n        \"features\": 0\n    },\n    {\n        \"cpuid-register\": \"ECX\",\n        \"features\": 0\n    }\n]"},
		{`[]`, "[\n]"},
		{`{}`, "{\n}"},
		{`{"a": {"b": []}}`, "{\n    \"a\": {\n        \"b\": [\n        ]\n    }\n}"},
		{`"pc-i440fx-7.2-machine"`, `"pc-i440fx-7.2-machine"`},
		{`"a\"b\\c, d: e"`, `"a\"b\\c, d: e"`},
		{`0`, "0"},
		{`true`, "true"},
		{`-1.5e-07`, "-1.5e-07"},
	} {
		var b strings.Builder
		prettyJSON(&b, []byte(c.in), 0)
		if b.String() != c.want {
			t.Errorf("prettyJSON(%s) =\n%s\nwant\n%s", c.in, b.String(), c.want)
		}
	}
}

// FuzzPrettyJSON: whatever the bytes, printing ends.
func FuzzPrettyJSON(f *testing.F) {
	f.Add(`{"a": [1, {"b": "c"}]}`)
	f.Add(`[}`)
	f.Fuzz(func(t *testing.T, s string) {
		var b strings.Builder
		prettyJSON(&b, []byte(s), 0)
	})
}

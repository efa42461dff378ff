package qmp_test

import (
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"tlcvm/qmp"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

type Color string

func (Color) EnumValues() []string { return []string{"red", "green", "blue"} }

type ShapeKind string

func (ShapeKind) EnumValues() []string { return []string{"circle", "square", "point"} }

// Shape is a flat union; "point" has no variant members.
type Shape struct {
	Kind    ShapeKind `json:"kind"`
	Color   *Color    `json:"color,omitempty"`
	Variant any       `json:"-" qapi:"variant"`
}

func (Shape) UnionTag() string { return "kind" }
func (Shape) UnionVariants() map[string]any {
	return map[string]any{"circle": Circle{}, "square": Square{}}
}

type Circle struct {
	Radius float64 `json:"radius"`
}

type Square struct {
	Side int64 `json:"side"`
}

type Node struct {
	Name    string   `json:"name"`
	Backing *Node    `json:"backing,omitempty"` // recursive, like ImageInfo
	Sizes   []uint32 `json:"sizes"`
	Old     bool     `json:"old,omitempty" qapi:"deprecated"`
}

type DrawArgs struct {
	Shapes []Shape          `json:"shapes"`
	Label  *qmp.StrOrNull   `json:"label,omitempty"`
	Extra  json.RawMessage  `json:"extra,omitempty" qapi:"any"`
	Tags   map[string]int64 `json:"tags,omitempty"`
}

type ShapeEvent struct {
	Shape Shape `json:"shape"`
	Node  Node  `json:"node"`
}

func schemaRegistry() *qmp.Registry {
	r := qmp.NewRegistry()
	run := func(*qmp.Call) (any, error) { return nil, nil }
	r.Register(
		qmp.Command{Name: "x-draw", Args: &DrawArgs{}, Returns: []Node{}, Run: run, Features: []string{"unstable"}},
		qmp.Command{Name: "x-pause", Run: run, AllowOOB: true},
		qmp.Command{Name: "x-get", Args: &DrawArgs{}, Returns: json.RawMessage(nil), Run: run},
	)
	r.RegisterEvent("SHAPE_DRAWN", ShapeEvent{})
	r.RegisterEvent("CLEARED", nil, "deprecated")
	r.Register(qmp.ProtocolCommands()...)
	return r
}

func TestSchemaGolden(t *testing.T) {
	var v any
	if err := json.Unmarshal(schemaRegistry().Schema(), &v); err != nil {
		t.Fatal(err) // the schema is valid JSON for ordinary clients too
	}
	got, err := qmp.MarshalPretty(json.RawMessage(schemaRegistry().Schema()))
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const path = "testdata/schema.golden.json"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("schema differs from %s (run go test -run SchemaGolden -update and read the diff)", path)
	}
}

// The protocol commands' entries match QEMU 7.2's (recorded from the real binary; type
// numbers differ since QEMU has ~1000 other entries).
func TestSchemaProtocolEntries(t *testing.T) {
	r := qmp.NewRegistry()
	r.Register(qmp.ProtocolCommands()...)
	got := string(r.Schema())
	for _, want := range []string{
		`{"name": "qmp_capabilities", "ret-type": "1", "meta-type": "command", "arg-type": "0"}`,
		`{"name": "0", "members": [{"name": "enable", "default": null, "type": "[10]"}], "meta-type": "object"}`,
		`{"name": "1", "members": [], "meta-type": "object"}`,
		`{"name": "10", "members": [{"name": "oob"}], "meta-type": "enum", "values": ["oob"]}`,
		`{"name": "query-commands", "ret-type": "[2]", "meta-type": "command", "arg-type": "1"}`,
		`{"name": "[2]", "element-type": "2", "meta-type": "array"}`,
		`{"name": "2", "members": [{"name": "name", "type": "str"}], "meta-type": "object"}`,
		`{"name": "3", "tag": "meta-type", "variants": [{"case": "builtin", "type": "12"}, {"case": "enum", "type": "13"}, {"case": "array", "type": "14"}, {"case": "object", "type": "15"}, {"case": "alternate", "type": "16"}, {"case": "command", "type": "17"}, {"case": "event", "type": "18"}], "members": [{"name": "name", "type": "str"}, {"name": "meta-type", "type": "11"}, {"name": "features", "default": null, "type": "[str]"}], "meta-type": "object"}`,
		`{"name": "13", "members": [{"name": "members", "type": "[21]"}, {"name": "values", "type": "[str]", "features": ["deprecated"]}], "meta-type": "object"}`,
		`{"name": "getfd", "ret-type": "1", "meta-type": "command", "arg-type": "4"}`,
		`{"name": "closefd", "ret-type": "1", "meta-type": "command", "arg-type": "5"}`,
		`{"name": "add-fd", "ret-type": "7", "meta-type": "command", "arg-type": "6"}`,
		`{"name": "6", "members": [{"name": "fdset-id", "default": null, "type": "int"}, {"name": "opaque", "default": null, "type": "str"}], "meta-type": "object"}`,
		`{"name": "7", "members": [{"name": "fdset-id", "type": "int"}, {"name": "fd", "type": "int"}], "meta-type": "object"}`,
		`{"name": "str", "json-type": "string", "meta-type": "builtin"}`,
	} {
		if !containsEntry(got, want) {
			t.Errorf("schema lacks %s", want)
		}
	}
}

func containsEntry(schema, entry string) bool { return strings.Contains(schema, entry) }

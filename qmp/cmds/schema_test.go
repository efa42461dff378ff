package cmds_test

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	"tlcvm/chardev"
	"tlcvm/netdev"
	"tlcvm/objects"
	"tlcvm/qdev"
	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// referenceSchema is QEMU 7.2's query-qmp-schema as libvirt 9.0 recorded it.
const referenceSchema = "/work/shared/reference/libvirt/probe/query-qmp-schema-qemu-7.2.22.json.gz"

type schemaIndex map[string]map[string]any

func loadSchema(t *testing.T, raw []byte) schemaIndex {
	t.Helper()
	var entries []map[string]any
	if err := json.Unmarshal(raw, &entries); err != nil {
		t.Fatal(err)
	}
	idx := schemaIndex{}
	for _, e := range entries {
		idx[e["name"].(string)] = e
	}
	return idx
}

// canon renders an entity with every type name replaced by its structure, recursively, so
// that two schemas whose masked type numbers differ compare equal when the types are.
func (s schemaIndex) canon(name string, depth int) string {
	e, ok := s[name]
	if !ok || depth > 12 {
		return name
	}
	if mt := e["meta-type"]; mt == "builtin" {
		return name
	}
	var b strings.Builder
	keys := make([]string, 0, len(e))
	for k := range e {
		if k != "name" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s;", k, s.value(e[k], depth))
	}
	return "{" + b.String() + "}"
}

func (s schemaIndex) value(v any, depth int) string {
	switch x := v.(type) {
	case string:
		if _, isType := s[x]; isType {
			return s.canon(x, depth+1)
		}
		return x
	case []any:
		var parts []string
		for _, e := range x {
			parts = append(parts, s.value(e, depth))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			val := s.value(x[k], depth)
			if k != "type" && k != "element-type" && k != "arg-type" && k != "ret-type" {
				if str, ok := x[k].(string); ok {
					val = str // a member or case name, not a type
				}
			}
			parts = append(parts, k+":"+val)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSchemaAsQEMU: the introspection of the device, network and hotplug commands and events
// is QEMU 7.2's, member for member (libvirt derives capability flags and command-line syntax
// from it: netdev_add's dgram variant means JSON -netdev).
func TestSchemaAsQEMU(t *testing.T) {
	f, err := os.Open(referenceSchema)
	if err != nil {
		t.Skipf("no recorded schema: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	want := loadSchema(t, raw)

	r := qmp.NewRegistry()
	r.SetErrorClasses(cmds.ErrorClasses())
	cmds.Register(r, &cmds.Deps{Devices: qdev.New(qdev.Config{Machine: "pc-i440fx-7.2"}), Net: netdev.New(),
		ChardevHotplug: noChardevs{}, Objects: objects.New(objects.Config{}), MemoryDevices: noMemoryDevices{}})
	s := qmp.NewServer(r, qmp.Options{})
	defer s.Close()
	sess := s.NewSession()
	got, err := s.Execute(sess, "query-qmp-schema", nil)
	if err != nil {
		t.Fatal(err)
	}
	have := loadSchema(t, got)
	for _, name := range schemaChecked {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: not in QEMU 7.2's schema", name)
			continue
		}
		if _, ok := have[name]; !ok {
			t.Errorf("%s: not in tlcvm's schema", name)
			continue
		}
		if g, w := have.canon(name, 0), want.canon(name, 0); g != w {
			t.Errorf("%s:\n tlcvm %s\n  QEMU %s", name, g, w)
		}
	}
}

var schemaChecked = []string{
	"device_add", "device_del", "DEVICE_DELETED",
	"netdev_add", "netdev_del", "set_link", "query-rx-filter", "NIC_RX_FILTER_CHANGED",
	"NETDEV_STREAM_CONNECTED", "NETDEV_STREAM_DISCONNECTED",
	"chardev-add", "chardev-change", "chardev-remove", "chardev-send-break", "ringbuf-write", "ringbuf-read",
	"object-add", "object-del", "query-memdev", "query-iothreads",
	"query-memory-devices", "query-acpi-ospm-status", "query-memory-size-summary",
	"ACPI_DEVICE_OST", "MEMORY_DEVICE_SIZE_CHANGE",
}

// noMemoryDevices registers the memory device commands for the schema.
type noMemoryDevices struct{}

func (noMemoryDevices) List() []cmds.MemoryDeviceInfo     { return nil }
func (noMemoryDevices) OSPM() ([]cmds.ACPIOSTInfo, error) { return nil, nil }
func (noMemoryDevices) Plugged() uint64                   { return 0 }

// noChardevs registers the chardev commands for the schema.
type noChardevs struct{}

func (noChardevs) Add(chardev.Spec, func(string) (int, error)) (string, error)    { return "", nil }
func (noChardevs) Change(chardev.Spec, func(string) (int, error)) (string, error) { return "", nil }
func (noChardevs) Remove(string) error                                            { return nil }
func (noChardevs) SendBreak(string) error                                         { return nil }
func (noChardevs) Lookup(string) (*chardev.Chardev, bool)                         { return nil, false }

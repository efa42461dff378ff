package libvirttest_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	lv "tlcvm/internal/libvirttest"
)

func TestParseState(t *testing.T) {
	for _, c := range []struct {
		in   string
		want lv.State
		err  bool
	}{
		{"running (booted)\n\n", lv.State{State: "running", Reason: "booted"}, false},
		{"shut off (saved)\n", lv.State{State: "shut off", Reason: "saved"}, false},
		{"paused\n", lv.State{State: "paused"}, false},
		{"", lv.State{}, true},
		{"a\nb", lv.State{}, true},
	} {
		got, err := lv.ParseState(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseState(%q) = %v, %v", c.in, got, err)
		}
		if err != nil && !errors.Is(err, lv.ErrParse) {
			t.Errorf("error %v does not wrap ErrParse", err)
		}
	}
}

func TestParseKVAndLists(t *testing.T) {
	m, err := lv.ParseKV("Capacity:       67108864\nAllocation:     200704\n\n")
	if err != nil || m["Capacity"] != "67108864" || m["Allocation"] != "200704" {
		t.Fatalf("ParseKV = %v, %v", m, err)
	}
	if _, err := lv.ParseKV("no colon here"); !errors.Is(err, lv.ErrParse) {
		t.Errorf("ParseKV accepted a line without a colon: %v", err)
	}
	b, err := lv.ParseBlkList(" Target   Source\n------------------------------------\n vda      /tmp/d.qcow2\n sda      -\n")
	if err != nil || !reflect.DeepEqual(b, map[string]string{"vda": "/tmp/d.qcow2", "sda": "-"}) {
		t.Fatalf("ParseBlkList = %v, %v", b, err)
	}
	s, err := lv.ParseStats("Domain: 'x'\n  state.state=1\n  block.0.name=vda\n\n")
	if err != nil || s["state.state"] != "1" || s["block.0.name"] != "vda" {
		t.Fatalf("ParseStats = %v, %v", s, err)
	}
	if got := lv.Missing([]string{"a", "b", "c"}, []string{"b"}); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("Missing = %v", got)
	}
}

func TestParseCapsReference(t *testing.T) {
	b, err := os.ReadFile("/work/shared/reference/libvirt/probe/domcapabilities.xml")
	if err != nil {
		t.Skip(err)
	}
	c, err := lv.ParseCaps(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Machine != "pc-i440fx-7.2" || len(c.CPUModels) < 30 || len(c.Devices["disk.bus"]) == 0 {
		t.Fatalf("ParseCaps(reference) = machine %q, %d CPU models, disk.bus %v", c.Machine, len(c.CPUModels), c.Devices["disk.bus"])
	}
	if _, err := lv.ParseCaps([]byte("<domainCapabilities>")); !errors.Is(err, lv.ErrParse) {
		t.Errorf("truncated XML: %v", err)
	}
}

func TestDomainXML(t *testing.T) {
	for _, d := range []lv.Domain{
		{Kind: lv.PC, Name: "n", Emulator: "/e", Disk: "/d'&", Workload: "ws=1M,,rate=1M"},
		{Kind: lv.Q35, Name: "n", UUID: lv.NewUUID(), Emulator: "/e", Disk: "/d", NoVNC: true, NoBalloon: true},
		{Kind: lv.PC, Name: "n", Emulator: "/e", Disk: "/d", MemSlots: 4},
	} {
		x := d.XML()
		for _, want := range []string{"<name>n</name>", "<emulator>/e</emulator>"} {
			if !strings.Contains(x, want) {
				t.Errorf("XML lacks %s:\n%s", want, x)
			}
		}
		if strings.Contains(x, "/d'&") {
			t.Errorf("disk path not escaped")
		}
		if d.Workload != "" && !strings.Contains(x, "<entry name='opt/tlcvm/workload'>ws=1M,,rate=1M</entry>") {
			t.Errorf("no fwcfg entry:\n%s", x)
		}
		if d.MemSlots > 0 && (!strings.Contains(x, "<maxMemory slots='4' unit='MiB'>1024</maxMemory>") ||
			!strings.Contains(x, "<cell id='0' cpus='0-0' memory='256' unit='MiB'/>")) {
			t.Errorf("no memory hotplug room:\n%s", x)
		}
		if d.NoVNC && strings.Contains(x, "vnc") {
			t.Errorf("NoVNC but vnc in XML")
		}
	}
	if u := lv.NewUUID(); len(u) != 36 || u[14] != '4' {
		t.Errorf("NewUUID = %q", u)
	}
}

func FuzzParsers(f *testing.F) {
	f.Add("running (booted)\n")
	f.Add(" Target Source\n---\n vda /x\n")
	f.Add("Domain: 'x'\n a=b\n")
	f.Add("<domainCapabilities><machine>pc</machine></domainCapabilities>")
	f.Fuzz(func(t *testing.T, s string) {
		if st, err := lv.ParseState(s); err == nil && st.State == "" {
			t.Errorf("empty state without error for %q", s)
		}
		_, _ = lv.ParseKV(s)
		_, _ = lv.ParseBlkList(s)
		_, _ = lv.ParseStats(s)
		_, _ = lv.ParseCaps([]byte(s))
	})
}

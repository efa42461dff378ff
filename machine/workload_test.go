package machine_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"tlcvm/machine"
)

func TestParseWorkload(t *testing.T) {
	for _, c := range []struct {
		in   string
		want machine.Workload
		str  string
		bad  bool
	}{
		{"", machine.Workload{WS: 16 << 20, Rate: 4 << 20}, "ws=16M,rate=4M", false},
		{"ws=64M,rate=max", machine.Workload{WS: 64 << 20}, "ws=64M,rate=max", false},
		{"ws=512M,rate=200M", machine.Workload{WS: 512 << 20, Rate: 200 << 20}, "ws=512M,rate=200M", false},
		{"idle", machine.Workload{Rate: 4 << 20}, "idle", false},
		{"ws=64M", machine.Workload{WS: 64 << 20, Rate: 4 << 20}, "ws=64M,rate=4M", false},
		{"rate=1G,ws=1g", machine.Workload{WS: 1 << 30, Rate: 1 << 30}, "ws=1G,rate=1G", false},
		{"ws=10000", machine.Workload{WS: 8192, Rate: 4 << 20}, "ws=8K,rate=4M", false},
		{"ws=0", machine.Workload{Rate: 4 << 20}, "idle", false},
		{"ws=64MiB", machine.Workload{}, "", true},
		{"ws=-1", machine.Workload{}, "", true},
		{"rate=0", machine.Workload{}, "", true},
		{"rate=fast", machine.Workload{}, "", true},
		{"idle=1", machine.Workload{}, "", true},
		{"wss=1M", machine.Workload{}, "", true},
		{"ws=99999999999T", machine.Workload{}, "", true},
		{"ws", machine.Workload{}, "", true},
		{"ws=64M,,fill=3G", machine.Workload{}, "", true}, // ",," is QemuOpts' escape, undone before fw_cfg
		{"ws=64M,fill=3G", machine.Workload{WS: 64 << 20, Rate: 4 << 20, Fill: 3 << 30}, "ws=64M,rate=4M,fill=3G", false},
		{"fill=1M,ws=0,rate=max", machine.Workload{Fill: 1 << 20}, "ws=0,rate=max,fill=1M", false},
		{"fill=10000", machine.Workload{WS: 16 << 20, Rate: 4 << 20, Fill: 8192}, "ws=16M,rate=4M,fill=8K", false},
		{"fill=0", machine.Workload{WS: 16 << 20, Rate: 4 << 20}, "ws=16M,rate=4M", false},
		{"fill=2G,idle", machine.Workload{Rate: 4 << 20}, "idle", false},
		{"fill=", machine.Workload{}, "", true},
		{"fill", machine.Workload{}, "", true},
		{"fill=lots", machine.Workload{}, "", true},
		{"fill=-1M", machine.Workload{}, "", true},
		{"dimm=all", machine.Workload{WS: 16 << 20, Rate: 4 << 20, DIMM: ^uint64(0)}, "ws=16M,rate=4M,dimm=all", false},
		{"idle,dimm=64M", machine.Workload{Rate: 4 << 20, DIMM: 64 << 20}, "idle,dimm=64M", false},
		{"dimm=10000,ws=1M,fill=1M", machine.Workload{WS: 1 << 20, Rate: 4 << 20, Fill: 1 << 20, DIMM: 8192}, "ws=1M,rate=4M,fill=1M,dimm=8K", false},
		{"dimm=some", machine.Workload{}, "", true},
		{"dimm", machine.Workload{}, "", true},
		{"idle,disk=vd0,disk=drive1,disk-rate=1M,disk-bs=4K,disk-offset=1M,disk-size=8M",
			machine.Workload{Rate: 4 << 20, DiskWorkload: machine.DiskWorkload{Disks: []string{"vd0", "drive1"},
				DiskRate: 1 << 20, DiskBS: 4096, DiskOffset: 1 << 20, DiskSize: 8 << 20}},
			"idle,disk=vd0,disk=drive1,disk-rate=1M,disk-offset=1M,disk-size=8M,disk-bs=4K", false},
		{"disk=vd0,disk-rate=max", machine.Workload{WS: 16 << 20, Rate: 4 << 20,
			DiskWorkload: machine.DiskWorkload{Disks: []string{"vd0"}}}, "ws=16M,rate=4M,disk=vd0", false},
		{"idle,disk=a,disk-verify", machine.Workload{Rate: 4 << 20, DiskWorkload: machine.DiskWorkload{Disks: []string{"a"},
			DiskVerify: true}}, "idle,disk=a,disk-verify", false},
		{"disk-verify=on", machine.Workload{}, "", true},
		{"disk=", machine.Workload{}, "", true},
		{"disk-bs=1000", machine.Workload{}, "", true},
		{"disk-bs=0", machine.Workload{}, "", true},
		{"disk-bs=32M", machine.Workload{}, "", true},
		{"disk-offset=7", machine.Workload{}, "", true},
		{"disk-rate=0", machine.Workload{}, "", true},
		{"idle,cdlock", machine.Workload{Rate: 4 << 20, CDLock: true}, "idle,cdlock", false},
		{"cdlock,ws=1M", machine.Workload{WS: 1 << 20, Rate: 4 << 20, CDLock: true}, "ws=1M,rate=4M,cdlock", false},
		{"cdlock=1", machine.Workload{}, "", true},
		{"idle,dimm=all,cdlock,disk=vd0", machine.Workload{Rate: 4 << 20, DIMM: ^uint64(0), CDLock: true,
			DiskWorkload: machine.DiskWorkload{Disks: []string{"vd0"}}}, "idle,dimm=all,cdlock,disk=vd0", false},
	} {
		got, err := machine.ParseWorkload(c.in)
		if c.bad {
			if !errors.Is(err, machine.ErrWorkload) {
				t.Errorf("%q: err %v, want ErrWorkload", c.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) || got.String() != c.str {
			t.Errorf("%q: %+v %q %v, want %+v %q", c.in, got, got.String(), err, c.want, c.str)
		}
	}
	_, err := machine.New(machine.Config{Type: "pc-i440fx-7.2", RAMSize: 64 << 20,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=lots")}})
	if !errors.Is(err, machine.ErrWorkload) || !strings.Contains(err.Error(), "opt/tlcvm/workload") {
		t.Errorf("New with bad workload: %v", err)
	}
}

// TestWorkloadFillRefused: New refuses a fill= that does not fit after the working set,
// naming the key; the errors of bad values name it too.
func TestWorkloadFillRefused(t *testing.T) {
	for _, c := range []struct {
		ram  uint64
		typ  string
		wl   string
		want string // "" = accepted
	}{
		{64 << 20, "", "ws=16M,fill=46M", ""},
		{64 << 20, "", "ws=16M,fill=47M", "opt/tlcvm/workload: fill=47M does not fit in 64M of RAM after 2M + ws=16M (at most fill=46M)"},
		{64 << 20, "", "ws=1G,fill=4K", "fill=4K does not fit in 64M of RAM after 2M + ws=62M (at most fill=0)"},
		{64 << 20, "", "fill=62M,ws=0", ""},
		{4 << 30, "pc-q35-7.2", "ws=64M,fill=3G", ""}, // crosses the hole below 4 GiB
		{4 << 30, "pc-q35-7.2", "ws=64M,fill=4G", "fill=4G does not fit in 4G of RAM after 2M + ws=64M (at most fill=4030M)"},
		{64 << 20, "", "fill=x", `opt/tlcvm/workload: fill="x" is not a size (e.g. fill=3G)`},
	} {
		m, err := machine.New(machine.Config{Type: c.typ, RAMSize: c.ram, StartPaused: true,
			FwCfg: map[string][]byte{machine.WorkloadKey: []byte(c.wl)}})
		if err == nil {
			_ = m.Close()
		}
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.wl, err)
		case c.want != "" && (!errors.Is(err, machine.ErrWorkload) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: err %v, want ErrWorkload %q", c.wl, err, c.want)
		}
	}
}

// TestWorkloadFill: fill= pages are written once, after the working set, split between
// the vCPUs, with content that depends only on the page; then the loop runs as before.
func TestWorkloadFill(t *testing.T) {
	const ws, fill = 1 << 20, 3<<20 + 4096 // 256 ws pages, 769 fill pages: 384 + 385
	const steps = 1 + 128 + 385            // boot/AP release, ws share, fill share
	out := newLineWriter("")
	m := newMachine(t, machine.Config{RAMSize: 16 << 20, CPUs: 2, StartPaused: true, Serial: out,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=1M,rate=max,fill=3076K")}})
	for cpu := 0; cpu < 2; cpu++ {
		if _, err := m.RunSteps(cpu, steps); err != nil {
			t.Fatal(err)
		}
		if st := m.CPUStateOf(cpu); st.RIP != 0x100080 || st.Regs[machine.RSI] != 2<<20+uint64(cpu)*128*4096 || st.Regs[machine.RCX] != 128 {
			t.Fatalf("cpu %d after its fill: rip %#x base %#x pages %d", cpu, st.RIP, st.Regs[machine.RSI], st.Regs[machine.RCX])
		}
	}
	if !strings.Contains(out.String(), "workload ws=1M,rate=max,fill=3076K\r\n") {
		t.Fatalf("banner %q", out.String())
	}
	b := m.RAMBlocks()[0]
	first, last := uint64(2<<20+ws)/machine.PageSize, uint64(2<<20+ws+fill)/machine.PageSize
	var n uint64
	for p := first; p < b.Pages(); p++ {
		if b.Written(p) {
			if p >= last {
				t.Fatalf("page %d beyond the fill written", p)
			}
			n++
		}
	}
	if n != last-first {
		t.Fatalf("%d fill pages written, want %d", n, last-first)
	}
	page := make([]byte, machine.PageSize)
	if err := m.ReadPhys(last*machine.PageSize-machine.PageSize, page); err != nil {
		t.Fatal(err)
	}
	off := (last - 1) * machine.PageSize
	for w := uint64(0); w < machine.PageSize/8; w++ {
		if got := binary.LittleEndian.Uint64(page[8*w:]); got != 0x5a5a5a5a00000000^(off>>3+w) {
			t.Fatalf("fill word %d: %#x", w, got)
		}
	}
	var ctr [8]byte
	if err := m.ReadPhys(0x508, ctr[:]); err != nil || binary.LittleEndian.Uint64(ctr[:]) != 128+384 {
		t.Fatalf("vCPU 0 pages written: %d %v", binary.LittleEndian.Uint64(ctr[:]), err)
	}
	// the same fill with one vCPU writes the same bytes
	one := newMachine(t, machine.Config{RAMSize: 16 << 20, CPUs: 1, StartPaused: true,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=1M,rate=max,fill=3076K")}})
	if _, err := one.RunSteps(0, 1+256+769); err != nil {
		t.Fatal(err)
	}
	a, c := ram(t, m), ram(t, one)
	if !bytes.Equal(a[first*machine.PageSize:last*machine.PageSize], c[first*machine.PageSize:last*machine.PageSize]) {
		t.Fatal("fill content depends on the vCPU count")
	}
}

func FuzzParseWorkload(f *testing.F) {
	for _, s := range []string{"", "idle", "ws=64M,rate=max", "ws=512M,rate=200M", "rate=1k", "ws=1T,,", "ws=64M,fill=3G", "fill=0,idle", "dimm=all", "idle,dimm=64M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := machine.ParseWorkload(s)
		if err != nil {
			if !errors.Is(err, machine.ErrWorkload) {
				t.Fatalf("%q: error %v not ErrWorkload", s, err)
			}
			return
		}
		if w.WS%machine.PageSize != 0 {
			t.Fatalf("%q: ws %d not page aligned", s, w.WS)
		}
		back, err := machine.ParseWorkload(w.String())
		if err != nil || back.WS != w.WS || back.Fill != w.Fill || back.DIMM != w.DIMM || (w.WS+w.Fill != 0 && back.Rate != w.Rate) {
			t.Fatalf("%q → %q → %+v %v", s, w.String(), back, err)
		}
	})
}

// runGuest builds a paused machine and single-steps each vCPU n times (vCPU 0 first,
// it boots the others).
func runGuest(t *testing.T, wl string, cpus, n int) *machine.Machine {
	t.Helper()
	m := newMachine(t, machine.Config{RAMSize: 16 << 20, CPUs: cpus, StartPaused: true,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte(wl)}})
	for cpu := 0; cpu < cpus; cpu++ {
		if _, err := m.RunSteps(cpu, n); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func ram(t *testing.T, m *machine.Machine) []byte {
	t.Helper()
	buf := make([]byte, m.RAMSize())
	if err := m.ReadPhys(0, buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

// TestWorkloadDeterminism: same configuration and steps → same RAM and registers;
// changing one word of RAM changes what the guest writes afterwards.
func TestWorkloadDeterminism(t *testing.T) {
	const wl, cpus, n = "ws=1M,rate=max", 2, 5000 // 128 pages per vCPU: ~38 passes
	a, b := runGuest(t, wl, cpus, n), runGuest(t, wl, cpus, n)
	if !bytes.Equal(ram(t, a), ram(t, b)) {
		t.Fatal("same workload, different RAM")
	}
	for cpu := 0; cpu < cpus; cpu++ {
		sa, sb := a.CPUStateOf(cpu), b.CPUStateOf(cpu)
		sa.Regs[machine.R10], sb.Regs[machine.R10] = 0, 0 // pacing epoch: guest time
		sa.Regs[machine.R11], sb.Regs[machine.R11] = 0, 0
		if sa != sb {
			t.Fatalf("cpu %d registers differ", cpu)
		}
		if sa.Regs[machine.RAX] < 30 {
			t.Fatalf("cpu %d: only %d passes", cpu, sa.Regs[machine.RAX])
		}
	}
	// corrupt one word the guest will read again, then run both on
	// the word the last page of vCPU 0's chunk got in the previous pass
	st := a.CPUStateOf(0)
	b.GuestStore64(st.Regs[machine.RSI]+(st.Regs[machine.RCX]-1)*machine.PageSize+(st.Regs[machine.RAX]-1)%512*8, 0xdeadbeef)
	for cpu := 0; cpu < cpus; cpu++ {
		_, _ = a.RunSteps(cpu, 1000)
		_, _ = b.RunSteps(cpu, 1000)
	}
	ra, rb := ram(t, a), ram(t, b)
	diff := 0
	for i := 0; i < len(ra); i += 8 {
		if !bytes.Equal(ra[i:i+8], rb[i:i+8]) {
			diff++
		}
	}
	if diff < 100 {
		t.Fatalf("corruption changed only %d words", diff)
	}
	if a.CPUStateOf(0).Regs[machine.RDX] == b.CPUStateOf(0).Regs[machine.RDX] {
		t.Fatal("corruption did not reach the hash register")
	}
}

func TestBannerAndSerial(t *testing.T) {
	out := newLineWriter("")
	m := newMachine(t, machine.Config{RAMSize: 64 << 20, CPUs: 2, StartPaused: true, Serial: out,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=128M,rate=200M")}})
	if _, err := m.RunSteps(0, 1); err != nil {
		t.Fatal(err)
	}
	// ws is clamped to the RAM above 2 MiB
	want := "tlcvm guest: 2 vCPU(s), 64 MiB RAM, workload ws=62M,rate=200M\r\n"
	if got := out.String(); got != want {
		t.Fatalf("serial %q, want %q", got, want)
	}
	st := m.CPUStateOf(1)
	if !st.Halted || st.RIP != 0xfff0 {
		t.Fatalf("AP before release: %+v", st)
	}
	if _, err := m.RunSteps(1, 1); err != nil {
		t.Fatal(err)
	}
	if st := m.CPUStateOf(1); st.Halted || st.Regs[machine.RSI] != 2<<20+31<<20 || st.Regs[machine.RCX] != 31<<8 {
		t.Fatalf("AP chunk: base %#x pages %d", st.Regs[machine.RSI], st.Regs[machine.RCX])
	}
}

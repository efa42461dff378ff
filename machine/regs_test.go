package machine_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"tlcvm/machine"
)

// qemuResetDump is QEMU 7.2's "info registers" for CPU 0 of
// "-machine pc -m 64 -nodefaults -display none -S" (after "\nCPU#0\n"), "\r\n" → "\n".
const qemuResetDump = `EAX=00000000 EBX=00000000 ECX=00000000 EDX=00060fb1
ESI=00000000 EDI=00000000 EBP=00000000 ESP=00000000
EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0000 00000000 0000ffff 00009300
CS =f000 ffff0000 0000ffff 00009b00
SS =0000 00000000 0000ffff 00009300
DS =0000 00000000 0000ffff 00009300
FS =0000 00000000 0000ffff 00009300
GS =0000 00000000 0000ffff 00009300
LDT=0000 00000000 0000ffff 00008200
TR =0000 00000000 0000ffff 00008b00
GDT=     00000000 0000ffff
IDT=     00000000 0000ffff
CR0=60000010 CR2=00000000 CR3=00000000 CR4=00000000
DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 
DR6=00000000ffff0ff0 DR7=0000000000000400
EFER=0000000000000000
FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80
FPR0=0000000000000000 0000 FPR1=0000000000000000 0000
FPR2=0000000000000000 0000 FPR3=0000000000000000 0000
FPR4=0000000000000000 0000 FPR5=0000000000000000 0000
FPR6=0000000000000000 0000 FPR7=0000000000000000 0000
XMM00=0000000000000000 0000000000000000 XMM01=0000000000000000 0000000000000000
XMM02=0000000000000000 0000000000000000 XMM03=0000000000000000 0000000000000000
XMM04=0000000000000000 0000000000000000 XMM05=0000000000000000 0000000000000000
XMM06=0000000000000000 0000000000000000 XMM07=0000000000000000 0000000000000000
`

func TestRegistersReset(t *testing.T) {
	m := newMachine(t, machine.Config{StartPaused: true, CPUs: 2, FwCfg: idle()})
	if got := m.Registers(0); got != qemuResetDump {
		t.Fatalf("got\n%s\nwant\n%s", got, qemuResetDump)
	}
	// APs wait for SIPI: same registers, HLT=1
	want1 := strings.Replace(qemuResetDump, "HLT=0", "HLT=1", 1)
	if got := m.Registers(1); got != want1 {
		t.Fatalf("AP got\n%s", got)
	}
	if m.Registers(2) != "" {
		t.Fatal("Registers(2) of a 2-CPU machine")
	}
}

func TestRegistersLongMode(t *testing.T) {
	m := runGuest(t, "ws=1M,rate=max", 1, 10)
	got := strings.Split(m.Registers(0), "\n")
	st := m.CPUStateOf(0)
	want := map[int]string{
		0:  "RAX=0000000000000001 RBX=0000000000000009 RCX=0000000000000100 RDX=9e3779b97f4a7c15",
		2:  "R8 =0000000000000009 R9 =0000000000000009 R10=0000000000000000 R11=000000012a05f200",
		4:  "RIP=0000000000100040 RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0",
		5:  "ES =0018 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]",
		6:  "CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]",
		9:  "FS =0000 0000000000000000 00000000 00000000",
		11: "LDT=0000 0000000000000000 00000000 00008200 DPL=0 LDT",
		12: "TR =0020 0000000000004800 00000067 00008b00 DPL=0 TSS64-busy",
		13: "GDT=     0000000000004100 0000002f",
		15: "CR0=80010031 CR2=0000000000000000 CR3=0000000000010000 CR4=000000a0",
		18: "EFER=0000000000000501",
		31: "XMM14=0000000000000000 0000000000000000 XMM15=0000000000000000 0000000000000000",
	}
	for i, w := range want {
		if i >= len(got) || got[i] != w {
			t.Errorf("line %d = %q, want %q (rcx %d)", i, got[min(i, len(got)-1)], w, st.Regs[machine.RCX])
		}
	}
}

func TestSaveMemory(t *testing.T) {
	dir := t.TempDir()
	m := newMachine(t, machine.Config{StartPaused: true, FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=1M")}})
	if _, err := m.RunSteps(0, 300); err != nil { // boots: page tables map RAM 1:1
		t.Fatal(err)
	}
	m.GuestStore64(0x3fff000, 0x0102030405060708)
	for _, c := range []struct {
		name       string
		addr, size uint64
		phys       bool
		cpu        int
		err        string
		wantLen    int
	}{
		{"pmem", 0x3fff000, 8192, true, 0, "", 8192}, // spans the end of RAM: zeros beyond
		{"pmem-out", 0xfffffffffffff000, 4096, true, 0, "", 4096},
		{"pmem-empty", 0, 0, true, 0, "", 0},
		{"mem", 0x3fff000, 4096, false, 0, "", 4096},
		{"mem-out", 0x5000000, 4096, false, 0, "Invalid addr 0x0000000005000000/size 4096 specified", 0},
		{"mem-partial", 0x3fffc00, 2048, false, 0, "Invalid addr 0x0000000003fffc00/size 2048 specified", 1024},
		{"mem-noncanonical", 0xffffffffff000000, 4096, false, 0, "Invalid addr 0xffffffffff000000/size 4096 specified", 0},
		{"mem-cpu", 0, 4096, false, 3, "Parameter 'cpu-index' expects a CPU number", -1},
		{"open", 0, 4096, true, 0, "Could not open '" + dir + "/no/x': No such file or directory", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			if c.name == "open" {
				path = dir + "/no/x"
			}
			err := m.SaveMemory(path, c.addr, c.size, c.phys, c.cpu)
			if (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
				t.Fatalf("err %v, want %q", err, c.err)
			}
			data, rerr := os.ReadFile(path)
			if c.wantLen < 0 {
				if rerr == nil {
					t.Fatal("file created")
				}
				return
			}
			if len(data) != c.wantLen {
				t.Fatalf("wrote %d bytes, want %d", len(data), c.wantLen)
			}
			if c.addr == 0x3fff000 && string(data[:8]) != "\x08\x07\x06\x05\x04\x03\x02\x01" {
				t.Fatalf("data % x", data[:8])
			}
		})
	}
	var e error = m.SaveMemory(filepath.Join(dir, "x"), 0x5000000, 1, false, 0)
	if !errors.Is(e, machine.ErrInvalidAddress) {
		t.Fatal(e)
	}
}

// TestSnapshotRoundTrip: save every section of a paused guest, load into a fresh machine
// built from the same command line with RAM copied, and both continue identically.
func TestSnapshotRoundTrip(t *testing.T) {
	const wl, cpus = "ws=1M,rate=max", 2
	a := runGuest(t, wl, cpus, 700)
	b := newMachine(t, machine.Config{RAMSize: 16 << 20, CPUs: cpus, StartPaused: true,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte(wl)}})
	// RAM: only written pages, as a checkpoint would
	src, dst := a.RAMBlocks()[0], b.RAMBlocks()[0]
	words := make([]uint64, src.BitmapWords())
	src.WrittenBitmap(words)
	for p := uint64(0); p < src.Pages(); p++ {
		if words[p/64]&(1<<(p%64)) != 0 {
			dst.WritePage(p, src.Host()[p*machine.PageSize:(p+1)*machine.PageSize])
		}
	}
	secs := a.Snapshotters()
	var ids []string
	for i, s := range secs {
		ids = append(ids, s.SectionID())
		st, err := s.SaveState()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		cur, min := s.StateVersion()
		peer := b.Snapshotters()[i]
		if err := peer.LoadState(raw[:len(raw)/2], cur); !errors.Is(err, machine.ErrState) {
			t.Fatalf("%s: truncated state: %v", s.SectionID(), err)
		}
		if err := peer.LoadState(raw, cur+1); !errors.Is(err, machine.ErrState) {
			t.Fatalf("%s: future version: %v", s.SectionID(), err)
		}
		if err := peer.LoadState(raw, min); err != nil {
			t.Fatalf("%s: %v", s.SectionID(), err)
		}
	}
	if want := []string{"cpu/0", "cpu/1", "clock", "acpi", "fw_cfg", "serial0"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("sections %v", ids)
	}
	for cpu := 0; cpu < cpus; cpu++ {
		if a.CPUStateOf(cpu) != b.CPUStateOf(cpu) {
			t.Fatalf("cpu %d differs after load", cpu)
		}
		_, _ = a.RunSteps(cpu, 2000)
		_, _ = b.RunSteps(cpu, 2000)
	}
	if string(ram(t, a)) != string(ram(t, b)) {
		t.Fatal("restored guest diverged")
	}
	// saving needs parked vCPUs
	r := newMachine(t, machine.Config{FwCfg: idle()})
	r.Start()
	if _, err := r.SaveDevices(); !errors.Is(err, machine.ErrState) {
		t.Fatalf("SaveDevices while running: %v", err)
	}
}

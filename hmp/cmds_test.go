package hmp_test

import (
	"reflect"
	"strings"
	"testing"

	"tlcvm/hmp"
)

// TestCommandsFormat: formatting of QMP results QEMU's golden runs do not reach.
func TestCommandsFormat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies map[string]string
		line    string
		want    string
	}{
		{"postmigrate", map[string]string{"query-status": `{"status":"postmigrate","singlestep":false,"running":false}`},
			"info status", "VM status: paused (postmigrate)\r\n"},
		{"paused", map[string]string{"query-status": `{"status":"paused","singlestep":false,"running":false}`},
			"info status", "VM status: paused\r\n"},
		{"singlestep", map[string]string{"query-status": `{"status":"running","singlestep":true,"running":true}`},
			"info status", "VM status: running (single step mode)\r\n"},
		{"shutdown", map[string]string{"query-status": `{"status":"shutdown","singlestep":false,"running":false}`},
			"info status", "VM status: paused (shutdown)\r\n"},
		{"status error", map[string]string{"query-status": `!boom`}, "info status", "Error: boom\r\n"},
		{"no name", map[string]string{"query-name": `{}`}, "info name", ""},
		{"kvm enabled", map[string]string{"query-kvm": `{"enabled":true,"present":true}`}, "info kvm", "kvm support: enabled\r\n"},
		{"kvm absent", map[string]string{"query-kvm": `{"enabled":false,"present":false}`}, "info kvm", "kvm support: not compiled\r\n"},
		{"no pci", map[string]string{}, "info pci", "PCI devices not supported\r\n"},
		{"pci bridge with devices", map[string]string{"query-pci": `[{"bus":0,"devices":[{"bus":0,"slot":1,"function":0,"class_info":{"class":1540,"desc":"PCI bridge"},"id":{"device":1,"vendor":6966},"irq":0,"irq_pin":1,"qdev_id":"br0","pci_bridge":{"bus":{"number":0,"secondary":1,"subordinate":1,"io_range":{"base":61440,"limit":4095},"memory_range":{"base":4273995776,"limit":4275044351},"prefetchable_range":{"base":4261412864,"limit":4262461439}},"devices":[{"bus":1,"slot":3,"function":0,"class_info":{"class":512},"id":{"device":4096,"vendor":6900,"subsystem":1,"subsystem-vendor":6900},"irq":11,"irq_pin":1,"qdev_id":"net0","regions":[{"bar":0,"type":"io","address":49152,"size":32},{"bar":1,"type":"memory","address":4273995776,"size":4096,"prefetch":false,"mem_type_64":false},{"bar":4,"type":"memory","address":4261412864,"size":16384,"prefetch":true,"mem_type_64":true}]}]},"regions":[]}]}]`},
			"info pci",
			"  Bus  0, device   1, function 0:\r\n    PCI bridge: PCI device 1b36:0001\r\n      IRQ 0, pin A\r\n" +
				"      BUS 0.\r\n      secondary bus 1.\r\n      subordinate bus 1.\r\n      IO range [0xf000, 0x0fff]\r\n" +
				"      memory range [0xfec00000, 0xfecfffff]\r\n      prefetchable memory range [0xfe000000, 0xfe0fffff]\r\n" +
				"      id \"br0\"\r\n" +
				"  Bus  1, device   3, function 0:\r\n    Class 0512: PCI device 1af4:1000\r\n      PCI subsystem 1af4:0001\r\n      IRQ 11, pin A\r\n" +
				"      BAR0: I/O at 0xc000 [0xc01f].\r\n      BAR1: 32 bit memory at 0xfec00000 [0xfec00fff].\r\n" +
				"      BAR4: 64 bit prefetchable memory at 0xfe000000 [0xfe003fff].\r\n      id \"net0\"\r\n"},
		{"registers header kept", map[string]string{"x-tlcvm-registers/0": `{"text":"\nCPU#0\nRAX=0\n"}`}, "info registers", "\r\nCPU#0\r\nRAX=0\r\n"},
		{"registers bad cpu", map[string]string{}, "info registers 5", "CPU#5 not available\r\n"},
		{"cont error", map[string]string{"cont": `!Resetting the Virtual Machine is required`}, "cont", "Error: Resetting the Virtual Machine is required\r\n"},
		{"c alias", map[string]string{"cont": `{}`}, "c", ""},
		{"stop ignores errors", map[string]string{"stop": `!nope`}, "stop", ""},
		{"s alias", map[string]string{}, "s", ""},
		{"reset ignores errors", map[string]string{"system_reset": `!nope`}, "system_reset", ""},
		{"getfd error", map[string]string{"getfd": `!No file descriptor supplied via SCM_RIGHTS`}, "getfd foo", "Error: No file descriptor supplied via SCM_RIGHTS\r\n"},
		{"closefd error", map[string]string{"closefd": `!File descriptor named 'foo' not found`}, "closefd foo", "Error: File descriptor named 'foo' not found\r\n"},
		{"cpu invalid", map[string]string{}, "cpu 5", "invalid CPU index\r\n"},
		{"memsave error", map[string]string{"memsave": `!Invalid addr 0x0000000020000000/size 16 specified`}, "memsave 0x20000000 16 m.bin", "Error: Invalid addr 0x0000000020000000/size 16 specified\r\n"},
		{"x/i", map[string]string{}, "x/3i 0x1000", "0x00001000: Asm output not supported on this arch\r\n"},
		{"sum", map[string]string{}, "sum 0 4", "08192\r\n"},
		{"sum unreadable", map[string]string{}, "sum 0x20000000 16", "00000\r\n"},
		{"help log unknown", map[string]string{}, "help log", "unknown command: 'log'\r\n"},
		{"help bad quote", map[string]string{}, "help \"x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			for k, v := range tc.replies {
				f.set(k, v)
			}
			f.ram = []byte{1, 0, 0, 0}
			m := hmp.New(f, hmp.Options{})
			if got := m.RunLine(tc.line); got != tc.want {
				t.Errorf("%q:\n got %q\nwant %q", tc.line, got, tc.want)
			}
		})
	}
}

// TestCommandsCallQMP: each HMP command calls its QMP twin with QEMU's arguments.
func TestCommandsCallQMP(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []call
	}{
		{"stop", []call{{"stop", ""}}},
		{"cont", []call{{"cont", ""}}},
		{"system_reset", []call{{"system_reset", ""}}},
		{"system_powerdown", []call{{"system_powerdown", ""}}},
		{"system_wakeup", []call{{"system_wakeup", ""}}},
		{"nmi", []call{{"inject-nmi", ""}}},
		{"q", []call{{"quit", ""}}},
		{"getfd fd1", []call{{"getfd", `{"fdname":"fd1"}`}}},
		{"closefd fd1", []call{{"closefd", `{"fdname":"fd1"}`}}},
		{"pmemsave 0x1000 0x100 \"/tmp/a b\"", []call{{"pmemsave", `{"val":4096,"size":256,"filename":"/tmp/a b"}`}}},
		{"pmemsave 0 0xffffffff f", []call{{"pmemsave", `{"val":0,"size":4294967295,"filename":"f"}`}}},
		{"memsave 0x1000 16 f", []call{{"query-cpus-fast", ""}, {"memsave", `{"val":4096,"size":16,"filename":"f","cpu-index":0}`}}},
		{"xp/2xw 0x10", []call{{"query-cpus-fast", ""}, {"x-tlcvm-read-memory", `{"addr":16,"size":8,"phys":true,"cpu-index":0}`}}},
		{"x/2xw 0x10", []call{{"query-cpus-fast", ""}, {"x-tlcvm-read-memory", `{"addr":16,"size":8,"phys":false,"cpu-index":0}`}}},
		{"info registers", []call{{"query-cpus-fast", ""}, {"x-tlcvm-registers", `{"cpu-index":0}`}}},
		{"info registers 1", []call{{"query-cpus-fast", ""}, {"x-tlcvm-registers", `{"cpu-index":1}`}}},
		{"p $eax", []call{{"query-cpus-fast", ""}, {"x-tlcvm-registers", `{"cpu-index":0}`}}},
		{"foo", nil},
		{"info registers -x", nil},
	} {
		f := newFake()
		f.ram = make([]byte, 64)
		m := hmp.New(f, hmp.Options{})
		m.RunLine(tc.line)
		if got := f.Calls(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: QMP calls\n got %v\nwant %v", tc.line, got, tc.want)
		}
	}
}

// TestCurrentCPU: `cpu N` sticks to a terminal session, and RunOnCPU selects the CPU for
// one human-monitor-command; Run starts on the first CPU every time, as QEMU does.
func TestCurrentCPU(t *testing.T) {
	f := newFake()
	m := hmp.New(f, hmp.Options{})
	if got := m.RunLine("cpu 1"); got != "" {
		t.Fatalf("cpu 1: %q", got)
	}
	want0 := "* CPU #0: thread_id=4242\r\n  CPU #1: thread_id=4243\r\n"
	if got := m.RunLine("info cpus"); got != want0 {
		t.Errorf("Run after cpu 1: %q (each Run is a fresh monitor)", got)
	}
	want1 := "  CPU #0: thread_id=4242\r\n* CPU #1: thread_id=4243\r\n"
	if got := m.RunOnCPU(nil, 1, "info cpus"); got != want1 {
		t.Errorf("RunOnCPU 1: %q", got)
	}
	sc := &scriptConn{inputs: []string{"cpu 1\r", "info cpus\r"}}
	m.Serve(sc, true)
	if got := sc.outs[2].String(); !strings.Contains(got, want1) {
		t.Errorf("terminal info cpus after cpu 1: %q", got)
	}
	// The terminal's choice survives reconnection.
	sc = &scriptConn{inputs: []string{"info cpus\r"}}
	m.Serve(sc, true)
	if got := sc.outs[1].String(); !strings.Contains(got, want1) {
		t.Errorf("after reconnect: %q", got)
	}
}

// TestRunWithExec: Run's exec argument (qmp/cmds.Human's shape) is used instead of the
// monitor's Executor.
func TestRunWithExec(t *testing.T) {
	m := hmp.New(nil, hmp.Options{})
	var seen []string
	exec := func(name string, args any) ([]byte, error) {
		seen = append(seen, name)
		return []byte(`{"status":"inmigrate","singlestep":false,"running":false}`), nil
	}
	if got := m.Run(exec, "info status"); got != "VM status: paused (inmigrate)\r\n" {
		t.Errorf("got %q", got)
	}
	if !reflect.DeepEqual(seen, []string{"query-status"}) {
		t.Errorf("calls %v", seen)
	}
	if got := m.RunLine("info status"); got != "Error: The command query-status has not been found\r\n" {
		t.Errorf("nil executor: %q", got)
	}
}

// TestFormatMemory: the '/' defaults persist between commands, as QEMU's globals do.
func TestFormatMemory(t *testing.T) {
	f := newFake()
	f.ram = make([]byte, 32)
	m := hmp.New(f, hmp.Options{})
	m.RunLine("x/2ub 0")
	if got := m.RunLine("x 0"); got != "0000000000000000:   0\r\n" {
		t.Errorf("x after x/2ub: %q", got)
	}
	m.RunLine("p/o 1")
	if got := m.RunLine("p 8"); got != "010\r\n" {
		t.Errorf("p after p/o: %q", got)
	}
}

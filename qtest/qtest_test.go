package qtest_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"tlcvm/qtest"
)

// fakeMachine is 64 KiB of RAM at 0, ports that echo the last byte written, a manual clock.
type fakeMachine struct {
	ram    [64 << 10]byte
	ports  map[uint16]byte
	manual bool
	clock  uint64
	hook   func(line, level int)
}

func (f *fakeMachine) ReadMemory(addr uint64, p []byte) error {
	for i := range p {
		a := addr + uint64(i)
		p[i] = 0
		if a < uint64(len(f.ram)) {
			p[i] = f.ram[a]
		}
	}
	return nil
}

func (f *fakeMachine) WriteMemory(addr uint64, p []byte) error {
	for i, b := range p {
		if a := addr + uint64(i); a < uint64(len(f.ram)) {
			f.ram[a] = b
		}
	}
	return nil
}

func (f *fakeMachine) PortIn(port uint16, size int) uint32 {
	var v uint32
	for i := 0; i < size; i++ {
		b, ok := f.ports[port+uint16(i)]
		if !ok {
			b = 0xff
		}
		v |= uint32(b) << (8 * i)
	}
	return v
}

func (f *fakeMachine) PortOut(port uint16, size int, v uint32) {
	for i := 0; i < size; i++ {
		f.ports[port+uint16(i)] = byte(v >> (8 * i))
	}
}

func (f *fakeMachine) ClockManual() bool    { return f.manual }
func (f *fakeMachine) GuestClock() uint64   { return f.clock }
func (f *fakeMachine) ClockDeadline() int64 { return -1 }
func (f *fakeMachine) WarpClock(d uint64) uint64 {
	if d > f.clock {
		f.clock = d
	}
	return f.clock
}
func (f *fakeMachine) InterceptIRQs(fn func(line, level int)) { f.hook = fn }
func (f *fakeMachine) SetIRQ(line, level int) {
	if f.hook != nil {
		f.hook(line, level)
	}
}

func resolve(p string) qtest.Device {
	switch p {
	case "ioapic":
		return qtest.IOAPIC
	case "/machine/i440fx":
		return qtest.OtherDevice
	}
	return qtest.NoDevice
}

// session runs requests through a connection and returns everything the server wrote.
func session(t testing.TB, m *fakeMachine, log *bytes.Buffer, reqs string) string {
	t.Helper()
	var lw io.Writer
	if log != nil {
		lw = log
	}
	s := qtest.New(qtest.Config{Machine: m, Resolve: resolve, Log: lw})
	var out bytes.Buffer
	s.Serve(struct {
		io.Reader
		io.Writer
	}{strings.NewReader(reqs), &out})
	return out.String()
}

func TestSession(t *testing.T) {
	m := &fakeMachine{ports: map[uint16]byte{}, manual: true}
	cases := []struct{ req, want string }{
		{"clock_step", "OK 0"},
		{"clock_step 10", "OK 10"},
		{"clock_set 5", "OK 10"},
		{"clock_set 0x20", "OK 32"},
		{"writel 0x10 0x11223344", "OK"},
		{"readw 0x12", "OK 0x0000000000001122"},
		{"read 0x10 5", "OK 0x4433221100"},
		{"write 0x10 4 0xa", "OK"},
		{"read 0x10 4", "OK 0x00000000"},
		{"b64write 0x20 4 AQID", "OK"},
		{"b64read 0x20 4", "OK AQIDRA=="}, // the text's 'D' follows the decoded bytes
		{"memset 0x30 2 0x1ff", "OK"},
		{"readw 0x30", "OK 0x000000000000ffff"},
		{"outw 0x70 0x1234", "OK"},
		{"inl 0x70", "OK 0xffff1234"},
		{"readq 0x100000", "OK 0x0000000000000000"},
		{"irq_intercept_in nosuch", "FAIL Unknown device"},
		{"irq_intercept_in ioapic", "OK"},
		{"set_irq_in ioapic unnamed-gpio-in 3 1", "IRQ raise 3\nOK"},
		{"set_irq_in ioapic unnamed-gpio-in 3 1", "OK"},
		{"set_irq_in ioapic unnamed-gpio-in 3 0", "IRQ lower 3\nOK"},
		{"irq_intercept_out /machine/i440fx", "FAIL IRQ intercept already enabled"},
		{"write 1 1 0x", "ERR invalid argument size"},
		{"readb 0x10 extra", "OK 0x0000000000000000"},
		{"readb 1x", "FAIL assertion failed: (ret == 0)"},
		{"inb 0x10000", "FAIL assertion failed: (addr <= 0xffff)"},
		{"read 0 0", "FAIL assertion failed: (len)"},
		{"read 0 0x20000000", "FAIL Cannot allocate 536870912 bytes"},
		{"", "FAIL assertion failed: (command)"},
		{"nosuch 1", "FAIL Unknown command 'nosuch'"},
		{"module_load block curl", "FAIL"},
		{"endianness", "OK little"},
	}
	var reqs, want strings.Builder
	for _, c := range cases {
		reqs.WriteString(c.req + "\n")
		want.WriteString(c.want + "\n")
	}
	var log bytes.Buffer
	if got := session(t, m, &log, reqs.String()); got != want.String() {
		t.Errorf("session:\n%s\nwant:\n%s", got, want.String())
	}
	l := log.String()
	for _, s := range []string{"[I 0.000000] OPENED\n", "] clock_step 10\n", "] OK 10\n", "\nERR invalid argument size\n", "] CLOSED\n"} {
		if !strings.Contains(l, s) {
			t.Errorf("log lacks %q:\n%s", s, l)
		}
	}
}

func TestClockNeedsQTestAccel(t *testing.T) {
	m := &fakeMachine{ports: map[uint16]byte{}}
	got := session(t, m, nil, "clock_step\nclock_set 5\n")
	if want := "FAIL Unknown command 'clock_step'\nFAIL Unknown command 'clock_set'\n"; got != want {
		t.Errorf("got %q", got)
	}
}

func TestParseUint(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		err  error
	}{
		{"0", 0, nil}, {"10", 10, nil}, {"0x1F", 31, nil}, {"010", 8, nil}, {" \t7", 7, nil},
		{"-1", math.MaxUint64, nil}, {"+3", 3, nil}, {"0xffffffffffffffff", math.MaxUint64, nil},
		{"0x10000000000000000", math.MaxUint64, qtest.ErrRange}, {"", 0, qtest.ErrInvalid},
		{"0x", 0, qtest.ErrInvalid}, {"12a", 0, qtest.ErrInvalid}, {"08", 0, qtest.ErrInvalid},
		{"1\r", 0, qtest.ErrInvalid}, {"-", 0, qtest.ErrInvalid},
	} {
		got, err := qtest.ParseUint(c.in)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("ParseUint(%q) = %d, %v; want %d, %v", c.in, got, err, c.want, c.err)
		}
	}
	for _, c := range []struct {
		in   string
		want int64
		err  error
	}{
		{"-5", -5, nil}, {"0x7fffffffffffffff", math.MaxInt64, nil}, {"-0x8000000000000000", math.MinInt64, nil},
		{"0x8000000000000000", math.MaxInt64, qtest.ErrRange}, {"x", 0, qtest.ErrInvalid},
	} {
		got, err := qtest.ParseInt(c.in)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("ParseInt(%q) = %d, %v; want %d, %v", c.in, got, err, c.want, c.err)
		}
	}
}

// FuzzProcess: any request line gets exactly one reply line (IRQ messages aside) and the
// server keeps serving.
func FuzzProcess(f *testing.F) {
	for _, s := range []string{"readq 0x10", "write 0 3 0xaabbcc", "b64write 0 4 AAECAw==", "memset 0 3 1",
		"clock_step", "set_irq_in ioapic unnamed-gpio-in 1 1", "irq_intercept_in ioapic", "outl 0x70 -1",
		"read 0x10 0x10", "b64read 0 0", "", " ", "\x00readb 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsRune(line, '\n') || len(line) > 4096 {
			return
		}
		m := &fakeMachine{ports: map[uint16]byte{}, manual: true}
		out := session(t, m, nil, "irq_intercept_in ioapic\n"+line+"\nendianness\n")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		var replies []string
		for _, l := range lines {
			if !strings.HasPrefix(l, "IRQ ") {
				replies = append(replies, l)
			}
		}
		if len(replies) != 3 || replies[2] != "OK little" {
			t.Fatalf("%q: %q", line, out)
		}
		r := replies[1]
		if !strings.HasPrefix(r, "OK") && !strings.HasPrefix(r, "FAIL") && !strings.HasPrefix(r, "ERR") {
			t.Fatalf("%q: reply %q", line, r)
		}
	})
}

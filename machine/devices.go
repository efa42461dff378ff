package machine

import (
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Serial is a 16550A-style UART at an ISA I/O base (0x3f8 for COM1), QEMU's isa-serial.
// The transmitter is always ready (LSR THRE|TEMT); bytes written to THR go to the
// back-end writer, buffered per line. Receive is not modelled (RBR reads 0).
type Serial struct {
	mu  sync.Mutex
	out io.Writer // nil: no back-end attached; +checklocks:mu
	buf []byte    // pending output up to the next '\n'; runtime only (nosave)
	st  SerialState
}

// SerialState is the plain save/load state of the UART (section "serial0", version 1).
type SerialState struct {
	DLL uint8 `json:"dll"`
	DLM uint8 `json:"dlm"`
	IER uint8 `json:"ier"`
	FCR uint8 `json:"fcr"`
	LCR uint8 `json:"lcr"`
	MCR uint8 `json:"mcr"`
	SCR uint8 `json:"scr"`
}

// UART register offsets and bits.
const (
	uartTHR  = 0
	uartIER  = 1
	uartIIR  = 2
	uartLCR  = 3
	uartMCR  = 4
	uartLSR  = 5
	uartMSR  = 6
	uartSCR  = 7
	lcrDLAB  = 0x80
	lsrTHRE  = 0x20
	lsrTEMT  = 0x40
	COM1Base = 0x3f8
)

func newSerial(out io.Writer) *Serial { return &Serial{out: out, st: serialReset()} }

func serialReset() SerialState { return SerialState{DLL: 0x0c, LCR: 0x03, MCR: 0x08} }

// Out is an outb to register off (0..7).
func (s *Serial) Out(off uint16, v byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dlab := s.st.LCR&lcrDLAB != 0
	switch off {
	case uartTHR:
		if dlab {
			s.st.DLL = v
			return
		}
		s.buf = append(s.buf, v)
		if v == '\n' || len(s.buf) >= 4096 {
			s.flushLocked()
		}
	case uartIER:
		if dlab {
			s.st.DLM = v
		} else {
			s.st.IER = v & 0x0f
		}
	case uartIIR:
		s.st.FCR = v
	case uartLCR:
		s.st.LCR = v
	case uartMCR:
		s.st.MCR = v & 0x1f
	case uartSCR:
		s.st.SCR = v
	}
}

// In is an inb from register off (0..7).
func (s *Serial) In(off uint16) byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	dlab := s.st.LCR&lcrDLAB != 0
	switch off {
	case uartTHR:
		if dlab {
			return s.st.DLL
		}
		return 0
	case uartIER:
		if dlab {
			return s.st.DLM
		}
		return s.st.IER
	case uartIIR:
		if s.st.FCR&1 != 0 {
			return 0xc1
		}
		return 0x01
	case uartLCR:
		return s.st.LCR
	case uartMCR:
		return s.st.MCR
	case uartLSR:
		return lsrTHRE | lsrTEMT
	case uartMSR:
		return 0xb0 // DCD, DSR, CTS
	case uartSCR:
		return s.st.SCR
	}
	return 0xff
}

func (s *Serial) flushLocked() {
	if s.out != nil && len(s.buf) > 0 {
		_, _ = s.out.Write(s.buf) // a dead back-end drops output, as QEMU does
	}
	s.buf = s.buf[:0]
}

// Flush writes any partial line.
func (s *Serial) Flush() {
	s.mu.Lock()
	s.flushLocked()
	s.mu.Unlock()
}

// puts is the guest driver: poll LSR.THRE, write THR, for each byte (the caller holds
// the guest's console lock, Machine.console).
func (s *Serial) puts(str string) {
	for i := 0; i < len(str); i++ {
		for s.In(uartLSR)&lsrTHRE == 0 {
		}
		s.Out(uartTHR, str[i])
	}
}

func (s *Serial) reset() {
	s.mu.Lock()
	s.flushLocked()
	s.st = serialReset()
	s.mu.Unlock()
}

// FwCfg is QEMU's fw_cfg device reduced to its file directory: the -fw_cfg entries by
// name. Contents are immutable after New.
type FwCfg struct {
	files map[string][]byte
	mu    sync.Mutex
	st    FwCfgState // +checklocks:mu
}

// FwCfgState is fw_cfg's migrated state (QEMU vmstate "fw_cfg": cur_entry, cur_offset),
// section "fw_cfg", version 1.
type FwCfgState struct {
	CurEntry  uint16 `json:"cur-entry"`
	CurOffset uint32 `json:"cur-offset"`
}

func newFwCfg(files map[string][]byte) *FwCfg {
	f := &FwCfg{files: make(map[string][]byte, len(files))}
	for k, v := range files {
		f.files[k] = append([]byte(nil), v...)
	}
	return f
}

// File returns the contents of the named file.
func (f *FwCfg) File(name string) ([]byte, bool) {
	b, ok := f.files[name]
	return b, ok
}

// Names lists the files in fw_cfg directory order (sorted by name, as QEMU sorts them).
func (f *FwCfg) Names() []string {
	out := make([]string, 0, len(f.files))
	for k := range f.files {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// read is the guest's selector+data access: select the file, read it whole.
func (f *FwCfg) read(name string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.files[name]
	for i, n := range f.Names() {
		if n == name {
			f.st.CurEntry = uint16(0x20 + i) // FW_CFG_FILE_FIRST + index
		}
	}
	f.st.CurOffset = uint32(len(b))
	return b, ok
}

// ACPI is the PIIX4/ICH9 power-management block as far as the power button and hotplug go:
// PM1 status PWRBTN_STS latched by Powerdown, cleared when the guest enables ACPI at boot
// (as an OS clears PM1_STS) and by reset; the GPE block's eject requests (hotplug.go).
type ACPI struct {
	pending atomic.Bool
	enabled atomic.Bool
	gpe     gpe // hot-unplug requests (hotplug.go)
}

// ACPIState is the PM block's save/load state (section "acpi", version 2; version 1
// lacks CPUHotplugModern).
type ACPIState struct {
	PowerButton      bool `json:"pwrbtn-sts"`
	Enabled          bool `json:"sci-en"`
	CPUHotplugModern bool `json:"cpuhp-modern,omitempty"` // cpuhotplug.go
}

// Clock is the guest clock (QEMU_CLOCK_VIRTUAL): nanoseconds that advance only while
// the vCPUs run. Safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	base    uint64    // guest ns accumulated up to since; +checklocks:mu
	since   time.Time // wall time the clock last started; valid when running
	running bool
	manual  bool // set at New under the qtest accelerator: start does nothing (see warp)
}

// ClockState is the clock's save/load state (section "clock", version 1).
type ClockState struct {
	NS uint64 `json:"ns"`
}

// Now returns guest nanoseconds.
func (c *Clock) Now() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return c.base + uint64(time.Since(c.since))
	}
	return c.base
}

// warp moves a clock that is not running forward to ns (never back).
func (c *Clock) warp(ns uint64) {
	c.mu.Lock()
	if !c.running && ns > c.base {
		c.base = ns
	}
	c.mu.Unlock()
}

func (c *Clock) start() {
	c.mu.Lock()
	if c.manual {
		c.mu.Unlock()
		return
	}
	if !c.running {
		c.running, c.since = true, time.Now()
	}
	c.mu.Unlock()
}

func (c *Clock) stop() {
	c.mu.Lock()
	if c.running {
		c.base += uint64(time.Since(c.since))
		c.running = false
	}
	c.mu.Unlock()
}

func (c *Clock) set(ns uint64) {
	c.mu.Lock()
	c.base, c.since = ns, time.Now()
	c.mu.Unlock()
}

// Media is the guest's side of the removable-media drives (implemented by the block layer
// through the composition root): LockTrays is ATAPI PREVENT ALLOW MEDIUM REMOVAL with
// prevent set, sent to every CD-ROM drive, as an OS does for the discs it mounts. The
// vCPU that boots with the workload's cdlock calls it once, from its own thread.
type Media interface {
	LockTrays()
}

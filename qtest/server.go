package qtest

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Machine is what the protocol acts on (implemented by *machine.Machine).
type Machine interface {
	ReadMemory(addr uint64, p []byte) error
	WriteMemory(addr uint64, p []byte) error
	PortIn(port uint16, size int) uint32
	PortOut(port uint16, size int, v uint32)
	// ClockManual: the qtest accelerator is in use (QEMU's qtest_enabled()).
	ClockManual() bool
	GuestClock() uint64
	WarpClock(dest uint64) uint64
	// ClockDeadline: ns to the virtual clock's next timer, -1 without one.
	ClockDeadline() int64
	InterceptIRQs(fn func(line, level int))
	SetIRQ(line, level int)
}

// Device is what a QOM path resolves to for the IRQ commands.
type Device int

// Devices the IRQ commands tell apart.
const (
	NoDevice    Device = iota // the path resolves to nothing
	OtherDevice               // a device whose GPIO lines tlcvm does not model
	IOAPIC                    // the I/O APIC: its inputs are the machine's ISA lines
)

// Config configures a Server.
type Config struct {
	Machine Machine
	// Resolve finds the device at a QOM path (absolute or partial, as object_resolve_path).
	Resolve func(path string) Device
	// Log receives the session log (see the package doc); nil: none.
	Log io.Writer
}

// MaxSize bounds the size of one read, b64read, write, b64write or memset, and MaxLine
// the length of a request line (QEMU has no bound and aborts when allocation fails).
const (
	MaxSize = 256 << 20
	MaxLine = 2*MaxSize + 64
)

// Server answers qtest requests. One client at a time (Serve); IRQ messages go to the
// current client.
type Server struct {
	cfg Config

	// mu serialises output (replies, IRQ messages, the log) and guards what follows.
	mu          sync.Mutex
	out         io.Writer // the connected client; nil between connections
	opened      time.Time // when the client connected (the log's times)
	open        bool
	intercepted *string       // the QOM path intercepted (irq_intercept_dev); nil: none
	levels      [256]int      // irq_levels: the last level reported per line
	logw        *bufio.Writer // cfg.Log, flushed at each reply
}

// New returns a server; it intercepts nothing until a client asks.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg}
	if cfg.Log != nil {
		s.logw = bufio.NewWriter(cfg.Log)
	}
	return s
}

// Serve answers the requests of one client connection until it closes.
func (s *Server) Serve(conn io.ReadWriter) {
	s.mu.Lock()
	s.out, s.opened, s.open = conn, time.Now(), true
	s.levels = [256]int{}
	s.logf("[I %.06f] OPENED\n", 0.0)
	s.flushLog()
	s.mu.Unlock()

	r := bufio.NewReaderSize(conn, 64<<10)
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > MaxLine {
			line = line[:0]
			s.reply("FAIL Line too long\n")
			if err == bufio.ErrBufferFull {
				for err == bufio.ErrBufferFull { // skip the rest of the line
					_, err = r.ReadSlice('\n')
				}
				continue
			}
		} else {
			line = append(line, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			break
		}
		s.Process(strings.TrimSuffix(string(line), "\n"))
		line = line[:0]
	}

	s.mu.Lock()
	s.logf("[I +%.06f] CLOSED\n", s.elapsed())
	s.flushLog()
	s.out, s.open = nil, false
	s.mu.Unlock()
}

func (s *Server) elapsed() float64 { return time.Since(s.opened).Seconds() }

// logf writes to the log. Caller holds mu.
func (s *Server) logf(format string, a ...any) {
	if s.logw != nil {
		fmt.Fprintf(s.logw, format, a...)
	}
}

func (s *Server) flushLog() {
	if s.logw != nil {
		_ = s.logw.Flush()
	}
}

// send writes a message to the client, and to the log with the "[S +t] " prefix when
// prefixed (QEMU's qtest_send_prefix then qtest_send). Caller holds mu.
func (s *Server) send(msg string, prefixed bool) {
	if s.open && prefixed {
		s.logf("[S +%.06f] ", s.elapsed())
	}
	if s.open {
		s.logf("%s", msg)
	}
	s.flushLog() // before the client sees the reply: the log is complete when it reads it
	if s.out != nil {
		_, _ = io.WriteString(s.out, msg)
	}
}

func (s *Server) reply(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.send(msg, true)
}

// irq is the interceptor: a level change of line is reported as QEMU's qtest_irq_handler
// does.
func (s *Server) irq(line, level int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if line < 0 || line >= len(s.levels) || s.levels[line] == level {
		return
	}
	s.levels[line] = level
	verb := "lower"
	if level != 0 {
		verb = "raise"
	}
	s.send(fmt.Sprintf("IRQ %s %d\n", verb, line), true)
}

// assertion is a request QEMU 7.2 answers by aborting: the reply names the assertion.
type assertion string

// failure is a reply of tlcvm's own (QEMU would abort allocating the memory).
type failure string

// Process answers one request line (without its '\n'); the reply goes to the client.
// Exported for tests and the fuzz target, which call it without a connection.
func (s *Server) Process(line string) {
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i] // QEMU handles the line as a C string
	}
	words := Split(line)
	s.mu.Lock()
	if s.open {
		s.logf("[R +%.06f]", s.elapsed())
		for _, w := range words {
			s.logf(" %s", w)
		}
		s.logf("\n")
	}
	s.mu.Unlock()
	msg, prefixed := s.dispatch(words)
	s.mu.Lock()
	s.send(msg, prefixed)
	s.mu.Unlock()
}

// dispatch runs a request and returns its reply (prefixed: logged with the "[S +t] "
// prefix, as every reply but the ERR ones).
func (s *Server) dispatch(words []string) (reply string, prefixed bool) {
	defer func() {
		if r := recover(); r != nil {
			switch r := r.(type) {
			case assertion:
				reply, prefixed = "FAIL assertion failed: ("+string(r)+")\n", true
			case failure:
				reply, prefixed = "FAIL "+string(r)+"\n", true
			default:
				panic(r)
			}
		}
	}()
	if len(words) == 0 {
		panic(assertion("command"))
	}
	m := s.cfg.Machine
	cmd := words[0]
	switch cmd {
	case "irq_intercept_out", "irq_intercept_in":
		return s.intercept(words, cmd == "irq_intercept_in"), true
	case "set_irq_in":
		arg(words, 4, "words[1] && words[2] && words[3] && words[4]")
		dev := s.resolve(words[1])
		if dev == NoDevice {
			return "FAIL Unknown device\n", true
		}
		num := int(intArg(words[3], 32))
		level := int(intArg(words[4], 32))
		if dev == IOAPIC && (words[2] == "unnamed-gpio-in") {
			m.SetIRQ(num, level)
		}
		return "OK\n", true
	case "outb", "outw", "outl":
		arg(words, 2, "words[1] && words[2]")
		port, v := uintArg(words[1]), uintArg(words[2])
		if port > 0xffff {
			panic(assertion("addr <= 0xffff"))
		}
		m.PortOut(uint16(port), width(cmd[3]), uint32(v))
		return "OK\n", true
	case "inb", "inw", "inl":
		arg(words, 1, "words[1]")
		port := uintArg(words[1])
		if port > 0xffff {
			panic(assertion("addr <= 0xffff"))
		}
		return fmt.Sprintf("OK 0x%04x\n", m.PortIn(uint16(port), width(cmd[2]))), true
	case "writeb", "writew", "writel", "writeq":
		arg(words, 2, "words[1] && words[2]")
		addr, v := uintArg(words[1]), uintArg(words[2])
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		s.write(addr, b[:width(cmd[5])])
		return "OK\n", true
	case "readb", "readw", "readl", "readq":
		arg(words, 1, "words[1]")
		addr := uintArg(words[1])
		var b [8]byte
		s.read(addr, b[:width(cmd[4])])
		return fmt.Sprintf("OK 0x%016x\n", binary.LittleEndian.Uint64(b[:])), true
	case "read":
		arg(words, 2, "words[1] && words[2]")
		addr, n := uintArg(words[1]), uintArg(words[2])
		if n == 0 {
			panic(assertion("len"))
		}
		p := s.buffer(n)
		s.read(addr, p)
		return "OK 0x" + hex.EncodeToString(p) + "\n", true
	case "b64read":
		arg(words, 2, "words[1] && words[2]")
		addr, n := uintArg(words[1]), uintArg(words[2])
		p := s.buffer(n)
		s.read(addr, p)
		return "OK " + base64.StdEncoding.EncodeToString(p) + "\n", true
	case "write":
		arg(words, 3, "words[1] && words[2] && words[3]")
		addr, n := uintArg(words[1]), uintArg(words[2])
		if len(words[3]) < 3 {
			return "ERR invalid argument size\n", false
		}
		checkSize(n)
		s.write(addr, decodeHex(words[3], n))
		return "OK\n", true
	case "memset":
		arg(words, 3, "words[1] && words[2] && words[3]")
		addr, n, pat := uintArg(words[1]), uintArg(words[2]), uintArg(words[3])
		if n > 0 {
			p := s.buffer(n)
			for i := range p {
				p[i] = byte(pat)
			}
			s.write(addr, p)
		}
		return "OK\n", true
	case "b64write":
		arg(words, 3, "words[1] && words[2] && words[3]")
		addr, n := uintArg(words[1]), uintArg(words[2])
		if len(words[3]) < 3 {
			return "ERR invalid argument size\n", false
		}
		p := s.buffer(n)
		buf, got := decodeB64(words[3])
		if uint64(got) != n {
			s.mu.Lock()
			if s.open {
				s.logf("[S +%.06f] b64write: data length mismatch (told %d, found %d)\n", s.elapsed(), n, got)
			}
			s.mu.Unlock()
		}
		// QEMU writes SIZE bytes of the decoding buffer whatever was decoded: past the
		// decoded bytes come the text's own characters and its NUL (then, in QEMU, what
		// follows on its heap; here zeros).
		copy(p, buf)
		s.write(addr, p)
		return "OK\n", true
	case "endianness":
		return "OK little\n", true
	case "clock_step":
		if !m.ClockManual() {
			break
		}
		var ns int64
		if len(words) > 1 {
			ns = signedArg(words[1])
		} else {
			ns = m.ClockDeadline()
		}
		return fmt.Sprintf("OK %d\n", s.warp(int64(m.GuestClock())+ns)), true
	case "clock_set":
		if !m.ClockManual() {
			break
		}
		arg(words, 1, "words[1]")
		return fmt.Sprintf("OK %d\n", s.warp(signedArg(words[1]))), true
	case "module_load":
		arg(words, 2, "words[1] && words[2]")
		return "FAIL\n", true // everything tlcvm has is built in; it loads no module
	}
	return fmt.Sprintf("FAIL Unknown command '%s'\n", cmd), true
}

// warp is qtest_clock_warp: the clock moves forward to dest (never back).
func (s *Server) warp(dest int64) int64 {
	m := s.cfg.Machine
	now := int64(m.GuestClock())
	if dest > now {
		now = int64(m.WarpClock(uint64(dest)))
	}
	return now
}

func (s *Server) resolve(path string) Device {
	if s.cfg.Resolve == nil {
		return NoDevice
	}
	return s.cfg.Resolve(path)
}

// intercept is irq_intercept_in/out: one device may be intercepted per process; the
// I/O APIC's inputs are the machine's ISA interrupt lines.
func (s *Server) intercept(words []string, in bool) string {
	arg(words, 1, "words[1]")
	dev := s.resolve(words[1])
	if dev == NoDevice {
		return "FAIL Unknown device\n"
	}
	s.mu.Lock()
	cur := s.intercepted
	s.mu.Unlock()
	if cur != nil {
		if s.resolveSame(*cur, words[1]) {
			return "OK\n"
		}
		return "FAIL IRQ intercept already enabled\n"
	}
	p := words[1]
	s.mu.Lock()
	s.intercepted = &p
	s.mu.Unlock()
	if dev == IOAPIC && in {
		s.cfg.Machine.InterceptIRQs(s.irq)
	}
	return "OK\n"
}

// resolveSame reports whether two paths name the same device (by what they resolve to and
// their last component; the QOM tree has one device per path).
func (s *Server) resolveSame(a, b string) bool {
	last := func(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
	return s.resolve(a) == s.resolve(b) && last(a) == last(b)
}

func (s *Server) read(addr uint64, p []byte) {
	_ = s.cfg.Machine.ReadMemory(addr, p) // a failed RAM check reads as what was copied
}

func (s *Server) write(addr uint64, p []byte) {
	_ = s.cfg.Machine.WriteMemory(addr, p)
}

// buffer allocates n bytes, refusing more than MaxSize.
func (s *Server) buffer(n uint64) []byte {
	checkSize(n)
	return make([]byte, n)
}

func checkSize(n uint64) {
	if n > MaxSize {
		panic(failure(fmt.Sprintf("Cannot allocate %d bytes", n)))
	}
}

// arg asserts that words has at least n arguments after the command.
func arg(words []string, n int, what string) {
	if len(words) <= n {
		panic(assertion(what))
	}
}

func uintArg(w string) uint64 {
	v, err := ParseUint(w)
	if err != nil {
		panic(assertion("ret == 0"))
	}
	return v
}

func signedArg(w string) int64 {
	v, err := ParseInt(w)
	if err != nil {
		panic(assertion("ret == 0"))
	}
	return v
}

// intArg is qemu_strtoi: a signed number that fits bits.
func intArg(w string, bits uint) int64 {
	v := signedArg(w)
	if v < -(1<<(bits-1)) || v >= 1<<(bits-1) {
		panic(assertion("!ret"))
	}
	return v
}

func width(c byte) int {
	switch c {
	case 'w':
		return 2
	case 'l':
		return 4
	case 'q':
		return 8
	}
	return 1
}

package hmp

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Memory commands: x, xp, print, memsave, pmemsave, sum; and $reg for expressions.

type readMemoryArgs struct {
	Addr     uint64 `json:"addr"`
	Size     int64  `json:"size"`
	Phys     bool   `json:"phys"`
	CPUIndex int    `json:"cpu-index"`
}

type readMemoryInfo struct {
	Data string `json:"data"`
}

type pmemsaveArgs struct {
	Val      int64  `json:"val"`
	Size     int64  `json:"size"`
	Filename string `json:"filename"`
}

type memsaveArgs struct {
	Val      int64  `json:"val"`
	Size     int64  `json:"size"`
	Filename string `json:"filename"`
	CPUIndex int    `json:"cpu-index"`
}

// readChunk bounds one x-tlcvm-read-memory call.
const readChunk = 64 << 10

// maxDump bounds the guest bytes one x/xp prints (QEMU has no bound; an absurd count
// would build gigabytes of output here). 1 MiB is 64K lines of output.
const maxDump = 1 << 20

func memoryCommands() []Command {
	return []Command{
		{Name: "x", Args: "fmt:/,addr:l", Params: "/fmt addr", Help: "virtual memory dump starting at 'addr'",
			Run: func(c *Call) { memoryDumpCmd(c, false) }},
		{Name: "xp", Args: "fmt:/,addr:l", Params: "/fmt addr", Help: "physical memory dump starting at 'addr'",
			Run: func(c *Call) { memoryDumpCmd(c, true) }},
		{Name: "print|p", Args: "fmt:/,val:l", Params: "/fmt expr",
			Help: "print expression value (use $reg for CPU register access)", Run: printCmd},
		{Name: "memsave", Args: "val:l,size:i,filename:s", Params: "addr size file",
			Help: "save to disk virtual memory dump starting at 'addr' of size 'size'",
			Run: func(c *Call) {
				a := memsaveArgs{Val: argInt(c, "val"), Size: int64(uint32(argInt(c, "size")))}
				a.Filename, _ = c.Args.Str("filename")
				cpu, ok := c.CPU()
				if !ok {
					c.Print("No CPU available\n")
					return
				}
				a.CPUIndex = cpu
				c.Do("memsave", a)
			}},
		{Name: "pmemsave", Args: "val:l,size:i,filename:s", Params: "addr size file",
			Help: "save to disk physical memory dump starting at 'addr' of size 'size'",
			Run: func(c *Call) {
				a := pmemsaveArgs{Val: argInt(c, "val"), Size: int64(uint32(argInt(c, "size")))}
				a.Filename, _ = c.Args.Str("filename")
				c.Do("pmemsave", a)
			}},
		{Name: "sum", Args: "start:i,size:i", Params: "addr size",
			Help: "compute the checksum of a memory region", Run: sumCmd},
	}
}

func argInt(c *Call, key string) int64 {
	v, _ := c.Args.Int(key)
	return v
}

// readMemory reads n <= readChunk bytes of guest memory at addr.
func (c *Call) readMemory(addr uint64, n int, phys bool, cpu int) ([]byte, error) {
	var r readMemoryInfo
	err := c.Query("x-tlcvm-read-memory", readMemoryArgs{Addr: addr, Size: int64(n), Phys: phys, CPUIndex: cpu}, &r)
	if err != nil {
		return nil, err
	}
	b, err := hex.DecodeString(r.Data)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("x-tlcvm-read-memory: malformed data")
	}
	return b, nil
}

// lineReader hands out a dump's lines, reading guest memory in large pieces and, once a
// piece fails, line by line, so that the dump stops at the first unreadable line as
// QEMU's does.
type lineReader struct {
	c    *Call
	phys bool
	cpu  int
	bulk bool   // large reads still work
	buf  []byte // read ahead, starting at the next line
}

func (r *lineReader) line(addr uint64, l int, left int64) ([]byte, bool) {
	if len(r.buf) < l && r.bulk {
		b, err := r.c.readMemory(addr, int(min(left, readChunk)), r.phys, r.cpu)
		if err != nil {
			r.bulk = false
		}
		r.buf = b
	}
	if len(r.buf) < l {
		b, err := r.c.readMemory(addr, l, r.phys, r.cpu)
		if err != nil {
			return nil, false
		}
		r.buf = b
	}
	out := r.buf[:l]
	r.buf = r.buf[l:]
	return out, true
}

func memoryDumpCmd(c *Call, phys bool) {
	count := argInt(c, "count")
	format := byte(argInt(c, "format"))
	size := int(argInt(c, "size"))
	addr := uint64(argInt(c, "addr"))
	memoryDump(c, int32(count), format, size, addr, phys)
}

// memoryDump is QEMU 7.2's memory_dump (monitor/misc.c): 8 bytes a line for byte-sized
// units, else 16, each line "<addr>: v v v"; an unreadable line prints
// "<addr>: Cannot access memory" and ends the dump.
func memoryDump(c *Call, count int32, format byte, wsize int, addr uint64, phys bool) {
	cpu, haveCPU := c.CPU()
	if !haveCPU && (format == 'i' || !phys) {
		c.Print("Can not dump without CPU\n")
		return
	}
	if format == 'i' {
		// QEMU's text for a target without a disassembler; tlcvm has none.
		c.Printf("0x%08x: Asm output not supported on this arch\n", addr)
		return
	}
	length := int64(int32(int32(wsize) * count))
	lineSize := 16
	if wsize == 1 {
		lineSize = 8
	}
	maxDigits := 0
	switch format {
	case 'o':
		maxDigits = (wsize*8 + 2) / 3
	case 'u', 'd':
		maxDigits = (wsize*8*10 + 32) / 33
	case 'c':
		wsize = 1
	default:
		maxDigits = wsize * 8 / 4
	}
	if length > maxDump {
		length = maxDump
	}
	rd := &lineReader{c: c, phys: phys, cpu: cpu, bulk: true}
	for length > 0 {
		c.Printf("%016x:", addr)
		l := int(min(length, int64(lineSize)))
		buf, ok := rd.line(addr, l, length)
		if !ok {
			c.Print(" Cannot access memory\n")
			break
		}
		for i := 0; i < l; i += wsize {
			var v uint64
			for k := min(wsize, l-i) - 1; k >= 0; k-- { // little-endian target
				v = v<<8 | uint64(buf[i+k])
			}
			c.Print(" ")
			switch format {
			case 'o':
				c.Print(padLeft(cOctal(v), maxDigits))
			case 'x':
				c.Printf("0x%0*x", maxDigits, v)
			case 'u':
				c.Printf("%*d", maxDigits, v)
			case 'd':
				c.Printf("%*d", maxDigits, int64(v))
			case 'c':
				printc(c, int32(v))
			}
		}
		c.Print("\n")
		addr += uint64(l)
		length -= int64(l)
	}
}

// cOctal is C's "%#o": a leading 0 unless the value is 0.
func cOctal(v uint64) string {
	if v == 0 {
		return "0"
	}
	return "0" + strconv.FormatUint(v, 8)
}

func padLeft(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return strings.Repeat(" ", width-len(s)) + s
}

// printc is QEMU's monitor_printc.
func printc(c *Call, ch int32) {
	c.Print("'")
	switch ch {
	case '\'':
		c.Print("\\'")
	case '\\':
		c.Print("\\\\")
	case '\n':
		c.Print("\\n")
	case '\r':
		c.Print("\\r")
	default:
		if ch >= 32 && ch <= 126 {
			c.Printf("%c", ch)
		} else {
			c.Printf("\\x%02x", uint32(ch))
		}
	}
	c.Print("'")
}

// printCmd is hmp_print.
func printCmd(c *Call) {
	v := uint64(argInt(c, "val"))
	switch argInt(c, "format") {
	case 'o':
		c.Print(cOctal(v))
	case 'x':
		if v == 0 {
			c.Print("0") // C's "%#x" has no 0x for zero
		} else {
			c.Printf("%#x", v)
		}
	case 'u':
		c.Printf("%d", v)
	case 'c':
		printc(c, int32(v))
	default:
		c.Printf("%d", int64(v))
	}
	c.Print("\n")
}

// sumCmd is hmp_sum: the BSD checksum of guest-physical bytes [start, start+size). QEMU
// reads unassigned memory as zero bytes here; so does this.
func sumCmd(c *Call) {
	start := uint32(argInt(c, "start"))
	size := uint32(argInt(c, "size"))
	end := start + size
	if end < start { // the C loop stops at once when start+size wraps
		end = start
	}
	cpu, _ := c.CPU()
	var sum uint16
	rot := func() { sum = sum>>1 | sum<<15 }
	// walk sums [a, a+n): a piece that cannot be read is halved down to a page; an
	// unreadable page counts as zeros, and zeros only rotate the sum (16 rotations
	// are the identity).
	var walk func(a uint64, n int)
	walk = func(a uint64, n int) {
		if data, err := c.readMemory(a, n, true, cpu); err == nil {
			for _, b := range data {
				rot()
				sum += uint16(b)
			}
			return
		}
		if n <= sumGranule {
			for i := 0; i < n%16; i++ {
				rot()
			}
			return
		}
		h := n / 2 / sumGranule * sumGranule
		if h == 0 {
			h = n / 2
		}
		walk(a, h)
		walk(a+uint64(h), n-h)
	}
	for a := uint64(start); a < uint64(end); {
		l := int(min(uint64(end)-a, readChunk))
		walk(a, l)
		a += uint64(l)
	}
	c.Printf("%05d\n", sum)
}

// sumGranule is the smallest piece sum reads on its own after a failure: a page.
const sumGranule = 4096

package hmp

import (
	"strconv"
	"strings"
)

// $reg in expressions: QEMU's x86 monitor_defs (target/i386/monitor.c), read from the
// current CPU's `info registers` text (x-tlcvm-registers), which prints every one of
// them. Registers the text does not show (R8-R15 outside long mode) read as 0.

// regSource says where a monitor_defs entry is in the dump: the 64-bit and 32-bit names
// of a general register, or a segment line's field.
type regSource struct {
	names []string // dump names, first match wins ("RAX", "EAX")
	field int      // for segment lines: 0 selector, 1 base, 2 limit
	i32   bool     // MD_I32: sign-extended from 32 bits
}

// monitorDefs maps QEMU's monitor_defs names (aliases split) to dump fields.
var monitorDefs = func() map[string]regSource {
	m := map[string]regSource{
		"eax":    {names: []string{"RAX", "EAX"}},
		"ecx":    {names: []string{"RCX", "ECX"}},
		"edx":    {names: []string{"RDX", "EDX"}},
		"ebx":    {names: []string{"RBX", "EBX"}},
		"esp":    {names: []string{"RSP", "ESP"}},
		"sp":     {names: []string{"RSP", "ESP"}},
		"ebp":    {names: []string{"RBP", "EBP"}},
		"fp":     {names: []string{"RBP", "EBP"}},
		"esi":    {names: []string{"RSI", "ESI"}},
		"edi":    {names: []string{"RDI", "EDI"}},
		"eflags": {names: []string{"RFL", "EFL"}},
		"eip":    {names: []string{"RIP", "EIP"}},
	}
	for i := 8; i <= 15; i++ {
		n := strconv.Itoa(i)
		m["r"+n] = regSource{names: []string{"R" + n}}
	}
	for _, seg := range []string{"cs", "ds", "es", "ss", "fs", "gs"} {
		up := []string{strings.ToUpper(seg)}
		m[seg] = regSource{names: up, field: 0, i32: true}
		m[seg+".base"] = regSource{names: up, field: 1}
		m[seg+".limit"] = regSource{names: up, field: 2, i32: true}
	}
	return m
}()

// parseRegisterDump collects "NAME=hex [hex hex]" fields of a cpu_dump_state text:
// NAME (padded with blanks before '=') maps to the hex words that follow it.
func parseRegisterDump(text string) map[string][]uint64 {
	out := map[string][]uint64{}
	f := strings.Fields(strings.ReplaceAll(text, " =", "="))
	for i := 0; i < len(f); i++ {
		eq := strings.IndexByte(f[i], '=')
		if eq <= 0 {
			continue
		}
		name := f[i][:eq]
		v, err := strconv.ParseUint(f[i][eq+1:], 16, 64)
		if err != nil {
			continue
		}
		vals := []uint64{v}
		for j := i + 1; j < len(f) && j <= i+2; j++ {
			w, err := strconv.ParseUint(f[j], 16, 64)
			if err != nil || strings.IndexByte(f[j], '=') >= 0 {
				break
			}
			vals = append(vals, w)
		}
		if _, dup := out[name]; !dup {
			out[name] = vals
		}
	}
	return out
}

// register resolves $name for the expression parser on the session's current CPU.
func (c *Call) register(name string) (int64, bool) {
	if name != "pc" {
		if _, ok := monitorDefs[name]; !ok {
			return 0, false
		}
	}
	if c.regs == nil {
		cpu, ok := c.CPU()
		if !ok {
			return 0, false
		}
		var r registersInfo
		if err := c.Query("x-tlcvm-registers", registersArgs{CPUIndex: cpu}, &r); err != nil {
			return 0, false
		}
		c.regs = parseRegisterDump(r.Text)
	}
	if name == "pc" { // monitor_get_pc: eip + cs.base
		eip, _ := c.regValue(monitorDefs["eip"])
		base, _ := c.regValue(monitorDefs["cs.base"])
		return eip + base, true
	}
	return c.regValue(monitorDefs[name])
}

func (c *Call) regValue(src regSource) (int64, bool) {
	for _, n := range src.names {
		vals, ok := c.regs[n]
		if !ok || src.field >= len(vals) {
			continue
		}
		v := vals[src.field]
		if src.i32 {
			return int64(int32(uint32(v))), true
		}
		return int64(v), true
	}
	return 0, true
}

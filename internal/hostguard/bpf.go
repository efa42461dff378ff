package hostguard

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// A small assembler for classic BPF as seccomp runs it, and an interpreter of the same
// subset (Evaluate), which the tests use to compare a filter's decisions with QEMU's.

// Offsets in struct seccomp_data (include/uapi/linux/seccomp.h): nr, arch, instruction
// pointer, then six 64-bit arguments, little-endian (the low word first).
const (
	offNR      = 0
	offArch    = 4
	offArgs    = 16
	seccompLen = 64 // sizeof(struct seccomp_data)
)

func argLo(i int) uint32 { return uint32(offArgs + 8*i) }
func argHi(i int) uint32 { return uint32(offArgs + 8*i + 4) }

// Classic BPF opcodes (include/uapi/linux/bpf_common.h).
const (
	opLdAbs  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opLdLen  = unix.BPF_LD | unix.BPF_W | unix.BPF_LEN
	opLdImm  = unix.BPF_LD | unix.BPF_IMM
	opLdMem  = unix.BPF_LD | unix.BPF_MEM
	opLdxImm = unix.BPF_LDX | unix.BPF_W | unix.BPF_IMM
	opLdxMem = unix.BPF_LDX | unix.BPF_W | unix.BPF_MEM
	opLdxLen = unix.BPF_LDX | unix.BPF_W | unix.BPF_LEN
	opSt     = unix.BPF_ST
	opStx    = unix.BPF_STX
	opJa     = unix.BPF_JMP | unix.BPF_JA
	opJeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJge    = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opAnd    = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opRetK   = unix.BPF_RET | unix.BPF_K
	opRetA   = unix.BPF_RET | unix.BPF_A
	opTax    = unix.BPF_MISC | unix.BPF_TAX
	opTxa    = unix.BPF_MISC | unix.BPF_TXA
)

// maxInsns is BPF_MAXINSNS, the kernel's limit on one filter's length.
const maxInsns = 4096

// next is the label of the instruction that follows: a jump offset of 0.
const next = -1

// asm builds a program whose conditional jumps name labels; finish resolves them.
type asm struct {
	prog   []unix.SockFilter
	labels []int // label -> instruction index; -1 while unbound
	fixups []fixup
}

type fixup struct {
	at    int  // instruction
	label int  // target
	jf    bool // the false branch (else the true branch, or a JA's k)
}

func (a *asm) label() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

// bind places label l at the next instruction.
func (a *asm) bind(l int) { a.labels[l] = len(a.prog) }

func (a *asm) emit(code uint16, k uint32) {
	a.prog = append(a.prog, unix.SockFilter{Code: code, K: k})
}

func (a *asm) ld(off uint32)          { a.emit(opLdAbs, off) }
func (a *asm) and(k uint32)           { a.emit(opAnd, k) }
func (a *asm) ret(k uint32)           { a.emit(opRetK, k) }
func (a *asm) jeq(k uint32, t, f int) { a.jump(opJeq, k, t, f) }
func (a *asm) jge(k uint32, t, f int) { a.jump(opJge, k, t, f) }

func (a *asm) ja(l int) {
	a.emit(opJa, 0)
	a.fixups = append(a.fixups, fixup{at: len(a.prog) - 1, label: l})
}

func (a *asm) jump(code uint16, k uint32, t, f int) {
	a.emit(code, k)
	at := len(a.prog) - 1
	if t != next {
		a.fixups = append(a.fixups, fixup{at: at, label: t})
	}
	if f != next {
		a.fixups = append(a.fixups, fixup{at: at, label: f, jf: true})
	}
}

// errTooFar is returned when a conditional jump would skip more than 255 instructions.
var errTooFar = errors.New("hostguard: BPF jump too far")

func (a *asm) finish() ([]unix.SockFilter, error) {
	for _, f := range a.fixups {
		to := a.labels[f.label]
		if to < 0 {
			return nil, fmt.Errorf("hostguard: BPF label %d never placed", f.label)
		}
		off := to - f.at - 1
		if off < 0 {
			return nil, fmt.Errorf("hostguard: BPF jump backwards at %d", f.at)
		}
		ins := &a.prog[f.at]
		switch {
		case ins.Code == opJa:
			ins.K = uint32(off)
		case off > 255:
			return nil, fmt.Errorf("%w: %d at instruction %d", errTooFar, off, f.at)
		case f.jf:
			ins.Jf = uint8(off)
		default:
			ins.Jt = uint8(off)
		}
	}
	if len(a.prog) > maxInsns {
		return nil, fmt.Errorf("hostguard: BPF program of %d instructions (the kernel takes %d)", len(a.prog), maxInsns)
	}
	return a.prog, nil
}

// Data is what a seccomp filter sees of a system call (struct seccomp_data).
type Data struct {
	NR   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

func (d Data) bytes() [seccompLen]byte {
	var b [seccompLen]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(d.NR))
	binary.LittleEndian.PutUint32(b[4:], d.Arch)
	binary.LittleEndian.PutUint64(b[8:], d.IP)
	for i, v := range d.Args {
		binary.LittleEndian.PutUint64(b[offArgs+8*i:], v)
	}
	return b
}

// Evaluate runs a seccomp program on d as the kernel does and returns the filter's verdict
// (SECCOMP_RET_*). It knows the instructions seccomp accepts (loads from seccomp_data and
// scratch memory, ALU, jumps, returns); anything else, a load out of bounds or a program
// that ends without returning is an error.
func Evaluate(prog []unix.SockFilter, d Data) (uint32, error) {
	data := d.bytes()
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		k := ins.K
		switch ins.Code {
		case opLdAbs:
			if k%4 != 0 || k+4 > seccompLen {
				return 0, fmt.Errorf("hostguard: load at %d out of seccomp_data (pc %d)", k, pc)
			}
			a = binary.LittleEndian.Uint32(data[k:])
		case opLdLen:
			a = seccompLen
		case opLdxLen:
			x = seccompLen
		case opLdImm:
			a = k
		case opLdxImm:
			x = k
		case opLdMem, opLdxMem, opSt, opStx:
			if k >= 16 {
				return 0, fmt.Errorf("hostguard: scratch slot %d (pc %d)", k, pc)
			}
			switch ins.Code {
			case opLdMem:
				a = mem[k]
			case opLdxMem:
				x = mem[k]
			case opSt:
				mem[k] = a
			default:
				mem[k] = x
			}
		case opTax:
			x = a
		case opTxa:
			a = x
		case opRetK:
			return k, nil
		case opRetA:
			return a, nil
		case opJa:
			pc += int(k)
		default:
			switch ins.Code & 0x07 {
			case unix.BPF_ALU:
				v := k
				if ins.Code&unix.BPF_X != 0 {
					v = x
				}
				var err error
				if a, err = alu(ins.Code&0xf0, a, v); err != nil {
					return 0, fmt.Errorf("%w (pc %d)", err, pc)
				}
			case unix.BPF_JMP:
				v := k
				if ins.Code&unix.BPF_X != 0 {
					v = x
				}
				var taken bool
				switch ins.Code & 0xf0 {
				case unix.BPF_JEQ:
					taken = a == v
				case unix.BPF_JGT:
					taken = a > v
				case unix.BPF_JGE:
					taken = a >= v
				case unix.BPF_JSET:
					taken = a&v != 0
				default:
					return 0, fmt.Errorf("hostguard: jump opcode %#x (pc %d)", ins.Code, pc)
				}
				if taken {
					pc += int(ins.Jt)
				} else {
					pc += int(ins.Jf)
				}
			default:
				return 0, fmt.Errorf("hostguard: opcode %#x (pc %d)", ins.Code, pc)
			}
		}
	}
	return 0, errors.New("hostguard: BPF program ends without a return")
}

func alu(op uint16, a, v uint32) (uint32, error) {
	switch op {
	case unix.BPF_ADD:
		return a + v, nil
	case unix.BPF_SUB:
		return a - v, nil
	case unix.BPF_MUL:
		return a * v, nil
	case unix.BPF_DIV, unix.BPF_MOD:
		if v == 0 {
			return 0, errors.New("hostguard: division by zero")
		}
		if op == unix.BPF_DIV {
			return a / v, nil
		}
		return a % v, nil
	case unix.BPF_OR:
		return a | v, nil
	case unix.BPF_AND:
		return a & v, nil
	case unix.BPF_XOR:
		return a ^ v, nil
	case unix.BPF_LSH:
		return a << (v & 31), nil
	case unix.BPF_RSH:
		return a >> (v & 31), nil
	case unix.BPF_NEG:
		return -a, nil
	}
	return 0, fmt.Errorf("hostguard: ALU opcode %#x", op)
}

package cmds

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"tlcvm/compat/qerror"
	"tlcvm/machine"
	"tlcvm/qmp"
)

// MemsaveArgs are memsave's arguments.
type MemsaveArgs struct {
	Val      int64  `json:"val"`
	Size     int64  `json:"size"`
	Filename string `json:"filename"`
	CPUIndex *int64 `json:"cpu-index,omitempty"`
}

// PmemsaveArgs are pmemsave's arguments.
type PmemsaveArgs struct {
	Val      int64  `json:"val"`
	Size     int64  `json:"size"`
	Filename string `json:"filename"`
}

// RegistersArgs select the vCPU for x-tlcvm-registers.
type RegistersArgs struct {
	CPUIndex int64 `json:"cpu-index"`
}

// RegistersInfo carries `info registers` text, formatted as QEMU's x86_cpu_dump_state.
type RegistersInfo struct {
	Text string `json:"text"`
}

// ReadMemoryArgs are x-tlcvm-read-memory's arguments (HMP x and xp).
type ReadMemoryArgs struct {
	Addr     uint64 `json:"addr"`
	Size     int64  `json:"size"`
	Phys     bool   `json:"phys"`
	CPUIndex int64  `json:"cpu-index"`
}

// ReadMemoryInfo is guest memory, hex encoded.
type ReadMemoryInfo struct {
	Data string `json:"data"`
}

// maxReadMemory bounds one x-tlcvm-read-memory call (HMP's x reads at most a few KiB).
const maxReadMemory = 1 << 20

func (d *Deps) cpuExists(i int64) bool {
	for _, c := range d.Machine.CPUs() {
		if c.Plugged && int64(c.Index) == i {
			return true
		}
	}
	return false
}

// saveMemory implements pmemsave and memsave: QEMU reads and writes in 1 KiB pieces and
// reports the first failing read as "Invalid addr …/size … specified".
func (d *Deps) saveMemory(addr, size int64, filename string, read func(a uint64, p []byte) error) error {
	if size < 0 {
		// QEMU 7.2 crashes here (a negative length reaches fwrite); refuse instead.
		return qmp.Errorf("GenericError", "Invalid addr 0x%016x/size %d specified", uint64(addr), size)
	}
	f, err := os.OpenFile(filename, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return qmp.Errorf("GenericError", "Could not open '%s': %s", filename, qerror.Strerror(err))
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	a, left := uint64(addr), size
	for left > 0 {
		n := int64(len(buf))
		if n > left {
			n = left
		}
		if err := read(a, buf[:n]); err != nil {
			if errors.Is(err, machine.ErrRAMCheck) {
				// A page of a checkpoint file failed its check (restore by mapping).
				return qmp.Errorf("GenericError", "%s", err.Error())
			}
			return qmp.Errorf("GenericError", "Invalid addr 0x%016x/size %d specified", uint64(addr), size)
		}
		if _, err := f.Write(buf[:n]); err != nil {
			return qmp.Errorf("GenericError", "An IO error has occurred")
		}
		a += uint64(n)
		left -= n
	}
	return nil
}

func registerMemory(r *qmp.Registry, d *Deps) {
	m := d.Machine
	r.Register(
		qmp.Command{Name: "pmemsave", Args: &PmemsaveArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*PmemsaveArgs)
			return nil, d.saveMemory(a.Val, a.Size, a.Filename, m.ReadPhys)
		}},
		qmp.Command{Name: "memsave", Args: &MemsaveArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*MemsaveArgs)
			cpu := int64(0)
			if a.CPUIndex != nil {
				cpu = *a.CPUIndex
			}
			if !d.cpuExists(cpu) {
				return nil, qmp.Errorf("GenericError", "Parameter 'cpu-index' expects a CPU number")
			}
			return nil, d.saveMemory(a.Val, a.Size, a.Filename, func(addr uint64, p []byte) error {
				return m.ReadVirt(int(cpu), addr, p)
			})
		}},
	)
}

// internalCommands serve HMP only (no QMP twin in QEMU 7.2): registered Internal, they are
// absent from the wire, query-commands and the schema.
func internalCommands(d *Deps) []qmp.Command {
	m := d.Machine
	return []qmp.Command{
		{Name: "x-tlcvm-registers", Internal: true, Args: &RegistersArgs{}, Returns: RegistersInfo{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*RegistersArgs)
			if !d.cpuExists(a.CPUIndex) {
				return nil, qmp.Errorf("GenericError", "Parameter 'cpu-index' expects a CPU number")
			}
			return RegistersInfo{Text: m.Registers(int(a.CPUIndex))}, nil
		}},
		{Name: "x-tlcvm-read-memory", Internal: true, Args: &ReadMemoryArgs{}, Returns: ReadMemoryInfo{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*ReadMemoryArgs)
			if a.Size < 0 || a.Size > maxReadMemory {
				return nil, qmp.Errorf("GenericError", "Invalid size %d", a.Size)
			}
			p := make([]byte, a.Size)
			var err error
			if a.Phys {
				err = m.ReadPhys(a.Addr, p)
			} else {
				if !d.cpuExists(a.CPUIndex) {
					return nil, qmp.Errorf("GenericError", "Parameter 'cpu-index' expects a CPU number")
				}
				err = m.ReadVirt(int(a.CPUIndex), a.Addr, p)
			}
			if err != nil {
				return nil, fmt.Errorf("Cannot access memory: %w", err)
			}
			return ReadMemoryInfo{Data: hex.EncodeToString(p)}, nil
		}},
	}
}

package cmds

import (
	"tlcvm/machine/memtree"
	"tlcvm/qmp"
)

// x-query-ramblock (softmmu/physmem.c ram_block_format; HMP info ramblock prints it): the
// machine's RAM blocks, largest first, with their offsets in QEMU's ram_addr_t space.
//
//	              Block Name    PSize              Offset               Used              Total
//	                  pc.ram    4 KiB  0x0000000020000000 0x0000000040000000 0x0000000040000000
//	                      m0    4 KiB  0x0000000000000000 0x0000000020000000 0x0000000020000000

func registerRAMBlock(r *qmp.Registry, d *Deps) {
	if d.RAMBlocks == nil {
		return
	}
	r.Register(qmp.Command{Name: "x-query-ramblock", Returns: HumanReadableText{}, Features: []string{"unstable"},
		Run: func(*qmp.Call) (any, error) {
			return HumanReadableText{HumanReadableText: memtree.FormatRAMBlocks(d.RAMBlocks())}, nil
		}})
}

package memtree

import "strings"

// Hooks for package qomtree, which hangs every region under its owner in the QOM tree.

// Subregions returns r's subregions, in QEMU's list order.
func (r *Region) Subregions() []*Region { return r.sub }

// UnattachedDevices are the devices the board makes in /machine/unattached, by the keys of
// boardOwners: the type, with its instance number for repeated ones ("i8257#1", "nic#0").
func (b Board) UnattachedDevices() map[string]*Owner { return boardOwners(b, b.nics()) }

// nics counts the board's NICs (-net nic): its PCI functions without owner that are not
// the board's own.
func (b Board) nics() int {
	n := 0
	for _, d := range b.PCI {
		if d.Owner == nil && boardFunction[d.Type] == "" {
			n++
		}
	}
	return n
}

// ramName is the board RAM's region name: its memory back-end's id ("pc.ram" unless
// -machine memory-backend= names another).
func (b Board) ramName() string {
	if i := strings.LastIndexByte(b.RAMOwner, '/'); i >= 0 && i+1 < len(b.RAMOwner) {
		return b.RAMOwner[i+1:]
	}
	return "pc.ram"
}

package qomtree

import (
	"fmt"
	"strings"

	"tlcvm/machine/memtree"
)

// unattachedType is the QOM type of a board device by its key in
// memtree.Board.UnattachedDevices (the instance number cut off).
var unattachedType = map[string]string{"serial": "isa-serial", "parallel": "isa-parallel"}

// Augment adds to root (tlcvm's QOM objects: /machine, its vCPUs, /objects, the
// peripherals) what the board t was built from makes: its objects and their children
// (board.go's tables), and every memory region of t under its owner.
func Augment(root *Node, t *memtree.Tree) {
	machine := root.Child("machine")
	if machine == nil {
		return
	}
	b := t.Board
	if !b.None {
		addBoard(machine, b)
	}
	addRegions(root, t)
}

// addBoard adds the board's objects: those at fixed paths, the unattached devices, and
// the fixed children of every object by its type.
func addBoard(machine *Node, b memtree.Board) {
	board := pcObjects
	if b.Q35 {
		board = q35Objects
	}
	for _, o := range board {
		ensurePath(machine, o.path, o.typ)
	}
	unattached := machine.Ensure("unattached", "container")
	var nics []string
	for _, d := range b.PCI {
		if d.Owner == nil && !boardPCI[d.Type] {
			nics = append(nics, d.Type)
		}
	}
	for key, o := range b.UnattachedDevices() {
		typ, n := key, 0
		if i := strings.IndexByte(key, '#'); i >= 0 {
			typ = key[:i]
			fmt.Sscan(key[i+1:], &n)
		}
		if t, ok := unattachedType[typ]; ok {
			typ = t
		}
		if typ == "nic" && n < len(nics) {
			typ = nics[n]
		}
		ensurePath(unattached, strings.TrimPrefix(o.Path, "/machine/unattached/"), typ)
	}
	// pc_init1 makes the SMBus EEPROMs after the PIIX4 (q35's are in UnattachedDevices).
	gpios := 27 // the 24 GSIs, the PIC's output, the two A20 lines
	if !b.Q35 {
		next := nextDevice(unattached)
		for i := 0; i < 8; i++ {
			unattached.Ensure(fmt.Sprintf("device[%d]", next+i), "smbus-eeprom")
		}
		gpios++ // and the PIIX4's SMI
	}
	for _, k := range series("non-qdev-gpio", "irq", gpios) {
		unattached.Ensure(k.name, k.typ)
	}
	var walk func(n *Node)
	walk = func(n *Node) {
		for _, k := range typeChildren(n.Type, b) {
			n.Ensure(k.name, k.typ)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(machine)
}

// ensurePath adds the objects of a relative path under n, the last of type typ.
func ensurePath(n *Node, path, typ string) *Node {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		t := "container"
		if i == len(parts)-1 {
			t = typ
		}
		n = n.Ensure(p, t)
	}
	return n
}

// addRegions hangs every region of t under its owner ("name[k]", k counting the regions
// of that name the owner has), an ownerless one under /machine/unattached.
func addRegions(root *Node, t *memtree.Tree) {
	seen := map[*memtree.Region]bool{}
	next := map[*Node]map[string]int{}
	var walk func(r *memtree.Region)
	walk = func(r *memtree.Region) {
		if r == nil || seen[r] {
			return
		}
		seen[r] = true
		path := "/machine/unattached"
		if r.Owner != nil {
			path = r.Owner.Path
		}
		if o := root.Path(path); o != nil && r.Name != "" {
			name := EscapeRegionName(r.Name)
			if next[o] == nil {
				next[o] = map[string]int{}
			}
			o.Ensure(fmt.Sprintf("%s[%d]", name, next[o][name]), "memory-region")
			next[o][name]++
		}
		walk(r.Alias)
		for _, s := range r.Subregions() {
			walk(s)
		}
	}
	for _, s := range t.Spaces {
		walk(s.Root)
	}
}

// nextDevice is the number the next device[N] of /machine/unattached gets.
func nextDevice(unattached *Node) int {
	next := 0
	for _, c := range unattached.Children {
		var n int
		if _, err := fmt.Sscanf(c.Name, "device[%d]", &n); err == nil && n >= next {
			next = n + 1
		}
	}
	return next
}

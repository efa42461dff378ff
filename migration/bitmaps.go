package migration

import (
	"fmt"
	"strings"

	"tlcvm/compat/optval"
	"tlcvm/migration/stream"
)

// The dirty-bitmaps capability (QEMU 7.2's migration/block-dirty-bitmap.c): the block
// layer's named dirty bitmaps travel in the "dirty-bitmap" section (migration/stream's
// bitmaps.go), named by node and bitmap alias (block-bitmap-mapping, or by default the
// drive's name or the node's):
//
//	setup (guest runs)       Bitmaps.SaveSetup: bitmaps chosen, busy, not stored in their
//	                         images meanwhile ──▶ START "dirty-bitmap" (headers)
//	stage 3 (guest stopped)  Bitmaps.SaveComplete: their bits ──▶ END "dirty-bitmap"
//	after                    Bitmaps.SaveCleanup: not busy; stored again unless a QEMU-mode
//	                         migration completed (the destination owns them now)
//	incoming                 held until the stream is verified, then Bitmaps.Load creates
//	                         them (aliases mapped back) before the guest runs
//
// The engine never sees the block layer: Bitmaps is what it needs, adapted by the
// composition root.

// CapDirtyBitmaps migrates the block layer's dirty bitmaps.
const CapDirtyBitmaps Capability = "dirty-bitmaps"

// Bitmaps is the block layer's dirty bitmaps as the dirty-bitmaps capability migrates them.
type Bitmaps interface {
	// SaveSetup chooses the bitmaps to migrate (mapping: block-bitmap-mapping, nil for the
	// default names), marks them busy and kept out of their images, and returns their
	// headers; none to migrate is no error. An error (QEMU's text) fails the setup.
	SaveSetup(mapping []BitmapMigrationNodeAlias) ([]stream.DirtyBitmap, error)
	// SaveComplete returns the chosen bitmaps with their bits, the guest stopped.
	SaveComplete() []stream.DirtyBitmap
	// SaveCleanup releases them; migrated: the destination owns them now (a completed
	// migration that leaves this VM in postmigrate), so they are not stored here again.
	SaveCleanup(migrated bool)
	// Load creates the bitmaps an incoming stream carried (setup: headers, data: bits)
	// with the aliases mapped back to names, before the guest runs. It reports its own
	// errors (QEMU's error_report); an error fails the incoming migration.
	Load(mapping []BitmapMigrationNodeAlias, setup, data []stream.DirtyBitmap) error
}

// checkBitmapMapping validates block-bitmap-mapping as QEMU's
// check_dirty_bitmap_mig_alias_map does: both directions must be unambiguous.
func checkBitmapMapping(m []BitmapMigrationNodeAlias) error {
	nodes, aliases := map[string]bool{}, map[string]bool{}
	for _, n := range m {
		switch {
		case !optval.ID(n.Alias):
			return errorf(ErrInvalid, "The node alias '%s' is not well-formed", n.Alias)
		case len(n.Alias) > 255:
			return errorf(ErrInvalid, "The node alias '%s' is longer than 255 bytes", n.Alias)
		case len(n.NodeName) > 31:
			return errorf(ErrInvalid, "The node name '%s' is longer than 31 bytes", n.NodeName)
		case nodes[n.NodeName]:
			return errorf(ErrInvalid, "The node name '%s' is mapped twice", n.NodeName)
		case aliases[n.Alias]:
			return errorf(ErrInvalid, "The node alias '%s' is used twice", n.Alias)
		}
		nodes[n.NodeName], aliases[n.Alias] = true, true
		names, balias := map[string]bool{}, map[string]bool{}
		for _, b := range n.Bitmaps {
			switch {
			case len(b.Alias) > 255:
				return errorf(ErrInvalid, "The bitmap alias '%s' is longer than 255 bytes", b.Alias)
			case len(b.Name) > 1023:
				return errorf(ErrInvalid, "The bitmap name '%s' is longer than 1023 bytes", b.Name)
			case names[b.Name]:
				return errorf(ErrInvalid, "The bitmap '%s'/'%s' is mapped twice", n.NodeName, b.Name)
			case balias[b.Alias]:
				return errorf(ErrInvalid, "The bitmap alias '%s'/'%s' is used twice", n.Alias, b.Alias)
			}
			names[b.Name], balias[b.Alias] = true, true
		}
	}
	return nil
}

// bitmapSave is an outgoing migration's part of the dirty-bitmaps capability.
type bitmapSave struct {
	b    Bitmaps
	data []stream.DirtyBitmap // taken with the guest stopped
}

// setupBitmaps writes the START section when the capability is on and there are bitmaps
// to migrate; nil when there is nothing to do.
func (s *saver) setupBitmaps() (*bitmapSave, error) {
	e := s.j.e
	if e.bitmaps == nil || !e.Capability(CapDirtyBitmaps) {
		return nil, nil
	}
	var mapping []BitmapMigrationNodeAlias
	if p := e.Params().BlockBitmapMapping; p != nil {
		mapping = *p
	}
	bms, err := e.bitmaps.SaveSetup(mapping)
	if err != nil {
		return nil, wrapf(ErrSave, err, "%s", err.Error())
	}
	if len(bms) == 0 {
		e.bitmaps.SaveCleanup(false)
		return nil, nil
	}
	bs := &bitmapSave{b: e.bitmaps}
	if err := s.w.BitmapsSetup(bms); err != nil {
		bs.b.SaveCleanup(false)
		return nil, s.ioErr(err)
	}
	return bs, nil
}

// loadBitmaps applies the bitmaps of a verified incoming stream.
func (e *Engine) loadBitmaps(setup, data []stream.DirtyBitmap) error {
	if len(setup) == 0 {
		return nil
	}
	if e.bitmaps == nil {
		return errorf(ErrLoad, "Unknown savevm section or instance '%s' 0. Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices", stream.BitmapsIDStr)
	}
	var mapping []BitmapMigrationNodeAlias
	if p := e.Params().BlockBitmapMapping; p != nil {
		mapping = *p
	}
	if err := e.bitmaps.Load(mapping, setup, data); err != nil {
		return wrapf(ErrLoad, err, "error while loading state for instance 0x0 of device '%s'", stream.BitmapsIDStr)
	}
	return nil
}

// BitmapAliases resolves names and aliases through a block-bitmap-mapping for the adapter:
// outgoing (node name → alias) or incoming (alias → node name).
type BitmapAliases struct {
	nodes map[string]aliasNode
}

type aliasNode struct {
	to      string
	bitmaps map[string]BitmapMigrationBitmapAlias // by name (outgoing) or alias (incoming)
}

// NewBitmapAliases builds the lookup for one direction (QEMU's construct_alias_map); nil
// when mapping is nil (default names).
func NewBitmapAliases(mapping []BitmapMigrationNodeAlias, outgoing bool) *BitmapAliases {
	if mapping == nil {
		return nil
	}
	a := &BitmapAliases{nodes: map[string]aliasNode{}}
	for _, n := range mapping {
		from, to := n.NodeName, n.Alias
		if !outgoing {
			from, to = n.Alias, n.NodeName
		}
		an := aliasNode{to: to, bitmaps: map[string]BitmapMigrationBitmapAlias{}}
		for _, b := range n.Bitmaps {
			key := b.Name
			if !outgoing {
				key = b.Alias
			}
			an.bitmaps[key] = b
		}
		a.nodes[from] = an
	}
	return a
}

// Node maps a node name (outgoing) or alias (incoming); ok false when it is not mapped.
func (a *BitmapAliases) Node(from string) (string, bool) {
	n, ok := a.nodes[from]
	return n.to, ok
}

// Bitmap maps a bitmap of a mapped node: the other side's name or alias and, when the
// mapping says so, the persistence to give it.
func (a *BitmapAliases) Bitmap(node, from string, outgoing bool) (to string, persistent *bool, ok bool) {
	b, ok := a.nodes[node].bitmaps[from]
	if !ok {
		return "", nil, false
	}
	if b.Transform != nil {
		persistent = b.Transform.Persistent
	}
	if outgoing {
		return b.Alias, persistent, true
	}
	return b.Name, persistent, true
}

// String is for logs.
func (a *BitmapAliases) String() string {
	if a == nil {
		return "<default names>"
	}
	var parts []string
	for k, v := range a.nodes {
		parts = append(parts, fmt.Sprintf("%s→%s", k, v.to))
	}
	return strings.Join(parts, " ")
}

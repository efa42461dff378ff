package main

import (
	"fmt"
	"io"
	"strings"

	"tlcvm/blockdev"
	"tlcvm/migration"
	"tlcvm/migration/stream"
)

// bitmapMigration presents the block graph's dirty bitmaps as the migration engine's
// Bitmaps (capability dirty-bitmaps), choosing and naming them as QEMU 7.2's
// migration/block-dirty-bitmap.c does.
type bitmapMigration struct {
	g      *blockdev.Graph
	stderr io.Writer
	prog   string

	chosen []chosenBitmap // the outgoing migration's bitmaps, between SaveSetup and SaveCleanup
}

type chosenBitmap struct {
	b   *blockdev.Bitmap
	hdr stream.DirtyBitmap
}

var _ migration.Bitmaps = (*bitmapMigration)(nil)

// SaveSetup is init_dirty_bitmap_migration: without a mapping, the bitmaps of each named
// drive's root under the drive's name, then every other node's under its node name;
// with one, only the mapped nodes and bitmaps under their aliases.
func (m *bitmapMigration) SaveSetup(mapping []migration.BitmapMigrationNodeAlias) ([]stream.DirtyBitmap, error) {
	aliases := migration.NewBitmapAliases(mapping, true)
	handled := map[*blockdev.Node]bool{}
	var out []chosenBitmap
	add := func(n *blockdev.Node, name string) error {
		bms := n.Bitmaps()
		if len(bms) == 0 {
			return nil
		}
		if name == "" {
			return fmt.Errorf("Bitmap '%s' in unnamed node can't be migrated", bms[0].Name())
		}
		nodeAlias := name
		if aliases != nil {
			var ok bool
			if nodeAlias, ok = aliases.Node(name); !ok {
				return nil
			}
		}
		if strings.HasPrefix(nodeAlias, "#") {
			return fmt.Errorf("Bitmap '%s' in a node with auto-generated name '%s' can't be migrated", bms[0].Name(), nodeAlias)
		}
		for _, b := range bms {
			if err := b.CheckWritable(); err != nil {
				return err
			}
			alias, persistent := b.Name(), b.Persistent()
			if aliases != nil {
				a, p, ok := aliases.Bitmap(name, b.Name(), true)
				if !ok {
					continue
				}
				alias = a
				if p != nil {
					persistent = *p
				}
			} else if len(alias) > 255 {
				return fmt.Errorf("Cannot migrate bitmap '%s' on node '%s': Name is longer than 255 bytes", b.Name(), name)
			}
			out = append(out, chosenBitmap{b: b, hdr: stream.DirtyBitmap{Node: nodeAlias, Name: alias,
				Granularity: uint32(b.Granularity()), Enabled: b.Enabled(), Persistent: persistent}})
		}
		return nil
	}
	if aliases == nil {
		for _, bk := range m.g.Backends() {
			if bk.Name == "" || bk.Root == nil {
				continue
			}
			n := bk.Root
			if n.Driver == blockdev.DriverRaw && len(n.Bitmaps()) == 0 { // raw is a filter
				n = n.File
			}
			if n == nil || n.Driver == blockdev.DriverRaw {
				continue
			}
			if err := add(n, bk.Name); err != nil {
				return nil, m.fail(err)
			}
			handled[n] = true
		}
	}
	nodes := m.g.Nodes() // newest first: all_bdrv_states is in creation order
	for i := len(nodes) - 1; i >= 0; i-- {
		if n := nodes[i]; !handled[n] {
			if err := add(n, n.Name); err != nil {
				return nil, m.fail(err)
			}
		}
	}
	hdrs := make([]stream.DirtyBitmap, len(out))
	for i, c := range out {
		c.b.SetBusy(true)
		c.b.SetSkipStore(true)
		hdrs[i] = c.hdr
	}
	m.chosen = out
	return hdrs, nil
}

// fail reports a setup error as QEMU's error_report does and returns it.
func (m *bitmapMigration) fail(err error) error {
	fmt.Fprintf(m.stderr, "%s: %s\n", m.prog, err)
	return err
}

// SaveComplete is the bulk phase at completion: every chosen bitmap in chunks of 8192
// granules, all-clean chunks as ZEROES.
func (m *bitmapMigration) SaveComplete() []stream.DirtyBitmap {
	out := make([]stream.DirtyBitmap, len(m.chosen))
	for i, c := range m.chosen {
		d := c.hdr
		gran := c.b.Granularity()
		total := uint64(c.b.Size()) / 512
		per := uint64(stream.BitmapChunkGranules) * uint64(gran) / 512
		for cur := uint64(0); cur < total; cur += per {
			nr := min(total-cur, per)
			first := int64(cur*512) / gran
			last := int64((cur+nr)*512-1) / gran
			words := last/64 - first/64 + 1
			bits := c.b.Serialize(first, words*64)
			if pad := (32 - len(bits)%32) % 32; pad > 0 {
				bits = append(bits, make([]byte, pad)...)
			}
			ch := stream.BitmapChunk{Start: cur, Sectors: uint32(nr)}
			for _, x := range bits {
				if x != 0 {
					ch.Bits = bits
					break
				}
			}
			d.Chunks = append(d.Chunks, ch)
		}
		out[i] = d
	}
	return out
}

// SaveCleanup ends an outgoing migration's hold on its bitmaps.
func (m *bitmapMigration) SaveCleanup(migrated bool) {
	for _, c := range m.chosen {
		c.b.SetBusy(false)
		c.b.SetSkipStore(migrated)
	}
	m.chosen = nil
}

// Load is dirty_bitmap_load: each bitmap is created on the node its alias names (with the
// same granularity, persistence and state) and filled from its chunks. A lookup that
// fails cancels the bitmaps' migration (reported, the rest of the migration goes on); a
// bitmap that already exists fails it. A same-named bitmap loaded inconsistent from the
// image (the source held it in use) gives way to the migrated one.
func (m *bitmapMigration) Load(mapping []migration.BitmapMigrationNodeAlias, setup, data []stream.DirtyBitmap) error {
	aliases := migration.NewBitmapAliases(mapping, false)
	type target struct {
		n          *blockdev.Node
		name       string
		persistent bool
	}
	targets := make([]target, len(setup))
	for i, h := range setup {
		nodeName := h.Node
		if aliases != nil {
			var ok bool
			if nodeName, ok = aliases.Node(h.Node); !ok {
				return m.cancel(fmt.Errorf("Error: Unknown node alias '%s'", h.Node))
			}
		}
		n, err := m.g.LookupNode(nodeName)
		if err != nil {
			return m.cancel(err)
		}
		t := target{n: n, name: h.Name, persistent: h.Persistent}
		if aliases != nil {
			name, p, ok := aliases.Bitmap(h.Node, h.Name, false)
			if !ok {
				return m.cancel(fmt.Errorf("Error: Unknown bitmap alias '%s' on node '%s' (alias '%s')", h.Name, n.Name, h.Node))
			}
			t.name = name
			if p != nil {
				t.persistent = *p
			}
		}
		targets[i] = t
	}
	bits := map[[2]string][]stream.BitmapChunk{}
	for _, d := range data {
		bits[[2]string{d.Node, d.Name}] = d.Chunks
	}
	var created []*blockdev.Bitmap
	for i, h := range setup {
		t := targets[i]
		if old, ok := t.n.Bitmap(t.name); ok {
			if !old.Inconsistent() {
				return m.fail(fmt.Errorf("Bitmap with the same name ('%s') already exists on destination", t.name))
			}
			t.n.ReleaseBitmap(old)
		}
		b, err := t.n.CreateBitmap(t.name, int64(h.Granularity))
		if err != nil {
			return m.fail(err)
		}
		b.SetPersistent(t.persistent)
		created = append(created, b)
		for _, c := range bits[[2]string{h.Node, h.Name}] {
			gran := b.Granularity()
			first := int64(c.Start*512) / gran
			last := (int64(c.Start+uint64(c.Sectors))*512 - 1) / gran
			need := (last/64 - first/64 + 1) * 8
			if first%64 != 0 || int64(len(c.Bits)) > 0 && (int64(len(c.Bits)) < need || int64(len(c.Bits)) > (need+31)&^31) {
				for _, x := range created {
					x.Node().ReleaseBitmap(x)
				}
				return m.cancel(fmt.Errorf("Migrated bitmap granularity doesn't match the destination bitmap '%s' granularity", t.name))
			}
			if c.Bits != nil {
				b.Deserialize(first, c.Bits[:need])
			}
		}
		b.SetEnabled(h.Enabled)
	}
	return nil
}

// cancel reports why the bitmaps are not migrated (cancel_incoming_locked): the migration
// itself goes on.
func (m *bitmapMigration) cancel(err error) error {
	fmt.Fprintf(m.stderr, "%s: %s\n", m.prog, err)
	return nil
}

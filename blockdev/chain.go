package blockdev

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Backing chains as the jobs see and change them: walking a chain (through filters),
// finding a node by the backing file name an image records, reopening a node read-write
// for a job and back, a new backing node for an image (bdrv_set_backing_hd) and the
// backing file name written into its header (bdrv_change_backing_file).

// chainContains is bdrv_chain_contains: x is top or below it (filters and backing links).
func (top *Node) chainContains(x *Node) bool {
	for n := top; n != nil; n = n.FilteredOrBacking() {
		if n == x {
			return true
		}
	}
	return false
}

// backingChainNext is bdrv_backing_chain_next: the next image below n, filters skipped.
func backingChainNext(n *Node) *Node {
	n = skipFilters(n)
	if n == nil {
		return nil
	}
	return skipFilters(n.Backing)
}

// findOverlay is bdrv_find_overlay: the image in active's chain whose backing image is
// bs (bs nil: the bottom image), or nil.
func findOverlay(active, bs *Node) *Node {
	bs = skipFilters(bs)
	for a := skipFilters(active); a != nil; {
		next := backingChainNext(a)
		if next == bs {
			return a
		}
		a = next
	}
	return nil
}

// backingOverridden is bdrv_backing_overridden: the backing node's file name is not
// auto_backing_file (given as a node, or none at all; filename.go).
func (n *Node) backingOverridden() bool {
	if n.Backing != nil {
		return n.autoBacking != skipFilters(n.Backing).Filename()
	}
	return n.autoBacking != ""
}

// findBackingImage is bdrv_find_backing_image: the image below active whose file the
// name refers to, compared as QEMU compares (the node's file name when the backing was
// overridden, else both paths made absolute and canonical).
func findBackingImage(active *Node, name string) *Node {
	for cur := skipFilters(active); cur != nil && cur.Backing != nil; {
		below := backingChainNext(cur)
		if below == nil {
			return nil
		}
		switch {
		case cur.backingOverridden():
			if name == below.Filename() {
				return below
			}
		case strings.Contains(name, "://") || strings.Contains(cur.BackingFile, "://"):
			if name == cur.BackingFile || name == cur.FullBackingFilename() {
				return below
			}
		default:
			a, errA := filepath.EvalSymlinks(combinePath(cur.filename, name))
			b, errB := filepath.EvalSymlinks(cur.FullBackingFilename())
			if errA == nil && errB == nil && a == b {
				return below
			}
		}
		cur = below
	}
	return nil
}

// setReadOnly reopens n read-only or read-write (bdrv_reopen_set_read_only): the file
// child a chain opened for it follows, and the file locks move. On an error nothing
// changes. Graph.mu held.
func (g *Graph) setReadOnly(n *Node, ro bool) error {
	if n.ReadOnly == ro {
		return nil
	}
	if ro {
		if err := n.writebackMeta(); err != nil {
			return err
		}
	}
	f := n.File
	followFile := f != nil && f.implicit && f.ReadOnly != ro && len(f.parents) == 1
	n.io.Lock()
	n.ReadOnly = ro
	n.io.Unlock()
	if followFile {
		f.ReadOnly = ro
	}
	if err := g.refresh(); err != nil {
		n.io.Lock()
		n.ReadOnly = !ro
		n.io.Unlock()
		if followFile {
			f.ReadOnly = !ro
		}
		return err
	}
	return nil
}

// setBacking is bdrv_set_backing_hd: n's backing node becomes b (nil: none); nodes of the
// old chain nobody uses any more are closed. n is drained meanwhile. Graph.mu held.
func (g *Graph) setBackingNode(n, b *Node) error {
	old := n.Backing
	if old == b {
		return nil
	}
	n.io.Lock()
	n.Backing = b
	n.io.Unlock()
	if old != nil {
		old.removeParent(func(e edge) bool { return e.node == n && e.role == "backing" })
	}
	if b != nil {
		b.addParent(edge{node: n, role: "backing"})
	}
	if err := g.refresh(); err != nil {
		return err
	}
	if old != nil && !old.monitorOwned() && len(old.parents) == 0 {
		g.removeTree(old)
	}
	return nil
}

// changeBackingFile is bdrv_change_backing_file on a qcow2 image (qcow2_update_header):
// the header cluster is written again with the new backing file name and format; the
// other extensions (bitmaps, unknown ones) are kept.
func (n *Node) changeBackingFile(name, format string) error {
	if n.Driver != DriverQcow2 || n.hdr == nil || n.q == nil {
		return errf(ErrUnsupported, "Operation not supported")
	}
	if len(name) > maxBackingNameLen {
		return errf(ErrInvalid, "Invalid argument")
	}
	n.io.Lock() // drain the node's requests (n.io before q.mu, as a request takes them)
	defer n.io.Unlock()
	q := n.q
	q.mu.Lock()
	defer q.mu.Unlock()
	h := *q.h
	h.BackingFile, h.BackingFormat = name, format
	if int64(len(h.encode())) > q.cs {
		return errf(ErrInvalid, "Invalid argument")
	}
	saved := *q.h
	q.h.BackingFile, q.h.BackingFormat = name, format
	if err := q.writeHeader(); err != nil {
		*q.h = saved
		return err
	}
	n.BackingFile, n.BackingFormat, n.autoBacking = name, format, name
	return nil
}

// ChangeBackingFile is change-backing-file (qmp_change_backing_file): the backing file
// name in the image header of imageNode, a node in the chain of device's root node, is
// rewritten (its format: the image's own driver, as QEMU 7.2 passes it); a read-only node
// is reopened read-write meanwhile. The graph does not change.
func (g *Graph) ChangeBackingFile(device, imageNode, backingFile string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	bs, err := g.rootNode(device)
	if err != nil {
		return err
	}
	img, err := g.lookup("", imageNode)
	if err != nil {
		return err
	}
	if skipFilters(img).Backing == nil {
		return errf(ErrInvalid, "not allowing backing file change on an image without a backing file")
	}
	if err := bs.opBlocked(opChange); err != nil {
		return err
	}
	if !bs.chainContains(img) {
		return errf(ErrInvalid, "'%s' and image file are not in the same chain", device)
	}
	ro := img.ReadOnly
	if ro {
		if err := g.setReadOnly(img, false); err != nil {
			return err
		}
	}
	err = img.changeBackingFile(backingFile, img.Driver)
	if err != nil {
		err = prefix(err, fmt.Sprintf("Could not change backing file to '%s': ", backingFile))
	}
	if ro {
		if rerr := g.setReadOnly(img, true); err == nil {
			err = rerr
		}
	}
	return err
}

package blockdev

import (
	"fmt"
	"os"
	"syscall"

	"tlcvm/compat/qerror"
)

// The drive-* job commands (drive-mirror, drive-backup): the target is an image file the
// command creates (mode absolute-paths, QEMU's bdrv_img_create, announced on stdout with
// its "Formatting ..." line) or finds (mode existing), opened as an implicit node
// without its backing chain (BDRV_O_NO_BACKING; the job sets it at the end).

// imgCreate is bdrv_img_create for the formats tlcvm writes: a new qcow2 (64 KiB clusters,
// the backing file name and format recorded) or raw image of size bytes.
func (g *Graph) imgCreate(filename, format, backing, backingFmt string, size int64) error {
	switch format {
	case DriverQcow2:
		b := ""
		if backing != "" {
			b = fmt.Sprintf(" backing_file=%s backing_fmt=%s", backing, backingFmt)
		}
		fmt.Fprintf(g.cfg.Stdout, "Formatting '%s', fmt=qcow2 cluster_size=65536 extended_l2=off compression_type=zlib size=%d%s lazy_refcounts=off refcount_bits=16\n",
			filename, size, b)
	case DriverRaw:
		fmt.Fprintf(g.cfg.Stdout, "Formatting '%s', fmt=raw size=%d\n", filename, size)
	default:
		return errf(ErrUnsupported, "Unknown file format '%s'", format)
	}
	f, err := os.OpenFile(filename, os.O_RDWR|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return qerror.Errno(ErrOpen, err, "%s: Could not create '%s'", filename, filename)
	}
	defer f.Close()
	if format == DriverRaw {
		if err := f.Truncate(size); err != nil {
			return qerror.Errno(ErrIO, err, "%s: Could not resize file", filename)
		}
		return nil
	}
	return writeQcow2(f, &Qcow2Create{Size: uint64(size), BackingFile: backing, BackingFormat: backingFmt})
}

// openTarget opens a drive-* target image (bdrv_open with the source's cache flags,
// read-write): format "" probes it; noBacking leaves its backing chain closed
// (BDRV_O_NO_BACKING); unmap opens it with discard=unmap and detect-zeroes=unmap (as
// drive-backup does). Graph.mu held.
func (g *Graph) openTarget(filename, format, nodeName string, like *Node, noBacking, unmap bool) (*Node, error) {
	in := inherited{direct: like.Direct, noFlush: like.NoFlush, implicit: true}
	discard, zeroes := "ignore", ""
	if unmap {
		discard, zeroes = "unmap", "unmap"
	}
	var opened []*Node
	fo := &Options{Discard: discard}
	if err := protocolOptions(fo, filename); err != nil {
		return nil, err
	}
	if fo.Driver == DriverHostDevice {
		fo.Driver = DriverFile // a target named by a file name opens with file-posix's "file"
	}
	file, err := g.open(fo, in, &opened)
	if err != nil {
		g.discard(opened)
		return nil, err
	}
	if format == "" {
		if format, err = probe(file); err != nil {
			g.discard(opened)
			return nil, err
		}
	}
	o := &Options{Driver: format, NodeName: nodeName, File: &Ref{Node: file.Name}, Discard: discard, DetectZeroes: zeroes}
	if noBacking && format == DriverQcow2 {
		o.Backing = &Ref{Null: true}
	}
	n, err := g.open(o, in, &opened)
	if err != nil {
		g.discard(opened)
		return nil, err
	}
	return n, nil
}

// DriveMirror is qmp_drive_mirror.
func (g *Graph) DriveMirror(o MirrorOptions) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	bs, err := g.rootNode(o.Device)
	if err != nil {
		return err
	}
	if err := bs.opBlocked(opMirrorSource); err != nil {
		return err
	}
	if o.Mode == "" {
		o.Mode = "absolute-paths"
	}
	format := ""
	if o.Format != nil {
		format = *o.Format
	} else if o.Mode != "existing" {
		format = skipFilters(bs).Driver
	}
	backing := backingChainNext(bs)
	if backing == nil && o.Sync == "top" {
		o.Sync = "full"
	}
	if o.Sync == "none" {
		backing = bs
	}
	size := bs.Size()
	if o.Replaces != nil && o.NodeName == nil {
		return errf(ErrInvalid, "a node-name must be provided when replacing a named node of the graph")
	}
	mode := sourceBackingChain
	if o.Mode == "existing" {
		mode = openBackingChain
	}
	if o.Mode != "existing" {
		name, bfmt := "", ""
		if o.Sync != "full" && backing != nil {
			b := SkipImplicit(backing)
			name, bfmt = b.Filename(), b.Driver
		}
		if err := g.imgCreate(o.Target, format, name, bfmt, size); err != nil {
			return err
		}
	}
	target, err := g.openTarget(o.Target, format, deref(o.NodeName), bs, true, false)
	if err != nil {
		return err
	}
	zeroTarget := o.Sync == "full" && o.Mode == "existing"
	if err := g.mirrorCommon(o, bs, target, mode, zeroTarget); err != nil {
		if len(target.parents) == 0 {
			g.removeTree(target)
		}
		return err
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

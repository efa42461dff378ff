package blockdev

import (
	"bytes"
	"fmt"
)

// Options is one BlockdevOptions (qapi/block-core.json) as tlcvm uses it: the members of
// every driver's base, the "file" driver's filename and the format drivers' children.
// Pointers distinguish "absent" from a value.
type Options struct {
	Driver       string
	NodeName     string
	Discard      string // "ignore" (default) or "unmap"
	CacheDirect  *bool
	CacheNoFlush *bool
	ReadOnly     *bool
	AutoReadOnly *bool
	ForceShare   *bool
	DetectZeroes string // "off" (default), "on", "unmap"

	Filename string // file
	Locking  string // file: "auto" (default), "on", "off"
	AIO      string // file: "threads" (default), "native", "io_uring"

	File    *Ref // raw, qcow2
	Backing *Ref // qcow2; nil: use the image's backing file

	Blkdebug *BlkdebugOptions // blkdebug (blkdebug.go)
	NBD      *NBDOptions      // nbd (nbd.go)
	Null     *NullOptions     // null-co, null-aio (null.go)
}

// Ref is a BlockdevRef(OrNull): a node name, inline options, or (backing only) null.
type Ref struct {
	Node    string
	Options *Options
	Null    bool
}

// SupportedDrivers are the drivers tlcvm can open.
var SupportedDrivers = []string{DriverFile, DriverHostDevice, DriverRaw, DriverQcow2, DriverNBD, DriverNullCo, DriverNullAIO}

// inherited carries the flags a child inherits from the parent being opened.
type inherited struct {
	readOnly, autoReadOnly bool
	direct, noFlush        bool
	implicit               bool
}

func boolOr(p *bool, def bool) bool {
	if p != nil {
		return *p
	}
	return def
}

// Add opens the node tree o describes (blockdev-add, -blockdev) and returns its root.
func (g *Graph) Add(o *Options) (*Node, error) {
	if o.NodeName == "" {
		return nil, errf(ErrInvalid, "'node-name' must be specified for the root node")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var opened []*Node
	n, err := g.open(o, inherited{}, &opened)
	if err != nil {
		g.discard(opened)
		return nil, err
	}
	n.owned = true
	return n, nil
}

// discard removes nodes opened by a failed operation.
func (g *Graph) discard(opened []*Node) {
	for i := len(opened) - 1; i >= 0; i-- {
		n := opened[i]
		n.storeBeforeClose()
		g.detach(n)
		n.close()
		g.removeNode(n)
	}
}

func (g *Graph) removeNode(n *Node) {
	out := g.nodes[:0]
	for _, x := range g.nodes {
		if x != n {
			out = append(out, x)
		}
	}
	g.nodes = out
}

// detach drops n's edges to its children.
func (g *Graph) detach(n *Node) {
	for _, c := range []*Node{n.File, n.Backing} {
		if c != nil {
			c.removeParent(func(e edge) bool { return e.node == n })
		}
	}
}

func (g *Graph) open(o *Options, in inherited, opened *[]*Node) (*Node, error) {
	if o.NodeName != "" {
		if err := g.checkNodeName(o.NodeName); err != nil {
			return nil, err
		}
	}
	n := &Node{
		g:            g,
		Driver:       o.Driver,
		ReadOnly:     boolOr(o.ReadOnly, in.readOnly),
		AutoReadOnly: boolOr(o.AutoReadOnly, in.autoReadOnly),
		Discard:      o.Discard,
		DetectZeroes: o.DetectZeroes,
		Direct:       boolOr(o.CacheDirect, in.direct),
		NoFlush:      boolOr(o.CacheNoFlush, in.noFlush),
		implicit:     in.implicit,
		shared:       PermAll,
		inactive:     g.incoming,
	}
	oc := *o
	n.opts = &oc
	if n.Discard == "" {
		n.Discard = "ignore"
	}
	if n.DetectZeroes == "" {
		n.DetectZeroes = "off"
	}
	if n.DetectZeroes == "unmap" && n.Discard != "unmap" {
		return nil, errf(ErrInvalid, "setting detect-zeroes to unmap is not allowed without setting discard operation to unmap")
	}
	child := inherited{readOnly: n.ReadOnly, autoReadOnly: n.AutoReadOnly, direct: n.Direct, noFlush: n.NoFlush, implicit: in.implicit}
	switch o.Driver {
	case DriverFile, DriverHostDevice:
		if o.AIO == "native" && !n.Direct {
			return nil, errf(ErrInvalid, "aio=native was specified, but it requires cache.direct=on, which was not specified.")
		}
		rw := !n.ReadOnly && !n.AutoReadOnly
		f, err := openHostFile(o.Filename, rw)
		if err != nil && n.AutoReadOnly && !n.ReadOnly {
			f, err = openHostFile(o.Filename, false)
		}
		if err != nil {
			return nil, err
		}
		if err := checkHostFileType(f, o.Driver, o.Filename); err != nil {
			f.Close()
			return nil, err
		}
		n.f, n.rw, n.filename = f, rw, o.Filename
		n.lock = fileLock{fd: int(f.Fd()), off: o.Locking == "off"}
		g.name(n, o.NodeName, opened)
		return n, nil
	case DriverBlkdebug:
		return g.openBlkdebug(n, o, child, opened)
	case DriverNBD:
		return g.openNBD(n, o, opened)
	case DriverNullCo, DriverNullAIO:
		return g.openNull(n, o, opened)
	case DriverRaw, DriverQcow2:
	default:
		return nil, errf(ErrUnsupported, "tlcvm: block driver '%s' is not supported (tlcvm opens %s)", o.Driver, "file, nbd, null-co, null-aio, raw and qcow2")
	}
	if o.File == nil {
		return nil, errf(ErrInvalid, "A block device must be specified for \"file\"")
	}
	file, err := g.ref(o.File, child, opened)
	if err != nil {
		return nil, err
	}
	n.File, n.filename = file, file.filename
	if o.Driver == DriverQcow2 {
		h, err := ReadQcow2Header(imageReader(file), file.Size(), !n.ReadOnly)
		if err != nil {
			return nil, err
		}
		n.hdr = h
		n.q = newQcow2(n, h)
		n.vsize.Store(int64(h.Size))
		n.BackingFile, n.BackingFormat, n.autoBacking = h.BackingFile, h.BackingFormat, h.BackingFile
	}
	g.name(n, o.NodeName, opened)
	file.addParent(edge{node: n, role: "file"})
	if err := g.refresh(); err != nil {
		return nil, err
	}
	if o.Driver != DriverQcow2 {
		return n, nil
	}
	// An inactive node (opened under -incoming) leaves the image's bitmaps to activation,
	// as qcow2_do_open does under BDRV_O_INACTIVE: the source may still write them.
	if !n.inactive {
		if err := n.loadBitmaps(g.cfg.Warn); err != nil {
			return nil, err
		}
	}
	switch {
	case o.Backing != nil && o.Backing.Null:
	case o.Backing != nil:
		b, err := g.ref(o.Backing, inherited{readOnly: true, direct: n.Direct, noFlush: n.NoFlush}, opened)
		if err != nil {
			return nil, err
		}
		if err := g.setBacking(n, b); err != nil {
			return nil, err
		}
	case n.BackingFile != "":
		if err := g.openBackingFile(n, opened); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ref resolves a BlockdevRef: an existing node (by node name or drive name) or inline options.
func (g *Graph) ref(r *Ref, in inherited, opened *[]*Node) (*Node, error) {
	if r.Options != nil {
		return g.open(r.Options, in, opened)
	}
	return g.lookup(r.Node, r.Node)
}

func (g *Graph) name(n *Node, given string, opened *[]*Node) {
	if given != "" {
		n.Name = given
	} else {
		n.Name = g.autoName()
	}
	g.nodes = append(g.nodes, n)
	*opened = append(*opened, n)
}

func (g *Graph) setBacking(n, b *Node) error {
	n.Backing = b
	b.addParent(edge{node: n, role: "backing"})
	if err := g.refresh(); err != nil {
		b.removeParent(func(e edge) bool { return e.node == n && e.role == "backing" })
		n.Backing = nil
		return err
	}
	return nil
}

// openBackingFile opens the backing chain an image names, read-only, probing the format
// when the image does not record it, as bdrv_open_backing_file does.
func (g *Graph) openBackingFile(n *Node, opened *[]*Node) error {
	path := n.FullBackingFilename()
	in := inherited{readOnly: true, direct: n.Direct, noFlush: n.NoFlush, implicit: true}
	fo := &Options{Driver: DriverFile, Filename: path}
	file, err := g.open(fo, in, opened)
	if err != nil {
		return prefix(err, "Could not open backing file: ")
	}
	format := n.BackingFormat
	if format == "" {
		format, err = probe(file)
		if err != nil {
			return prefix(err, "Could not open backing file: ")
		}
	}
	b, err := g.open(&Options{Driver: format, File: &Ref{Node: file.Name}}, in, opened)
	if err != nil {
		return prefix(err, "Could not open backing file: ")
	}
	if err := g.setBacking(n, b); err != nil {
		return prefix(err, "Could not open backing file: ")
	}
	n.autoBacking = b.Filename() // bdrv_open_backing_file's implicit backing
	return nil
}

// rawProbeWarning is what QEMU prints when it guessed raw for an image without format=.
const rawProbeWarning = "WARNING: Image format was not specified for '%s' and probing guessed raw.\n" +
	"         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n" +
	"         Specify the 'raw' format explicitly to remove the restrictions.\n"

// probe guesses an image's format from its first bytes as bdrv_probe_all does, for the
// formats tlcvm opens; images of other known formats are refused by name.
func probe(file *Node) (string, error) {
	buf := make([]byte, 2048)
	n, _ := imageReader(file).ReadAt(buf, 0)
	buf = buf[:n]
	if file.Size() == 0 {
		return DriverRaw, nil
	}
	if f := probeOther(buf); f != "" {
		return "", errf(ErrUnsupported, "tlcvm: image format '%s' of '%s' is not supported (tlcvm opens raw and qcow2)", f, file.filename)
	}
	if len(buf) >= 8 && bytes.Equal(buf[:4], []byte("QFI\xfb")) && beUint32(buf[4:]) >= 2 {
		return DriverQcow2, nil
	}
	return DriverRaw, nil
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// probeOther recognises the other formats QEMU probes.
func probeOther(b []byte) string {
	has := func(off int, magic string) bool {
		return len(b) >= off+len(magic) && string(b[off:off+len(magic)]) == magic
	}
	switch {
	case len(b) >= 8 && has(0, "QFI\xfb") && beUint32(b[4:]) < 2:
		return "qcow"
	case has(0, "QED\x00"):
		return "qed"
	case has(0, "KDMV"), has(0, "COWD"), has(0, "# Disk DescriptorFile"):
		return "vmdk"
	case has(0, "conectix"):
		return "vpc"
	case has(0, "vhdxfile"):
		return "vhdx"
	case has(0, "LUKS\xba\xbe"):
		return "luks"
	case has(0, "WithoutFreeSpace"), has(0, "WithouFreSpacExt"):
		return "parallels"
	case has(0, "Bochs Virtual HD Image"):
		return "bochs"
	case len(b) >= 0x44 && beUint32(b[0x40:]) == 0x7f10dabe:
		return "vdi"
	}
	return ""
}

// String describes a node for logs.
func (n *Node) String() string { return fmt.Sprintf("%s(%s %s)", n.Name, n.Driver, n.filename) }

package blockdev

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"tlcvm/compat/qerror"
)

// Drivers tlcvm opens.
const (
	DriverFile       = "file"
	DriverHostDevice = "host_device" // file-posix over a block or character device
	DriverRaw        = "raw"
	DriverQcow2      = "qcow2"
)

// protocol reports whether n is a protocol node over a host file or device.
func (n *Node) protocol() bool {
	return n.Driver == DriverFile || n.Driver == DriverHostDevice || n.Driver == DriverNBD || isNull(n.Driver)
}

// Node is one block node (QEMU's BlockDriverState): a "file" protocol node over a host file,
// or a "raw"/"qcow2" format node over a file child, with an optional backing node (qcow2).
// Nodes are owned by their Graph and changed only under its lock.
type Node struct {
	Name         string // node-name, or "#blockNNN" when generated
	Driver       string
	ReadOnly     bool
	AutoReadOnly bool
	Discard      string // "ignore" or "unmap"
	DetectZeroes string // "off", "on" or "unmap"
	Direct       bool   // cache.direct
	NoFlush      bool   // cache.no-flush
	File         *Node  // format nodes: the protocol child
	Backing      *Node  // qcow2: the backing node, nil when none
	// BackingFile/BackingFormat are the names recorded in the image header ("" when none).
	BackingFile, BackingFormat string
	// autoBacking is QEMU's auto_backing_file: the header's backing name as written, or
	// the backing node's file name when the backing was opened from it (filename.go).
	autoBacking string
	nodeIO      // the data path's state (io.go)
	nodeBitmaps // dirty bitmaps (bitmap.go)
	// opts are the options the node was opened or last reopened with (reopen.go).
	opts *Options

	g        *Graph
	filename string   // file: the host path as given; format: the file child's
	f        *os.File // file nodes only
	rw       bool     // f is open O_RDWR
	lock     fileLock
	perm     Perm // file nodes: permissions currently locked
	shared   Perm
	hdr      *Qcow2Header
	parents  []edge
	implicit bool   // created by -drive/-hda or for a backing file (not by -blockdev/blockdev-add)
	owned    bool   // the root of a -blockdev/blockdev-add: lives until blockdev-del
	tempFile string // -drive snapshot=on: the temporary overlay, removed on close
	inactive bool   // QEMU's BDRV_O_INACTIVE: another process owns the image (activate.go)
	// jobBlockers are the block jobs holding the node, newest first (opblock.go).
	jobBlockers []*Job
	// filter is a filter node's state (filter.go); nil for file and format nodes.
	filter *filterState
	dbg    *blkdebug  // blkdebug nodes: rules and breakpoints (blkdebug.go)
	remote *nbdRemote // nbd nodes: the connection (nbd.go)
	null   *nullState // null-co, null-aio nodes (null.go)
}

// edge is a parent's use of a child node.
type edge struct {
	node    *Node    // parent node, or
	backend *Backend // parent backend
	temp    *tempUse // or a temporary user (block_resize, blockdev-create)
	role    string   // "file", "backing", "root"
}

// tempUse is a short-lived user of a node with fixed permissions: a temporary backend
// (block_resize, blockdev-create) or a block job's hold on a node (job set).
type tempUse struct {
	perm, shared Perm
	job          *Job
}

// IsFormat reports whether n is a format node (raw, qcow2).
func (n *Node) IsFormat() bool { return !n.protocol() }

// Size is the node's virtual size in bytes: the host file's length rounded up to 512
// bytes for file and raw nodes, the header's size for qcow2.
func (n *Node) Size() int64 {
	if n.filter != nil {
		return n.Filtered().Size()
	}
	switch n.Driver {
	case DriverQcow2:
		return n.vsize.Load()
	case DriverRaw, DriverBlkdebug:
		return n.File.Size()
	case DriverNBD:
		return n.remote.size
	case DriverNullCo, DriverNullAIO:
		return (n.null.size + 511) &^ 511
	}
	st, err := n.stat()
	if err != nil {
		return 0
	}
	if st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
		// A block device's length is where it ends; a character device has none.
		end, err := n.f.Seek(0, io.SeekEnd)
		if err != nil {
			return 0
		}
		return end
	}
	return (st.Size() + 511) &^ 511
}

// stat is fstat of a file node's host file (fmu keeps n.f from being swapped meanwhile).
func (n *Node) stat() (os.FileInfo, error) {
	n.fmu.Lock()
	defer n.fmu.Unlock()
	if n.f == nil {
		return nil, os.ErrClosed
	}
	return n.f.Stat()
}

// ActualSize is the host file's allocated bytes (st_blocks * 512).
func (n *Node) ActualSize() int64 {
	if n.filter != nil {
		return n.Filtered().ActualSize()
	}
	if n.File != nil {
		return n.File.ActualSize()
	}
	if n.remote != nil || n.null != nil {
		return 0 // null_allocated_file_size
	}
	st, err := n.stat()
	if err != nil {
		return 0
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Blocks * 512
	}
	return st.Size()
}

// ActualSizeKnown reports whether ActualSize means anything: not for a node whose
// protocol node is an nbd one (bdrv_get_allocated_file_size is -ENOTSUP there, and
// QEMU leaves actual-size out of the image info).
func (n *Node) ActualSizeKnown() bool {
	for x := n; x != nil; x = x.File {
		if x.filter != nil {
			x = x.Filtered()
			if x == nil {
				return false
			}
		}
		if x.Driver == DriverNBD {
			return false
		}
	}
	return true
}

// InfoKnown reports whether bdrv_get_info answers for n (query-block's dirty-flag): not
// when n's protocol node, down the file chain, is a null node (block/null.c has no
// bdrv_get_info, and raw's passes the question down).
func (n *Node) InfoKnown() bool {
	x := n
	for x != nil && x.File != nil && x.Driver != DriverQcow2 {
		x = x.File
	}
	return x == nil || x.null == nil
}

// Header returns the qcow2 header (nil for other drivers).
func (n *Node) Header() *Qcow2Header { return n.hdr }

// BackingDepth is the length of the backing chain below n, filters counted
// (bdrv_filter_or_cow_bs steps); skipImplicit leaves implicit filters out, as query-block
// does.
func (n *Node) BackingDepth(skipImplicit bool) int {
	d := 0
	for b := n.FilteredOrBacking(); b != nil; b = b.FilteredOrBacking() {
		if skipImplicit {
			if b = SkipImplicit(b); b == nil {
				break
			}
		}
		d++
	}
	return d
}

// FullBackingFilename is the backing file name resolved against the image's directory, as
// bdrv_get_full_backing_filename does ("" when there is none).
func (n *Node) FullBackingFilename() string {
	if n.BackingFile == "" {
		return ""
	}
	return combinePath(n.filename, n.BackingFile)
}

// combinePath is QEMU's path_combine: name relative to the directory of base.
func combinePath(base, name string) string {
	if filepath.IsAbs(name) || strings.Contains(name, "://") {
		return name
	}
	i := strings.LastIndexByte(base, '/')
	if i < 0 {
		return name
	}
	return base[:i+1] + name
}

// Parents returns a description of n's users, for tests and diagnostics.
func (n *Node) Parents() []string {
	var out []string
	for _, e := range n.parents {
		out = append(out, e.desc()+" as "+e.role)
	}
	return out
}

func (e edge) desc() string {
	switch {
	case e.node != nil:
		return fmt.Sprintf("node '%s'", e.node.Name)
	case e.temp != nil && e.temp.job != nil:
		return fmt.Sprintf("%s job '%s'", e.temp.job.drv.Type, e.temp.job.id)
	case e.backend != nil:
		if e.backend.Name != "" {
			return fmt.Sprintf("block device '%s'", e.backend.Name)
		}
		if d := e.backend.Device; d != nil && d.Qdev() != "" {
			// blk_get_attached_dev_id: the device's id, or its QOM path (a virtio-blk
			// proxy's backend device has no id).
			return fmt.Sprintf("block device '%s'", d.Qdev())
		}
		return "an unnamed block device"
	}
	return "an unnamed block device"
}

func (n *Node) addParent(e edge) { n.parents = append(n.parents, e) }

func (n *Node) removeParent(match func(edge) bool) {
	out := n.parents[:0]
	for _, e := range n.parents {
		if !match(e) {
			out = append(out, e)
		}
	}
	n.parents = out
}

// openHostFile opens a file node's host file: read-write unless read-only, or read-only
// first under auto-read-only (reopened read-write when a user needs to write).
func openHostFile(name string, rw bool) (*os.File, error) {
	flag := os.O_RDONLY
	if rw {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(name, flag|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, qerror.Errno(ErrOpen, err, "Could not open '%s'", name)
	}
	return f, nil
}

// checkHostFileType is raw_open_common's check: "file" opens regular files only,
// "host_device" block and character devices only.
func checkHostFileType(f *os.File, driver, name string) error {
	st, err := f.Stat()
	if err != nil {
		return qerror.Errno(ErrOpen, err, "Could not open '%s'", name)
	}
	device := st.Mode()&os.ModeDevice != 0
	switch {
	case driver == DriverFile && !st.Mode().IsRegular():
		return errf(ErrOpen, "'%s' driver requires '%s' to be a regular file", driver, name)
	case driver == DriverHostDevice && !device:
		return errf(ErrOpen, "'%s' driver requires '%s' to be either a character or block device", driver, name)
	}
	return nil
}

// hostDriver is the protocol QEMU's bdrv_find_protocol picks for a plain file name: a
// block or character device is a host_device, anything else a file.
func hostDriver(name string) string {
	if st, err := os.Stat(name); err == nil && st.Mode()&os.ModeDevice != 0 {
		return DriverHostDevice
	}
	return DriverFile
}

// reopen switches a file node's descriptor between read-only and read-write, moving its
// locks to the new open file description.
func (n *Node) reopen(rw bool) error {
	f, err := os.OpenFile(n.filename, map[bool]int{true: os.O_RDWR, false: os.O_RDONLY}[rw]|syscall.O_CLOEXEC, 0)
	if err != nil {
		return qerror.Errno(ErrOpen, err, "Could not reopen file")
	}
	nl := fileLock{fd: int(f.Fd()), off: n.lock.off}
	if err := nl.apply(n.lock.lockedPerm, n.lock.lockedUnshar, false); err != nil {
		f.Close()
		return err
	}
	n.io.Lock() // drain: no request uses the old descriptor any more
	old := n.f
	n.fmu.Lock()
	n.f, n.rw, n.lock = f, rw, nl
	n.fmu.Unlock()
	n.io.Unlock()
	old.Close()
	return nil
}

// close releases the host file (and with it every lock of its open file description),
// once the requests in flight are done.
func (n *Node) close() {
	n.io.Lock()
	defer n.io.Unlock()
	n.closed = true
	n.nbdClose()
	n.fmu.Lock()
	defer n.fmu.Unlock()
	if n.f != nil {
		n.f.Close()
		n.f = nil
	}
}

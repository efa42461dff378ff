package cmds

import (
	"errors"
	"fmt"
	"io"
	"net"

	"tlcvm/blockdev"
	"tlcvm/compat/optval"
	"tlcvm/nbd"
	"tlcvm/qmp"
)

// The NBD server and block exports (qapi/block-export.json): nbd-server-start, -add,
// -remove, -stop, block-export-add, block-export-del, query-block-exports and the
// BLOCK_EXPORT_DELETED event. An export holds its node through blockdev (permissions,
// QEMU's texts for conflicts) and its bitmaps busy; package nbd serves it through
// nodeDevice. The checks run in QEMU 7.2's order (blk_exp_add, then nbd_export_create).

// The socket address types (SocketAddressLegacy, SocketAddress and their variants) are
// shared with the chardev and network commands (chardev.go, net.go).

// NbdServerStartArgs are nbd-server-start's arguments.
type NbdServerStartArgs struct {
	Addr           SocketAddressLegacy `json:"addr"`
	TLSCreds       *string             `json:"tls-creds,omitempty"`
	TLSAuthz       *string             `json:"tls-authz,omitempty"`
	MaxConnections *uint32             `json:"max-connections,omitempty"`
}

// NbdServerAddOptions are nbd-server-add's arguments.
type NbdServerAddOptions struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	Device      string  `json:"device"`
	Writable    *bool   `json:"writable,omitempty"`
	Bitmap      *string `json:"bitmap,omitempty"`
}

// BlockExportRemoveMode is BlockExportRemoveMode.
type BlockExportRemoveMode string

// EnumValues implements qmp.Enum.
func (BlockExportRemoveMode) EnumValues() []string { return []string{"safe", "hard"} }

// NbdServerRemoveArgs are nbd-server-remove's arguments.
type NbdServerRemoveArgs struct {
	Name string                 `json:"name"`
	Mode *BlockExportRemoveMode `json:"mode,omitempty"`
}

// BlockExportType is BlockExportType.
type BlockExportType string

// EnumValues implements qmp.Enum.
func (BlockExportType) EnumValues() []string {
	return []string{"nbd", "vhost-user-blk", "fuse", "vduse-blk"}
}

// BlockExportOptions is block-export-add's argument (a flat union on type).
type BlockExportOptions struct {
	Type          BlockExportType `json:"type"`
	ID            string          `json:"id"`
	FixedIothread *bool           `json:"fixed-iothread,omitempty"`
	Iothread      *string         `json:"iothread,omitempty"`
	NodeName      string          `json:"node-name"`
	Writable      *bool           `json:"writable,omitempty"`
	Writethrough  *bool           `json:"writethrough,omitempty"`
	Variant       any             `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (BlockExportOptions) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union.
func (BlockExportOptions) UnionVariants() map[string]any {
	return map[string]any{"nbd": BlockExportOptionsNbd{}, "vhost-user-blk": BlockExportOptionsVhostUserBlk{},
		"fuse": BlockExportOptionsFuse{}, "vduse-blk": BlockExportOptionsVduseBlk{}}
}

// BlockExportOptionsNbd is the nbd variant.
type BlockExportOptionsNbd struct {
	Name            *string                  `json:"name,omitempty"`
	Description     *string                  `json:"description,omitempty"`
	Bitmaps         *[]BlockDirtyBitmapOrStr `json:"bitmaps,omitempty"`
	AllocationDepth *bool                    `json:"allocation-depth,omitempty"`
}

// BlockExportOptionsVhostUserBlk is the vhost-user-blk variant (refused).
type BlockExportOptionsVhostUserBlk struct {
	Addr             SocketAddress `json:"addr"`
	LogicalBlockSize *uint64       `json:"logical-block-size,omitempty"`
	NumQueues        *uint16       `json:"num-queues,omitempty"`
}

// FuseExportAllowOther is FuseExportAllowOther.
type FuseExportAllowOther string

// EnumValues implements qmp.Enum.
func (FuseExportAllowOther) EnumValues() []string { return []string{"off", "on", "auto"} }

// BlockExportOptionsFuse is the fuse variant (refused).
type BlockExportOptionsFuse struct {
	Mountpoint string                `json:"mountpoint"`
	Growable   *bool                 `json:"growable,omitempty"`
	AllowOther *FuseExportAllowOther `json:"allow-other,omitempty"`
}

// BlockExportOptionsVduseBlk is the vduse-blk variant (refused).
type BlockExportOptionsVduseBlk struct {
	Name             string  `json:"name"`
	NumQueues        *uint16 `json:"num-queues,omitempty"`
	QueueSize        *uint16 `json:"queue-size,omitempty"`
	LogicalBlockSize *uint64 `json:"logical-block-size,omitempty"`
	Serial           *string `json:"serial,omitempty"`
}

// BlockExportDelArgs are block-export-del's arguments.
type BlockExportDelArgs struct {
	ID   string                 `json:"id"`
	Mode *BlockExportRemoveMode `json:"mode,omitempty"`
}

// BlockExportInfo is one element of query-block-exports.
type BlockExportInfo struct {
	qmp.QAPIOrder
	ID           string          `json:"id"`
	Type         BlockExportType `json:"type"`
	NodeName     string          `json:"node-name"`
	ShuttingDown bool            `json:"shutting-down"`
}

// BlockExportDeletedData is BLOCK_EXPORT_DELETED's data.
type BlockExportDeletedData struct {
	ID string `json:"id"`
}

// nbdExports is what the NBD server and block export commands need of the NBD server:
// start (after CheckStart's checks) and stop it, and add (after CheckAdd's), remove and list
// its exports.
type nbdExports interface {
	CheckStart() error
	Start(l net.Listener, maxConns uint32) error
	Stop() error
	HasID(id string) bool
	CheckAdd(name, description string) error
	Add(cfg nbd.ExportConfig) error
	Remove(id string, hard bool) error
	Exports() []nbd.ExportInfo
}

// exportNodes is what block-export-add needs of the block layer: the node to export, held
// with the permissions an export takes, and the bitmaps it offers.
type exportNodes interface {
	LookupNode(name string) (*blockdev.Node, error)
	UseForExport(node string, writable bool) (*blockdev.ExportUse, error)
	LookupBitmap(node, name string) (*blockdev.Bitmap, error)
}

func registerNBD(r *qmp.Registry, d *Deps) {
	if d.NBD == nil || d.Block == nil {
		return
	}
	nbdCommands(r, d.NBD, d.Block)
}

// nbdCommands registers the NBD server and block export commands: s serves the exports
// of g's nodes.
func nbdCommands(r *qmp.Registry, s nbdExports, g exportNodes) {
	r.RegisterEvent("BLOCK_EXPORT_DELETED", BlockExportDeletedData{})
	r.Register(
		qmp.Command{Name: "nbd-server-start", Args: &NbdServerStartArgs{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) { return nil, nbdServerStart(c, s, c.Args.(*NbdServerStartArgs)) }},
		qmp.Command{Name: "nbd-server-add", Args: &NbdServerAddOptions{}, AllowPreconfig: true, Features: []string{"deprecated"},
			Run: func(c *qmp.Call) (any, error) { return nil, nbdServerAdd(c, s, g, c.Args.(*NbdServerAddOptions)) }},
		qmp.Command{Name: "nbd-server-remove", Args: &NbdServerRemoveArgs{}, AllowPreconfig: true, Features: []string{"deprecated"},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*NbdServerRemoveArgs)
				return nil, s.Remove(a.Name, a.Mode != nil && *a.Mode == "hard")
			}},
		qmp.Command{Name: "nbd-server-stop", AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) { return nil, s.Stop() }},
		qmp.Command{Name: "block-export-add", Args: &BlockExportOptions{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) { return nil, blockExportAdd(c, s, g, c.Args.(*BlockExportOptions)) }},
		qmp.Command{Name: "block-export-del", Args: &BlockExportDelArgs{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*BlockExportDelArgs)
				return nil, s.Remove(a.ID, a.Mode != nil && *a.Mode == "hard")
			}},
		qmp.Command{Name: "query-block-exports", Returns: []BlockExportInfo{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) {
				out := []BlockExportInfo{}
				for _, e := range s.Exports() {
					out = append(out, BlockExportInfo{ID: e.ID, Type: "nbd", NodeName: e.Node, ShuttingDown: e.ShuttingDown})
				}
				return out, nil
			}},
	)
}

// nbdServerStart is nbd-server-start: the listener, then the TLS credentials (tlcvm has
// no TLS objects, so any name is unknown, as in a QEMU without them).
func nbdServerStart(c *qmp.Call, s nbdExports, a *NbdServerStartArgs) error {
	if err := s.CheckStart(); err != nil {
		return err
	}
	addr, err := listenAddress(c, &a.Addr)
	if err != nil {
		return err
	}
	l, err := nbd.Listen(addr)
	if err != nil {
		return err
	}
	if a.TLSCreds != nil {
		l.Close()
		return qmp.GenericError("No TLS credentials with id '%s'", *a.TLSCreds)
	}
	var maxConns uint32
	if a.MaxConnections != nil {
		maxConns = *a.MaxConnections
	}
	if err := s.Start(l, maxConns); err != nil {
		l.Close()
		return err
	}
	return nil
}

// listenAddress flattens SocketAddressLegacy (socket_address_flatten), taking an fd
// address's descriptor from the monitor (socket_get_fd).
func listenAddress(c *qmp.Call, a *SocketAddressLegacy) (nbd.SocketAddress, error) {
	switch v := a.Variant.(type) {
	case *InetSocketAddressWrapper:
		return socketAddress(c, &v.Data)
	case *UnixSocketAddressWrapper:
		return socketAddress(c, &v.Data)
	case *VsockSocketAddressWrapper:
		return socketAddress(c, &v.Data)
	case *StringWrapper:
		return socketAddress(c, &v.Data)
	}
	return nbd.SocketAddress{}, qmp.GenericError("Invalid parameter 'type'")
}

// socketAddress is a SocketAddress variant as nbd.Listen takes it, an fd address's
// descriptor taken from the monitor (socket_get_fd).
func socketAddress(c *qmp.Call, variant any) (nbd.SocketAddress, error) {
	switch v := variant.(type) {
	case *InetSocketAddress:
		out := nbd.SocketAddress{Type: "inet", Host: v.Host, Port: v.Port, IPv4: v.IPv4, IPv6: v.IPv6}
		if v.To != nil {
			to := int(*v.To)
			out.To = &to
		}
		return out, nil
	case *UnixSocketAddress:
		return nbd.SocketAddress{Type: "unix", Path: v.Path, Abstract: v.Abstract != nil && *v.Abstract}, nil
	case *VsockSocketAddress:
		return nbd.SocketAddress{Type: "vsock", CID: v.CID, Port: v.Port}, nil
	case *String:
		if c.Session == nil {
			return nbd.SocketAddress{}, qmp.GenericError("File descriptor named '%s' has not been found", v.Str)
		}
		fd, err := c.Session.TakeFD(v.Str)
		if err != nil {
			return nbd.SocketAddress{}, err
		}
		return nbd.SocketAddress{Type: "fd", FD: fd}, nil
	}
	return nbd.SocketAddress{}, qmp.GenericError("Invalid parameter 'type'")
}

// nbdServerAdd is the legacy nbd-server-add: block-export-add with the device as id and
// name, a read-only node quietly exported read-only.
func nbdServerAdd(c *qmp.Call, s nbdExports, g exportNodes, a *NbdServerAddOptions) error {
	n, err := g.LookupNode(a.Device)
	if err != nil {
		return err
	}
	name := a.Device
	if a.Name != nil {
		name = *a.Name
	}
	o := &BlockExportOptions{Type: "nbd", ID: name, NodeName: n.Name, Writable: a.Writable}
	nb := &BlockExportOptionsNbd{Name: &name, Description: a.Description}
	if a.Bitmap != nil {
		nb.Bitmaps = &[]BlockDirtyBitmapOrStr{{Local: *a.Bitmap}}
	}
	o.Variant = nb
	if n.ReadOnly {
		f := false
		o.Writable = &f
	}
	return blockExportAdd(c, s, g, o)
}

// blockExportAdd is block-export-add (blk_exp_add, nbd_export_create).
func blockExportAdd(c *qmp.Call, s nbdExports, g exportNodes, o *BlockExportOptions) error {
	if !optval.ID(o.ID) {
		return qmp.GenericError("Invalid block export id")
	}
	if s.HasID(o.ID) {
		return qmp.GenericError("Block export id '%s' is already in use", o.ID)
	}
	v, ok := o.Variant.(*BlockExportOptionsNbd)
	if !ok {
		return qmp.GenericError("tlcvm: block export type '%s' is not supported", o.Type)
	}
	writable := o.Writable != nil && *o.Writable
	use, err := g.UseForExport(o.NodeName, writable)
	if err != nil {
		return err
	}
	release := use.Release
	defer func() {
		if release != nil {
			release()
		}
	}()
	n := use.Node()
	name := o.NodeName
	if v.Name != nil {
		name = *v.Name
	}
	desc := ""
	if v.Description != nil {
		desc = *v.Description
	}
	if err := s.CheckAdd(name, desc); err != nil {
		return err
	}
	if err := use.ShareNoResize(); err != nil {
		return err
	}
	var bitmaps []*blockdev.Bitmap
	if v.Bitmaps != nil {
		for _, b := range *v.Bitmaps {
			bm, err := exportBitmap(g, n, b, writable)
			if err != nil {
				return err
			}
			bitmaps = append(bitmaps, bm)
		}
	}
	srv := c.Server()
	id := o.ID
	nbdBitmaps := make([]nbd.DirtyBitmap, len(bitmaps))
	for i, b := range bitmaps {
		nbdBitmaps[i] = b
	}
	cfg := nbd.ExportConfig{ID: id, Node: n.Name, Name: name, Description: desc, Device: nodeDevice{use},
		Size: n.Size(), Writable: writable, Bitmaps: nbdBitmaps,
		AllocationDepth: v.AllocationDepth != nil && *v.AllocationDepth}
	done := use.Release
	cfg.Deleted = func() {
		for _, b := range bitmaps {
			b.SetBusy(false)
		}
		done()
		if srv != nil {
			srv.Emit("BLOCK_EXPORT_DELETED", BlockExportDeletedData{ID: id})
		}
	}
	for _, b := range bitmaps {
		b.SetBusy(true)
	}
	if err := s.Add(cfg); err != nil {
		for _, b := range bitmaps {
			b.SetBusy(false)
		}
		return err
	}
	release = nil // the export holds the node now
	return nil
}

// exportBitmap resolves one of an export's bitmaps (nbd_export_create): a name is looked
// up in the node and below it; an enabled bitmap of a writable node cannot be exported
// read-only; the bitmap must be neither busy nor inconsistent.
func exportBitmap(g exportNodes, n *blockdev.Node, b BlockDirtyBitmapOrStr, writable bool) (*blockdev.Bitmap, error) {
	var bm *blockdev.Bitmap
	if b.External == nil {
		found, on, ok := n.FindBitmapInChain(b.Local)
		if !ok {
			return nil, qmp.GenericError("Bitmap '%s' is not found", b.Local)
		}
		if !writable && !on.ReadOnly && found.Enabled() {
			return nil, qmp.GenericError("Enabled bitmap '%s' incompatible with readonly export", b.Local)
		}
		bm = found
	} else {
		var err error
		if bm, err = g.LookupBitmap(b.External.Node, b.External.Name); err != nil {
			return nil, err
		}
	}
	if err := bm.Check(); err != nil {
		return nil, err
	}
	return bm, nil
}

// nodeDevice serves an export's node to NBD clients (through the export's backend).
type nodeDevice struct{ u *blockdev.ExportUse }

// nbdErr gives a block layer error the NBD error value QEMU's system_errno_to_nbd_errno
// would give its errno.
func nbdErr(err error) error {
	if err == nil {
		return nil
	}
	errno := uint32(nbd.EIO)
	switch {
	case errors.Is(err, blockdev.ErrReadOnly):
		errno = nbd.EPERM
	case errors.Is(err, blockdev.ErrInvalid):
		errno = nbd.EINVAL
	case errors.Is(err, blockdev.ErrUnsupported):
		errno = nbd.ENOTSUP
	}
	return &nbd.Error{Errno: errno, Err: err}
}

func (d nodeDevice) ReadAt(p []byte, off int64) (int, error) {
	err := d.u.Do(func(n *blockdev.Node) error {
		got, err := n.ReadAt(p, off)
		if err == io.EOF {
			clear(p[got:]) // past a node that shrank: zeroes
			return nil
		}
		return err
	})
	if err != nil {
		return 0, nbdErr(err)
	}
	return len(p), nil
}

func (d nodeDevice) WriteAt(p []byte, off int64) (int, error) {
	err := d.u.Do(func(n *blockdev.Node) error {
		_, err := n.WriteAt(p, off)
		return err
	})
	if err != nil {
		return 0, nbdErr(err)
	}
	return len(p), nil
}

func (d nodeDevice) WriteZeroes(off, length int64, mayTrim bool) error {
	var fl blockdev.ZeroFlags
	if mayTrim {
		fl = blockdev.ZeroMayUnmap
	}
	return nbdErr(d.u.Do(func(n *blockdev.Node) error { return n.WriteZeroes(off, length, fl) }))
}

func (d nodeDevice) Trim(off, length int64) error {
	return nbdErr(d.u.Do(func(n *blockdev.Node) error { return n.Unmap(off, length) }))
}

func (d nodeDevice) Flush() error {
	return nbdErr(d.u.Do(func(n *blockdev.Node) error { return n.Flush() }))
}

func (d nodeDevice) Status(off, length int64) (nbd.Extent, error) {
	var out nbd.Extent
	err := d.u.Do(func(n *blockdev.Node) error {
		if end := n.Size(); off+length > end { // the node shrank under the export
			if off >= end {
				out = nbd.Extent{Length: length, Zero: true}
				return nil
			}
			length = end - off
		}
		ex, err := n.BlockStatusAbove(nil, off, length)
		if err != nil {
			return err
		}
		out = nbd.Extent{Length: ex.Length, Data: ex.Status&blockdev.StatusData != 0,
			Zero: ex.Status&blockdev.StatusZero != 0, Depth: ex.Depth}
		return nil
	})
	return out, nbdErr(err)
}

// String is for logs.
func (d nodeDevice) String() string { return fmt.Sprintf("node %s", d.u.Node().Name) }

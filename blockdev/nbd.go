package blockdev

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"tlcvm/compat/qerror"
	"tlcvm/nbd"
)

// The "nbd" protocol driver (QEMU 7.2's block/nbd.c): a node whose content is an export of
// an NBD server, reached through package nbd's Client — the target node libvirt adds on
// the source of a migration with storage (--copy-storage-all/-inc) to mirror the disk into
// the destination's export.
//
//	blockdev-add {"driver":"nbd","server":{"type":"inet","host":H,"port":P},"export":E}
//	  ──▶ connect (QEMU's "Failed to connect to 'H:P': …")
//	  ──▶ handshake: STRUCTURED_REPLY, SET_META_CONTEXT base:allocation, GO (EXPORT_NAME
//	      for an old server); size and transmission flags from the server
//	read         NBD_CMD_READ (data and hole chunks)
//	write        NBD_CMD_WRITE
//	write zeroes NBD_CMD_WRITE_ZEROES, NO_HOLE unless the caller may unmap; zero buffers
//	             when the export cannot write zeroes
//	discard      NBD_CMD_TRIM (nothing when the export does not trim)
//	flush        NBD_CMD_FLUSH (nothing when the export does not flush)
//	block status NBD_CMD_BLOCK_STATUS REQ_ONE of base:allocation: HOLE clears DATA, ZERO
//	             sets ZERO; data throughout without the context
//
// The node has no host file and takes no image locks (the server's image is the server's);
// its filename is QEMU's URI form: nbd://HOST:PORT/EXPORT, nbd+unix:///EXPORT?socket=PATH.
// Requests longer than the server's 32 MiB are split. A transport or protocol failure
// leaves the connection broken and every later request failing with EIO (tlcvm does not
// reconnect; reconnect-delay and open-timeout are accepted and have nothing to wait for).

// DriverNBD is the nbd protocol driver.
const DriverNBD = "nbd"

// NBDOptions are the nbd driver's options (BlockdevOptionsNbd).
type NBDOptions struct {
	Server   nbd.SocketAddress // "inet" or "unix"
	Export   string
	TLSCreds string
	// DirtyBitmap is x-dirty-bitmap: the qemu:dirty-bitmap context read as block status
	// (not supported: tlcvm's client reads base:allocation only).
	DirtyBitmap string
}

// nbdRemote is an nbd node's connection.
type nbdRemote struct {
	c     *nbd.Client
	size  int64
	flags uint16
	alloc uint32 // base:allocation's context id
	// hasAlloc: the server selected base:allocation.
	hasAlloc bool
}

// nbdConnectTimeout bounds the connection attempt (QEMU waits for the kernel's).
const nbdConnectTimeout = 30 * time.Second

// nbdFilename is the node's filename as QEMU's nbd_refresh_filename writes it.
func nbdFilename(o *NBDOptions) string {
	a := o.Server
	if a.Type == "unix" {
		return fmt.Sprintf("nbd+unix:///%s?socket=%s", o.Export, a.Path)
	}
	host := a.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if o.Export == "" {
		return fmt.Sprintf("nbd://%s:%s", host, a.Port)
	}
	return fmt.Sprintf("nbd://%s:%s/%s", host, a.Port, o.Export)
}

// openNBD connects an nbd node (nbd_open) and names it.
func (g *Graph) openNBD(n *Node, o *Options, opened *[]*Node) (*Node, error) {
	no := o.NBD
	if no == nil {
		return nil, errf(ErrInvalid, "Parameter 'server' is missing")
	}
	if no.TLSCreds != "" {
		// tlcvm has no TLS credential objects: any id is unknown, as in QEMU without it.
		return nil, errf(ErrInvalid, "No TLS credentials with id '%s'", no.TLSCreds)
	}
	if no.DirtyBitmap != "" {
		return nil, errf(ErrUnsupported, "tlcvm: the nbd driver's x-dirty-bitmap is not supported")
	}
	var network, addr, shown string
	switch no.Server.Type {
	case "inet":
		network, addr = "tcp", net.JoinHostPort(no.Server.Host, no.Server.Port)
		shown = no.Server.Host + ":" + no.Server.Port
	case "unix":
		network, addr, shown = "unix", no.Server.Path, no.Server.Path
		if no.Server.Abstract {
			addr = "@" + addr
		}
	default:
		return nil, errf(ErrUnsupported, "tlcvm: nbd server address type '%s' is not supported", no.Server.Type)
	}
	nc, err := net.DialTimeout(network, addr, nbdConnectTimeout)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return nil, qerror.Errno(ErrOpen, errno, "Failed to connect to '%s'", shown)
		}
		return nil, errf(ErrOpen, "Failed to connect to '%s': %v", shown, err)
	}
	c, err := nbd.Connect(nc, no.Export, "base:allocation")
	if err != nil {
		return nil, nbdHandshakeError(err)
	}
	r := &nbdRemote{c: c, size: c.Size, flags: c.Flags}
	r.alloc, r.hasAlloc = c.Context("base:allocation")
	if r.flags&nbd.FlagReadOnly != 0 && !n.ReadOnly {
		if !n.AutoReadOnly {
			c.Disconnect()
			return nil, errf(ErrReadOnly, "NBD export is read-only")
		}
		n.ReadOnly = true
	}
	n.remote, n.filename = r, nbdFilename(no)
	g.name(n, o.NodeName, opened)
	return n, nil
}

// nbdHandshakeError is QEMU's text for a failed negotiation.
func nbdHandshakeError(err error) error {
	var oe *nbd.OptError
	if errors.As(err, &oe) {
		switch oe.Rep {
		case nbd.RepErrUnknown:
			return errf(ErrOpen, "Requested export not available")
		case nbd.RepErrTLSReqd:
			return errf(ErrOpen, "Server requires TLS for this export")
		}
		if oe.Msg != "" {
			return errf(ErrOpen, "server reported: %s", oe.Msg)
		}
	}
	return errf(ErrOpen, "Failed to read initial magic: %v", err)
}

// nbdIOError turns a request's failure into the block layer's error.
func (n *Node) nbdIOError(op string, err error) error {
	var re *nbd.ErrReply
	if errors.As(err, &re) {
		return qerror.Errno(ErrIO, syscall.Errno(re.Errno), "tlcvm: nbd %s on '%s'", op, n.Name)
	}
	return qerror.Errno(ErrIO, syscall.EIO, "tlcvm: nbd %s on '%s' (%v)", op, n.Name, err)
}

// nbdChunk is the largest request sent (the server's limit).
const nbdChunk = nbd.MaxBufferSize

func (n *Node) nbdRead(p []byte, off int64) error {
	return n.nbdData("read", n.remote.c.ReadAt, p, off)
}

func (n *Node) nbdWrite(p []byte, off int64) error {
	return n.nbdData("write", n.remote.c.WriteAt, p, off)
}

// nbdData runs a read or write of p at off in requests of at most nbdChunk bytes.
func (n *Node) nbdData(op string, do func([]byte, int64) (int, error), p []byte, off int64) error {
	for len(p) > 0 {
		k := min(len(p), nbdChunk)
		if _, err := do(p[:k], off); err != nil {
			return n.nbdIOError(op, err)
		}
		p, off = p[k:], off+int64(k)
	}
	return nil
}

// nbdRanges runs f over [off, off+length) in requests the server takes.
func nbdRanges(off, length int64, f func(off int64, k uint32) error) error {
	for length > 0 {
		k := min(length, 1<<30)
		if err := f(off, uint32(k)); err != nil {
			return err
		}
		off, length = off+k, length-k
	}
	return nil
}

func (n *Node) nbdWriteZeroes(off, length int64, fl ZeroFlags) error {
	r := n.remote
	if r.flags&nbd.FlagSendWriteZeroes == 0 {
		buf := make([]byte, min(length, 1<<20))
		for length > 0 {
			k := min(length, int64(len(buf)))
			if err := n.nbdWrite(buf[:k], off); err != nil {
				return err
			}
			off, length = off+k, length-k
		}
		return nil
	}
	var flags uint16
	if fl&ZeroMayUnmap == 0 {
		flags |= nbd.CmdFlagNoHole
	}
	return nbdRanges(off, length, func(off int64, k uint32) error {
		if err := r.c.Command(nbd.CmdWriteZeroes, flags, off, k); err != nil {
			return n.nbdIOError("write zeroes", err)
		}
		return nil
	})
}

func (n *Node) nbdDiscard(off, length int64) error {
	r := n.remote
	if r.flags&nbd.FlagSendTrim == 0 {
		return nil
	}
	return nbdRanges(off, length, func(off int64, k uint32) error {
		if err := r.c.Command(nbd.CmdTrim, 0, off, k); err != nil {
			return n.nbdIOError("trim", err)
		}
		return nil
	})
}

func (n *Node) nbdFlush() error {
	r := n.remote
	if r.flags&nbd.FlagSendFlush == 0 {
		return nil
	}
	if err := r.c.Command(nbd.CmdFlush, 0, 0, 0); err != nil {
		return n.nbdIOError("flush", err)
	}
	return nil
}

// nbdStatus is nbd_client_co_block_status: the first extent of base:allocation.
func (n *Node) nbdStatus(off, length int64) (Status, int64, error) {
	r := n.remote
	if !r.hasAlloc {
		return StatusData, length, nil
	}
	k := uint32(min(length, 1<<30))
	ext, err := r.c.BlockStatus(off, k, nbd.CmdFlagReqOne)
	if err != nil {
		return 0, 0, n.nbdIOError("block status", err)
	}
	ds := ext[r.alloc]
	if len(ds) == 0 {
		return 0, 0, n.nbdIOError("block status", errors.New("no extent for base:allocation"))
	}
	d := ds[0]
	var st Status
	if d.Flags&nbd.StateHole == 0 {
		st |= StatusData
	}
	if d.Flags&nbd.StateZero != 0 {
		st |= StatusZero
	}
	return st, min(int64(d.Length), int64(k)), nil
}

// nbdClose disconnects (NBD_CMD_DISC).
func (n *Node) nbdClose() {
	if n.remote != nil {
		_ = n.remote.c.Disconnect()
	}
}

// nbdZeroUnmap reports whether the export writes zeroes that may be unmapped
// (bs->supported_zero_flags & BDRV_REQ_MAY_UNMAP of nbd).
func (n *Node) nbdZeroUnmap() bool {
	return n.remote != nil && n.remote.flags&nbd.FlagSendWriteZeroes != 0
}

// ParseNBDFilename parses the legacy filename forms QEMU's nbd driver takes
// (nbd_parse_filename, nbd_parse_uri): nbd://HOST[:PORT][/EXPORT],
// nbd+unix:///EXPORT?socket=PATH, nbd:HOST:PORT[:exportname=E] and
// nbd:unix:PATH[:exportname=E]. ok is false when filename is not an nbd one.
func ParseNBDFilename(filename string) (o *NBDOptions, ok bool, err error) {
	switch {
	case strings.HasPrefix(filename, "nbd://"), strings.HasPrefix(filename, "nbd+tcp://"):
		rest := filename[strings.Index(filename, "://")+3:]
		hostport, export, _ := strings.Cut(rest, "/")
		if strings.Contains(export, "?") {
			return nil, true, errf(ErrInvalid, "invalid URI '%s'", filename)
		}
		host, port := hostport, "10809"
		if h, p, err := net.SplitHostPort(hostport); err == nil {
			host, port = h, p
		}
		if host == "" {
			host = "localhost"
		}
		return &NBDOptions{Server: nbd.SocketAddress{Type: "inet", Host: host, Port: port}, Export: export}, true, nil
	case strings.HasPrefix(filename, "nbd+unix://"):
		rest := filename[len("nbd+unix://"):]
		path, query, _ := strings.Cut(rest, "?")
		sock, found := strings.CutPrefix(query, "socket=")
		if !strings.HasPrefix(path, "/") || !found || sock == "" {
			return nil, true, errf(ErrInvalid, "invalid URI '%s'", filename)
		}
		return &NBDOptions{Server: nbd.SocketAddress{Type: "unix", Path: sock}, Export: path[1:]}, true, nil
	case strings.HasPrefix(filename, "nbd:"):
		spec := filename[len("nbd:"):]
		export := ""
		if i := strings.Index(spec, ":exportname="); i >= 0 {
			spec, export = spec[:i], spec[i+len(":exportname="):]
		}
		if path, ok := strings.CutPrefix(spec, "unix:"); ok {
			return &NBDOptions{Server: nbd.SocketAddress{Type: "unix", Path: path}, Export: export}, true, nil
		}
		host, port, ok := strings.Cut(spec, ":")
		if !ok || strings.Contains(port, ":") {
			return nil, true, errf(ErrInvalid, "No valid URL specified")
		}
		return &NBDOptions{Server: nbd.SocketAddress{Type: "inet", Host: host, Port: port}, Export: export}, true, nil
	}
	return nil, false, nil
}

// protocolOptions fills o's protocol driver for a filename given where QEMU takes a file
// name (-drive file=, drive-mirror's target): nbd for QEMU's nbd URIs and nbd: forms,
// file (or host_device) otherwise.
func protocolOptions(o *Options, filename string) error {
	no, ok, err := ParseNBDFilename(filename)
	if err != nil {
		return err
	}
	if ok {
		o.Driver, o.NBD, o.Filename = DriverNBD, no, ""
		return nil
	}
	if d, ok, err := nullProtocolFilename(filename); ok {
		o.Driver, o.Filename = d, ""
		return err
	}
	o.Driver, o.Filename = hostDriver(filename), filename
	return nil
}

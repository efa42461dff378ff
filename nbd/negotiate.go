package nbd

import (
	"encoding/binary"
	"io"
)

// The handshake, fixed newstyle only (QEMU 7.2's nbd_negotiate and nbd_negotiate_options):
//
//	server: "NBDMAGIC" "IHAVEOPT" u16 flags (FIXED_NEWSTYLE | NO_ZEROES)
//	client: u32 flags (FIXED_NEWSTYLE, NO_ZEROES; anything else ends the connection)
//	client: "IHAVEOPT" u32 option u32 length, data          (repeated)
//	server: u64 0x3e889045565a9 u32 option u32 reply u32 length, data   (per reply)
//
// EXPORT_NAME ends the handshake with u64 size, u16 transmission flags (and 124 zero
// bytes unless NO_ZEROES); GO with its NBD_REP_ACK; ABORT and any broken framing end the
// connection. Errors about one option are option replies (NBD_REP_ERR_*) and the
// haggling goes on.

// negotiate runs the handshake; it returns nil when the transmission phase may start.
func (c *conn) negotiate() error {
	var hello []byte
	hello = appendU64(hello, nbdMagic)
	hello = appendU64(hello, optMagic)
	hello = appendU16(hello, flagFixedNewstyle|flagNoZeroes)
	if _, err := c.w.Write(hello); err != nil {
		return err
	}
	if err := c.flush(); err != nil {
		return err
	}
	var b [16]byte
	if _, err := io.ReadFull(c.r, b[:4]); err != nil {
		return err
	}
	flags := binary.BigEndian.Uint32(b[:4])
	if flags&^cflagMask != 0 {
		return errorf("Unknown client flags 0x%x received", flags&^cflagMask)
	}
	c.fixed = flags&cflagFixedNewstyle != 0
	c.noZeroes = flags&cflagNoZeroes != 0
	for {
		if _, err := io.ReadFull(c.r, b[:16]); err != nil {
			return err
		}
		be := binary.BigEndian
		if be.Uint64(b[0:]) != optMagic {
			return errorf("Bad magic received")
		}
		opt, length := be.Uint32(b[8:]), be.Uint32(b[12:])
		if length > MaxBufferSize {
			return errorf("len (%d) is larger than max len (%d)", length, MaxBufferSize)
		}
		if !c.fixed && opt != OptExportName {
			return errorf("Unsupported option %d (%s)", opt, optName(opt))
		}
		done, err := c.option(opt, length)
		if err != nil || done {
			return err
		}
		if err := c.flush(); err != nil {
			return err
		}
	}
}

// option handles one option; done is true when the transmission phase starts.
func (c *conn) option(opt, length uint32) (done bool, err error) {
	switch opt {
	case OptExportName:
		return true, c.exportName(length)
	case OptAbort:
		if err := c.discard(length); err != nil {
			return false, err
		}
		_ = c.reply(opt, RepAck, nil)
		_ = c.flush()
		return false, errorf("client aborted the handshake")
	case OptList:
		if length != 0 {
			return false, c.rejectLength(opt, length)
		}
		for _, e := range c.s.list() {
			var d []byte
			d = appendU32(d, uint32(len(e.Name)))
			d = append(d, e.Name...)
			d = append(d, e.Description...)
			if err := c.reply(opt, RepServer, d); err != nil {
				return false, err
			}
		}
		return false, c.reply(opt, RepAck, nil)
	case OptStartTLS:
		if err := c.discard(length); err != nil {
			return false, err
		}
		return false, c.replyErr(opt, RepErrPolicy, "TLS not configured")
	case OptStructuredReply:
		if length != 0 {
			return false, c.rejectLength(opt, length)
		}
		if c.structured {
			return false, c.replyErr(opt, RepErrInvalid, "structured reply already negotiated")
		}
		c.structured = true
		return false, c.reply(opt, RepAck, nil)
	case OptInfo, OptGo:
		data, err := c.readOption(opt, length)
		if err != nil || data == nil {
			return false, err
		}
		return c.info(opt, data)
	case OptListMetaContext, OptSetMetaContext:
		data, err := c.readOption(opt, length)
		if err != nil || data == nil {
			return false, err
		}
		return false, c.metaContext(opt, data)
	}
	if err := c.discard(length); err != nil {
		return false, err
	}
	return false, c.replyErr(opt, RepErrUnsup, "Unsupported option %d (%s)", opt, optName(opt))
}

// readOption reads an option's data into memory; an option too long for that is refused
// (its data skipped) and data is nil.
func (c *conn) readOption(opt, length uint32) ([]byte, error) {
	if length > maxOptionLength {
		if err := c.discard(length); err != nil {
			return nil, err
		}
		return nil, c.replyErr(opt, RepErrTooBig, "option '%s' is too long", optName(opt))
	}
	data := make([]byte, length)
	if _, err := io.ReadFull(c.r, data); err != nil {
		return nil, err
	}
	return data, nil
}

// reply sends an option reply.
func (c *conn) reply(opt, typ uint32, data []byte) error {
	var h []byte
	h = appendU64(h, repMagic)
	h = appendU32(h, opt)
	h = appendU32(h, typ)
	h = appendU32(h, uint32(len(data)))
	if _, err := c.w.Write(h); err != nil {
		return err
	}
	_, err := c.w.Write(data)
	return err
}

// replyErr sends an error reply with a message (nbd_negotiate_send_rep_err).
func (c *conn) replyErr(opt, typ uint32, format string, a ...any) error {
	msg := sprintf(format, a...)
	return c.reply(opt, typ, []byte(msg))
}

func (c *conn) rejectLength(opt, length uint32) error {
	if err := c.discard(length); err != nil {
		return err
	}
	return c.replyErr(opt, RepErrInvalid, "option '%s' has unexpected length", optName(opt))
}

// transmissionFlags are e's flags as this client sees them (DF with structured replies).
func (c *conn) transmissionFlags(e *export) uint16 {
	f := e.flags
	if c.structured {
		f |= FlagSendDF
	}
	return f
}

// exportName is NBD_OPT_EXPORT_NAME: no reply is possible for a missing export, so the
// connection ends.
func (c *conn) exportName(length uint32) error {
	if length > MaxStringSize {
		return errorf("Bad length received")
	}
	name := make([]byte, length)
	if _, err := io.ReadFull(c.r, name); err != nil {
		return err
	}
	e := c.s.open(c, string(name))
	if e == nil {
		return errorf("export not found")
	}
	c.exp = e
	var d []byte
	d = appendU64(d, uint64(e.cfg.Size))
	d = appendU16(d, c.transmissionFlags(e))
	if !c.noZeroes {
		d = append(d, make([]byte, zeroPadLength)...)
	}
	if _, err := c.w.Write(d); err != nil {
		return err
	}
	return c.flush()
}

// info is NBD_OPT_INFO and NBD_OPT_GO (nbd_negotiate_handle_info).
func (c *conn) info(opt uint32, data []byte) (bool, error) {
	o := &optReader{data: data}
	name, err := o.str()
	if err != nil {
		return false, c.replyErr(opt, RepErrInvalid, "Invalid name")
	}
	n, err := o.u16()
	if err != nil || int(n) != o.rest()/2 || o.rest()%2 != 0 {
		return false, c.replyErr(opt, RepErrInvalid, "Data length mismatch")
	}
	sendName, blockSize := false, false
	for i := 0; i < int(n); i++ {
		r, _ := o.u16()
		switch r {
		case InfoName:
			sendName = true
		case InfoBlockSize:
			blockSize = true
		}
	}
	e := c.s.lookup(name)
	if e == nil {
		return false, c.replyErr(opt, RepErrUnknown, "export '%s' not present", sanitize(name))
	}
	var d []byte
	if sendName {
		d = appendU16(d[:0], InfoName)
		d = append(d, name...)
		if err := c.reply(opt, RepInfo, d); err != nil {
			return false, err
		}
	}
	if e.cfg.Description != "" {
		d = appendU16(d[:0], InfoDescription)
		d = append(d, e.cfg.Description...)
		if err := c.reply(opt, RepInfo, d); err != nil {
			return false, err
		}
	}
	d = appendU16(d[:0], InfoBlockSize)
	d = appendU32(d, 1) // request alignment of the node (1: no O_DIRECT)
	d = appendU32(d, preferredBlock)
	d = appendU32(d, MaxBufferSize)
	if err := c.reply(opt, RepInfo, d); err != nil {
		return false, err
	}
	d = appendU16(d[:0], InfoExport)
	d = appendU64(d, uint64(e.cfg.Size))
	d = appendU16(d, c.transmissionFlags(e))
	if err := c.reply(opt, RepInfo, d); err != nil {
		return false, err
	}
	_ = blockSize
	if opt == OptInfo {
		return false, c.reply(opt, RepAck, nil)
	}
	if c.s.open(c, name) != e { // removed meanwhile
		return false, c.replyErr(opt, RepErrUnknown, "export '%s' not present", sanitize(name))
	}
	c.exp = e
	if err := c.reply(opt, RepAck, nil); err != nil {
		return true, err
	}
	return true, c.flush()
}

// metaContext is NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT
// (nbd_negotiate_meta_queries).
func (c *conn) metaContext(opt uint32, data []byte) error {
	set := opt == OptSetMetaContext
	if !c.structured {
		return c.replyErr(opt, RepErrInvalid, "request option '%s' when structured reply is not negotiated", optName(opt))
	}
	o := &optReader{data: data}
	name, err := o.str()
	if err != nil {
		return c.replyErr(opt, RepErrInvalid, "Invalid name")
	}
	e := c.s.lookup(name)
	if e == nil {
		return c.replyErr(opt, RepErrUnknown, "export '%s' not present", sanitize(name))
	}
	n, err := o.u32()
	if err != nil {
		return c.replyErr(opt, RepErrInvalid, "Invalid number of queries")
	}
	if n > maxMetaQueries {
		return c.replyErr(opt, RepErrTooBig, "Too many queries")
	}
	sel := metaSelection{export: name, valid: true, bitmaps: make([]bool, len(e.cfg.Bitmaps))}
	if n == 0 && !set {
		sel.baseAllocation, sel.allocationDepth = true, e.cfg.AllocationDepth
		for i := range sel.bitmaps {
			sel.bitmaps[i] = true
		}
	}
	for i := uint32(0); i < n; i++ {
		l, err := o.u32()
		if err != nil || uint64(l) > uint64(o.rest()) {
			return c.replyErr(opt, RepErrInvalid, "Invalid query")
		}
		q := string(o.data[o.off : o.off+int(l)])
		o.off += int(l)
		if l > MaxStringSize {
			continue // QEMU skips queries it cannot hold
		}
		m := matchMeta(e, q, !set)
		sel.baseAllocation = sel.baseAllocation || m.base
		sel.allocationDepth = sel.allocationDepth || m.depth
		for _, j := range m.bitmaps {
			sel.bitmaps[j] = true
		}
	}
	if o.rest() != 0 {
		return c.replyErr(opt, RepErrInvalid, "Data length mismatch")
	}
	send := func(id uint32) error {
		var d []byte
		d = appendU32(d, id)
		d = append(d, contextName(e, id)...)
		return c.reply(opt, RepMetaContext, d)
	}
	if sel.baseAllocation {
		if err := send(MetaIDBaseAllocation); err != nil {
			return err
		}
	}
	if sel.allocationDepth {
		if err := send(MetaIDAllocationDepth); err != nil {
			return err
		}
	}
	for i, on := range sel.bitmaps {
		if on {
			if err := send(MetaIDDirtyBitmap + uint32(i)); err != nil {
				return err
			}
		}
	}
	if set {
		c.meta = sel
	}
	return c.reply(opt, RepAck, nil)
}

// sanitize shortens a name for an error message (nbd_sanitize_name: 80 bytes at most).
func sanitize(name string) string {
	if len(name) > 80 {
		return name[:77] + "..."
	}
	return name
}

package nbd

import (
	"fmt"
	"io"
)

// The transmission phase (QEMU 7.2's nbd_trip, nbd_co_receive_request, nbd_handle_request):
//
//	request:  u32 0x25609513 u16 flags u16 type u64 handle u64 offset u32 length [data]
//	simple:   u32 0x67446698 u32 error u64 handle [data]
//	chunk:    u32 0x668e33ef u16 flags (DONE) u16 type u64 handle u32 length, payload
//
// A request that fails its checks (read-only export, past the end, unknown flags or type,
// a read beyond 32 MiB) gets an error reply and the connection goes on; a broken request
// header, NBD_CMD_DISC, or a write too long to be read end the connection. Successful
// requests other than reads and block status get a simple reply; with structured replies
// a read is a series of OFFSET_DATA / OFFSET_HOLE chunks (a single OFFSET_DATA with
// NBD_CMD_FLAG_DF), block status one BLOCK_STATUS chunk per selected context, and errors
// an ERROR chunk.

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// reqError is a request's failure: the NBD error value and QEMU's message.
type reqError struct {
	errno uint32
	msg   string
}

func reqErr(errno uint32, format string, a ...any) *reqError {
	return &reqError{errno: errno, msg: sprintf(format, a...)}
}

// ioErr turns a Device error into a request error prefixed as QEMU's messages are.
func ioErr(what string, err error) *reqError {
	return &reqError{errno: errnoOf(err), msg: what + ": " + err.Error()}
}

// transmit serves requests until the client leaves or breaks the protocol.
func (c *conn) transmit() error {
	e := c.exp
	var buf []byte
	for {
		req, err := readRequest(c.r)
		if err != nil {
			return err
		}
		if req.Type == CmdDisc {
			return nil
		}
		var data []byte
		if req.Type == CmdRead || req.Type == CmdWrite {
			if req.Length > MaxBufferSize {
				if req.Type == CmdWrite {
					return errorf("write of %d bytes is larger than max len (%d)", req.Length, MaxBufferSize)
				}
				if err := c.replyError(req, reqErr(EINVAL, "len (%d) is larger than max len (%d)", req.Length, MaxBufferSize)); err != nil {
					return err
				}
				if err := c.flush(); err != nil {
					return err
				}
				continue
			}
			if cap(buf) < int(req.Length) {
				buf = make([]byte, req.Length)
			}
			data = buf[:req.Length]
			if req.Type == CmdWrite {
				if _, err := io.ReadFull(c.r, data); err != nil {
					return err
				}
			}
		}
		var rerr *reqError
		if rerr = c.check(e, req); rerr == nil {
			rerr = c.handle(e, req, data)
		}
		if rerr != nil {
			if err := c.replyError(req, rerr); err != nil {
				return err
			}
		}
		if err := c.flush(); err != nil {
			return err
		}
	}
}

// check is nbd_co_receive_request's sanity checks.
func (c *conn) check(e *export, req request) *reqError {
	if e.flags&FlagReadOnly != 0 && (req.Type == CmdWrite || req.Type == CmdWriteZeroes || req.Type == CmdTrim) {
		return reqErr(EPERM, "Export is read-only")
	}
	size := uint64(e.cfg.Size)
	if req.Offset > size || uint64(req.Length) > size-req.Offset {
		errno := uint32(EINVAL)
		if req.Type == CmdWrite || req.Type == CmdWriteZeroes {
			errno = ENOSPC
		}
		return reqErr(errno, "operation past EOF; From: %d, Len: %d, Size: %d", req.Offset, req.Length, size)
	}
	valid := uint16(CmdFlagFUA)
	switch {
	case req.Type == CmdRead && c.structured:
		valid |= CmdFlagDF
	case req.Type == CmdWriteZeroes:
		valid |= CmdFlagNoHole | CmdFlagFastZero
	case req.Type == CmdBlockStatus:
		valid |= CmdFlagReqOne
	}
	if req.Flags&^valid != 0 {
		return reqErr(EINVAL, "unsupported flags for command %s (got 0x%x)", cmdName(req.Type), req.Flags)
	}
	return nil
}

// handle is nbd_handle_request: it sends the success reply itself and returns the error
// to report otherwise.
func (c *conn) handle(e *export, req request, data []byte) *reqError {
	dev := e.cfg.Device
	off, length := int64(req.Offset), int64(req.Length)
	fua := req.Flags&CmdFlagFUA != 0
	done := func(what string, err error) *reqError {
		if err == nil && fua {
			err = dev.Flush()
		}
		if err != nil {
			return ioErr(what, err)
		}
		return sendErr(c.simple(req.Handle, 0, nil))
	}
	switch req.Type {
	case CmdRead:
		if fua {
			if err := dev.Flush(); err != nil {
				return ioErr("flush failed", err)
			}
		}
		if c.structured && req.Flags&CmdFlagDF == 0 && length > 0 {
			return c.sparseRead(e, req, data)
		}
		if _, err := dev.ReadAt(data, off); err != nil && err != io.EOF {
			return ioErr("reading from file failed", err)
		}
		if c.structured {
			return sendErr(c.chunkData(req.Handle, ReplyFlagDone, off, data))
		}
		return sendErr(c.simple(req.Handle, 0, data))
	case CmdCache:
		return done("caching data failed", nil)
	case CmdWrite:
		if _, err := dev.WriteAt(data, off); err != nil {
			return ioErr("writing to file failed", err)
		}
		return done("writing to file failed", nil)
	case CmdWriteZeroes:
		if err := dev.WriteZeroes(off, length, req.Flags&CmdFlagNoHole == 0); err != nil {
			return ioErr("writing to file failed", err)
		}
		return done("writing to file failed", nil)
	case CmdFlush:
		if err := dev.Flush(); err != nil {
			return ioErr("flush failed", err)
		}
		return sendErr(c.simple(req.Handle, 0, nil))
	case CmdTrim:
		if err := dev.Trim(off, length); err != nil {
			return ioErr("discard failed", err)
		}
		return done("discard failed", nil)
	case CmdBlockStatus:
		return c.blockStatus(e, req)
	}
	return reqErr(EINVAL, "invalid request type (%d) received", req.Type)
}

// sendErr turns a failure to send into a request error that ends the connection.
func sendErr(err error) *reqError {
	if err != nil {
		return &reqError{errno: 0, msg: err.Error()}
	}
	return nil
}

// replyError sends a request's error: a simple reply, or an ERROR chunk with structured
// replies (nbd_send_generic_reply). A zero errno is a send failure: the connection ends.
func (c *conn) replyError(req request, e *reqError) error {
	if e.errno == 0 {
		return errorf("%s", e.msg)
	}
	if !c.structured {
		return c.simple(req.Handle, e.errno, nil)
	}
	var p []byte
	p = appendU32(p, e.errno)
	p = appendU16(p, uint16(len(e.msg)))
	p = append(p, e.msg...)
	return c.chunk(req.Handle, ReplyFlagDone, ReplyTypeError, p, nil)
}

// simple sends a simple reply.
func (c *conn) simple(handle uint64, errno uint32, data []byte) error {
	var h []byte
	h = appendU32(h, simpleMagic)
	h = appendU32(h, errno)
	h = appendU64(h, handle)
	if _, err := c.w.Write(h); err != nil {
		return err
	}
	_, err := c.w.Write(data)
	return err
}

// chunk sends a structured reply chunk: payload then data.
func (c *conn) chunk(handle uint64, flags, typ uint16, payload, data []byte) error {
	var h []byte
	h = appendU32(h, structMagic)
	h = appendU16(h, flags)
	h = appendU16(h, typ)
	h = appendU64(h, handle)
	h = appendU32(h, uint32(len(payload)+len(data)))
	if _, err := c.w.Write(h); err != nil {
		return err
	}
	if _, err := c.w.Write(payload); err != nil {
		return err
	}
	_, err := c.w.Write(data)
	return err
}

func (c *conn) chunkData(handle uint64, flags uint16, off int64, data []byte) error {
	return c.chunk(handle, flags, ReplyTypeOffsetData, appendU64(nil, uint64(off)), data)
}

// sparseRead is nbd_co_send_sparse_read: a hole chunk for what reads as zeroes, a data
// chunk for the rest, the last one marked DONE.
func (c *conn) sparseRead(e *export, req request, data []byte) *reqError {
	dev := e.cfg.Device
	off, size := int64(req.Offset), int64(req.Length)
	for progress := int64(0); progress < size; {
		ex, err := dev.Status(off+progress, size-progress)
		if err != nil {
			return ioErr("unable to check for holes", err)
		}
		n := min(max(ex.Length, 1), size-progress)
		var flags uint16
		if progress+n == size {
			flags = ReplyFlagDone
		}
		if ex.Zero {
			var p []byte
			p = appendU64(p, uint64(off+progress))
			p = appendU32(p, uint32(n))
			if err := c.chunk(req.Handle, flags, ReplyTypeOffsetHole, p, nil); err != nil {
				return sendErr(err)
			}
		} else {
			part := data[progress : progress+n]
			if _, err := dev.ReadAt(part, off+progress); err != nil && err != io.EOF {
				return ioErr("reading from file failed", err)
			}
			if err := c.chunkData(req.Handle, flags, off+progress, part); err != nil {
				return sendErr(err)
			}
		}
		progress += n
	}
	return nil
}

// extents collects a block status reply's descriptors, merging equal neighbours
// (nbd_extent_array_add); full once it holds max of them.
type extents struct {
	max   int
	items [][2]uint32 // length, flags
	full  bool
}

// add appends length bytes of flags; false when the array is full.
func (x *extents) add(length int64, flags uint32) bool {
	if length <= 0 {
		return true
	}
	if n := len(x.items); n > 0 && x.items[n-1][1] == flags && int64(x.items[n-1][0])+length <= 1<<32-1 {
		x.items[n-1][0] += uint32(length)
		return true
	}
	if len(x.items) >= x.max || length > 1<<32-1 {
		x.full = true
		return false
	}
	x.items = append(x.items, [2]uint32{uint32(length), flags})
	return true
}

// blockStatus is NBD_CMD_BLOCK_STATUS: one chunk per selected context, in id order.
func (c *conn) blockStatus(e *export, req request) *reqError {
	if req.Length == 0 {
		return reqErr(EINVAL, "need non-zero length")
	}
	m := &c.meta
	if !m.valid || m.export != e.cfg.Name || m.count() == 0 {
		return reqErr(EINVAL, "CMD_BLOCK_STATUS not negotiated")
	}
	limit := maxExtents
	if req.Flags&CmdFlagReqOne != 0 {
		limit = 1
	}
	remaining := m.count()
	dev := e.cfg.Device
	off, length := int64(req.Offset), int64(req.Length)
	send := func(id uint32, x *extents) *reqError {
		remaining--
		var flags uint16
		if remaining == 0 {
			flags = ReplyFlagDone
		}
		p := appendU32(nil, id)
		for _, it := range x.items {
			p = appendU32(p, it[0])
			p = appendU32(p, it[1])
		}
		return sendErr(c.chunk(req.Handle, flags, ReplyTypeBlockStatus, p, nil))
	}
	walk := func(value func(Extent) uint32) (*extents, *reqError) {
		x := &extents{max: limit}
		for o := off; o < off+length; {
			ex, err := dev.Status(o, off+length-o)
			if err != nil {
				return nil, ioErr("unable to get block status", err)
			}
			n := min(max(ex.Length, 1), off+length-o)
			if !x.add(n, value(ex)) {
				break
			}
			o += n
		}
		return x, nil
	}
	if m.baseAllocation {
		x, rerr := walk(func(ex Extent) uint32 {
			var f uint32
			if !ex.Data {
				f |= StateHole
			}
			if ex.Zero {
				f |= StateZero
			}
			return f
		})
		if rerr != nil {
			return rerr
		}
		if rerr := send(MetaIDBaseAllocation, x); rerr != nil {
			return rerr
		}
	}
	if m.allocationDepth {
		x, rerr := walk(func(ex Extent) uint32 { return uint32(ex.Depth) })
		if rerr != nil {
			return rerr
		}
		if rerr := send(MetaIDAllocationDepth, x); rerr != nil {
			return rerr
		}
	}
	for i, on := range m.bitmaps {
		if !on {
			continue
		}
		x := &extents{max: limit}
		e.cfg.Bitmaps[i].Extents(off, length, func(o, l int64, dirty bool) bool {
			var f uint32
			if dirty {
				f = StateDirty
			}
			return x.add(l, f)
		})
		if !x.full {
			// What the bitmap does not cover (past its end) reads clean.
			covered := int64(0)
			for _, it := range x.items {
				covered += int64(it[0])
			}
			x.add(length-covered, 0)
		}
		if rerr := send(MetaIDDirtyBitmap+uint32(i), x); rerr != nil {
			return rerr
		}
	}
	return nil
}

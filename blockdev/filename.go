package blockdev

import "tlcvm/compat/qdict"

// A node's file name as QEMU 7.2's bdrv_refresh_filename makes it (bs->filename, what
// query-block shows and what drive-mirror, drive-backup and blockdev-snapshot-sync write
// as a new image's backing file):
//
//	protocol node (file, host_device, nbd)   its file name (exact_filename)
//	null node                                "null-co://", or json: of its options (null.go)
//	implicit filter                          its child's
//	raw, qcow2 over a protocol node          the protocol node's exact file name, unless
//	                                         the backing was overridden (qcow2)
//	otherwise                                "json:" + full_open_options:
//	                                         {"driver", "file": {…}, "backing": {…}|null}
//
// The backing is overridden (bdrv_backing_overridden) when the backing node's file name is
// not auto_backing_file: the name in the image header as written (a relative one stays
// relative), or, when the backing was opened from that name, the backing node's file name
// then. So an image whose header names its backing relatively, opened with an explicit
// "backing" node (libvirt's -blockdev chains), is named json:{…}; an image opened with
// "backing": null although its header names one is json:{…, "backing": null}.

// Filename is the node's file name as QEMU reports it (bs->filename; "file" in query
// results).
func (n *Node) Filename() string {
	if n.File == nil || n.filter != nil || n.dbg != nil {
		return n.filename
	}
	if e, ok := n.exactFilename(); ok {
		return e
	}
	if d, ok := n.openOptions(); ok {
		return "json:" + d.JSON()
	}
	return n.filename
}

// BackingName is query-block's backing_file: the file name of bdrv_cow_bs, the backing
// node of a node that is not a filter ("" without one, whatever the header records; the
// image info's backing-filename is the header's).
func (n *Node) BackingName() string {
	if n.Backing != nil && n.filter == nil {
		return n.Backing.Filename()
	}
	return ""
}

// exactFilename is bs->exact_filename: ok false when it is empty.
func (n *Node) exactFilename() (string, bool) {
	switch {
	case n.filter != nil:
		if c := n.Filtered(); c != nil {
			return c.exactFilename()
		}
		return "", false
	case n.dbg != nil: // blkdebug:CONFIG:IMAGE (blkdebug.go)
		return n.filename, true
	case n.null != nil:
		return n.filename, n.filename == n.Driver+"://"
	case n.File == nil: // file, host_device, nbd
		return n.filename, true
	case n.Driver == DriverQcow2 && n.backingOverridden():
		return "", false
	}
	if !n.File.protocol() && n.File.dbg == nil {
		return "", false
	}
	return n.File.exactFilename()
}

// openOptions is bs->full_open_options: the driver, its strong options given, and the
// children's (the backing's only when overridden); ok false where tlcvm does not keep
// them (nbd, blkdebug).
func (n *Node) openOptions() (qdict.Dict, bool) {
	switch {
	case n.filter != nil:
		if c := n.Filtered(); c != nil {
			return c.openOptions()
		}
		return nil, false
	case n.null != nil:
		no := n.opts.Null
		if no == nil {
			no = &NullOptions{}
		}
		return nullOpenOptions(n.Driver, no), true
	case n.Driver == DriverFile || n.Driver == DriverHostDevice:
		return qdict.Dict{{Key: "driver", Value: n.Driver}, {Key: "filename", Value: n.filename}}, true
	case n.Driver != DriverRaw && n.Driver != DriverQcow2:
		return nil, false
	}
	file, ok := n.File.openOptions()
	if !ok {
		return nil, false
	}
	d := qdict.Dict{{Key: "driver", Value: n.Driver}, {Key: "file", Value: file}}
	if n.Driver == DriverQcow2 && n.backingOverridden() {
		if n.Backing == nil {
			d = append(d, qdict.Member{Key: "backing", Value: nil})
		} else {
			b, ok := n.Backing.openOptions()
			if !ok {
				return nil, false
			}
			d = append(d, qdict.Member{Key: "backing", Value: b})
		}
	}
	return d, true
}

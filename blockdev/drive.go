package blockdev

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"tlcvm/compat/optval"
)

// KV is one key=value of a -drive option string, in written order.
type KV struct{ Key, Value string }

// Drive is what a -drive (or -hda, -cdrom, …) asked for beyond the block graph: where the
// board should plug a device for it.
type Drive struct {
	ID        string // the backend name (id=, or generated like "ide0-hd0")
	Interface string // "ide", "virtio", "scsi", "floppy", "sd", "none", …
	Bus, Unit int
	Index     int
	Media     string // "disk" or "cdrom"
	Werror    string
	Rerror    string
}

// DriveLimits are the board facts -drive needs: how many units an IDE bus has (2 on
// i440FX, 1 on Q35's AHCI).
type DriveLimits struct {
	IDEUnitsPerBus int
}

var ifMaxDevs = map[string]int{"ide": 2, "scsi": 7}

// drive keys blockdev_init and drive_new consume; anything else goes to the driver.
var driveKeys = map[string]bool{
	"file": true, "format": true, "if": true, "media": true, "readonly": true, "read-only": true,
	"cache": true, "aio": true, "discard": true, "id": true, "node-name": true, "snapshot": true,
	"werror": true, "rerror": true, "index": true, "bus": true, "unit": true, "detect-zeroes": true,
	"cache.direct": true, "cache.no-flush": true, "cache.writeback": true, "auto-read-only": true,
	"force-share": true, "copy-on-read": true, "serial": true, "addr": true, "file.locking": true,
	"file.aio": true, "driver": true, "throttling.group": true,
}

func init() {
	for k := range driveThrottleKeys {
		driveKeys[k], driveOwnKeys[k] = true, true
	}
}

// driveOwnKeys are the -drive keys that drive_new and blockdev_init keep (the legacy and
// common drive options); the others (format as "driver", cache as cache.direct and
// cache.no-flush, node-name, discard, ...) are passed on to bdrv_open.
var driveOwnKeys = map[string]bool{
	"file": true, "if": true, "media": true, "index": true, "bus": true, "unit": true, "addr": true,
	"id": true, "snapshot": true, "aio": true, "werror": true, "rerror": true, "read-only": true,
	"readonly": true, "copy-on-read": true, "detect-zeroes": true, "cache.writeback": true,
	"throttling.group": true,
}

// AddDrive handles one -drive: it opens the image (probing the format when none is given,
// with QEMU's warning for raw), creates the backend and returns where a device goes.
func (g *Graph) AddDrive(kvs []KV, lim DriveLimits) (*Backend, error) {
	kvs, err := renameDriveKeys(kvs)
	if err != nil {
		return nil, err
	}
	get := func(k string) (string, bool) {
		v, ok := "", false
		for _, kv := range kvs {
			if kv.Key == k {
				v, ok = kv.Value, true
			}
		}
		return v, ok
	}
	d := &Drive{Interface: "ide", Media: "disk", Index: -1, Unit: -1}
	if v, ok := get("if"); ok {
		d.Interface = v
	}
	if v, ok := get("media"); ok {
		if v != "disk" && v != "cdrom" {
			return nil, errf(ErrInvalid, "'%s' invalid media", v)
		}
		d.Media = v
	}
	ro := d.Media == "cdrom"
	for _, k := range []string{"readonly", "read-only"} {
		if v, ok := get(k); ok {
			b, err := optval.ParseBool(ErrInvalid, "read-only", v)
			if err != nil {
				return nil, err
			}
			ro = ro || b
		}
	}
	for _, k := range []string{"werror", "rerror"} {
		v, ok := get(k)
		if !ok {
			continue
		}
		valid := v == "ignore" || v == "report" || v == "stop" || (k == "werror" && v == "enospc")
		if !valid {
			what := "write"
			if k == "rerror" {
				what = "read"
			}
			return nil, errf(ErrInvalid, "'%s' invalid %s error action", v, what)
		}
		if k == "werror" {
			d.Werror = v
		} else {
			d.Rerror = v
		}
	}
	num := func(k string, def int) (int, error) {
		v, ok := get(k)
		if !ok {
			return def, nil
		}
		n, err := optval.ParseNumber(ErrInvalid, k, v)
		if err != nil {
			return 0, err
		}
		return int(int32(n)), nil // QEMU's int bus_id = qemu_opt_get_number(...)
	}
	bus, err := num("bus", 0)
	if err != nil {
		return nil, err
	}
	if d.Unit, err = num("unit", -1); err != nil {
		return nil, err
	}
	if d.Index, err = num("index", -1); err != nil {
		return nil, err
	}
	maxDevs := ifMaxDevs[d.Interface]
	if d.Interface == "ide" && lim.IDEUnitsPerBus > 0 {
		maxDevs = lim.IDEUnitsPerBus
	}
	d.Bus = bus
	if d.Index != -1 {
		_, hasBus := get("bus")
		if hasBus || d.Unit != -1 {
			return nil, errf(ErrInvalid, "index cannot be used with bus and unit")
		}
		if maxDevs > 0 {
			d.Bus, d.Unit = d.Index/maxDevs, d.Index%maxDevs
		} else {
			d.Bus, d.Unit = 0, d.Index
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if d.Unit == -1 {
		d.Unit = 0
		for g.driveAt(d.Interface, d.Bus, d.Unit) != nil {
			d.Unit++
			if maxDevs > 0 && d.Unit >= maxDevs {
				d.Unit -= maxDevs
				d.Bus++
			}
		}
	}
	if maxDevs > 0 && d.Unit >= maxDevs {
		return nil, errf(ErrInvalid, "unit %d too big (max is %d)", d.Unit, maxDevs-1)
	}
	if g.driveAt(d.Interface, d.Bus, d.Unit) != nil {
		return nil, errf(ErrDriveSlot, "drive with bus=%d, unit=%d (index=%d) exists", d.Bus, d.Unit, d.Bus*maxDevs+d.Unit)
	}
	d.Index = d.Bus*maxDevs + d.Unit
	if id, ok := get("id"); ok {
		d.ID = id
	} else {
		media := ""
		if d.Interface == "ide" || d.Interface == "scsi" {
			media = map[string]string{"disk": "-hd", "cdrom": "-cd"}[d.Media]
		}
		if maxDevs > 0 {
			d.ID = fmt.Sprintf("%s%d%s%d", d.Interface, d.Bus, media, d.Unit)
		} else {
			d.ID = fmt.Sprintf("%s%s%d", d.Interface, media, d.Unit)
		}
	}
	if g.backend(d.ID) != nil {
		return nil, errf(ErrExists, "Duplicate ID '%s' for drive", d.ID)
	}
	if g.node(d.ID) != nil {
		return nil, errf(ErrExists, "Device name '%s' conflicts with an existing node name", d.ID)
	}

	// blockdev_init: cache, aio, discard, detect-zeroes, then the image.
	o := &Options{}
	writeback, direct, noFlush := true, false, false
	if v, ok := get("cache"); ok {
		switch v {
		case "none", "off":
			direct = true
		case "writeback":
		case "writethrough":
			writeback = false
		case "directsync":
			writeback, direct = false, true
		case "unsafe":
			noFlush = true
		default:
			return nil, errf(ErrInvalid, "invalid cache option")
		}
	}
	for k, p := range map[string]*bool{"cache.direct": &direct, "cache.no-flush": &noFlush, "cache.writeback": &writeback} {
		if v, ok := get(k); ok {
			b, err := optval.ParseBool(ErrInvalid, k, v)
			if err != nil {
				return nil, err
			}
			*p = b
		}
	}
	o.CacheDirect, o.CacheNoFlush = &direct, &noFlush
	if v, ok := get("aio"); ok {
		if v != "threads" && v != "native" && v != "io_uring" {
			return nil, errf(ErrInvalid, "invalid aio option")
		}
		if v == "native" && !direct {
			return nil, errf(ErrInvalid, "aio=native was specified, but it requires cache.direct=on, which was not specified.")
		}
		o.AIO = v
	}
	thr, group, err := driveThrottle(get)
	if err != nil {
		return nil, err
	}
	if v, ok := get("detect-zeroes"); ok {
		if v != "off" && v != "on" && v != "unmap" {
			return nil, errf(ErrInvalid, "Parameter 'detect-zeroes' does not accept value '%s'", v)
		}
		o.DetectZeroes = v
	}
	snapshot := false
	if v, ok := get("snapshot"); ok {
		if snapshot, err = optval.ParseBool(ErrInvalid, "snapshot", v); err != nil {
			return nil, err
		}
	}
	format, hasFormat := get("format")
	driver, hasDriver := get("driver")
	if hasDriver && hasFormat {
		return nil, errf(ErrInvalid, "Cannot specify both 'driver' and 'format'")
	}
	var null *NullOptions
	switch {
	case hasDriver && isNull(driver):
		if null, err = nullDriveOptions(get); err != nil {
			return nil, err
		}
	case hasDriver:
		format, hasFormat = driver, true
	}
	if hasFormat && format != DriverRaw && format != DriverQcow2 {
		return nil, formatError(format)
	}
	// blockdev_init: a drive without a file is empty only when drive_new and blockdev_init
	// took every key for themselves; any other key goes to bdrv_open, which fails: at once
	// without a format, in the format's open (after bdrv_open_common's discard) with one.
	bdrvOnly := false
	if f, _ := get("file"); f == "" && null == nil {
		for _, kv := range kvs {
			bdrvOnly = bdrvOnly || !driveOwnKeys[kv.Key]
		}
	}
	if bdrvOnly && !hasFormat {
		return nil, errf(ErrInvalid, "Must specify either driver or file")
	}
	if v, ok := get("discard"); ok {
		switch v {
		case "ignore", "off":
			o.Discard = "ignore"
		case "unmap", "on":
			o.Discard = "unmap"
		default:
			return nil, errf(ErrInvalid, "Invalid discard option")
		}
	}
	if bdrvOnly {
		return nil, errf(ErrInvalid, "A block device must be specified for \"file\"")
	}
	for _, kv := range kvs {
		if null != nil && (kv.Key == "driver" || nullKeys[kv.Key]) {
			continue
		}
		if !driveKeys[kv.Key] {
			if null != nil {
				return nil, errf(ErrInvalid, "Block protocol '%s' doesn't support the option '%s'", driver, kv.Key)
			}
			f := format
			if f == "" {
				f = DriverRaw
			}
			return nil, errf(ErrInvalid, "Block format '%s' does not support the option '%s'", f, kv.Key)
		}
	}
	b := &Backend{Name: d.ID, Drive: d, WriteThrough: !writeback, perm: PermConsistentRead, shared: PermAll}
	file, _ := get("file")
	if null != nil {
		// driver=null-co: the protocol node is the root; file= may only name it.
		if file != "" {
			if d, ok, err := nullProtocolFilename(file); err != nil || !ok || d != driver {
				if err == nil {
					err = errf(ErrInvalid, "The only allowed filename for this driver is '%s://'", driver)
				}
				return nil, err
			}
		}
		file = driver + "://"
	}
	if file == "" {
		// An empty drive keeps its flags for the medium blockdev-change-medium opens.
		b.media.root = rootState{readWrite: !ro, direct: direct, noFlush: noFlush,
			detectZeroes: o.DetectZeroes != "" && o.DetectZeroes != "off"}
		g.limitDrive(b, thr, group)
		g.backends = append(g.backends, b)
		return b, nil
	}
	var opened []*Node
	fail := func(err error) (*Backend, error) {
		g.discard(opened)
		return nil, err
	}
	in := inherited{readOnly: ro || snapshot, direct: direct, noFlush: noFlush, implicit: true}
	if v, ok := get("auto-read-only"); ok {
		if in.autoReadOnly, err = optval.ParseBool(ErrInvalid, "auto-read-only", v); err != nil {
			return nil, err
		}
	}
	o.Locking, _ = get("file.locking")
	o.NodeName, _ = get("node-name")
	o.Null = null
	if null != nil {
		format = driver // the protocol node alone
	}
	root, err := g.openImage(*o, file, format, in, &opened)
	if err != nil {
		return fail(err)
	}
	if snapshot {
		if root, err = g.tempOverlay(root, in, &opened); err != nil {
			return fail(err)
		}
	}
	b.Root = root
	root.addParent(edge{backend: b, role: "root"})
	if err := g.refresh(); err != nil {
		root.removeParent(func(e edge) bool { return e.backend == b })
		return fail(err)
	}
	g.limitDrive(b, thr, group)
	g.backends = append(g.backends, b)
	return b, nil
}

// driveRenames are drive_new's opt_renames: the legacy names of -drive keys.
var driveRenames = [][2]string{
	{"iops", "throttling.iops-total"}, {"iops_rd", "throttling.iops-read"}, {"iops_wr", "throttling.iops-write"},
	{"bps", "throttling.bps-total"}, {"bps_rd", "throttling.bps-read"}, {"bps_wr", "throttling.bps-write"},
	{"iops_max", "throttling.iops-total-max"}, {"iops_rd_max", "throttling.iops-read-max"},
	{"iops_wr_max", "throttling.iops-write-max"}, {"bps_max", "throttling.bps-total-max"},
	{"bps_rd_max", "throttling.bps-read-max"}, {"bps_wr_max", "throttling.bps-write-max"},
	{"iops_size", "throttling.iops-size"}, {"group", "throttling.group"}, {"readonly", "read-only"},
}

// renameDriveKeys is drive_new's qemu_opt_rename of each legacy name, in its order: a key
// given under both names is refused.
func renameDriveKeys(kvs []KV) ([]KV, error) {
	out := append([]KV(nil), kvs...)
	for _, r := range driveRenames {
		from, to := r[0], r[1]
		has := func(k string) bool {
			for _, kv := range out {
				if kv.Key == k {
					return true
				}
			}
			return false
		}
		if !has(from) {
			continue
		}
		if has(to) {
			return nil, errf(ErrInvalid, "'%s' and its alias '%s' can't be used at the same time", to, from)
		}
		for i := range out {
			if out[i].Key == from {
				out[i].Key = to
			}
		}
	}
	return out, nil
}

// driveThrottleKeys are the throttling.* numbers of -drive: each bucket's average rate,
// burst rate and burst length (extract_common_blockdev_options).
var driveThrottleKeys = func() map[string]func(*ThrottleConfig) *uint64 {
	m := map[string]func(*ThrottleConfig) *uint64{
		"throttling.iops-size": func(c *ThrottleConfig) *uint64 { return &c.OpSize },
	}
	for i, name := range [buckets]string{"bps-total", "bps-read", "bps-write", "iops-total", "iops-read", "iops-write"} {
		m["throttling."+name] = func(c *ThrottleConfig) *uint64 { return &c.Buckets[i].Avg }
		m["throttling."+name+"-max"] = func(c *ThrottleConfig) *uint64 { return &c.Buckets[i].Max }
		m["throttling."+name+"-max-length"] = func(c *ThrottleConfig) *uint64 { return &c.Buckets[i].BurstLength }
	}
	return m
}()

// driveThrottle reads a -drive's I/O limits and group as blockdev_init does (the numbers
// as QemuOpts numbers, then throttle_is_valid).
func driveThrottle(get func(string) (string, bool)) (ThrottleConfig, string, error) {
	c := NewThrottleConfig()
	keys := make([]string, 0, len(driveThrottleKeys))
	for k := range driveThrottleKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, ok := get(k)
		if !ok {
			continue
		}
		n, err := optval.ParseNumber(ErrInvalid, k, v)
		if err != nil {
			return c, "", err
		}
		*driveThrottleKeys[k](&c) = n
	}
	if err := c.Validate(); err != nil {
		return c, "", err
	}
	group, _ := get("throttling.group")
	return c, group, nil
}

// limitDrive is blockdev_init's "disk I/O throttling": a drive with limits joins its group
// (by default one named after the drive). Caller holds g.mu.
func (g *Graph) limitDrive(b *Backend, c ThrottleConfig, group string) {
	if !c.Enabled() {
		return
	}
	if group == "" {
		group = b.Name
	}
	g.tgMu.Lock()
	defer g.tgMu.Unlock()
	g.joinGroup(b, group).configure(c)
}

// openImage is bdrv_open of an image file name: a "file" node over filename, then a node
// of format over it (probed when format is "", with QEMU's warning when a writable image
// is guessed raw; the "file" format is the protocol node alone). o carries the options of
// the format node (its node name) and of both (cache, discard, detect-zeroes, locking).
func (g *Graph) openImage(o Options, filename, format string, in inherited, opened *[]*Node) (*Node, error) {
	fo := o
	fo.NodeName = ""
	if fo.Null != nil {
		fo.NodeName = o.NodeName // driver=null-co: the protocol node is the root
	}
	var fnode *Node
	if err := protocolOptions(&fo, filename); err != nil {
		return nil, err
	}
	var err error
	if rest, ok := strings.CutPrefix(filename, "blkdebug:"); ok {
		fnode, err = g.openBlkdebugFilename(o, rest, in, opened)
	} else {
		fnode, err = g.open(&fo, in, opened)
	}
	if err != nil {
		return nil, err
	}
	if format == "" {
		if format, err = probe(fnode); err != nil {
			return nil, err
		}
		if format == DriverRaw && !in.readOnly {
			fmt.Fprintf(g.cfg.Warn, rawProbeWarning, filename)
		}
	}
	if format == DriverFile || format == DriverHostDevice || format == fnode.Driver && isNull(format) {
		return fnode, nil
	}
	o.Driver, o.File, o.Filename, o.Locking = format, &Ref{Node: fnode.Name}, "", ""
	return g.open(&o, in, opened)
}

// driveAt finds the -drive backend at interface/bus/unit.
func (g *Graph) driveAt(iface string, bus, unit int) *Backend {
	for _, b := range g.backends {
		if d := b.Drive; d != nil && d.Interface == iface && d.Bus == bus && d.Unit == unit {
			return b
		}
	}
	return nil
}

// formatError is the error for an image format tlcvm does not open: QEMU's for a name it
// does not know, tlcvm's for one of QEMU's other drivers.
func formatError(format string) error {
	if knownFormat(format) {
		return errf(ErrUnsupported, "tlcvm: block driver '%s' is not supported (tlcvm opens file, raw and qcow2)", format)
	}
	return errf(ErrInvalid, "Unknown driver '%s'", format)
}

// knownFormat lists QEMU 7.2's other block format drivers.
func knownFormat(f string) bool {
	switch f {
	case "qcow", "qed", "vmdk", "vdi", "vpc", "vhdx", "luks", "parallels", "bochs", "cloop",
		"dmg", "vvfat", "blkdebug", "blkverify", "blklogwrites", "compress", "copy-on-read",
		"preallocate", "quorum", "replication", "snapshot-access", "throttle", "null-co",
		"null-aio", "nbd", "nfs", "iscsi", "rbd", "ssh", "http", "https", "ftp", "ftps",
		"gluster", "host_device", "host_cdrom", "file":
		return true
	}
	return false
}

// tempOverlay is -drive snapshot=on: a temporary qcow2 overlay over base (opened read-only)
// that takes the guest's writes and is deleted when the drive goes away.
func (g *Graph) tempOverlay(base *Node, in inherited, opened *[]*Node) (*Node, error) {
	dir := os.Getenv("TMPDIR")
	if dir == "" {
		dir = "/var/tmp"
	}
	f, err := os.CreateTemp(dir, "vl.")
	if err != nil {
		return nil, errf(ErrOpen, "Could not create temporary overlay: %v", err)
	}
	path := f.Name()
	// No backing file in the header (bdrv_append_temp_snapshot creates it with a size only):
	// the backing is attached as a node, so QEMU names the overlay json:{"backing": …}.
	err = writeQcow2(f, &Qcow2Create{Size: uint64(base.Size())})
	f.Close()
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	// bdrv_temp_snapshot_flags: "for temporary files, unconditional cache=unsafe is fine"
	in.readOnly, in.implicit, in.noFlush = false, true, true
	fo := &Options{Driver: DriverFile, Filename: path}
	fn, err := g.open(fo, in, opened)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	fn.tempFile = path
	ov, err := g.open(&Options{Driver: DriverQcow2, File: &Ref{Node: fn.Name}, Backing: &Ref{Node: base.Name}}, in, opened)
	if err != nil {
		return nil, err
	}
	return ov, nil
}

func removeFile(path string) { _ = os.Remove(path) }

// DriveID is the drive name a device's drive= property refers to.
func (d *Drive) String() string {
	return strings.Join([]string{d.ID, d.Interface, strconv.Itoa(d.Bus), strconv.Itoa(d.Unit)}, "/")
}

package blockdev

import (
	"time"

	"tlcvm/compat/optval"
	"tlcvm/compat/qdict"
)

// The null-co and null-aio protocol drivers (QEMU 7.2's block/null.c): a node of a given
// size (1 GiB by default, rounded up to 512 bytes) that stores nothing. Writes, write
// zeroes, discards and flushes succeed and change nothing; reads return zeroes with
// read-zeroes=on and otherwise leave the reader's buffer as it was (QEMU 7.2's default:
// qemu-io shows its 0xab fill, a guest its old memory). Every read, write and flush waits
// latency-ns first. Block status: zero (allocated) with read-zeroes, else neither data nor
// zero nor allocated. The two drivers differ in QEMU only in how requests complete
// (coroutine or AIO callback), which no client sees.
//
// Filename: "null-co://" ("null-aio://"), or, when size or read-zeroes was given (the
// driver's strong options), json:{"driver", "size", "read-zeroes"} as given: typed from
// blockdev-add and -blockdev, strings from -drive.

// Null protocol drivers.
const (
	DriverNullCo  = "null-co"
	DriverNullAIO = "null-aio"
)

// nullDefaultSize is null_file_open's default length (1 << 30).
const nullDefaultSize = 1 << 30

// NullOptions are BlockdevOptionsNull's members. The *Text fields hold the strings -drive
// gave (QEMU's json: filename shows them unconverted); "" when the option came typed.
type NullOptions struct {
	Size       *int64
	LatencyNS  *int64
	ReadZeroes *bool

	SizeText, ReadZeroesText string
}

// nullState is an open null node's configuration.
type nullState struct {
	size       int64
	latency    time.Duration
	readZeroes bool
}

// isNull reports whether driver is null-co or null-aio.
func isNull(driver string) bool { return driver == DriverNullCo || driver == DriverNullAIO }

// openNull is null_file_open.
func (g *Graph) openNull(n *Node, o *Options, opened *[]*Node) (*Node, error) {
	no := o.Null
	if no == nil {
		no = &NullOptions{}
	}
	s := &nullState{size: nullDefaultSize}
	if no.Size != nil {
		s.size = *no.Size
	}
	if no.LatencyNS != nil {
		if *no.LatencyNS < 0 {
			return nil, errf(ErrInvalid, "latency-ns is invalid")
		}
		s.latency = time.Duration(*no.LatencyNS)
	}
	if no.ReadZeroes != nil {
		s.readZeroes = *no.ReadZeroes
	}
	n.null, n.filename = s, nullFilename(o.Driver, no)
	g.name(n, o.NodeName, opened)
	return n, nil
}

// nullFilename is bdrv_refresh_filename of a null node: null_refresh_filename's
// "DRIVER://" unless a strong option was given, else the json: form of them.
func nullFilename(driver string, o *NullOptions) string {
	d := nullOpenOptions(driver, o)
	if len(d) == 1 {
		return driver + "://"
	}
	return "json:" + d.JSON()
}

// nullOpenOptions is a null node's full_open_options: the driver and the strong options
// given (append_strong_runtime_options).
func nullOpenOptions(driver string, o *NullOptions) qdict.Dict {
	d := qdict.Dict{{Key: "driver", Value: driver}}
	switch {
	case o.SizeText != "":
		d = append(d, qdict.Member{Key: "size", Value: o.SizeText})
	case o.Size != nil:
		d = append(d, qdict.Member{Key: "size", Value: *o.Size})
	}
	switch {
	case o.ReadZeroesText != "":
		d = append(d, qdict.Member{Key: "read-zeroes", Value: o.ReadZeroesText})
	case o.ReadZeroes != nil:
		d = append(d, qdict.Member{Key: "read-zeroes", Value: *o.ReadZeroes})
	}
	return d
}

// nullProtocolFilename accepts "null-co://" and "null-aio://" (null_co_parse_filename):
// ok when filename names a null driver, an error when it does with more after "://".
func nullProtocolFilename(filename string) (driver string, ok bool, err error) {
	for _, d := range []string{DriverNullCo, DriverNullAIO} {
		if len(filename) >= len(d)+1 && filename[:len(d)+1] == d+":" {
			if filename != d+"://" {
				return "", true, errf(ErrInvalid, "The only allowed filename for this driver is '%s://'", d)
			}
			return d, true, nil
		}
	}
	return "", false, nil
}

// nullDriveOptions takes a null driver's keys of a -drive (size, latency-ns, read-zeroes)
// as qemu_opt_get_size/_number/_bool read them; other keys are left to the caller.
func nullDriveOptions(get func(string) (string, bool)) (*NullOptions, error) {
	o := &NullOptions{}
	if v, ok := get("size"); ok {
		sz, err := optval.ParseSize(ErrInvalid, "size", v)
		if err != nil {
			return nil, err
		}
		s := int64(sz)
		o.Size, o.SizeText = &s, v
	}
	if v, ok := get("latency-ns"); ok {
		l, err := optval.ParseNumber(ErrInvalid, "latency-ns", v)
		if err != nil {
			return nil, err
		}
		ns := int64(l)
		o.LatencyNS = &ns
	}
	if v, ok := get("read-zeroes"); ok {
		b, err := optval.ParseBool(ErrInvalid, "read-zeroes", v)
		if err != nil {
			return nil, err
		}
		o.ReadZeroes, o.ReadZeroesText = &b, v
	}
	return o, nil
}

// nullKeys are the -drive keys a null driver takes.
var nullKeys = map[string]bool{"size": true, "latency-ns": true, "read-zeroes": true}

// checkNullReopen is what bdrv_reopen_prepare allows a null node (null_reopen_prepare
// takes no option): an option given before may not be left out ("cannot be reset",
// bdrv_reset_options_allowed) nor changed, each checked in QDict order.
func checkNullReopen(was, now *NullOptions) error {
	if was == nil {
		was = &NullOptions{}
	}
	if now == nil {
		now = &NullOptions{}
	}
	type opt struct {
		key       string
		old, next any // nil: absent
	}
	val := func(i *int64, b *bool) any {
		switch {
		case i != nil:
			return *i
		case b != nil:
			return *b
		}
		return nil
	}
	opts := []opt{
		{"size", val(was.Size, nil), val(now.Size, nil)},
		{"latency-ns", val(was.LatencyNS, nil), val(now.LatencyNS, nil)},
		{"read-zeroes", val(nil, was.ReadZeroes), val(nil, now.ReadZeroes)},
	}
	keys := []string{opts[0].key, opts[1].key, opts[2].key}
	order := qdict.Order(keys)
	for _, i := range order {
		if opts[i].old != nil && opts[i].next == nil {
			return errf(ErrInvalid, "Option '%s' cannot be reset to its default value", opts[i].key)
		}
	}
	for _, i := range order {
		if opts[i].next != nil && opts[i].next != opts[i].old {
			return errf(ErrInvalid, "Cannot change the option '%s'", opts[i].key)
		}
	}
	return nil
}

// nullWait is null_co_common: the configured latency.
func (n *Node) nullWait() {
	if l := n.null.latency; l > 0 {
		time.Sleep(l)
	}
}

// nullRead is null_co_preadv: zeroes with read-zeroes, else p untouched.
func (n *Node) nullRead(p []byte) error {
	if n.null.readZeroes {
		clear(p)
	}
	n.nullWait()
	return nil
}

// nullStatus is null_co_block_status.
func (n *Node) nullStatus(length int64) (Status, int64) {
	if n.null.readZeroes {
		return StatusZero, length
	}
	return statusNone, length
}

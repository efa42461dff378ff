package blockdev

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// blkdebug's config file (the "config" member, the CONFIG of a "blkdebug:CONFIG:IMAGE"
// file name), in QEMU's -readconfig syntax (qemu_config_parse) with the two groups
// blkdebug reads:
//
//	# a comment
//	[inject-error]
//	event = "read_aio"
//	errno = "5"
//	once = "on"
//
//	[set-state]
//	event = "write_aio"
//	state = "1"
//	new_state = "2"

// maxBlkdebugConfig bounds the config file read.
const maxBlkdebugConfig = 1 << 20

// readBlkdebugConfig adds the rules of the config file at path to o.
func readBlkdebugConfig(path string, o *BlkdebugOptions) error {
	f, err := os.Open(path)
	if err != nil {
		return qerror.Errno(ErrInvalid, err, "Could not read blkdebug config file")
	}
	defer f.Close()
	var group string
	var cur map[string]string
	flush := func() error {
		if cur == nil {
			return nil
		}
		return addBlkdebugRule(group, cur, o)
	}
	sc := bufio.NewScanner(&limitedFile{f: f, left: maxBlkdebugConfig})
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "" || s[0] == '#':
		case s[0] == '[':
			if err := flush(); err != nil {
				return err
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(s[1:], "]"), " ")
			group, cur = name, map[string]string{}
			if !strings.HasSuffix(s, "]") {
				return errf(ErrInvalid, "%s:%d: parse error", path, line)
			}
		default:
			k, v, ok := strings.Cut(s, "=")
			v = strings.TrimSpace(v)
			if !ok || cur == nil || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
				return errf(ErrInvalid, "%s:%d: parse error", path, line)
			}
			cur[strings.TrimSpace(k)] = v[1 : len(v)-1]
		}
	}
	if err := sc.Err(); err != nil {
		return qerror.Errno(ErrInvalid, err, "Could not read blkdebug config file")
	}
	return flush()
}

// limitedFile stops reading after left bytes.
type limitedFile struct {
	f    *os.File
	left int
}

func (l *limitedFile) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errf(ErrInvalid, "blkdebug config file larger than %d bytes", maxBlkdebugConfig)
	}
	if len(p) > l.left {
		p = p[:l.left]
	}
	n, err := l.f.Read(p)
	l.left -= n
	return n, err
}

// addBlkdebugRule turns one [inject-error] or [set-state] group into a rule; other groups
// are QEMU's config groups blkdebug ignores.
func addBlkdebugRule(group string, kv map[string]string, o *BlkdebugOptions) error {
	num := func(k string) (*int64, error) {
		v, ok := kv[k]
		if !ok {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			return nil, errf(ErrInvalid, "Parameter '%s' expects a number", k)
		}
		return &n, nil
	}
	flag := func(k string) (bool, error) {
		v, ok := kv[k]
		if !ok {
			return false, nil
		}
		return optval.ParseBool(ErrInvalid, k, v)
	}
	state, err := num("state")
	if err != nil {
		return err
	}
	var st int64
	if state != nil {
		st = *state
	}
	switch group {
	case "inject-error":
		ie := BlkdebugInjectError{Event: kv["event"], State: st, IOType: kv["iotype"]}
		if ie.Errno, err = num("errno"); err != nil {
			return err
		}
		if ie.Sector, err = num("sector"); err != nil {
			return err
		}
		if ie.Once, err = flag("once"); err != nil {
			return err
		}
		if ie.Immediately, err = flag("immediately"); err != nil {
			return err
		}
		o.InjectError = append(o.InjectError, ie)
	case "set-state":
		ns, err := num("new_state")
		if err != nil {
			return err
		}
		ss := BlkdebugSetState{Event: kv["event"], State: st}
		if ns != nil {
			ss.NewState = *ns
		}
		o.SetState = append(o.SetState, ss)
	}
	return nil
}

// splitBlkdebugFilename splits "CONFIG:IMAGE" (what follows "blkdebug:"; CONFIG may be
// empty), as blkdebug_parse_filename does.
func splitBlkdebugFilename(rest string) (config, image string, err error) {
	config, image, ok := strings.Cut(rest, ":")
	if !ok {
		return "", "", errf(ErrInvalid, "blkdebug requires both config file and image path")
	}
	return config, image, nil
}

// openBlkdebugFilename opens "blkdebug:CONFIG:IMAGE" (a -drive file=): a file node over
// IMAGE under a blkdebug node with CONFIG's rules.
func (g *Graph) openBlkdebugFilename(o Options, rest string, in inherited, opened *[]*Node) (*Node, error) {
	config, image, err := splitBlkdebugFilename(rest)
	if err != nil {
		return nil, err
	}
	fo := o
	fo.Driver, fo.Filename, fo.NodeName = hostDriver(image), image, ""
	bo := o
	bo.Driver, bo.Filename, bo.NodeName, bo.Locking = DriverBlkdebug, "", "", ""
	bo.Blkdebug = &BlkdebugOptions{Config: config, Image: &Ref{Options: &fo}}
	return g.open(&bo, in, opened)
}

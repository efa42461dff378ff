package blockdev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	"tlcvm/compat/qerror"
)

// HMP's qemu-io: a line of the qemu-io command language run on a drive (its backend: the
// drive's throttling applies, device statistics do not count it, as QEMU's synchronous
// qemu-io requests are not accounted), a device's backend (-d), or a node (through a
// temporary backend). Like QEMU, it prints on the process's standard output, not on the
// monitor. tlcvm implements read, write, discard, flush and length, with QEMU 7.2's texts:
//
//	read [-qv] [-P pattern] off len     write [-fnquz] [-P pattern] off len
//	discard [-q] off len                flush              length
//
// Numbers take QEMU's size suffixes (k, M, G, T, P, E; 0x for hexadecimal).

// qemuIOMaxBytes is BDRV_REQUEST_MAX_BYTES, the longest request without -n.
const qemuIOMaxBytes = 2147483136

// qemuIOTarget is what a qemu-io line works on.
type qemuIOTarget interface {
	read(p []byte, off int64) error
	write(p []byte, off int64, fua bool) error
	zeroes(off, length int64, unmap, fua bool) error
	discard(off, length int64) error
	flush() error
	size() int64
}

// QemuIO is hmp_qemu_io: resolve the target (qdev: a device id or QOM path; else a drive
// name, else a node name), then run command, its output on out. A node is used through a
// temporary backend that asks for the command's permission (write for write and discard),
// which the node's other users may refuse: that error is returned as monitor text (QEMU
// reports it with error_report_err, without "Error: "). err is the lookup's error.
func (g *Graph) QemuIO(device string, qdev bool, command string, out io.Writer) (monitor string, err error) {
	g.mu.Lock()
	var t qemuIOTarget
	switch b := g.backend(device); {
	case qdev:
		bb, err := g.qmpBackend("", device)
		if err != nil {
			g.mu.Unlock()
			return "", err
		}
		t = backendTarget{bb}
	case b != nil:
		t = backendTarget{b}
	default:
		n, err := g.lookup("", device)
		if err != nil {
			g.mu.Unlock()
			return "", err
		}
		u := &tempUse{shared: PermAll}
		if f := strings.Fields(command); len(f) > 0 && (f[0] == "write" || f[0] == "discard") {
			u.perm = PermWrite
		}
		n.addParent(edge{temp: u, role: "root"})
		defer func() {
			g.mu.Lock()
			n.removeParent(func(e edge) bool { return e.temp == u })
			_ = g.refresh()
			g.mu.Unlock()
		}()
		if err := g.refresh(); err != nil {
			g.mu.Unlock()
			return err.Error() + "\n", nil
		}
		t = nodeTarget{n}
	}
	g.mu.Unlock()
	runQemuIO(t, command, out)
	return "", nil
}

type backendTarget struct{ b *Backend }

func (t backendTarget) do(write bool, length int64, f func(n *Node) error) error {
	if length > 0 {
		if err := t.b.throttle(context.Background(), write, length); err != nil {
			return err
		}
	}
	t.b.io.RLock()
	defer t.b.io.RUnlock()
	n, err := t.b.root()
	if err != nil {
		return err
	}
	return f(n)
}

func (t backendTarget) read(p []byte, off int64) error {
	return t.do(false, int64(len(p)), func(n *Node) error { return nodeTarget{n}.read(p, off) })
}
func (t backendTarget) write(p []byte, off int64, fua bool) error {
	return t.do(true, int64(len(p)), func(n *Node) error { return nodeTarget{n}.write(p, off, fua || t.b.WriteThrough) })
}
func (t backendTarget) zeroes(off, length int64, unmap, fua bool) error {
	return t.do(true, length, func(n *Node) error { return nodeTarget{n}.zeroes(off, length, unmap, fua) })
}
func (t backendTarget) discard(off, length int64) error {
	return t.do(true, 0, func(n *Node) error { return n.Unmap(off, length) }) // not throttled
}
func (t backendTarget) flush() error { return t.do(false, 0, func(n *Node) error { return n.Flush() }) }
func (t backendTarget) size() int64  { return t.b.Size() }

type nodeTarget struct{ n *Node }

func (t nodeTarget) read(p []byte, off int64) error {
	k, err := t.n.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return err // its errno is what qemu-io prints (an injected one, say)
	}
	if k < len(p) {
		return errf(ErrIO, "tlcvm: read past the end")
	}
	return nil
}
func (t nodeTarget) write(p []byte, off int64, fua bool) error {
	if _, err := t.n.WriteAt(p, off); err != nil {
		return err
	}
	if fua {
		return t.n.Flush()
	}
	return nil
}
func (t nodeTarget) zeroes(off, length int64, unmap, fua bool) error {
	var fl ZeroFlags
	if unmap {
		fl = ZeroMayUnmap
	}
	if err := t.n.WriteZeroes(off, length, fl); err != nil {
		return err
	}
	if fua {
		return t.n.Flush()
	}
	return nil
}
func (t nodeTarget) discard(off, length int64) error { return t.n.Unmap(off, length) }
func (t nodeTarget) flush() error                    { return t.n.Flush() }
func (t nodeTarget) size() int64                     { return t.n.Size() }

// qemuIOCommand is one command of the language: its usage line and what it does.
type qemuIOCommand struct {
	name, args, opts, help string
	argmin                 int
	run                    func(t qemuIOTarget, opts map[byte]string, args []string, out io.Writer)
}

var qemuIOCommands []qemuIOCommand

func init() {
	qemuIOCommands = append(qemuIOCommands, []qemuIOCommand{
		{name: "discard", args: "[-Cq] off len", opts: "q", help: "discards a number of bytes at a specified offset", argmin: 2, run: qemuIODiscard},
		{name: "flush", help: "flush all in-core file state to disk", run: func(t qemuIOTarget, _ map[byte]string, _ []string, _ io.Writer) {
			_ = t.flush()
		}},
		{name: "length", help: "gets the length of the current file", run: func(t qemuIOTarget, _ map[byte]string, _ []string, out io.Writer) {
			fmt.Fprintf(out, "%s\n", cvtstr(float64(t.size())))
		}},
		{name: "read", args: "[-abCqv] [-P pattern [-s off] [-l len]] off len", opts: "qvP:", help: "reads a number of bytes at a specified offset", argmin: 2, run: qemuIORead},
		{name: "write", args: "[-bcCfnquz] [-P pattern | -s source_file] off len", opts: "fnquzP:", help: "writes a number of bytes at a specified offset", argmin: 2, run: qemuIOWrite},
	}...)
}

// runQemuIO parses and runs one line (qemuio_command).
func runQemuIO(t qemuIOTarget, line string, out io.Writer) {
	argv := strings.Fields(line)
	if len(argv) == 0 {
		return
	}
	var c *qemuIOCommand
	for i := range qemuIOCommands {
		if qemuIOCommands[i].name == argv[0] {
			c = &qemuIOCommands[i]
		}
	}
	if c == nil {
		fmt.Fprintf(out, "command \"%s\" not found\n", argv[0])
		return
	}
	switch n := len(argv) - 1; {
	case c.argmin == 0 && n > 0:
		fmt.Fprintf(out, "bad argument count %d to %s, expected 0 arguments\n", n, c.name)
		return
	case n < c.argmin:
		fmt.Fprintf(out, "bad argument count %d to %s, expected at least %d arguments\n", n, c.name, c.argmin)
		return
	}
	opts, args, bad := qemuIOGetopt(c, argv[1:], out)
	if bad {
		return
	}
	if len(args) != c.argmin {
		fmt.Fprintf(out, "%s %s -- %s\n", c.name, c.args, c.help)
		return
	}
	c.run(t, opts, args, out)
}

// qemuIOGetopt is getopt(3) with GNU's argument permutation: options anywhere, "--" ends them.
func qemuIOGetopt(c *qemuIOCommand, argv []string, out io.Writer) (map[byte]string, []string, bool) {
	opts := map[byte]string{}
	var args []string
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			args = append(args, argv[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			args = append(args, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			k := strings.IndexByte(c.opts, a[j])
			if k < 0 || a[j] == ':' {
				fmt.Fprintf(out, "%s: invalid option -- '%c'\n%s %s -- %s\n", c.name, a[j], c.name, c.args, c.help)
				return nil, nil, true
			}
			if k+1 < len(c.opts) && c.opts[k+1] == ':' {
				v := a[j+1:]
				if v == "" {
					if i+1 >= len(argv) {
						fmt.Fprintf(out, "%s: option requires an argument -- '%c'\n%s %s -- %s\n", c.name, a[j], c.name, c.args, c.help)
						return nil, nil, true
					}
					i++
					v = argv[i]
				}
				opts[a[j]] = v
				break
			}
			opts[a[j]] = ""
		}
	}
	return opts, args, false
}

// qemuIORange parses off and len as cvtnum does, with its texts; ok false after a message.
// A range past the end of the target fails as the request would (EIO), before any buffer
// is made for it.
func qemuIORange(t qemuIOTarget, op string, args []string, out io.Writer, maxLen bool) (int64, int64, bool) {
	var v [2]int64
	for i, a := range args[:2] {
		n, err := cvtnum(a)
		if err != nil {
			fmt.Fprintf(out, "Parsing error: %s -- %s\n", err, a)
			return 0, 0, false
		}
		v[i] = n
	}
	if maxLen && v[1] > qemuIOMaxBytes {
		fmt.Fprintf(out, "length cannot exceed %d without -n, given %s\n", int64(qemuIOMaxBytes), args[1])
		return 0, 0, false
	}
	if size := t.size(); v[0] > size || v[1] > size-v[0] {
		fmt.Fprintf(out, "%s failed: Input/output error\n", op)
		return 0, 0, false
	}
	return v[0], v[1], true
}

// cvtnum is qemu-io's number parser (qemu_strtosz): decimal or 0x hexadecimal, an optional
// fraction and one suffix of B, K, M, G, T, P, E (powers of 1024).
func cvtnum(s string) (int64, error) {
	errSyntax := errors.New("non-numeric argument, or extraneous/unrecognized suffix")
	shift := uint(0)
	body := s
	if n := len(s); n > 0 {
		if k := strings.IndexByte("bkmgtpe", lower(s[n-1])); k >= 0 {
			shift, body = uint(10*k), s[:n-1]
		}
	}
	if strings.HasPrefix(body, "0x") || strings.HasPrefix(body, "0X") {
		if shift != 0 {
			return 0, errSyntax
		}
		v, err := strconv.ParseUint(body[2:], 16, 64)
		if err != nil || v > 1<<63-1 {
			return 0, errSyntax
		}
		return int64(v), nil
	}
	if body == "" || body[0] == '-' || body[0] == '+' {
		return 0, errSyntax
	}
	f, err := strconv.ParseFloat(body, 64)
	if err != nil {
		return 0, errSyntax
	}
	v := f * float64(uint64(1)<<shift)
	if v >= 1<<63 {
		return 0, errors.New("argument too large")
	}
	return int64(v), nil
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// qemuIOPattern parses -P's byte.
func qemuIOPattern(s string, out io.Writer) (byte, bool) {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil || v < 0 || v > 0xff {
		fmt.Fprintf(out, "%s is not a valid pattern byte\n", s)
		return 0, false
	}
	return byte(v), true
}

func qemuIOWrite(t qemuIOTarget, opts map[byte]string, args []string, out io.Writer) {
	_, zero := opts['z']
	pat, hasPat := opts['P']
	if zero && hasPat {
		fmt.Fprintf(out, "Only one of -z, -P, and -s can be specified at the same time\n")
		return
	}
	if _, u := opts['u']; u && !zero {
		fmt.Fprintf(out, "-u requires -z to be specified\n")
		return
	}
	_, unlimited := opts['n']
	off, length, ok := qemuIORange(t, "write", args, out, !unlimited)
	if !ok {
		return
	}
	b := byte(0xcd)
	if hasPat {
		if b, ok = qemuIOPattern(pat, out); !ok {
			return
		}
	}
	_, fua := opts['f']
	start := time.Now()
	var err error
	if zero {
		_, unmap := opts['u']
		err = t.zeroes(off, length, unmap, fua)
	} else {
		p := make([]byte, length)
		for i := range p {
			p[i] = b
		}
		err = t.write(p, off, fua)
	}
	if err != nil {
		fmt.Fprintf(out, "write failed: %s\n", qemuIOErrno(err))
		return
	}
	if _, q := opts['q']; !q {
		qemuIOReport(out, "wrote", time.Since(start), off, length)
	}
}

func qemuIORead(t qemuIOTarget, opts map[byte]string, args []string, out io.Writer) {
	off, length, ok := qemuIORange(t, "read", args, out, true)
	if !ok {
		return
	}
	pat, hasPat := opts['P']
	var b byte
	if hasPat {
		if b, ok = qemuIOPattern(pat, out); !ok {
			return
		}
	}
	// qemu_io_alloc fills the buffer with 0xab: what a read leaves untouched (a null node
	// without read-zeroes) shows as that.
	p := make([]byte, length)
	for i := range p {
		p[i] = 0xab
	}
	start := time.Now()
	if err := t.read(p, off); err != nil {
		fmt.Fprintf(out, "read failed: %s\n", qemuIOErrno(err))
		return
	}
	d := time.Since(start)
	if hasPat {
		for _, c := range p {
			if c != b {
				fmt.Fprintf(out, "Pattern verification failed at offset %d, %d bytes\n", off, length)
				break
			}
		}
	}
	if _, q := opts['q']; q {
		return
	}
	if _, v := opts['v']; v {
		dumpBuffer(out, p, off)
	}
	qemuIOReport(out, "read", d, off, length)
}

func qemuIODiscard(t qemuIOTarget, opts map[byte]string, args []string, out io.Writer) {
	off, length, ok := qemuIORange(t, "discard", args, out, true)
	if !ok {
		return
	}
	start := time.Now()
	if err := t.discard(off, length); err != nil {
		fmt.Fprintf(out, "discard failed: %s\n", qemuIOErrno(err))
		return
	}
	if _, q := opts['q']; !q {
		qemuIOReport(out, "discard", time.Since(start), off, length)
	}
}

// qemuIOErrno is strerror of the errno QEMU's request would have failed with.
func qemuIOErrno(err error) string {
	var e syscall.Errno
	switch {
	case errors.Is(err, ErrReadOnly):
		return "Operation not permitted"
	case errors.As(err, &e): // injected by blkdebug
		return qerror.Strerror(e)
	}
	return "Input/output error"
}

// qemuIOReport is print_report: the bytes, then the volume, time and rates.
func qemuIOReport(out io.Writer, op string, d time.Duration, off, length int64) {
	secs := max(d.Seconds(), 1e-9)
	fmt.Fprintf(out, "%s %d/%d bytes at offset %d\n", op, length, length, off)
	fmt.Fprintf(out, "%s, 1 ops; %s (%s/sec and %.4f ops/sec)\n", cvtstr(float64(length)), timestr(d),
		cvtstr(float64(length)/secs), 1/secs)
}

// cvtstr is qemu-io's human size: three decimals and a binary unit, ".000" dropped.
func cvtstr(v float64) string {
	units := []string{" EiB", " PiB", " TiB", " GiB", " MiB", " KiB"}
	s, suffix := fmt.Sprintf("%f", v), " bytes"
	for i, u := range units {
		if unit := float64(uint64(1) << (10 * (6 - i))); v >= unit {
			s, suffix = fmt.Sprintf("%.3f", v/unit), u
			break
		}
	}
	if i := strings.Index(s, ".000"); i >= 0 {
		return s[:i] + suffix
	}
	return s + suffix
}

// timestr is qemu-io's elapsed time ("00.00 sec", "M:SS.ss", "H:MM:SS.ss").
func timestr(d time.Duration) string {
	sec := d.Seconds()
	switch {
	case sec >= 3600:
		h := int(sec) / 3600
		return fmt.Sprintf("%d:%02d:%05.2f", h, int(sec)%3600/60, sec-float64(int(sec)/60*60))
	case sec >= 60:
		return fmt.Sprintf("%d:%05.2f", int(sec)/60, sec-float64(int(sec)/60*60))
	}
	return fmt.Sprintf("%05.2f sec", sec)
}

// dumpBuffer is qemu-io's -v dump: 16 bytes a line, hexadecimal then alphanumerics.
func dumpBuffer(out io.Writer, p []byte, off int64) {
	for i := 0; i < len(p); i += 16 {
		line := p[i:min(i+16, len(p))]
		fmt.Fprintf(out, "%08x:  ", off+int64(i))
		for _, c := range line {
			fmt.Fprintf(out, "%02x ", c)
		}
		fmt.Fprint(out, " ")
		for _, c := range line {
			if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
				fmt.Fprintf(out, "%c", c)
			} else {
				fmt.Fprint(out, ".")
			}
		}
		fmt.Fprint(out, "\n")
	}
}

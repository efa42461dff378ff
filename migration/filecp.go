package migration

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// Checkpoints to file: with mapped-ram (see doc.go, "Checkpoint files"): how the file is
// written (aside and renamed, in place, or incrementally through a journal), restore by
// mapping, and the file that backs guest RAM afterwards.

// PopulateMode is x-restore-populate: what a restore by mapping reads before and after
// the guest runs (satisfies qmp.Enum).
type PopulateMode string

// The populate modes.
const (
	// PopulateBackground: the guest runs at once; a background thread reads and checks
	// every page the guest has not touched yet. The default.
	PopulateBackground PopulateMode = "background"
	// PopulateNone: pages are read and checked only when first touched.
	PopulateNone PopulateMode = "none"
	// PopulateBeforeRun: every page is read and checked before the guest runs.
	PopulateBeforeRun PopulateMode = "before-run"
)

// populateRead is reported for a restore that read the file (streamed, or a machine that
// cannot map): every page populated before the guest ran.
const populateRead PopulateMode = "read"

// EnumValues lists the modes.
func (PopulateMode) EnumValues() []string {
	return []string{string(PopulateBackground), string(PopulateNone), string(PopulateBeforeRun)}
}

// FileInfo is tlcvm's report on a checkpoint to, or a restore from, file: (query-migrate's
// x-tlc-file).
type FileInfo struct {
	Mode string // "mapped" (mapped-ram) or "streamed"
	// Outgoing.
	Incremental  bool   // only the pages written since the previous checkpoint of the file
	Reason       string // why a mapped x-tlc checkpoint was not incremental
	WrittenBytes int64  // bytes written to the file (journal and in place)
	// Incoming (mapped).
	Populate                         PopulateMode
	PagesEager, PagesLazy, PagesLeft int64
}

// baseline is the checkpoint file the guest's RAM equals, apart from the pages in its
// dirty log: the last x-tlc mapped checkpoint written, or the file restored by mapping.
// Any other checkpoint clears the dirty log, and the baseline with it.
type baseline struct {
	dev, ino uint64
	offset   uint64
	digest   stream.Digest
}

// backing is the file a restore by mapping left under guest RAM: it stays open (and so
// does its inode, even when its name is removed).
type backing struct {
	f        *os.File
	dev, ino uint64
}

func fileID(fi os.FileInfo) (dev, ino uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Dev, st.Ino, true
}

// mapLockByte is the byte of a checkpoint file that a process mapping it as guest RAM
// read-locks (an OFD lock, as QEMU's image locks): tlcvm's writers test it and then never
// change that file in place. Tools that ignore advisory locks (cp, dd) are not stopped.
const mapLockByte = 0x7fff_ffff_ffff_0000

func mapLock(fd uintptr, typ int16, cmd int) (int16, error) {
	return lockByte(fd, mapLockByte, typ, cmd)
}

// asideLockByte is the byte of an aside file (see prepare) that its writer write-locks (an
// OFD lock) for as long as it has the file open: released by the kernel when the writer
// dies, however it dies.
const asideLockByte = mapLockByte + 1

func lockByte(fd uintptr, at int64, typ int16, cmd int) (int16, error) {
	fl := unix.Flock_t{Type: typ, Whence: 0, Start: at, Len: 1}
	err := unix.FcntlFlock(fd, cmd, &fl)
	return fl.Type, err
}

// asidePrefix begins the names of the aside files of a checkpoint file called name:
// ".NAME.tlcvm-PID-XXXXXX", in the same directory.
func asidePrefix(name string) string { return "." + name + ".tlcvm-" }

// sweepAsides removes the aside files of path that dead writers left behind (a checkpoint
// killed before its swap; the old checkpoint under the aside name when the writer died
// between the swap and the removal). One is stale when the process named in it is gone
// (kill(pid, 0) says ESRCH) and nobody holds its aside lock (the lock guards a live writer
// whose pid means something else here: another pid namespace, or a reused pid does not
// matter since it only keeps a file). This process's own are never touched: the one being
// written, or an old checkpoint being removed after a swap. It returns the names removed.
func sweepAsides(path string) []string {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	prefix := asidePrefix(name)
	self := os.Getpid()
	var removed []string
	for _, ent := range ents {
		rest, ok := strings.CutPrefix(ent.Name(), prefix)
		if !ok || !ent.Type().IsRegular() {
			continue
		}
		pidText, suffix, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == self || suffix == "" || strings.Trim(suffix, "0123456789abcdef") != "" {
			continue
		}
		if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
			continue // alive (or not ours to signal: alive too)
		}
		full := filepath.Join(dir, ent.Name())
		f, err := os.OpenFile(full, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		typ, err := lockByte(f.Fd(), asideLockByte, unix.F_WRLCK, unix.F_OFD_GETLK)
		f.Close()
		if err != nil || typ != unix.F_UNLCK {
			continue
		}
		if os.Remove(full) == nil {
			removed = append(removed, ent.Name())
		}
	}
	return removed
}

// mappedElsewhere reports whether another open file description (another process's
// restore by mapping) holds the map lock of f.
func mappedElsewhere(f *os.File) bool {
	typ, err := mapLock(f.Fd(), unix.F_WRLCK, unix.F_OFD_GETLK)
	return err == nil && typ != unix.F_UNLCK
}

// guestFile returns the file under this engine's guest (restore by mapping) when fi is
// that file, else nil.
func (e *Engine) guestFile(fi os.FileInfo) *backing {
	e.mu.Lock()
	bk := e.backing
	e.mu.Unlock()
	if bk == nil {
		return nil
	}
	if dev, ino, ok := fileID(fi); ok && dev == bk.dev && ino == bk.ino {
		return bk
	}
	return nil
}

// checkBacking refuses a file: checkpoint that would change the file under guest RAM: one
// that is not mapped-ram at offset 0 (those are written aside and renamed, or incrementally
// over pages the guest has already copied).
func (e *Engine) checkBacking(a transport.Address, mapped bool) error {
	if a.Scheme != transport.SchemeFile {
		return nil
	}
	if mapped && a.Offset == 0 {
		return nil
	}
	fi, err := os.Stat(a.Path)
	if err != nil {
		return nil
	}
	if e.guestFile(fi) != nil {
		return errorf(ErrInvalid, "'%s' holds the memory of the running guest (restored by mapping): checkpoint it with the mapped-ram capability at offset 0, or to another file", a.Path)
	}
	if f, err := os.Open(a.Path); err == nil {
		defer f.Close()
		if fi.Mode().IsRegular() && mappedElsewhere(f) {
			return errorf(ErrInvalid, "'%s' holds the memory of a running guest (restored by mapping): checkpoint it with the mapped-ram capability at offset 0, or to another file", a.Path)
		}
	}
	return nil
}

// fileTarget is a mapped-ram checkpoint's destination.
type fileTarget struct {
	path    string
	offset  uint64
	f       *os.File // what the writer writes
	aside   string   // the temporary file renamed over path at the end ("" in place)
	journal *stream.Journal
	prev    []*stream.MappedData
	info    FileInfo
}

// openTarget opens file:PATH for a mapped-ram checkpoint with QEMU's errors (synchronous
// part of migrate). The thread then chooses how to write it (prepare).
func openTarget(a transport.Address, env transport.Env) (*fileTarget, error) {
	f, err := transport.OpenCheckpointFile(a.Path, env)
	if err != nil {
		return nil, wrapf(ErrInvalid, err, "%s", err.Error())
	}
	return &fileTarget{path: a.Path, offset: a.Offset, f: f, info: FileInfo{Mode: "mapped"}}, nil
}

// prepare chooses how the checkpoint is written: incrementally when tlc and the file is the
// engine's baseline, unchanged; else aside (a new file renamed over the old one at the end,
// so the old one stays whole until then and a guest mapping it is never touched) when the
// stream starts at offset 0 of a regular file; else in place, cut to the offset.
func (t *fileTarget) prepare(e *Engine, tlc bool, m Machine) error {
	if gone := sweepAsides(t.path); len(gone) > 0 {
		e.log.Debug().Strs("removed", gone).Str("path", t.path).Msg("stale aside files of dead checkpoints")
	}
	fi, err := t.f.Stat()
	if err != nil {
		return wrapf(ErrSave, err, "%s: %v", t.path, err)
	}
	e.mu.Lock()
	bl := e.baseline
	e.baseline = nil // whatever happens now, the dirty log is consumed
	e.mu.Unlock()
	dev, ino, _ := fileID(fi)
	switch {
	case !tlc:
		t.info.Reason = "x-tlc is off"
	case bl == nil:
		t.info.Reason = "no previous checkpoint to build on"
	case bl.dev != dev || bl.ino != ino || bl.offset != t.offset:
		t.info.Reason = "the previous checkpoint went to another file"
	case t.mappedByOthers(e, fi):
		t.info.Reason = "another process's guest is mapped from the file"
	default:
		if reason := t.openPrev(bl, m); reason != "" {
			t.info.Reason = reason
			break
		}
		t.info.Incremental = true
		return nil
	}
	if t.offset == 0 && fi.Mode().IsRegular() {
		dir, name := filepath.Split(t.path)
		for range 16 {
			aside := filepath.Join(dir, asidePrefix(name)+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(rand.Uint64()&0xffffff, 16))
			f, err := os.OpenFile(aside, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, os.ErrExist) {
				continue
			}
			if err != nil {
				break // no room beside it: write in place
			}
			// Held until the file is closed (or the process dies): see sweepAsides.
			_, _ = lockByte(f.Fd(), asideLockByte, unix.F_WRLCK, unix.F_OFD_SETLK)
			_ = t.f.Close()
			t.f, t.aside = f, aside
			return nil
		}
	}
	// In place. Never over the memory of a running guest: cutting it would fault that guest.
	if e.guestFile(fi) != nil {
		return errorf(ErrSave, "'%s' holds the memory of the running guest and no file can be created beside it", t.path)
	}
	if fi.Mode().IsRegular() && mappedElsewhere(t.f) {
		return errorf(ErrSave, "'%s' holds the memory of a running guest and no file can be created beside it", t.path)
	}
	if err := t.f.Truncate(int64(t.offset)); err != nil {
		return wrapf(ErrSave, err, "Unable to truncate %s: %v", t.path, err)
	}
	return nil
}

// mappedByOthers reports whether a guest other than this engine's maps the file: then it
// must not change in place. This engine's own guest may: an incremental checkpoint writes
// only pages its guest has written since, which it no longer reads from the file.
func (t *fileTarget) mappedByOthers(e *Engine, fi os.FileInfo) bool {
	bk := e.guestFile(fi)
	if bk == nil {
		return mappedElsewhere(t.f)
	}
	// Our guest maps this very file. Upgrading our read lock (same open file description)
	// to a write lock succeeds exactly when no other description holds one; then back.
	if _, err := mapLock(bk.f.Fd(), unix.F_WRLCK, unix.F_OFD_SETLK); err != nil {
		return true
	}
	_, _ = mapLock(bk.f.Fd(), unix.F_RDLCK, unix.F_OFD_SETLK)
	return false
}

// openPrev reads the file's checkpoint (recovering a committed journal first) and, when it
// is the baseline, sets up the journal. It returns why not otherwise.
func (t *fileTarget) openPrev(bl *baseline, m Machine) string {
	if _, err := stream.RecoverJournal(t.f); err != nil {
		return "the file's journal is damaged: " + err.Error()
	}
	if _, err := t.f.Seek(int64(t.offset), io.SeekStart); err != nil {
		return err.Error()
	}
	rd := stream.NewFileReader(t.f, t.offset)
	var blocks []stream.Block
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "the file holds no valid checkpoint: " + err.Error()
		}
		switch rec.Kind {
		case stream.Config:
			if rec.MachineType != m.MachineType() {
				return "the file holds a checkpoint of another machine type"
			}
		case stream.RAMBlocks:
			blocks = rec.Blocks
		}
	}
	if !rd.Mapped() {
		return "the file holds a streamed checkpoint"
	}
	if rd.Digest() != bl.digest {
		return "the file changed since the previous checkpoint"
	}
	ours := m.RAMBlocks()
	if len(ours) != len(blocks) {
		return "the RAM blocks changed"
	}
	var tail uint64
	for i, b := range blocks {
		if ours[i].Name() != b.Name || ours[i].Size() != b.Size {
			return "the RAM blocks changed"
		}
		d, err := rd.MappedData(t.f, i)
		if err != nil {
			return "the file holds no valid checkpoint: " + err.Error()
		}
		t.prev = append(t.prev, d)
		tail = d.PagesOffset + d.Size
	}
	end := rd.FileEnd()
	// The journal goes after the checkpoint with room for its new end (device state and
	// digests are rewritten; allow them to double, plus 16 MiB).
	j, err := stream.NewJournal(t.f, (end+2*(end-tail)+16<<20+stream.MappedAlign-1)&^(stream.MappedAlign-1))
	if err != nil {
		return err.Error()
	}
	t.journal = j
	return ""
}

// writerAt is what the stream writer writes through.
func (t *fileTarget) writerAt() io.WriterAt {
	if t.journal != nil {
		return t.journal
	}
	return t.f
}

// commit makes the finished checkpoint the file's content: commit and apply the journal,
// or rename the aside file over the target. It returns the new baseline's file identity.
func (t *fileTarget) commit(w *stream.Writer) (*baseline, error) {
	switch {
	case t.journal != nil:
		if err := t.journal.Commit(w.FileEnd()); err != nil {
			return nil, wrapf(ErrSave, err, "%s: %v", t.path, err)
		}
		if err := t.journal.Apply(); err != nil {
			return nil, wrapf(ErrSave, err, "%s: %v", t.path, err)
		}
		t.info.WrittenBytes = int64(t.journal.FileBytes())
		t.journal = nil
	case t.aside != "":
		if err := swapInto(t.aside, t.path); err != nil {
			return nil, wrapf(ErrSave, err, "%s: %v", t.path, err)
		}
		t.aside = ""
		t.info.WrittenBytes = int64(w.Bytes())
	default:
		t.info.WrittenBytes = int64(w.Bytes())
	}
	fi, err := t.f.Stat()
	if err != nil {
		return nil, wrapf(ErrSave, err, "%s: %v", t.path, err)
	}
	dev, ino, _ := fileID(fi)
	return &baseline{dev: dev, ino: ino, offset: t.offset, digest: w.Digest()}, nil
}

// swapInto puts the file at aside in path's place atomically. It exchanges the two names
// (renameat2 RENAME_EXCHANGE) and then removes the old file: a plain rename over an
// existing file makes ext4 (auto_da_alloc) allocate every delayed block of the new one
// first, half a second per 2 GiB here. A process killed before the removal leaves the old
// checkpoint under the aside name. Without RENAME_EXCHANGE (other filesystems), a
// plain rename.
func swapInto(aside, path string) error {
	err := unix.Renameat2(unix.AT_FDCWD, aside, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		// Dropping the old file's pages takes a while (a quarter second per 2 GiB of
		// dirty page cache here): not on the checkpoint's path.
		go os.Remove(aside) //nolint:errcheck // best effort: a leftover is only garbage
		return nil
	case errors.Is(err, unix.ENOENT):
		// path went away meanwhile: nothing to exchange with.
	case !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP):
		return err
	}
	return os.Rename(aside, path)
}

// abort leaves the file as it was: the journal is dropped, the aside file removed.
func (t *fileTarget) abort() {
	if t.journal != nil {
		_ = t.journal.Abort()
		t.journal = nil
	}
	if t.aside != "" {
		_ = os.Remove(t.aside)
		t.aside = ""
	}
}

// loadURI loads the incoming stream: a file: one is read from the file itself (seekable:
// either layout, mapped-ram detected from its configuration section; a committed journal
// is applied first), any other from r. The file is the one the source opened when it was
// set up (-incoming is opened before -chroot and -runas take effect, as in QEMU).
func (e *Engine) loadURI(a transport.Address, r io.Reader, in *inJob) (string, error) {
	f, ok := transport.File(r)
	if a.Scheme != transport.SchemeFile || !ok {
		pf := newPrefetchReader(r)
		ld := &loader{e: e, rd: stream.NewReader(pf), ch: r, in: in, pf: pf}
		defer func() { ld.pf.stop() }() // a recovery replaces it
		if in != nil && in.mf != nil {
			ld.mf = in.mf
			ld.rd.ReportSectionEnd()
		}
		return ld.load()
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	if _, err := stream.RecoverJournal(f); err != nil {
		return "", wrapf(ErrLoad, err, "%s: %v", a.Path, err)
	}
	if _, err := f.Seek(int64(a.Offset), io.SeekStart); err != nil {
		return "", wrapf(ErrLoad, err, "%s", err.Error())
	}
	rd := stream.NewFileReader(f, a.Offset)
	return (&loader{e: e, rd: rd, f: &fileSource{f: f, path: a.Path, offset: a.Offset, keep: &keep}, in: in}).load()
}

// fileSource is a file a stream is loaded from.
type fileSource struct {
	f      *os.File
	path   string
	offset uint64
	keep   *bool // set when the file stays open under guest RAM
}

func (s *fileSource) ReadAt(p []byte, off int64) (int, error) { return s.f.ReadAt(p, off) }

// restoreMapped loads a verified mapped-ram stream's RAM: mapped from the file when every
// block can be (MappableRAM), read otherwise.
func (e *Engine) restoreMapped(rd *stream.Reader, f io.ReaderAt, order []stream.Block, blocks map[string]RAMBlock) error {
	src, ok := f.(*fileSource)
	for _, sb := range order {
		if _, can := blocks[sb.Name].(MappableRAM); !can {
			ok = false
		}
	}
	if !ok {
		if err := loadMapped(rd, f, order, blocks); err != nil {
			return err
		}
		e.setRestoreInfo(&FileInfo{Mode: "mapped", Populate: populateRead}, nil)
		return nil
	}
	mode := e.populateMode()
	var mapped []MappableRAM
	for i, sb := range order {
		d, err := rd.MappedData(src.f, i)
		if err != nil {
			return wrapf(ErrLoad, err, "%s", err.Error())
		}
		path := src.path
		check := func(first uint64, mem []byte) error {
			if err := d.Check(first, mem); err != nil {
				return fmt.Errorf("checkpoint %s: %w", path, err)
			}
			return nil
		}
		b := blocks[sb.Name].(MappableRAM)
		if err := b.MapFile(int(src.f.Fd()), int64(d.PagesOffset), d.Bitmap, check); err != nil {
			return wrapf(ErrLoad, err, "%s: %v", src.path, err)
		}
		mapped = append(mapped, b)
	}
	if mode == PopulateBeforeRun {
		for _, b := range mapped {
			if err := b.Populate(nil); err != nil {
				return wrapf(ErrLoad, err, "%s", err.Error())
			}
		}
	}
	*src.keep = true
	// Tell tlcvm's writers (other processes too) that the file is under guest RAM.
	_, _ = mapLock(src.f.Fd(), unix.F_RDLCK, unix.F_OFD_SETLK)
	bk := &backing{f: src.f}
	if fi, err := src.f.Stat(); err == nil {
		bk.dev, bk.ino, _ = fileID(fi)
	}
	e.mu.Lock()
	if e.backing != nil {
		_ = e.backing.f.Close()
	}
	e.backing = bk
	e.baseline = &baseline{dev: bk.dev, ino: bk.ino, offset: src.offset, digest: rd.Digest()}
	e.mu.Unlock()
	e.setRestoreInfo(&FileInfo{Mode: "mapped", Populate: mode}, mapped)
	return nil
}

func (e *Engine) populateMode() PopulateMode {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.params.XRestorePopulate; p != nil {
		return *p
	}
	return PopulateBackground
}

func (e *Engine) setRestoreInfo(fi *FileInfo, mapped []MappableRAM) {
	e.mu.Lock()
	e.restore, e.restoreRAM = fi, mapped
	e.mu.Unlock()
}

// afterRestore starts the background populate of a restore by mapping (the guest may run).
func (e *Engine) afterRestore() {
	e.mu.Lock()
	fi, n := e.restore, len(e.restoreRAM)
	e.mu.Unlock()
	if fi == nil || n == 0 || fi.Populate != PopulateBackground {
		return
	}
	if p, ok := e.m.(Populater); ok {
		p.StartPopulate()
	}
}

// restoreInfo is the incoming side's x-tlc-file, with the populate figures as they are now.
func (e *Engine) restoreInfo() *FileInfo {
	e.mu.Lock()
	fi, ram := e.restore, e.restoreRAM
	e.mu.Unlock()
	if fi == nil {
		return nil
	}
	out := *fi
	for _, b := range ram {
		eager, lazy, left := b.PopulateStats()
		out.PagesEager += int64(eager)
		out.PagesLazy += int64(lazy)
		out.PagesLeft += int64(left)
	}
	return &out
}

func (e *Engine) clearBaseline() {
	e.mu.Lock()
	e.baseline = nil
	e.mu.Unlock()
}

func (j *job) setFileInfo(fi FileInfo) {
	j.mu.Lock()
	j.fileInfo = &fi
	j.mu.Unlock()
}

package qmp

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Session is one monitor's state that outlives single commands: its table of descriptors
// named with getfd (monitor/fds.c mon->fds). QMP connections get one from Serve; an HMP
// monitor gets one from NewSession. Safe for concurrent use.
type Session struct {
	s   *Server
	mu  sync.Mutex
	fds map[string]int // +checklocks:mu
}

// NewSession returns a session with an empty fd table, for a monitor that is not a QMP
// connection (HMP) or for ServeSession.
func (s *Server) NewSession() *Session { return &Session{s: s, fds: map[string]int{}} }

// AddFD names fd in the table (getfd). A name starting with a digit is refused and fd closed;
// an existing name has its old descriptor closed and replaced.
func (ss *Session) AddFD(name string, fd int) error {
	if name != "" && name[0] >= '0' && name[0] <= '9' {
		unix.Close(fd)
		return GenericError("Parameter 'fdname' expects a name not starting with a digit")
	}
	ss.mu.Lock()
	old, had := ss.fds[name]
	ss.fds[name] = fd
	ss.mu.Unlock()
	if had {
		unix.Close(old)
	}
	return nil
}

// CloseFD closes and forgets a named descriptor (closefd).
func (ss *Session) CloseFD(name string) error {
	ss.mu.Lock()
	fd, ok := ss.fds[name]
	delete(ss.fds, name)
	ss.mu.Unlock()
	if !ok {
		return GenericError("File descriptor named '%s' not found", name).Wrap(ErrFDNotFound)
	}
	unix.Close(fd)
	return nil
}

// TakeFD removes a named descriptor from the table and hands it to the caller
// (monitor_get_fd), e.g. for migrate "fd:NAME".
func (ss *Session) TakeFD(name string) (int, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	fd, ok := ss.fds[name]
	if !ok {
		return -1, GenericError("File descriptor named '%s' has not been found", name).Wrap(ErrFDNotFound)
	}
	delete(ss.fds, name)
	return fd, nil
}

// FDParam resolves a descriptor argument (monitor_fd_param): a name from the table, taken,
// or a decimal descriptor number.
func (ss *Session) FDParam(name string) (int, error) {
	if ss != nil && name != "" && (name[0] < '0' || name[0] > '9') {
		return ss.TakeFD(name)
	}
	fd, err := strconv.ParseInt(name, 10, 32)
	if err != nil || fd < 0 {
		return -1, GenericError("Invalid file descriptor number '%s'", name)
	}
	return int(fd), nil
}

// Names returns the table's names, sorted.
func (ss *Session) Names() []string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]string, 0, len(ss.fds))
	for n := range ss.fds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Close closes every named descriptor.
func (ss *Session) Close() {
	ss.mu.Lock()
	fds := ss.fds
	ss.fds = map[string]int{}
	ss.mu.Unlock()
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// FDSets are the global descriptor sets of add-fd, remove-fd and query-fdsets, which block
// devices open as "/dev/fdset/N" (monitor/fds.c). Safe for concurrent use.
type FDSets struct {
	running func() bool
	monRefs func() int

	mu   sync.Mutex
	sets []*fdset // +checklocks:mu; ordered by id
}

type fdset struct {
	id   int64
	fds  []*fdsetFD // newest first, as QEMU's QLIST_INSERT_HEAD
	dups []int
}

type fdsetFD struct {
	fd      int
	removed bool
	opaque  *string
}

// AddfdInfo is add-fd's reply.
type AddfdInfo struct {
	QAPIOrder
	FdsetID int64 `json:"fdset-id"`
	FD      int64 `json:"fd"`
}

// FdsetFdInfo is one descriptor of query-fdsets.
type FdsetFdInfo struct {
	QAPIOrder
	FD     int64   `json:"fd"`
	Opaque *string `json:"opaque,omitempty"`
}

// FdsetInfo is one element of query-fdsets.
type FdsetInfo struct {
	QAPIOrder
	FdsetID int64         `json:"fdset-id"`
	FDs     []FdsetFdInfo `json:"fds"`
}

func newFDSets(running func() bool, monRefs func() int) *FDSets {
	if running == nil {
		running = func() bool { return true }
	}
	return &FDSets{running: running, monRefs: monRefs}
}

// Add puts fd into set id (nil: the lowest free id), creating the set (monitor_fdset_add_fd).
// On error fd is not consumed.
func (f *FDSets) Add(fd int, id *int64, opaque *string) (AddfdInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var set *fdset
	if id != nil {
		for _, s := range f.sets {
			if s.id == *id {
				set = s
			}
		}
	}
	if set == nil {
		if id != nil && *id < 0 {
			return AddfdInfo{}, GenericError("Parameter 'fdset-id' expects a non-negative value")
		}
		set = &fdset{}
		if id != nil {
			set.id = *id
		} else {
			prev := int64(-1)
			for _, s := range f.sets {
				if s.id != prev+1 {
					break
				}
				prev = s.id
			}
			set.id = prev + 1
		}
		f.sets = append(f.sets, set)
		sort.Slice(f.sets, func(i, j int) bool { return f.sets[i].id < f.sets[j].id })
	}
	set.fds = append([]*fdsetFD{{fd: fd, opaque: opaque}}, set.fds...)
	return AddfdInfo{FdsetID: set.id, FD: int64(fd)}, nil
}

// Remove marks one descriptor (fd non-nil) or the whole set removed and releases what it can
// (qmp_remove_fd).
func (f *FDSets) Remove(id int64, fd *int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sets {
		if s.id != id {
			continue
		}
		found := fd == nil
		for _, e := range s.fds {
			if fd == nil {
				e.removed = true
			} else if int64(e.fd) == *fd {
				e.removed, found = true, true
				break
			}
		}
		if found {
			f.cleanupLocked(s)
			return nil
		}
		break
	}
	name := fmt.Sprintf("fdset-id:%d", id)
	if fd != nil {
		name += fmt.Sprintf(", fd:%d", *fd)
	}
	return GenericError("File descriptor named '%s' not found", name).Wrap(ErrFDNotFound)
}

// Query lists the sets as query-fdsets does: highest id first, descriptors oldest first.
func (f *FDSets) Query() []FdsetInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []FdsetInfo{}
	for i := len(f.sets) - 1; i >= 0; i-- {
		s := f.sets[i]
		info := FdsetInfo{FdsetID: s.id, FDs: []FdsetFdInfo{}}
		for j := len(s.fds) - 1; j >= 0; j-- {
			info.FDs = append(info.FDs, FdsetFdInfo{FD: int64(s.fds[j].fd), Opaque: s.fds[j].opaque})
		}
		out = append(out, info)
	}
	return out
}

// Dup returns a duplicate of a descriptor of set id whose access mode matches flags
// (O_RDONLY/O_WRONLY/O_RDWR), recording it as in use (monitor_fdset_dup_fd_add).
func (f *FDSets) Dup(id int64, flags int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sets {
		if s.id != id {
			continue
		}
		for _, e := range s.fds {
			fl, err := unix.FcntlInt(uintptr(e.fd), unix.F_GETFL, 0)
			if err != nil {
				return -1, err
			}
			if fl&unix.O_ACCMODE != flags&unix.O_ACCMODE {
				continue
			}
			dup, err := unix.FcntlInt(uintptr(e.fd), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				return -1, err
			}
			s.dups = append(s.dups, dup)
			return dup, nil
		}
		return -1, unix.EACCES
	}
	return -1, unix.ENOENT
}

// DupRemove forgets a descriptor returned by Dup (the caller closes it).
func (f *FDSets) DupRemove(dup int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sets {
		for i, d := range s.dups {
			if d == dup {
				s.dups = append(s.dups[:i], s.dups[i+1:]...)
				if len(s.dups) == 0 {
					f.cleanupLocked(s)
				}
				return
			}
		}
	}
}

// Open opens path with flags, resolving "/dev/fdset/N" through Dup (qemu_open).
func (f *FDSets) Open(path string, flags int, mode uint32) (int, error) {
	if rest, ok := strings.CutPrefix(path, "/dev/fdset/"); ok {
		id, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return -1, unix.EINVAL
		}
		return f.Dup(id, flags)
	}
	return unix.Open(path, flags|unix.O_CLOEXEC, mode)
}

// Cleanup releases descriptors of removed entries, and of sets nobody uses while no QMP
// monitor is connected, if the VM is running (monitor_fdsets_cleanup).
func (f *FDSets) Cleanup() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range append([]*fdset(nil), f.sets...) {
		f.cleanupLocked(s)
	}
}

func (f *FDSets) cleanupLocked(s *fdset) {
	running := f.running()
	noMon := f.monRefs != nil && f.monRefs() == 0
	kept := s.fds[:0]
	for _, e := range s.fds {
		if (e.removed || (len(s.dups) == 0 && noMon)) && running {
			unix.Close(e.fd)
			continue
		}
		kept = append(kept, e)
	}
	s.fds = kept
	if len(s.fds) == 0 && len(s.dups) == 0 {
		for i, x := range f.sets {
			if x == s {
				f.sets = append(f.sets[:i], f.sets[i+1:]...)
				break
			}
		}
	}
}

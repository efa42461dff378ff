package chardev

import (
	"sync"
)

// Info is one entry of query-chardev (ChardevInfo), members in QEMU's order.
type Info struct {
	FrontendOpen bool   `json:"frontend-open"`
	Filename     string `json:"filename"`
	Label        string `json:"label"`
}

// Registry holds a process's chardevs by id (QEMU's /chardevs container):
// duplicate ids, lookup for "chardev:ID" and -mon chardev=ID, removal, and
// the query-chardev list, where a mux=on chardev ID appears twice: "ID"
// (filename "mux") and its back end "ID-base".
type Registry struct {
	mu    sync.Mutex
	order []*Chardev          // in creation order (mu)
	byID  map[string]*Chardev // (mu)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byID: map[string]*Chardev{}}
}

// Open opens s and registers it. Error for an id in use: "Chardev with id
// 'ID' already exists" (QMP chardev-add's text; on the command line QEMU's
// option parser reports "Duplicate ID 'ID' for chardev" before this).
func (r *Registry) Open(s Spec, o Options) (*Chardev, error) {
	r.mu.Lock()
	if r.taken(s.ID) {
		r.mu.Unlock()
		return nil, newErr(ErrDuplicate, "Chardev with id '%s' already exists", s.ID)
	}
	// Reserve the id while opening (a wait=on server blocks here).
	r.byID[s.ID] = nil
	r.mu.Unlock()
	c, err := OpenWith(s, o)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		delete(r.byID, s.ID)
		return nil, err
	}
	r.byID[s.ID] = c
	r.order = append(r.order, c)
	return c, nil
}

// taken reports whether id (or, for a mux, its "-base" twin) is used; mu held.
func (r *Registry) taken(id string) bool {
	if _, ok := r.byID[id]; ok {
		return true
	}
	for _, c := range r.byID {
		if c != nil && c.spec.Mux && c.spec.ID+"-base" == id {
			return true
		}
	}
	return false
}

// Get returns the chardev with id.
func (r *Registry) Get(id string) (*Chardev, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.byID[id]
	return c, c != nil
}

// Remove closes and unregisters a chardev (QMP chardev-remove). Errors:
// "Chardev 'ID' not found", "Chardev 'ID' is busy" while a front end is
// attached (a mux always counts as busy, as in QEMU).
func (r *Registry) Remove(id string) error {
	r.mu.Lock()
	c := r.byID[id]
	if c == nil {
		r.mu.Unlock()
		return newErr(ErrNotFound, "Chardev '%s' not found", id)
	}
	if c.Busy() {
		r.mu.Unlock()
		return newErr(ErrInUse, "Chardev '%s' is busy", id)
	}
	delete(r.byID, id)
	for i, x := range r.order {
		if x == c {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	return c.Close()
}

// List returns query-chardev's entries in creation order (QEMU's order is
// that of a hash table and carries no meaning).
func (r *Registry) List() []Info {
	r.mu.Lock()
	devs := append([]*Chardev(nil), r.order...)
	r.mu.Unlock()
	var out []Info
	for _, c := range devs {
		open := c.FrontendOpen()
		out = append(out, Info{FrontendOpen: open, Filename: c.Filename(), Label: c.ID()})
		if c.spec.Mux {
			out = append(out, Info{FrontendOpen: open, Filename: c.BaseFilename(), Label: c.ID() + "-base"})
		}
	}
	return out
}

// ResumeMuxOpen calls ResumeMuxOpen on every chardev (after the command line).
func (r *Registry) ResumeMuxOpen() {
	r.mu.Lock()
	devs := append([]*Chardev(nil), r.order...)
	r.mu.Unlock()
	for _, c := range devs {
		c.ResumeMuxOpen()
	}
}

// Close closes every chardev, newest first, and empties the registry.
func (r *Registry) Close() error {
	r.mu.Lock()
	devs := r.order
	r.order = nil
	r.byID = map[string]*Chardev{}
	r.mu.Unlock()
	var first error
	for i := len(devs) - 1; i >= 0; i-- {
		if err := devs[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Replace puts c in the place of the chardev registered as c's id (QMP chardev-change):
// same id, same place in the list. The old chardev is returned, still open, for the
// caller to move its front ends and close it.
func (r *Registry) Replace(c *Chardev) (*Chardev, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := c.spec.ID
	old := r.byID[id]
	if old == nil {
		return nil, newErr(ErrNotFound, "Chardev '%s' does not exist", id)
	}
	r.byID[id] = c
	for i, x := range r.order {
		if x == old {
			r.order[i] = c
		}
	}
	return old, nil
}

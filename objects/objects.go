package objects

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// Sentinels; every error is a *qerror.Error with QEMU 7.2's text wrapping one.
var (
	// ErrNotFound: no object of that id.
	ErrNotFound = errors.New("object not found")
	// ErrInvalid: bad options, a duplicate id.
	ErrInvalid = errors.New("invalid object")
	// ErrInUse: the object is used (a memory back-end by a DIMM).
	ErrInUse = errors.New("object in use")
	// ErrOpen: a host resource could not be opened.
	ErrOpen = errors.New("cannot open object resource")
	// ErrDeviceNotFound: a chardev an object names does not exist (QMP class DeviceNotFound).
	ErrDeviceNotFound = errors.New("device not found")
)

func errf(kind error, format string, a ...any) error { return qerror.Errorf(kind, format, a...) }

// Object is one user-creatable object.
type Object struct {
	ID, Type string
	// Props are the members it was created with, as JSON; the others have their type's
	// defaults (the catalogue's).
	Props map[string]json.RawMessage
	// Memory is a memory back-end's, IOThread an iothread's; nil for other types.
	Memory   *MemoryBackend
	IOThread *IOThread

	secret []byte
	closer func()
	users  int // +checklocks:Registry.mu
}

// Config is what a registry needs from its composition root.
type Config struct {
	// Chardev reports whether a chardev exists (rng-egd).
	Chardev func(id string) bool
	// DumpGuestCore is the machine's dump-guest-core (the default of a back-end's dump).
	DumpGuestCore bool
}

// Registry is the process's objects, in creation order. Safe for concurrent use.
type Registry struct {
	cfg  Config
	mu   sync.Mutex
	objs []*Object // +checklocks:mu
}

// New returns an empty registry.
func New(cfg Config) *Registry { return &Registry{cfg: cfg} }

func (r *Registry) find(id string) *Object {
	for _, o := range r.objs {
		if o.ID == id {
			return o
		}
	}
	return nil
}

// Add creates an object (-object, object-add) from its decoded members. The caller has
// checked the members against the type's QAPI definition.
func (r *Registry) Add(id, typ string, props map[string]json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !optval.ID(id) {
		return qerror.Errorf(ErrInvalid, "Parameter 'id' expects an identifier").
			AppendHint("Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n")
	}
	if r.find(id) != nil {
		return errf(ErrInvalid, "attempt to add duplicate property '%s' to object (type 'container')", id)
	}
	o := &Object{ID: id, Type: typ, Props: props}
	if err := r.complete(o); err != nil {
		if o.closer != nil {
			o.closer()
		}
		return err
	}
	r.objs = append(r.objs, o)
	return nil
}

// Del is object-del: an object something uses stays.
func (r *Registry) Del(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.find(id)
	if o == nil {
		return errf(ErrNotFound, "object '%s' not found", id)
	}
	if o.users > 0 {
		return errf(ErrInUse, "object '%s' is in use, can not be deleted", id)
	}
	r.objs = slices.DeleteFunc(r.objs, func(x *Object) bool { return x == o })
	if o.closer != nil {
		o.closer()
	}
	return nil
}

// Get returns an object by id.
func (r *Registry) Get(id string) (*Object, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.find(id)
	return o, o != nil
}

// List returns the objects in creation order.
func (r *Registry) List() []*Object {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.objs)
}

// Use marks an object used (a DIMM's memory back-end): object-del refuses it until Release.
func (r *Registry) Use(o *Object) {
	r.mu.Lock()
	o.users++
	r.mu.Unlock()
}

// Release undoes Use.
func (r *Registry) Release(o *Object) {
	r.mu.Lock()
	o.users--
	r.mu.Unlock()
}

// InUse reports whether something uses the object.
func (r *Registry) InUse(o *Object) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return o.users > 0
}

// Close releases every object's host resources.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.objs {
		if o.closer != nil {
			o.closer()
		}
	}
	r.objs = nil
}

// str, boolean and num read a member; ok false when absent.
func (o *Object) str(name string) (string, bool) {
	var s string
	v, ok := o.Props[name]
	if ok && json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, ok
}

func (o *Object) boolean(name string, def bool) bool {
	var b bool
	if v, ok := o.Props[name]; ok && json.Unmarshal(v, &b) == nil {
		return b
	}
	return def
}

func (o *Object) num(name string) (int64, bool) {
	var n int64
	v, ok := o.Props[name]
	if ok && json.Unmarshal(v, &n) != nil {
		return 0, false
	}
	return n, ok
}

// complete is QEMU's user_creatable_complete for the types that hold something; r.mu held.
func (r *Registry) complete(o *Object) error {
	switch o.Type {
	case "secret":
		return r.loadSecret(o)
	case "memory-backend-ram", "memory-backend-memfd", "memory-backend-file", "memory-backend-epc":
		return r.memoryBackend(o)
	case "iothread":
		return startIOThread(o)
	case "rng-random":
		name, ok := o.str("filename")
		if !ok {
			name = "/dev/urandom"
			o.Props["filename"] = json.RawMessage(`"/dev/urandom"`)
		}
		f, err := os.Open(name)
		if err != nil {
			return qerror.Wrapf(ErrOpen, err, "Could not open '%s': %s", name, qerror.Strerror(err))
		}
		o.closer = func() { f.Close() }
	case "rng-egd":
		id, _ := o.str("chardev")
		if r.cfg.Chardev == nil || !r.cfg.Chardev(id) {
			return errf(ErrDeviceNotFound, "Device '%s' not found", id)
		}
	case "main-loop":
		for _, x := range r.objs {
			if x.Type == "main-loop" {
				return errf(ErrInvalid, "only one main-loop instance allowed")
			}
		}
	}
	return nil
}

// loadSecret is qcrypto_secret_load_data and _decrypt.
func (r *Registry) loadSecret(o *Object) error {
	data, hasData := o.str("data")
	file, hasFile := o.str("file")
	switch {
	case hasData && hasFile:
		return errf(ErrInvalid, "'file' and 'data' are mutually exclusive")
	case !hasData && !hasFile:
		return errf(ErrInvalid, "Either 'file' or 'data' must be provided")
	}
	in := []byte(data)
	if hasFile {
		b, err := os.ReadFile(file)
		if err != nil {
			return qerror.Wrapf(ErrOpen, err, "Unable to read %s: Failed to open file \u201c%s\u201d: %s", file, file, qerror.Strerror(err))
		}
		in = b
	}
	format, _ := o.str("format")
	keyid, hasKey := o.str("keyid")
	if !hasKey {
		if format == "base64" {
			out, err := b64(string(in))
			if err != nil {
				return err
			}
			in = out
		}
		o.secret = in
		return nil
	}
	k := r.find(keyid)
	if k == nil {
		return errf(ErrInvalid, "No secret with id '%s'", keyid)
	}
	if k.Type != "secret" && k.Type != "secret_keyring" {
		return errf(ErrInvalid, "Object with id '%s' is not a secret", keyid)
	}
	if len(k.secret) != 32 {
		return errf(ErrInvalid, "Key should be 32 bytes in length")
	}
	ivs, hasIV := o.str("iv")
	if !hasIV {
		return errf(ErrInvalid, "IV is required to decrypt secret")
	}
	iv, err := b64(ivs)
	if err != nil {
		return err
	}
	if len(iv) != 16 {
		return errf(ErrInvalid, "IV should be 16 bytes in length not %d", len(iv))
	}
	ct := in
	if format == "base64" {
		if ct, err = b64(string(in)); err != nil {
			return err
		}
	}
	if len(ct)%aes.BlockSize != 0 {
		return errf(ErrInvalid, "Length %d must be a multiple of block size %d", len(ct), aes.BlockSize)
	}
	block, err := aes.NewCipher(k.secret)
	if err != nil {
		return errf(ErrInvalid, "%v", err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	if len(pt) == 0 {
		return errf(ErrInvalid, "Incorrect number of padding bytes (0) found on decrypted data")
	}
	if pad := int(pt[len(pt)-1]); pad > 16 || pad > len(pt) {
		return errf(ErrInvalid, "Incorrect number of padding bytes (%d) found on decrypted data", pad)
	}
	o.secret = pt[:len(pt)-int(pt[len(pt)-1])]
	return nil
}

func b64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errf(ErrInvalid, "Base64 data contains invalid characters")
	}
	return b, nil
}

// Secret returns a secret's bytes (for a consumer such as a TLS credential or a VNC
// password); QEMU's qcrypto_secret_lookup texts.
func (r *Registry) Secret(id string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.find(id)
	if o == nil {
		return nil, errf(ErrNotFound, "No secret with id '%s'", id)
	}
	if o.Type != "secret" && o.Type != "secret_keyring" {
		return nil, errf(ErrInvalid, "Object with id '%s' is not a secret", id)
	}
	return slices.Clone(o.secret), nil
}

// MemoryBackend is a memory back-end's settings and, for memfd and file, the descriptor
// whose pages a DIMM maps (-1 for memory-backend-ram: anonymous memory).
type MemoryBackend struct {
	Size                                  uint64
	Merge, Dump, Prealloc, Share, Reserve bool
	Policy                                string
	HostNodes                             []int64
	FD                                    int
}

// memoryBackend is host_memory_backend_memory_complete.
func (r *Registry) memoryBackend(o *Object) error {
	var size uint64
	if v, ok := o.Props["size"]; ok {
		_ = json.Unmarshal(v, &size)
	}
	if size == 0 {
		return errf(ErrInvalid, "property 'size' of %s doesn't take value '0'", o.Type)
	}
	m := &MemoryBackend{Size: size, FD: -1, Merge: o.boolean("merge", true), Dump: o.boolean("dump", r.cfg.DumpGuestCore),
		Prealloc: o.boolean("prealloc", false), Share: o.boolean("share", o.Type == "memory-backend-memfd"),
		Reserve: o.boolean("reserve", true), Policy: "default", HostNodes: []int64{}}
	if p, ok := o.str("policy"); ok {
		m.Policy = p
	}
	if v, ok := o.Props["host-nodes"]; ok {
		_ = json.Unmarshal(v, &m.HostNodes)
	}
	switch o.Type {
	case "memory-backend-memfd":
		fd, err := unix.MemfdCreate(o.Type, unix.MFD_CLOEXEC)
		if err != nil {
			return qerror.Wrapf(ErrOpen, err, "failed to create memfd: %s", qerror.Strerror(err))
		}
		if err := unix.Ftruncate(fd, int64(size)); err != nil {
			unix.Close(fd)
			return qerror.Wrapf(ErrOpen, err, "failed to resize memfd to %d: %s", size, qerror.Strerror(err))
		}
		m.FD = fd
	case "memory-backend-file":
		path, _ := o.str("mem-path")
		fd, err := openBackingStore(path, size)
		if err != nil {
			return err
		}
		m.FD = fd
	case "memory-backend-epc":
		return errf(ErrOpen, "Memory backend 'memory-backend-epc' is not supported in tlcvm (no SGX)")
	}
	if m.FD >= 0 {
		fd := m.FD
		o.closer = func() { unix.Close(fd) }
	}
	o.Memory = m
	return nil
}

// openBackingStore is file_ram_open: a directory gets a new unlinked file inside, a file is
// opened (created when missing) and grown to size.
func openBackingStore(path string, size uint64) (int, error) {
	fail := func(err error) (int, error) {
		return -1, qerror.Wrapf(ErrOpen, err, "can't open backing store %s for guest RAM: %s", path, qerror.Strerror(err))
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		f, err := os.CreateTemp(path, "qemu_back_mem.XXXXXX")
		if err != nil {
			return fail(err)
		}
		os.Remove(f.Name())
		fd, err := unix.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			return fail(err)
		}
		return fd, unix.Ftruncate(fd, int64(size))
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fail(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil && uint64(st.Size) < size {
		if err := unix.Ftruncate(fd, int64(size)); err != nil {
			unix.Close(fd)
			return fail(err)
		}
	}
	return fd, nil
}

// IOThread is an iothread's state: a real thread, and the event-loop parameters
// query-iothreads reports and qom-set changes while it runs.
type IOThread struct {
	ThreadID int
	stop     chan struct{}

	mu     sync.Mutex
	params map[string]int64 // IOThreadParams' names; +checklocks:mu
}

// IOThreadParams are an iothread's live parameters (QOM properties of /objects/ID, all int).
var IOThreadParams = []string{"poll-max-ns", "poll-grow", "poll-shrink", "aio-max-batch", "thread-pool-min",
	"thread-pool-max"}

// iothreadDefaults are QEMU 7.2's (IOTHREAD_POLL_MAX_NS_DEFAULT, the thread pool's 64);
// the others are 0.
var iothreadDefaults = map[string]int64{"poll-max-ns": 32768, "thread-pool-max": 64}

// Param returns a parameter's value; ok is false for a name that is not one.
func (t *IOThread) Param(name string) (v int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok = t.params[name]
	return v, ok
}

// SetParam is qom-set of a parameter, with QEMU 7.2's checks (iothread_set_poll_param,
// event_loop_base_set_param): the value is kept even when the thread-pool pair it makes
// is refused, as QEMU stores it before aio_context_set_thread_pool_params checks the pair.
func (t *IOThread) SetParam(name string, v int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.params[name]; !ok {
		return fmt.Errorf("%w: no iothread parameter %s", ErrInvalid, name)
	}
	if v < 0 {
		return errf(ErrInvalid, "%s value must be in range [0, %d]", name, int64(math.MaxInt64))
	}
	t.params[name] = v
	if name == "thread-pool-min" || name == "thread-pool-max" {
		lo, hi := t.params["thread-pool-min"], t.params["thread-pool-max"]
		if lo > hi || hi == 0 || lo > math.MaxInt32 || hi > math.MaxInt32 {
			return errf(ErrInvalid, "bad thread-pool-min/thread-pool-max values")
		}
	}
	return nil
}

// startIOThread is iothread_complete: the parameters checked, the thread started.
func startIOThread(o *Object) error {
	t := &IOThread{stop: make(chan struct{}), params: map[string]int64{}}
	for _, name := range IOThreadParams {
		t.params[name] = iothreadDefaults[name]
		if v, ok := o.num(name); ok {
			if v < 0 {
				return errf(ErrInvalid, "%s value must be in range [0, %d]", name, int64(1<<63-1))
			}
			t.params[name] = v
		}
	}
	started := make(chan int)
	go func() {
		// An iothread is an OS thread of its own, as QEMU's; it has nothing to do here but
		// wait for its end.
		runtime.LockOSThread()
		started <- unix.Gettid()
		<-t.stop
	}()
	t.ThreadID = <-started
	o.IOThread = t
	o.closer = func() { close(t.stop) }
	return nil
}

func (o *Object) String() string { return fmt.Sprintf("%s (%s)", o.ID, o.Type) }

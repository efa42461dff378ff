package dump

import (
	"errors"
	"io"
	"sync"

	"tlcvm/compat/qerror"
)

// Format is QAPI's DumpGuestMemoryFormat.
type Format string

// The formats of dump-guest-memory.
const (
	FormatELF         Format = "elf"
	FormatKdumpZlib   Format = "kdump-zlib"
	FormatKdumpLZO    Format = "kdump-lzo"
	FormatKdumpSnappy Format = "kdump-snappy"
	FormatWinDmp      Format = "win-dmp"
)

// Formats is query-dump-guest-memory-capability's list: what a QEMU 7.2 built with
// LZO and snappy reports (Debian's is built without both and lists elf, kdump-zlib,
// win-dmp).
func Formats() []Format {
	return []Format{FormatELF, FormatKdumpZlib, FormatKdumpLZO, FormatKdumpSnappy, FormatWinDmp}
}

// Status is QAPI's DumpStatus.
type Status string

// The dump states: none until the first dump; active while one runs; then completed or
// failed until the next.
const (
	StatusNone      Status = "none"
	StatusActive    Status = "active"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
)

// Result is query-dump's reply and DUMP_COMPLETED's "result".
type Result struct {
	Status    Status
	Completed int64 // bytes of guest memory written
	Total     int64 // bytes of guest memory to write (within the filter)
}

// ErrDump marks every error of this package; the text is QEMU 7.2's.
var ErrDump = errors.New("dump")

// Request is one dump-guest-memory.
type Request struct {
	Format    Format // "" is elf
	Paging    bool
	HasBegin  bool
	Begin     int64
	HasLength bool
	Length    int64
	Detach    bool
	Out       io.WriteCloser // the protocol's file; the dump closes it when done
}

// VM is what a dump needs of the machine.
type VM interface {
	// StopForDump stops a running VM (QEMU's vm_stop(RUN_STATE_SAVE_VM): STOP, state
	// save-vm) and returns what restarts it afterwards (RESUME); nil when the VM was not
	// running.
	StopForDump() (resume func())
	// Snapshot describes the memory and vCPUs to dump; called once the VM is stopped.
	Snapshot() *Machine
}

// Dumper runs dumps one at a time and keeps the state query-dump reports (QEMU's
// dump_state_global).
type Dumper struct {
	// Completed is called once a dump that started ends, before the VM resumes: QEMU's
	// DUMP_COMPLETED, with the error text when it failed. Set before the first Start.
	Completed func(r Result, errText string)

	mu     sync.Mutex
	status Status // +checklocks:mu
	total  int64  // +checklocks:mu
	prog   progress
}

// NewDumper returns a dumper in state none.
func NewDumper() *Dumper { return &Dumper{status: StatusNone} }

// Query is query-dump.
func (d *Dumper) Query() Result {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Result{Status: d.status, Completed: d.prog.n.Load(), Total: d.total}
}

// InProgress reports whether a dump is active.
func (d *Dumper) InProgress() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status == StatusActive
}

// Busy is QEMU's error for what it refuses while a dump runs (another dump-guest-memory,
// cont: qemu_system_dump_in_progress); nil when no dump runs.
func (d *Dumper) Busy() error {
	if d.InProgress() {
		return qerror.New(ErrDump, "There is a dump in process, please wait.")
	}
	return nil
}

// Check validates a request as qmp_dump_guest_memory does before it opens the output.
func (d *Dumper) Check(r *Request) error {
	if err := d.Busy(); err != nil {
		return err
	}
	kdump := r.Format != "" && r.Format != FormatELF && r.Format != FormatWinDmp
	if kdump && (r.Paging || r.HasBegin || r.HasLength) {
		return qerror.New(ErrDump, "kdump-compressed format doesn't support paging or filter")
	}
	if r.HasBegin && !r.HasLength {
		return qerror.New(ErrDump, "Parameter 'length' is missing")
	}
	if !r.HasBegin && r.HasLength {
		return qerror.New(ErrDump, "Parameter 'begin' is missing")
	}
	return nil
}

// Start runs a checked request: the VM stops (if running), the dump is written (in the
// background with Detach), Completed is called, the VM resumes. Errors found before the
// first byte (dump_init's) are returned with the state failed and no Completed; with
// Detach, later errors reach Completed only.
func (d *Dumper) Start(vm VM, r *Request) error {
	d.mu.Lock()
	d.status, d.total = StatusActive, 0
	d.prog.n.Store(0)
	d.mu.Unlock()

	resume := vm.StopForDump()
	fail := func(err error) error {
		_ = r.Out.Close()
		if resume != nil {
			resume()
		}
		d.mu.Lock()
		d.status = StatusFailed
		d.mu.Unlock()
		return err
	}
	f := filter{}
	if r.HasBegin {
		if r.Length == 0 {
			return fail(qerror.New(ErrDump, "Invalid parameter 'length'"))
		}
		f = filter{begin: uint64(r.Begin), length: uint64(r.Length)}
	}
	m := vm.Snapshot()
	total := m.totalSize(f)
	if total == 0 {
		return fail(qerror.New(ErrDump, "dump: no guest memory to dump"))
	}
	d.mu.Lock()
	d.total = int64(total)
	d.mu.Unlock()

	run := func() error {
		err := write(r, m, f, &d.prog)
		d.mu.Lock()
		d.status = StatusCompleted
		errText := ""
		if err != nil {
			d.status = StatusFailed
			errText = err.Error()
		}
		res := Result{Status: d.status, Completed: d.prog.n.Load(), Total: d.total}
		d.mu.Unlock()
		if d.Completed != nil {
			d.Completed(res, errText)
		}
		_ = r.Out.Close()
		if resume != nil {
			resume()
		}
		return err
	}
	if r.Detach {
		go func() { _ = run() }()
		return nil
	}
	return run()
}

// write is dump_process's writing part.
func write(r *Request, m *Machine, f filter, p *progress) error {
	o := newOutput(r.Out)
	switch r.Format {
	case FormatWinDmp:
		// QEMU's create_win_dump needs the guest's vmcoreinfo note of a Windows kernel;
		// tlcvm's guest (like any guest without one) never writes it.
		return qerror.New(ErrDump, "win-dump: invalid vmcoreinfo note size")
	case FormatKdumpZlib, FormatKdumpLZO, FormatKdumpSnappy:
		flag := map[Format]uint32{FormatKdumpZlib: dhCompressZlib, FormatKdumpLZO: dhCompressLZO,
			FormatKdumpSnappy: dhCompressSnap}[r.Format]
		l := newKdumpLayout(m, flag)
		return wrapIO(writeKdump(o, m, &l, p))
	default:
		l := elfLayout(m, r.Paging, f)
		return wrapIO(writeELF(o, m, &l, p))
	}
}

// wrapIO gives a write error QEMU's text ("dump: failed to save memory: …" and the like
// are already in place; a failure of the final flush is the memory's).
func wrapIO(err error) error {
	if err == nil {
		return nil
	}
	var q *qerror.Error
	if errors.As(err, &q) {
		return err
	}
	return qerror.Errorf(ErrDump, "%s", err.Error())
}

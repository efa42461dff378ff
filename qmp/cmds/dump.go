package cmds

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
	"tlcvm/dump"
	"tlcvm/machine"
	"tlcvm/qmp"
)

// The dump commands (qapi/dump.json): dump-guest-memory, query-dump,
// query-dump-guest-memory-capability, and the DUMP_COMPLETED event. They call
// dump.Dumper with the VM the composition root adapts (Deps.DumpVM).

// DumpGuestMemoryFormat is QAPI's DumpGuestMemoryFormat.
type DumpGuestMemoryFormat string

// EnumValues lists QAPI's values.
func (DumpGuestMemoryFormat) EnumValues() []string {
	return []string{"elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "win-dmp"}
}

// DumpStatus is QAPI's DumpStatus.
type DumpStatus string

// EnumValues lists QAPI's values.
func (DumpStatus) EnumValues() []string { return []string{"none", "active", "completed", "failed"} }

// DumpGuestMemoryArgs are dump-guest-memory's arguments.
type DumpGuestMemoryArgs struct {
	Paging   bool                   `json:"paging"`
	Protocol string                 `json:"protocol"`
	Detach   *bool                  `json:"detach,omitempty"`
	Begin    *int64                 `json:"begin,omitempty"`
	Length   *int64                 `json:"length,omitempty"`
	Format   *DumpGuestMemoryFormat `json:"format,omitempty"`
}

// DumpQueryResult is query-dump's reply and DUMP_COMPLETED's result.
type DumpQueryResult struct {
	qmp.QAPIOrder
	Status    DumpStatus `json:"status"`
	Completed int64      `json:"completed"`
	Total     int64      `json:"total"`
}

// DumpGuestMemoryCapability is query-dump-guest-memory-capability's reply.
type DumpGuestMemoryCapability struct {
	qmp.QAPIOrder
	Formats []DumpGuestMemoryFormat `json:"formats"`
}

// DumpCompletedData is DUMP_COMPLETED's data.
type DumpCompletedData struct {
	qmp.QAPIOrder
	Result DumpQueryResult `json:"result"`
	Error  *string         `json:"error,omitempty"`
}

// DumpCompleted builds DUMP_COMPLETED's data from what the dumper reports.
func DumpCompleted(r dump.Result, errText string) DumpCompletedData {
	d := DumpCompletedData{Result: queryResult(r)}
	if errText != "" {
		d.Error = &errText
	}
	return d
}

func queryResult(r dump.Result) DumpQueryResult {
	return DumpQueryResult{Status: DumpStatus(r.Status), Completed: r.Completed, Total: r.Total}
}

// RegisterDumpEvents declares DUMP_COMPLETED.
func RegisterDumpEvents(r *qmp.Registry) { r.RegisterEvent("DUMP_COMPLETED", DumpCompletedData{}) }

// openDumpProtocol opens dump-guest-memory's protocol: "fd:NAME" takes a descriptor
// passed with getfd, "file:PATH" creates the file read-only for its owner (QEMU opens it
// O_WRONLY|O_CREAT|O_TRUNC with mode S_IRUSR).
func openDumpProtocol(c *qmp.Call, p string) (*os.File, error) {
	switch {
	case strings.HasPrefix(p, "fd:"):
		fd, err := c.Session.TakeFD(p[3:])
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), p), nil
	case strings.HasPrefix(p, "file:"):
		path := p[5:]
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o400)
		if err != nil {
			return nil, qmp.Errorf("GenericError", "Could not open '%s': %s", path, qerror.Strerror(err))
		}
		return os.NewFile(uintptr(fd), path), nil
	}
	return nil, qmp.GenericError("Invalid parameter 'protocol'")
}

func registerDump(r *qmp.Registry, d *Deps) {
	if d.Dumper == nil {
		return
	}
	r.Register(
		qmp.Command{Name: "dump-guest-memory", Args: &DumpGuestMemoryArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*DumpGuestMemoryArgs)
				if st, _ := d.Machine.Status(); st == machine.StateInMigrate {
					return nil, qmp.GenericError("Dump not allowed during incoming migration.")
				}
				req := &dump.Request{Paging: a.Paging, HasBegin: a.Begin != nil, HasLength: a.Length != nil}
				if a.Format != nil {
					req.Format = dump.Format(*a.Format)
				}
				if a.Begin != nil {
					req.Begin = *a.Begin
				}
				if a.Length != nil {
					req.Length = *a.Length
				}
				req.Detach = a.Detach != nil && *a.Detach
				if err := d.Dumper.Check(req); err != nil {
					return nil, err
				}
				f, err := openDumpProtocol(c, a.Protocol)
				if err != nil {
					return nil, err
				}
				req.Out = f
				return nil, d.Dumper.Start(d.DumpVM, req)
			}},
		qmp.Command{Name: "query-dump", Returns: DumpQueryResult{},
			Run: func(*qmp.Call) (any, error) { return queryResult(d.Dumper.Query()), nil }},
		qmp.Command{Name: "query-dump-guest-memory-capability", Returns: DumpGuestMemoryCapability{},
			Run: func(*qmp.Call) (any, error) {
				out := DumpGuestMemoryCapability{Formats: []DumpGuestMemoryFormat{}}
				for _, f := range dump.Formats() {
					out.Formats = append(out.Formats, DumpGuestMemoryFormat(f))
				}
				return out, nil
			}},
	)
}

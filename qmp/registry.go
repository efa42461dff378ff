package qmp

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
)

// Command is one QMP command: its wire name, argument and return types, and handler.
type Command struct {
	// Name is the wire name, e.g. "query-status".
	Name string
	// Args is nil (no arguments) or a pointer to a zero struct; each call gets a fresh copy,
	// decoded strictly (see DecodeArgs), in Call.Args.
	Args any
	// Returns is a value of the return type, for the schema: nil means {} (no return value),
	// json.RawMessage(nil) means 'any', "" means 'str', []T{} an array, T{} an object.
	Returns any
	// Run is the handler. It runs under the server's lock, one command at a time
	// (AllowOOB commands sent with exec-oob run on the connection's goroutine instead and
	// must be safe for that). A nil result is sent as {}; an error is sent as the *Error the
	// registry's ErrorClasses make of it (see Registry.SetErrorClasses).
	Run func(c *Call) (any, error)
	// AllowOOB allows exec-oob; AllowPreconfig allows the command before the machine is
	// ready (--preconfig).
	AllowOOB, AllowPreconfig bool
	// OpenArgs commands take arguments beyond those Args declares (QAPI's 'gen': false, as
	// device_add): Args only describes the schema, and Call.Args is the arguments' *Value,
	// undecoded, for the handler to check.
	OpenArgs bool
	// Features are the command's QAPI features ("deprecated", "unstable", …) for the schema.
	Features []string
	// Internal commands serve HMP commands that have no QMP twin in QEMU (info registers, x):
	// they run through Execute and Call.Exec only, and are absent from the wire, from
	// query-commands and from the schema.
	Internal bool
}

// Call is one invocation of a command.
type Call struct {
	// Args is the decoded *Args copy, or nil for commands without arguments.
	Args any
	// Session is the monitor the command came on (its getfd table).
	Session *Session
	// FDs are descriptors received with this command (SCM_RIGHTS) and not yet claimed. Take
	// them with TakeFD, or take ownership and set FDs to nil; whatever is left is closed after
	// the command.
	FDs    []int
	server *Server
	conn   *conn // nil for HMP sessions and Execute
}

// TakeFD claims the first descriptor that came with the command and closes the others, as
// QEMU's qemu_chr_fe_get_msgfd does. ok is false when none came.
func (c *Call) TakeFD() (fd int, ok bool) {
	if len(c.FDs) == 0 {
		return -1, false
	}
	fd = c.FDs[0]
	closeFDs(c.FDs[1:])
	c.FDs = nil
	return fd, true
}

// Exec runs another command inline, on the same goroutine and session, with the same
// validation (human-monitor-command → HMP → commands). It returns the compact JSON of the
// return value.
func (c *Call) Exec(name string, args any) (json.RawMessage, error) {
	return c.server.execInline(c.Session, c.conn, name, args)
}

// Server returns the server running the call.
func (c *Call) Server() *Server { return c.server }

type command struct {
	Command
	argType reflect.Type // the struct Args points to; nil without arguments
}

// argInfo is the arguments' QAPI description, worked out on first use (infoOf caches it).
func (c *command) argInfo() *typeInfo {
	if c.argType == nil {
		return nil
	}
	return infoOf(c.argType)
}

type event struct {
	name     string
	data     any
	features []string
}

// Registry is the command table and the event list, with the introspection schema generated
// from them, and the table that gives handler errors their QMP class. Register everything
// before serving; registration panics on mistakes.
type Registry struct {
	mu       sync.Mutex
	cmds     map[string]*command // +checklocks:mu
	events   map[string]*event   // +checklocks:mu
	entities []any               // +checklocks:mu; *command and *event in registration order
	schema   *Value              // +checklocks:mu; built on first request, dropped on Register
	classes  *ErrorClasses       // +checklocks:mu; nil (GenericError for all) until SetErrorClasses
}

// NewRegistry returns an empty registry. The protocol commands (ProtocolCommands) are added by
// NewServer unless registered before.
func NewRegistry() *Registry {
	return &Registry{cmds: map[string]*command{}, events: map[string]*event{}}
}

// SetErrorClasses hands the registry the table that turns every handler's error into the
// QMP error sent (ErrorClasses.ToError): the composition root's, or in tests the same table
// from the same constructor. Call it before serving; without it every handler error that is
// not an *Error is a GenericError.
func (r *Registry) SetErrorClasses(t *ErrorClasses) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.classes = t
}

func (r *Registry) errorClasses() *ErrorClasses {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.classes
}

// Register adds commands. It panics on a duplicate name or a malformed entry (no name, no
// handler, Args not a pointer to a struct). Whether QAPI can express the argument and return
// types is worked out on first use, to keep start-up cheap: Check does it for every type at
// once, and the command tables' tests call it. Each handler's error leaves the command as the
// *Error the registry's ErrorClasses make of it.
func (r *Registry) Register(cmds ...Command) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cmds {
		if c.Name == "" || c.Run == nil {
			panic(fmt.Sprintf("qmp: command %q needs a name and a Run function", c.Name))
		}
		if _, dup := r.cmds[c.Name]; dup {
			panic(fmt.Sprintf("qmp: command %q registered twice", c.Name))
		}
		cmd := &command{Command: c}
		run := c.Run
		cmd.Run = func(call *Call) (any, error) {
			out, err := run(call)
			if err != nil {
				return out, r.errorClasses().ToError(err)
			}
			return out, nil
		}
		internName(c.Name)
		if c.Args != nil {
			t := reflect.TypeOf(c.Args)
			if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
				panic(fmt.Sprintf("qmp: command %q: Args must be a pointer to a struct, not %v", c.Name, t))
			}
			cmd.argType = t.Elem()
		}
		r.cmds[c.Name] = cmd
		if !c.Internal {
			r.entities = append(r.entities, cmd)
		}
	}
	r.schema = nil
}

// RegisterEvent declares an event and its data type (nil: no data) for the schema.
func (r *Registry) RegisterEvent(name string, data any, features ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "" {
		panic("qmp: event needs a name")
	}
	if _, dup := r.events[name]; dup {
		panic(fmt.Sprintf("qmp: event %q registered twice", name))
	}
	ev := &event{name: name, data: data, features: features}
	r.events[name] = ev
	r.entities = append(r.entities, ev)
	r.schema = nil
}

// Check works out the QAPI description of every registered argument, return and event data
// type, and panics, naming the command or event, on one QAPI cannot express.
func (r *Registry) Check() {
	r.mu.Lock()
	defer r.mu.Unlock()
	check := func(what, name string, v any) {
		defer func() {
			if p := recover(); p != nil {
				panic(fmt.Sprintf("qmp: %s %q: %v", what, name, p))
			}
		}()
		if v != nil {
			infoOf(reflect.TypeOf(v))
		}
	}
	for name, c := range r.cmds {
		if c.argType != nil {
			check("command", name, reflect.New(c.argType).Interface())
		}
		check("command", name, c.Returns)
	}
	for name, e := range r.events {
		check("event", name, e.data)
	}
}

// Commands returns the command names in registration order.
func (r *Registry) Commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.entities {
		if c, ok := e.(*command); ok {
			out = append(out, c.Name)
		}
	}
	return out
}

// Has reports whether a command is registered on the wire (not Internal).
func (r *Registry) Has(name string) bool { c := r.lookup(name); return c != nil && !c.Internal }

// HasEvent reports whether an event is registered.
func (r *Registry) HasEvent(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[name] != nil
}

func (r *Registry) lookup(name string) *command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmds[name]
}

// Schema returns the query-qmp-schema return value in QEMU's compact JSON.
func (r *Registry) Schema() json.RawMessage { return AppendJSON(nil, r.SchemaValue(), false) }

// SchemaValue returns the query-qmp-schema return value, generated on first use.
func (r *Registry) SchemaValue() *Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.schema == nil {
		r.schema = genSchema(r.entities)
	}
	return r.schema
}

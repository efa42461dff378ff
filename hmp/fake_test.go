package hmp_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// qmpError is a failed QMP command: Error() is the desc, as the Executor contract says.
type qmpError struct{ desc string }

func (e *qmpError) Error() string { return e.desc }

// call is one QMP command the fake saw.
type call struct {
	Name string
	Args string // JSON, "" for none
}

// fakeQMP answers QMP commands from canned replies (QEMU-shaped JSON) and serves guest
// memory from a byte image, recording every call.
type fakeQMP struct {
	mu      sync.Mutex
	replies map[string]string // name (or "x-tlcvm-registers/N") -> JSON or "!desc"
	ram     []byte            // guest RAM at physical 0; reads past it fail
	calls   []call
}

func newFake() *fakeQMP {
	return &fakeQMP{replies: map[string]string{
		"query-status":    `{"status": "running", "singlestep": false, "running": true}`,
		"query-cpus-fast": `[{"thread-id": 4242, "props": {"core-id": 0, "thread-id": 0, "socket-id": 0}, "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, "target": "x86_64"}, {"thread-id": 4243, "props": {"core-id": 1, "thread-id": 0, "socket-id": 0}, "qom-path": "/machine/unattached/device[2]", "cpu-index": 1, "target": "x86_64"}]`,
		"query-version":   `{"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}`,
		"stop":            `{}`,
		"cont":            `{}`,
		"system_reset":    `{}`,
		"quit":            `{}`,
	}}
}

func (f *fakeQMP) set(name, reply string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[name] = reply
}

func (f *fakeQMP) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// Names lists the commands called, in order.
func (f *fakeQMP) Names() []string {
	var out []string
	for _, c := range f.Calls() {
		out = append(out, c.Name)
	}
	return out
}

func (f *fakeQMP) Execute(name string, args any) (json.RawMessage, error) {
	var a string
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		a = string(b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{name, a})
	switch name {
	case "x-tlcvm-read-memory":
		var r struct {
			Addr uint64 `json:"addr"`
			Size int64  `json:"size"`
		}
		if err := json.Unmarshal([]byte(a), &r); err != nil {
			return nil, err
		}
		if r.Addr+uint64(r.Size) < r.Addr || r.Addr+uint64(r.Size) > uint64(len(f.ram)) {
			return nil, &qmpError{"Cannot access memory"}
		}
		return json.RawMessage(fmt.Sprintf(`{"data": %q}`, hex.EncodeToString(f.ram[r.Addr:r.Addr+uint64(r.Size)]))), nil
	case "x-tlcvm-registers":
		var r struct {
			CPU int `json:"cpu-index"`
		}
		_ = json.Unmarshal([]byte(a), &r)
		name = fmt.Sprintf("%s/%d", name, r.CPU)
	}
	rep, ok := f.replies[name]
	if !ok {
		return nil, &qmpError{fmt.Sprintf("The command %s has not been found", name)}
	}
	if strings.HasPrefix(rep, "!") {
		return nil, &qmpError{rep[1:]}
	}
	return json.RawMessage(rep), nil
}

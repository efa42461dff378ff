package qmp_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"tlcvm/qmp"
)

// Sample commands whose argument types mirror QEMU 7.2's, so that the same inputs give the
// same replies here and from the real binary (see differential_test.go).

type StatusInfo struct {
	Status     string `json:"status"`
	Singlestep bool   `json:"singlestep"`
	Running    bool   `json:"running"`
}

type HumanArgs struct {
	CommandLine string `json:"command-line"`
	CPUIndex    *int64 `json:"cpu-index,omitempty"`
}

type MigrationCapability string

func (MigrationCapability) EnumValues() []string {
	return []string{"xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events",
		"postcopy-ram", "x-colo", "release-ram", "block", "return-path", "pause-before-switchover",
		"multifd", "dirty-bitmaps", "postcopy-blocktime", "late-block-activate",
		"x-ignore-shared", "validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt"}
}

type MigrationCapabilityStatus struct {
	Capability MigrationCapability `json:"capability"`
	State      bool                `json:"state"`
}

type SetCapsArgs struct {
	Capabilities []MigrationCapabilityStatus `json:"capabilities"`
}

type BitmapAlias struct {
	Name  string `json:"name"`
	Alias string `json:"alias"`
}

type NodeAlias struct {
	NodeName string        `json:"node-name"`
	Alias    string        `json:"alias"`
	Bitmaps  []BitmapAlias `json:"bitmaps"`
}

type SetParamsArgs struct {
	CompressLevel            *uint8         `json:"compress-level,omitempty"`
	ThrottleTriggerThreshold *uint8         `json:"throttle-trigger-threshold,omitempty"`
	TLSCreds                 *qmp.StrOrNull `json:"tls-creds,omitempty"`
	MaxBandwidth             *uint64        `json:"max-bandwidth,omitempty"`
	DowntimeLimit            *uint64        `json:"downtime-limit,omitempty"`
	BlockBitmapMapping       []NodeAlias    `json:"block-bitmap-mapping,omitempty"`
}

var testVersion = qmp.VersionInfo{
	Qemu:    qmp.VersionTriple{Major: 7, Minor: 2, Micro: 22},
	Package: "Debian 1:7.2+dfsg-7+deb12u18+b3",
}

func sampleCommands(emit func(string, any)) []qmp.Command {
	return []qmp.Command{
		{Name: "query-status", Returns: StatusInfo{}, AllowPreconfig: true, Run: func(*qmp.Call) (any, error) {
			return StatusInfo{Status: "running", Running: true}, nil
		}},
		{Name: "query-version", Returns: qmp.VersionInfo{}, Run: func(*qmp.Call) (any, error) { return testVersion, nil }},
		{Name: "stop", Run: func(*qmp.Call) (any, error) { emit("STOP", nil); return nil, nil }},
		{Name: "cont", Run: func(*qmp.Call) (any, error) { emit("RESUME", nil); return nil, nil }},
		{Name: "human-monitor-command", Args: &HumanArgs{}, Returns: "", Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*HumanArgs)
			if a.CPUIndex != nil && *a.CPUIndex != 0 {
				return nil, qmp.GenericError("Parameter 'cpu-index' expects a CPU number")
			}
			raw, err := c.Exec("query-status", nil)
			if err != nil {
				return nil, err
			}
			return a.CommandLine + " " + string(raw), nil
		}},
		{Name: "migrate-set-capabilities", Args: &SetCapsArgs{}, Run: func(*qmp.Call) (any, error) { return nil, nil }},
		{Name: "migrate-set-parameters", Args: &SetParamsArgs{}, Run: func(c *qmp.Call) (any, error) {
			if d := c.Args.(*SetParamsArgs).DowntimeLimit; d != nil && *d > 2000000 {
				return nil, qmp.GenericError("Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms")
			}
			return nil, nil
		}},
		{Name: "migrate-pause", AllowOOB: true, Run: func(*qmp.Call) (any, error) {
			return nil, qmp.GenericError("migrate-pause is currently only supported during postcopy-active state")
		}},
	}
}

// newServer returns a server with the sample commands, closed at the end of the test.
func newServer(t testing.TB, o qmp.Options) *qmp.Server {
	t.Helper()
	r := qmp.NewRegistry()
	var s *qmp.Server
	r.Register(sampleCommands(func(n string, d any) { s.Emit(n, d) })...)
	r.RegisterEvent("STOP", nil)
	r.RegisterEvent("RESUME", nil)
	if o.Version.Package == "" {
		o.Version = testVersion
	}
	if o.Now == nil {
		o.Now = func() time.Time { return time.Unix(1700000000, 123456789) }
	}
	s = qmp.NewServer(r, o)
	t.Cleanup(func() { s.Close() })
	return s
}

// client is the test's end of a monitor connection.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, s *qmp.Server, pretty bool) *client {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(a, pretty) }()
	t.Cleanup(func() { b.Close(); <-done })
	return &client{t: t, conn: b, r: bufio.NewReader(b)}
}

// line reads one message line (compact mode), without its "\r\n".
func (c *client) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a hang is a failure, not a timing check
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("message %q does not end in \\r\\n", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (c *client) send(s string) {
	c.t.Helper()
	// QEMU 7.2 reads a monitor one byte per main-loop iteration (monitor_can_read): allow
	// it 60 µs a byte (~5 µs here) on a loaded machine.
	c.conn.SetWriteDeadline(time.Now().Add(20*time.Second + time.Duration(len(s))*60*time.Microsecond))
	if _, err := io.WriteString(c.conn, s); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) negotiate() {
	c.t.Helper()
	c.line() // greeting
	c.send(`{"execute":"qmp_capabilities"}`)
	if got := c.line(); got != `{"return": {}}` {
		c.t.Fatalf("qmp_capabilities: %s", got)
	}
}

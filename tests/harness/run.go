package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// Entry kinds of a Transcript.
const (
	EntryMessage = "message" // a QMP greeting, reply or event
	EntryHMP     = "hmp"     // bytes from the HMP monitor for one line typed
	EntryExit    = "exit"    // how the process ended
	EntryStderr  = "stderr"  // what the process wrote to stderr
	EntryDaemon  = "daemon"  // how the -daemonize parent ended
	EntryClosed  = "closed"  // the monitor closed the connection
)

// Entry is one thing observed while running a script.
type Entry struct {
	Step    int // index in Script.Steps; -1: at start (greeting, banner); len(Steps): at end
	Kind    string
	Msg     Message
	Pattern *Value // mask for Msg (from the step's <- line)
	Shape   int    // >0: render only Msg's shape
	Raw     []byte // EntryHMP, EntryStderr
	Text    string // EntryExit, EntryDaemon, EntryClosed
}

// Transcript is what running a script against a binary produced.
type Transcript struct {
	Script   *Script
	Bin      string
	Dir      string   // the case's directory; rendered as TEST_DIR
	Entries  []Entry  // in order of observation
	Failures []string // expectations (<- patterns, expect-exit status) not met
}

// RunOptions tunes Run.
type RunOptions struct {
	Log zerolog.Logger // the zero value is silent, like zerolog.Nop()
	// Reference marks QEMU 7.2's run. Its monitor, connected while QEMU starts, announced
	// itself twice once in a CI run (a second greeting where qmp_capabilities' reply was
	// due; likely the chardev's OPENED reaching the monitor both at accept and when its
	// iothread set the handlers). A second greeting before the first reply is taken for
	// that start-up race of the reference and dropped; a candidate's is recorded, so
	// that tlcvm never does it.
	Reference bool
}

// Run starts bin as the script says, performs its steps and returns what
// was observed. Errors are harness failures (a timeout, a monitor that never
// listened); a closed connection is an observation, not an error. The
// process is gone when Run returns.
func Run(t testing.TB, bin string, sc *Script, opt RunOptions) (*Transcript, error) {
	dir, err := os.MkdirTemp("", "tlcvm-case-") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &runner{tr: &Transcript{Script: sc, Bin: bin, Dir: dir}, log: opt.Log, reference: opt.Reference}
	args := make([]string, 0, len(sc.Args)+4)
	for _, a := range sc.Args {
		args = append(args, ExpandArg(a, dir))
	}
	needHMP := false
	for _, st := range sc.Steps {
		needHMP = needHMP || st.Op == OpMonitor
	}
	qmpPath, hmpPath := dir+"/qmp.sock", dir+"/hmp.sock"
	if sc.QMP == "socket" {
		args = append(args, "-qmp", "unix:"+qmpPath+",server=on,wait=off")
	}
	if needHMP && sc.HMPMonitor == "socket" {
		args = append(args, "-monitor", "unix:"+hmpPath+",server=on,wait=off")
	}
	p, err := StartProcess(t, Config{Bin: bin, Args: args, Dir: dir, Log: opt.Log})
	if err != nil {
		return nil, err
	}
	r.p = p
	defer r.finish()
	if err := r.start(args, qmpPath, hmpPath, needHMP); err != nil {
		return r.tr, err
	}
	for i, st := range sc.Steps {
		r.step = i
		if err := r.do(st); err != nil {
			return r.tr, fmt.Errorf("%s:%d: %s: %w", sc.File, st.Line, st.Source, err)
		}
	}
	r.step = len(sc.Steps)
	return r.tr, r.end()
}

type runner struct {
	tr        *Transcript
	p         *Process
	q         *QMP
	h         *HMP
	daemonPid int
	step      int
	exited    bool // the exit status was recorded
	// startup: negotiated, no other reply yet. QEMU sends the greeting from its monitor
	// thread before its main loop has started the VM, so a client that negotiates early
	// may get the start-up RESUME; it comes before the first command's reply and is timing,
	// not behaviour, so it is dropped then.
	startup bool
	// reference: QEMU 7.2's run (RunOptions.Reference); replied: a reply has been
	// recorded on this connection (a greeting after that is never dropped).
	reference, replied bool
	log                zerolog.Logger
}

func (r *runner) add(e Entry) {
	e.Step = r.step
	r.tr.Entries = append(r.tr.Entries, e)
}

func (r *runner) fail(format string, a ...any) {
	where := fmt.Sprintf("%s:%d: start", r.tr.Script.File, r.tr.Script.Line)
	if r.step >= 0 && r.step < len(r.tr.Script.Steps) {
		st := r.tr.Script.Steps[r.step]
		where = fmt.Sprintf("%s:%d: %s", r.tr.Script.File, st.Line, st.Source)
	}
	r.tr.Failures = append(r.tr.Failures, where+": "+fmt.Sprintf(format, a...))
}

func (r *runner) start(args []string, qmpPath, hmpPath string, needHMP bool) error {
	r.step = -1
	if pidfile := argAfter(args, "-pidfile"); hasArg(args, "-daemonize") {
		st, err := r.p.Wait(DefaultTimeout)
		if err != nil {
			return err
		}
		r.add(Entry{Kind: EntryDaemon, Text: "parent " + st.String()})
		if st.Code == 0 && pidfile != "" {
			pid, err := ReadPidfile(pidfile, DefaultTimeout)
			if err != nil {
				return err
			}
			r.daemonPid = pid
			r.p.Track(pid)
		}
	}
	if r.tr.Script.QMP == "socket" {
		q, err := DialQMP(qmpPath, r.liveProcess(), DefaultTimeout)
		if err != nil {
			if errors.Is(err, ErrTimeout) {
				return err
			}
			r.add(Entry{Kind: EntryClosed, Text: "no QMP monitor"})
		} else {
			r.q = q
			if err := r.recv(r.tr.Script.Greeting, 0, true); err != nil {
				return err
			}
		}
	}
	if needHMP {
		switch r.tr.Script.HMPMonitor {
		case "socket":
			h, err := DialHMP(hmpPath, r.liveProcess(), DefaultTimeout)
			if err != nil {
				return err
			}
			r.h = h
		default:
			r.h = StdioHMP(r.p)
		}
		b, err := r.h.Banner()
		r.add(Entry{Kind: EntryHMP, Raw: b})
		if err != nil {
			return err
		}
	}
	return nil
}

// liveProcess is the process whose death means no monitor will listen.
func (r *runner) liveProcess() *Process {
	if r.daemonPid != 0 {
		return nil
	}
	return r.p
}

// recv records one reply (or the greeting) and checks pattern.
func (r *runner) recv(pattern *Value, shape int, greeting bool) error {
	if r.q == nil {
		r.add(Entry{Kind: EntryClosed, Text: "not connected"})
		return nil
	}
	var m Message
	var err error
	if greeting {
		m, err = r.q.Greeting()
		r.replied = false
	} else {
		m, err = r.q.Recv()
		if err == nil && r.reference && !r.replied && isGreeting(m) {
			r.log.Debug().RawJSON("msg", m.Raw).Msg("second greeting of the reference dropped")
			m, err = r.q.Recv()
		}
		r.replied = err == nil
	}
	if errors.Is(err, ErrClosed) {
		r.add(Entry{Kind: EntryClosed, Text: "connection closed"})
		r.q.Close()
		r.q = nil
		if pattern != nil {
			r.fail("no reply to match %s: connection closed", pattern)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if r.startup {
		r.startup = false
		r.q.DropEvents("RESUME")
	}
	r.add(Entry{Kind: EntryMessage, Msg: m, Pattern: pattern, Shape: shape})
	if pattern != nil {
		if err := Match(*pattern, m.Value); err != nil {
			r.fail("%v", err)
		}
	}
	return nil
}

// send writes a step's text; it reports false (and records why) when the
// connection is gone, in which case no reply is to be awaited.
func (r *runner) send(st Step) (bool, error) {
	if r.q == nil {
		r.add(Entry{Kind: EntryClosed, Text: "not connected"})
		return false, nil
	}
	st.Text = strings.ReplaceAll(st.Text, "$DIR", r.tr.Dir)
	var err error
	if st.FD {
		var f *os.File
		f, err = os.Open(os.DevNull)
		if err != nil {
			return false, err
		}
		defer f.Close()
		err = r.q.SendWithFiles([]byte(st.Text), f)
	} else {
		err = r.q.Send([]byte(st.Text))
	}
	if err != nil && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "broken pipe")) {
		r.add(Entry{Kind: EntryClosed, Text: "connection closed"})
		r.q.Close()
		r.q = nil
		return false, nil
	}
	return err == nil, err
}

// exchange sends and, if that worked, records one reply.
func (r *runner) exchange(st Step, pattern *Value, shape int) error {
	ok, err := r.send(st)
	if !ok || err != nil {
		if pattern != nil && err == nil {
			r.fail("no reply to match: connection closed")
		}
		return err
	}
	return r.recv(pattern, shape, false)
}

func (r *runner) do(st Step) error {
	switch st.Op {
	case OpComment:
		return nil
	case OpSend:
		return r.exchange(st, st.Pattern, st.Shape)
	case OpRaw:
		_, err := r.send(st)
		return err
	case OpPoll:
		return r.poll(st)
	case OpRecv:
		return r.recv(st.Pattern, 0, false)
	case OpNegotiat:
		err := r.exchange(Step{Text: `{"execute": "qmp_capabilities"}` + "\n"}, st.Pattern, 0)
		// Only a VM started without -S (or -incoming) resumes on its own at start-up.
		r.startup = !slices.Contains(r.tr.Script.Args, "-S") && !slices.Contains(r.tr.Script.Args, "-incoming")
		return err
	case OpHMP:
		b, _ := json.Marshal(map[string]any{"execute": "human-monitor-command", "arguments": map[string]string{"command-line": st.Text}})
		return r.exchange(Step{Text: string(b) + "\n"}, st.Pattern, 0)
	case OpMonitor:
		if r.h == nil {
			return errors.New("no HMP monitor")
		}
		b, err := r.h.Raw(st.Text)
		r.add(Entry{Kind: EntryHMP, Raw: b})
		if errors.Is(err, ErrClosed) {
			r.add(Entry{Kind: EntryClosed, Text: "monitor closed"})
			return nil
		}
		return err
	case OpWait:
		if r.q == nil {
			return errors.New("wait-event without a QMP connection")
		}
		evs, err := r.q.WaitEvent(st.Text)
		for i, e := range evs {
			var pat *Value
			if i == len(evs)-1 {
				pat = st.Pattern
			}
			r.add(Entry{Kind: EntryMessage, Msg: e, Pattern: pat})
		}
		if err != nil {
			return err
		}
		if st.Pattern != nil {
			if err := Match(*st.Pattern, evs[len(evs)-1].Value); err != nil {
				r.fail("%v", err)
			}
		}
		return nil
	case OpEvents:
		if r.q == nil {
			return errors.New("events without a QMP connection")
		}
		for _, e := range r.q.Pending() {
			r.add(Entry{Kind: EntryMessage, Msg: e})
		}
		return nil
	case OpSignal:
		sig, err := ParseSignal(st.Text)
		if err != nil {
			return err
		}
		if r.daemonPid != 0 {
			return syscall.Kill(r.daemonPid, sig)
		}
		return r.p.Signal(sig)
	case OpClose:
		if r.q != nil {
			r.q.Close()
			r.q = nil
		}
		return nil
	case OpConnect:
		if r.q != nil {
			r.q.Close()
			r.q = nil
		}
		q, err := DialQMP(r.tr.Dir+"/qmp.sock", r.liveProcess(), DefaultTimeout)
		if err != nil {
			return err
		}
		r.q = q
		return r.recv(st.Pattern, 0, true)
	case OpExit:
		return r.expectExit(st)
	}
	return fmt.Errorf("%w: op %q", ErrScript, st.Op)
}

// poll resends st until the reply matches its pattern, and records only
// that reply: how many polls it took is timing, not behaviour.
func (r *runner) poll(st Step) error {
	for i := 0; ; i++ {
		if r.q == nil {
			r.add(Entry{Kind: EntryClosed, Text: "not connected"})
			return nil
		}
		if _, err := r.send(st); err != nil {
			return err
		}
		if r.q == nil {
			return nil
		}
		m, err := r.q.Recv()
		if errors.Is(err, ErrClosed) {
			r.add(Entry{Kind: EntryClosed, Text: "connection closed"})
			r.fail("connection closed while polling")
			return nil
		}
		if err != nil {
			return err
		}
		if Match(*st.Pattern, m.Value) == nil {
			r.add(Entry{Kind: EntryMessage, Msg: m, Pattern: st.Pattern, Shape: st.Shape})
			return nil
		}
		if i > int(DefaultTimeout.Milliseconds()/10) {
			return fmt.Errorf("%w polling: last reply %s", ErrTimeout, m.Raw)
		}
		sleep10ms()
	}
}

func (r *runner) expectExit(st Step) error {
	if r.q != nil {
		msgs, err := r.q.Drain()
		for _, m := range msgs {
			r.add(Entry{Kind: EntryMessage, Msg: m})
		}
		if err != nil {
			return err
		}
		r.add(Entry{Kind: EntryClosed, Text: "connection closed"})
		r.q.Close()
		r.q = nil
	}
	if r.h != nil {
		b, err := r.p.Stdout.ReadAll(DefaultTimeout)
		if len(b) > 0 {
			r.add(Entry{Kind: EntryHMP, Raw: b})
		}
		if err != nil && r.daemonPid == 0 {
			return err
		}
	}
	status := ""
	if r.daemonPid != 0 {
		if err := awaitGone(r.daemonPid); err != nil {
			return err
		}
		status = "daemon gone"
	} else {
		s, err := r.p.Wait(DefaultTimeout)
		if err != nil {
			return err
		}
		status = s.String()
	}
	r.exited = true
	r.add(Entry{Kind: EntryExit, Text: status})
	if st.Text != "" && st.Text != status && "exit "+st.Text != status {
		r.fail("want %s, got %s", st.Text, status)
	}
	return r.stderr()
}

func (r *runner) stderr() error {
	b, err := r.p.Stderr.ReadAll(DefaultTimeout)
	if len(b) > 0 {
		r.add(Entry{Kind: EntryStderr, Raw: b})
	}
	return err
}

// end kills a process the script left running and records its stderr.
func (r *runner) end() error {
	if r.exited {
		return nil
	}
	r.p.Kill()
	return r.stderr()
}

func (r *runner) finish() {
	if r.q != nil {
		r.q.Close()
	}
	if r.h != nil {
		r.h.Close()
	}
	r.p.Kill()
}

func awaitGone(pid int) error {
	for i := 0; Alive(pid); i++ {
		if i > int(DefaultTimeout.Milliseconds()/5) {
			return fmt.Errorf("%w waiting for daemon %d to exit", ErrTimeout, pid)
		}
		sleep5ms()
	}
	return nil
}

func hasArg(args []string, a string) bool {
	for _, x := range args {
		if x == a || x == "-"+a {
			return true
		}
	}
	return false
}

func argAfter(args []string, a string) string {
	for i, x := range args {
		if (x == a || x == "-"+a) && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// ExpandArg expands $DIR (the case's directory) and $TESTDATA (the absolute path of the
// testdata directory beside the running test) in a command-line argument.
func ExpandArg(a, dir string) string {
	a = strings.ReplaceAll(a, "$DIR", dir)
	if strings.Contains(a, "$TESTDATA") {
		td, _ := filepath.Abs("testdata")
		a = strings.ReplaceAll(a, "$TESTDATA", td)
	}
	return a
}

// isGreeting reports whether m is a QMP greeting ({"QMP": …}).
func isGreeting(m Message) bool {
	_, ok := m.Value.Get("QMP")
	return ok
}

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// qmpArgv is the command line the table is captured from; the groups do not
// depend on the machine type or accelerator (checked: none, pc, q35).
var qmpArgv = []string{"-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none", "-qmp", "stdio"}

// script is what capture sends; replies[i] answers script[i].
var script = []string{
	`{"execute":"qmp_capabilities"}`,
	`{"execute":"query-command-line-options"}`,
	`{"execute":"qom-list-types"}`,
	`{"execute":"query-command-line-options"}`,
	`{"execute":"quit"}`,
}

const timeout = 60 * time.Second

var errQMP = errors.New("unexpected QMP exchange")

// captured is what the binary said.
type captured struct {
	// Version is "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)", from the greeting.
	Version string
	// Before and After are the "return" values of the two
	// query-command-line-options, before and after qom-list-types.
	Before, After json.RawMessage
}

func capture(bin string) (*captured, error) {
	cmd := exec.Command(bin, qmpArgv...)
	cmd.Stdin = strings.NewReader(strings.Join(script, "\n") + "\n")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	c, perr := parseTranscript(out)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil && perr == nil {
		perr = fmt.Errorf("%s: %w", bin, err)
	}
	if perr != nil {
		return nil, perr
	}
	return c, nil
}

// parseTranscript reads the greeting and one reply per script line; events
// are skipped.
func parseTranscript(r io.Reader) (*captured, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var greeting struct {
		QMP struct {
			Version struct {
				Qemu    struct{ Major, Minor, Micro int }
				Package string
			}
		}
	}
	if !sc.Scan() {
		return nil, fmt.Errorf("%w: no greeting (%v)", errQMP, sc.Err())
	}
	if err := json.Unmarshal(sc.Bytes(), &greeting); err != nil {
		return nil, fmt.Errorf("%w: greeting: %v", errQMP, err)
	}
	v := greeting.QMP.Version
	c := &captured{Version: fmt.Sprintf("%d.%d.%d", v.Qemu.Major, v.Qemu.Minor, v.Qemu.Micro)}
	if v.Package != "" {
		c.Version += " (" + strings.TrimSpace(v.Package) + ")"
	}
	var replies []json.RawMessage
	for len(replies) < len(script) && sc.Scan() {
		var m struct {
			Return json.RawMessage
			Error  *struct{ Class, Desc string }
			Event  string
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("%w: %v", errQMP, err)
		}
		switch {
		case m.Event != "":
			continue
		case m.Error != nil:
			return nil, fmt.Errorf("%w: %s: %s: %s", errQMP, script[len(replies)], m.Error.Class, m.Error.Desc)
		case m.Return == nil:
			return nil, fmt.Errorf("%w: %.200s", errQMP, sc.Text())
		}
		replies = append(replies, append(json.RawMessage(nil), m.Return...))
	}
	if len(replies) < len(script) {
		return nil, fmt.Errorf("%w: %d replies to %d commands (%v)", errQMP, len(replies), len(script), sc.Err())
	}
	c.Before, c.After = replies[1], replies[3]
	return c, nil
}

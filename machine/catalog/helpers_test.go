package catalog_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	"tlcvm/machine/catalog"
	"tlcvm/tests/harness"
)

const qemuBin = "/usr/bin/qemu-system-x86_64"

func requireQEMU(t *testing.T) {
	t.Helper()
	harness.Reference(t)
}

// qmpBatch sends cmds one at a time to one `-machine none -accel tcg -qmp
// stdio` QEMU, waiting for each reply, and returns the replies (events
// dropped). Writing everything at once lets QEMU's quit overtake replies.
func qmpBatch(t *testing.T, cmds []string) []string {
	t.Helper()
	requireQEMU(t)
	cmd := exec.Command(qemuBin, "-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none", "-qmp", "stdio")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	next := func() string {
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, `{"timestamp"`) || strings.HasPrefix(l, `{"QMP"`) {
				continue
			}
			return l
		}
		t.Fatalf("qemu closed its output: %v", sc.Err())
		return ""
	}
	var replies []string
	for i, c := range append([]string{`{"execute":"qmp_capabilities"}`}, cmds...) {
		if _, err := io.WriteString(stdin, c+"\n"); err != nil {
			t.Fatalf("write: %v", err)
		}
		if r := next(); i > 0 {
			replies = append(replies, r)
		}
	}
	_, _ = io.WriteString(stdin, `{"execute":"quit"}`+"\n")
	return replies
}

// canon rewrites JSON in one spelling while keeping member order, so that
// QEMU's bytes (", " separators, \u00E9 escapes) compare with Go's.
func canon(raw []byte) string {
	var b strings.Builder
	if err := canonTo(&b, bytes.TrimSpace(raw)); err != nil {
		return "INVALID(" + err.Error() + "): " + string(raw)
	}
	return b.String()
}

func canonTo(b *strings.Builder, raw []byte) error {
	switch {
	case len(raw) == 0:
		return errors.New("empty")
	case raw[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if _, err := dec.Token(); err != nil {
			return err
		}
		b.WriteByte('{')
		for first := true; dec.More(); first = false {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return err
			}
			if !first {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, "%q:", k)
			if err := canonTo(b, v); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case raw[0] == '[':
		var vs []json.RawMessage
		if err := json.Unmarshal(raw, &vs); err != nil {
			return err
		}
		b.WriteByte('[')
		for i, v := range vs {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := canonTo(b, v); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		fmt.Fprintf(b, "%q", s)
	default:
		b.Write(raw)
	}
	return nil
}

// reply is how QMP would wrap a catalogue answer or error.
func reply(v any, err error) string {
	if err != nil {
		class := "GenericError"
		if errors.Is(err, catalog.ErrNotFound) {
			class = "DeviceNotFound"
		}
		b, _ := json.Marshal(map[string]any{"error": map[string]string{"class": class, "desc": err.Error()}})
		return canon(b)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if e := enc.Encode(v); e != nil {
		return "MARSHAL: " + e.Error()
	}
	return canon([]byte(`{"return":` + strings.TrimSpace(buf.String()) + `}`))
}

// answer computes the catalogue's reply to one QMP command, or ok=false
// when the command is not the catalogue's.
func answer(cmd []byte) (string, bool) {
	var c struct {
		Execute   string `json:"execute"`
		Arguments struct {
			Typename   string `json:"typename"`
			Implements string `json:"implements"`
			Abstract   bool   `json:"abstract"`
			Type       string `json:"type"`
			Model      struct {
				Name  string          `json:"name"`
				Props json.RawMessage `json:"props"`
			} `json:"model"`
		} `json:"arguments"`
	}
	if json.Unmarshal(cmd, &c) != nil {
		return "", false
	}
	a := c.Arguments
	switch c.Execute {
	case "query-machines":
		return reply(catalog.Machines(), nil), true
	case "query-cpu-definitions":
		return reply(catalog.CPUModels(), nil), true
	case "qom-list-types":
		return reply(catalog.ListTypes(a.Implements, a.Abstract), nil), true
	case "device-list-properties":
		return reply(catalog.DeviceProperties(a.Typename)), true
	case "qom-list-properties":
		return reply(catalog.ObjectProperties(a.Typename)), true
	case "query-cpu-model-expansion":
		return reply(catalog.ExpandCPU(catalog.ExpansionType(a.Type), a.Model.Name, a.Model.Props)), true
	}
	return "", false
}

// stripID removes "id" from a recorded reply.
func stripID(raw []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return canon(raw)
	}
	if r, ok := m["return"]; ok {
		return canon([]byte(`{"return":` + string(r) + `}`))
	}
	if e, ok := m["error"]; ok {
		return canon([]byte(`{"error":` + string(e) + `}`))
	}
	return canon(raw)
}

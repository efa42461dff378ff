package harness

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// builtinScrubs hide values that legitimately differ between two runs of
// the same binary or between QEMU and tlcvm, in every rendered line.
var builtinScrubs = []Scrub{
	{regexp.MustCompile(`/dev/pts/\d+`), "/dev/pts/PTY"},
	{regexp.MustCompile(`from pid \d+ \([^)]*\)`), "from pid PID (PROCESS)"},
}

// MaskBuiltin replaces, in a QMP message, what always differs between runs
// or binaries: event timestamps (TIMESTAMP), the package string of a version
// ({"qemu": {…}, "package": …} → PACKAGE) and vCPU thread ids (THREAD_ID).
func MaskBuiltin(v Value) Value {
	return maskBuiltin(v, true)
}

func maskBuiltin(v Value, top bool) Value {
	switch v.Kind {
	case Array:
		out := Value{Kind: Array, Arr: make([]Value, len(v.Arr))}
		for i, e := range v.Arr {
			out.Arr[i] = maskBuiltin(e, false)
		}
		return out
	case Object:
		_, hasQemu := v.Get("qemu")
		out := Value{Kind: Object, Obj: make([]Member, len(v.Obj))}
		for i, m := range v.Obj {
			out.Obj[i] = Member{Key: m.Key, Val: maskBuiltin(m.Val, false)}
			switch {
			case top && m.Key == "timestamp" && m.Val.Kind == Object:
				ts := Value{Kind: Object}
				for _, tm := range m.Val.Obj {
					ts.Obj = append(ts.Obj, Member{Key: tm.Key, Val: Value{Kind: Verbatim, Text: "TIMESTAMP"}})
				}
				out.Obj[i].Val = ts
			case hasQemu && m.Key == "package" && m.Val.Kind == String:
				out.Obj[i].Val = Value{Kind: Verbatim, Text: "PACKAGE"}
			case m.Key == "thread-id" && m.Val.Kind == Number && hasCPUIndex(v):
				out.Obj[i].Val = Value{Kind: Verbatim, Text: "THREAD_ID"}
			}
		}
		return out
	}
	return v
}

// hasCPUIndex tells a vCPU entry (whose "thread-id" is a host thread id)
// from CPU topology properties (whose "thread-id" is an index).
func hasCPUIndex(v Value) bool {
	_, ok := v.Get("cpu-index")
	return ok
}

// RenderOptions tunes Render.
type RenderOptions struct {
	// Raw adds, under each HMP chunk, its exact bytes (Go-quoted), so that
	// two transcripts compare byte for byte, escape sequences included.
	Raw bool
}

// Render returns the transcript as the lines of a golden file: every step's
// source line followed by what it produced (see tests/doc.go), volatile
// values scrubbed. Two runs that behaved alike render alike.
func (tr *Transcript) Render(opt RenderOptions) []string {
	sc := tr.Script
	byStep := map[int][]Entry{}
	for _, e := range tr.Entries {
		byStep[e.Step] = append(byStep[e.Step], e)
	}
	startAt := -1 // start entries go after the header (args:, qmp: …)
	for i, st := range sc.Steps {
		if st.Op != OpComment {
			break
		}
		if isHeader(st.Source) {
			startAt = i
		}
	}
	var out []string
	emit := func(es []Entry) {
		for _, e := range es {
			out = append(out, tr.renderEntry(e, opt)...)
		}
	}
	if startAt < 0 {
		emit(byStep[-1])
	}
	for i, st := range sc.Steps {
		out = append(out, st.Source)
		if i == startAt {
			emit(byStep[-1])
		}
		emit(byStep[i])
	}
	emit(byStep[len(sc.Steps)])
	for i, l := range out {
		out[i] = tr.scrub(l)
	}
	return out
}

func isHeader(line string) bool {
	for _, h := range []string{"case:", "args:", "qmp:", "hmp-monitor:", "scrub:", "skip:"} {
		if strings.HasPrefix(strings.TrimSpace(line), h) {
			return true
		}
	}
	return false
}

func (tr *Transcript) scrub(l string) string {
	if tr.Dir != "" {
		l = strings.ReplaceAll(l, tr.Dir, "TEST_DIR")
	}
	for _, s := range builtinScrubs {
		l = s.Re.ReplaceAllString(l, s.With)
	}
	for _, s := range tr.Script.Scrubs {
		l = s.Re.ReplaceAllString(l, s.With)
	}
	return l
}

func (tr *Transcript) renderEntry(e Entry, opt RenderOptions) []string {
	switch e.Kind {
	case EntryMessage:
		return []string{"<- " + RenderMessage(e.Msg.Value, e.Pattern, e.Shape)}
	case EntryHMP:
		return renderHMP(e.Raw, e.Step >= 0, opt.Raw)
	case EntryStderr:
		var out []string
		for _, l := range strings.Split(strings.TrimSuffix(string(e.Raw), "\n"), "\n") {
			out = append(out, "stderr: "+l)
		}
		if !bytes.HasSuffix(e.Raw, []byte("\n")) {
			out = append(out, `stderr: \ no newline at end`)
		}
		return out
	case EntryExit:
		return []string{"exit: " + e.Text}
	case EntryDaemon:
		return []string{"daemon: " + e.Text}
	case EntryClosed:
		return []string{"closed: " + e.Text}
	}
	return []string{fmt.Sprintf("?? %+v", e)}
}

// RenderMessage renders one QMP message with the built-in masks, the
// placeholders of pattern (may be nil) and, if shape > 0, only its shape to
// that depth; "id" and error replies are always rendered in full.
func RenderMessage(v Value, pattern *Value, shape int) string {
	if pattern != nil {
		v = Mask(*pattern, v)
	}
	v = MaskBuiltin(v)
	if _, isErr := v.Get("error"); shape > 0 && !isErr && v.Kind == Object {
		out := Value{Kind: Object}
		for _, m := range v.Obj {
			if m.Key != "id" {
				m.Val = Shape(m.Val, shape-1)
			}
			out.Obj = append(out.Obj, m)
		}
		v = out
	}
	return v.String()
}

// renderHMP renders a chunk of HMP output as a terminal shows it, "| "
// before each line. A chunk answering a typed line starts with the prompt
// and the echo of that line as readline redrew it.
func renderHMP(raw []byte, afterPrompt bool, withRaw bool) []string {
	body := bytes.TrimSuffix(raw, []byte(Prompt))
	prefix := ""
	if afterPrompt {
		prefix = Prompt
	}
	lines := Screen(prefix, body)
	var out []string
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	} else if n > 0 {
		lines = append(lines, `\ no newline before prompt`)
	}
	for _, l := range lines {
		out = append(out, strings.TrimRight("| "+l, " "))
	}
	if withRaw {
		out = append(out, fmt.Sprintf("raw: %q", raw))
	}
	return out
}

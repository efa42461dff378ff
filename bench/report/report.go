package report

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Sentinel errors; functions wrap them with %w.
var (
	// ErrNoSection means the document lacks the section's markers.
	ErrNoSection = errors.New("report: section markers not found")
	// ErrBadSection means the markers are duplicated or out of order.
	ErrBadSection = errors.New("report: section markers malformed")
)

// TargetKind says how a target is judged.
type TargetKind int

// Target kinds.
const (
	NoTarget     TargetKind = iota // informational row
	RatioAtMost                    // tlcvm/QEMU ≤ Value
	RatioAtLeast                   // tlcvm/QEMU ≥ Value
	AtMost                         // tlcvm ≤ Value (in the row's unit)
)

// Target is a goal for one metric.
type Target struct {
	Kind  TargetKind `json:"kind"`
	Value float64    `json:"value"`
	Text  string     `json:"text"` // as shown, e.g. "≤ 1/15 of QEMU"
}

// Met reports whether the target is met by tlcvm value t against QEMU
// value q, and false when it cannot be judged (no target, missing value).
func (tg Target) Met(t, q float64) (met, judged bool) {
	if !ok(t) {
		return false, false
	}
	switch tg.Kind {
	case AtMost:
		return t <= tg.Value, true
	case RatioAtMost, RatioAtLeast:
		if !ok(q) || q == 0 {
			return false, false
		}
		if tg.Kind == RatioAtMost {
			return t/q <= tg.Value, true
		}
		return t/q >= tg.Value, true
	}
	return false, false
}

// Row is one metric. A NaN value means "not measured"; Err, when set,
// says why and is shown instead of the value.
type Row struct {
	Metric   string  `json:"metric"`
	TLCVM    float64 `json:"tlcvm"`
	QEMU     float64 `json:"qemu"`
	TLCVMErr string  `json:"tlcvm_err,omitempty"`
	QEMUErr  string  `json:"qemu_err,omitempty"`
	Digits   int     `json:"-"` // decimals shown for the values
	Target   Target  `json:"target"`
}

func ok(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Ratio returns TLCVM/QEMU, or NaN when it cannot be computed.
func (r Row) Ratio() float64 {
	if !ok(r.TLCVM) || !ok(r.QEMU) || r.QEMU == 0 {
		return math.NaN()
	}
	return r.TLCVM / r.QEMU
}

// Markdown renders rows as a GitHub-flavoured Markdown table.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| metric | tlcvm | QEMU 7.2 | ratio (tlcvm ÷ QEMU) | target | met? |\n")
	b.WriteString("|---|---:|---:|---:|---|---|\n")
	for _, r := range rows {
		met := "—"
		if m, judged := r.Target.Met(r.TLCVM, r.QEMU); judged {
			met = map[bool]string{true: "**yes**", false: "no"}[m]
		} else if r.Target.Kind != NoTarget {
			met = "n/a"
		}
		tgt := r.Target.Text
		if tgt == "" {
			tgt = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(r.Metric),
			value(r.TLCVM, r.TLCVMErr, r.Digits), value(r.QEMU, r.QEMUErr, r.Digits),
			FormatRatio(r.Ratio()), cell(tgt), met)
	}
	return b.String()
}

func value(v float64, errText string, digits int) string {
	if errText != "" {
		return cell("failed: " + errText)
	}
	if !ok(v) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', digits, 64)
}

// FormatRatio shows a ratio with three significant digits, and below 1
// also as a fraction: 0.0441 → "0.0441 (1/22.7)".
func FormatRatio(x float64) string {
	switch {
	case !ok(x):
		return "—"
	case x == 0:
		return "0"
	case x < 1:
		return strconv.FormatFloat(x, 'g', 3, 64) + " (1/" + strconv.FormatFloat(1/x, 'f', 1, 64) + ")"
	}
	return strconv.FormatFloat(x, 'g', 3, 64) + "×"
}

// cell makes text safe inside a table cell: no pipes, no newlines, bounded.
func cell(s string) string {
	s = strings.NewReplacer("|", "\\|", "\r", " ", "\n", " ").Replace(s)
	if r := []rune(s); len(r) > 120 {
		s = string(r[:117]) + "…"
	}
	return s
}

// Markers returns the begin and end markers of section name.
func Markers(name string) (begin, end string) {
	return "<!-- bench:" + name + ":begin -->", "<!-- bench:" + name + ":end -->"
}

// UpdateSection replaces what lies between the markers of section name in
// doc with body (a newline is added after body when it lacks one). Text
// outside the markers, and the markers themselves, are kept.
func UpdateSection(doc []byte, name string, body string) ([]byte, error) {
	begin, end := Markers(name)
	bi := bytes.Index(doc, []byte(begin))
	ei := bytes.Index(doc, []byte(end))
	if bi < 0 || ei < 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoSection, begin)
	}
	if ei < bi || bytes.Count(doc, []byte(begin)) != 1 || bytes.Count(doc, []byte(end)) != 1 {
		return nil, fmt.Errorf("%w: %s", ErrBadSection, name)
	}
	if body != "" && !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	head := doc[:bi+len(begin)]
	var out bytes.Buffer
	out.Grow(len(doc) + len(body))
	out.Write(head)
	out.WriteByte('\n')
	out.WriteString(body)
	out.Write(doc[ei:])
	return out.Bytes(), nil
}

package harness

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrMismatch is wrapped by every failure of Match.
var ErrMismatch = errors.New("harness: mismatch")

// Placeholders are JSON strings in a pattern that match a class of values:
//
//	"<any>"      anything
//	"<int>"      a number literal without fraction or exponent
//	"<number>"   any number
//	"<string>"   any string
//	"<bool>"     true or false
//	"<null>"     null
//	"<array>"    any array (its length and elements are ignored)
//	"<object>"   any object (its members are ignored)
//	"<re:RE>"    a string matching the regular expression RE (anchored)
//
// Everything else in a pattern must be equal, objects member by member in
// the same order (QEMU's order is part of the protocol).
func placeholder(p Value) (name string, ok bool) {
	if p.Kind != String || !strings.HasPrefix(p.Text, "<") || !strings.HasSuffix(p.Text, ">") {
		return "", false
	}
	switch p.Text {
	case "<any>", "<int>", "<number>", "<string>", "<bool>", "<null>", "<array>", "<object>":
		return p.Text, true
	}
	if strings.HasPrefix(p.Text, "<re:") {
		return p.Text, true
	}
	return "", false
}

func matchPlaceholder(name string, v Value) bool {
	switch name {
	case "<any>":
		return true
	case "<int>":
		return v.Kind == Number && !strings.ContainsAny(v.Text, ".eE")
	case "<number>":
		return v.Kind == Number
	case "<string>":
		return v.Kind == String
	case "<bool>":
		return v.Kind == Bool
	case "<null>":
		return v.Kind == Null
	case "<array>":
		return v.Kind == Array
	case "<object>":
		return v.Kind == Object
	}
	if re, ok := strings.CutPrefix(name, "<re:"); ok {
		re = strings.TrimSuffix(re, ">")
		rx, err := regexp.Compile("^(?:" + re + ")$")
		return err == nil && v.Kind == String && rx.MatchString(v.Text)
	}
	return false
}

// Match reports whether actual matches pattern; the error names the first
// differing path (e.g. `.return.status`).
func Match(pattern, actual Value) error {
	return match(pattern, actual, "")
}

func match(p, a Value, path string) error {
	if name, ok := placeholder(p); ok {
		if !matchPlaceholder(name, a) {
			return fmt.Errorf("%w at %s: want %s, got %s", ErrMismatch, pathOrRoot(path), name, a)
		}
		return nil
	}
	if p.Kind != a.Kind {
		return fmt.Errorf("%w at %s: want %s, got %s", ErrMismatch, pathOrRoot(path), p, a)
	}
	switch p.Kind {
	case Array:
		if len(p.Arr) != len(a.Arr) {
			return fmt.Errorf("%w at %s: want %d elements, got %d", ErrMismatch, pathOrRoot(path), len(p.Arr), len(a.Arr))
		}
		for i := range p.Arr {
			if err := match(p.Arr[i], a.Arr[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case Object:
		if err := sameKeys(p, a, path); err != nil {
			return err
		}
		for i := range p.Obj {
			if err := match(p.Obj[i].Val, a.Obj[i].Val, path+"."+p.Obj[i].Key); err != nil {
				return err
			}
		}
		return nil
	}
	if p.String() != a.String() {
		return fmt.Errorf("%w at %s: want %s, got %s", ErrMismatch, pathOrRoot(path), p, a)
	}
	return nil
}

func keys(v Value) []string {
	ks := make([]string, len(v.Obj))
	for i, m := range v.Obj {
		ks[i] = m.Key
	}
	return ks
}

func sameKeys(p, a Value, path string) error {
	pk, ak := keys(p), keys(a)
	if strings.Join(pk, "\x00") == strings.Join(ak, "\x00") {
		return nil
	}
	return fmt.Errorf("%w at %s: want members %q, got %q", ErrMismatch, pathOrRoot(path), pk, ak)
}

func pathOrRoot(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// Mask returns actual with every value that sits where pattern has a
// placeholder (and matches it) replaced by the placeholder, rendered bare.
// Two replies that differ only in masked values render identically.
func Mask(pattern, actual Value) Value {
	if name, ok := placeholder(pattern); ok {
		if matchPlaceholder(name, actual) {
			return Value{Kind: Verbatim, Text: name}
		}
		return actual
	}
	switch {
	case pattern.Kind == Array && actual.Kind == Array && len(pattern.Arr) == len(actual.Arr):
		out := Value{Kind: Array, Arr: make([]Value, len(actual.Arr))}
		for i := range actual.Arr {
			out.Arr[i] = Mask(pattern.Arr[i], actual.Arr[i])
		}
		return out
	case pattern.Kind == Object && actual.Kind == Object:
		out := Value{Kind: Object, Obj: make([]Member, len(actual.Obj))}
		for i, m := range actual.Obj {
			out.Obj[i] = m
			if pv, ok := pattern.Get(m.Key); ok {
				out.Obj[i].Val = Mask(pv, m.Val)
			}
		}
		return out
	}
	return actual
}

// Shape returns v with every value below depth levels replaced by its kind
// placeholder (<int>, <string>, <array>, <object> …). Objects at depth < depth
// keep their member names; arrays are always replaced (their length is what
// legitimately differs, e.g. the schema size). Depth 0 replaces v itself.
func Shape(v Value, depth int) Value {
	if depth <= 0 || v.Kind == Array || (v.Kind != Object) {
		return Value{Kind: Verbatim, Text: kindPlaceholder(v)}
	}
	out := Value{Kind: Object, Obj: make([]Member, len(v.Obj))}
	for i, m := range v.Obj {
		out.Obj[i] = Member{Key: m.Key, Val: Shape(m.Val, depth-1)}
	}
	return out
}

func kindPlaceholder(v Value) string {
	if v.Kind == Number && !strings.ContainsAny(v.Text, ".eE") {
		return "<int>"
	}
	return "<" + v.Kind.String() + ">"
}

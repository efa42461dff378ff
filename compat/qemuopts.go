package compat

import (
	"strings"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// Opt is one key=value pair of a QemuOpts group, as written.
type Opt struct {
	Name  string
	Value string
}

// Opts is one QemuOpts group instance (one -chardev, one -drive, ...): the
// keys in the order they were written (later duplicates win in Get, as
// qemu_opt_get does), the id= value apart, and where it came from.
type Opts struct {
	// Group is the QemuOptsList name ("chardev", "drive", "memory", ...).
	Group string
	// ID is the id= value ("" when none was given).
	ID string
	// List holds every key=value except id, in order.
	List []Opt
	// Loc is the command-line location QEMU prefixes to errors about this
	// group, e.g. "-chardev socket,id=c" ("" for groups QEMU synthesises).
	Loc string
	// Default marks a group ApplyDefaults synthesised that yields to the command line's:
	// a default drive (vl.c default_drive) is not created when a drive of the command
	// line already holds its interface and index.
	Default bool
}

// Get returns the last value given for name.
func (o *Opts) Get(name string) (string, bool) {
	if o == nil {
		return "", false
	}
	if name == "id" && o.ID != "" {
		return o.ID, true
	}
	for i := len(o.List) - 1; i >= 0; i-- {
		if o.List[i].Name == name {
			return o.List[i].Value, true
		}
	}
	return "", false
}

// Has reports whether name was given.
func (o *Opts) Has(name string) bool {
	_, ok := o.Get(name)
	return ok
}

// Set appends name=value (it then wins over earlier values).
func (o *Opts) Set(name, value string) {
	if name == "id" {
		o.ID = value
		return
	}
	o.List = append(o.List, Opt{name, value})
}

// Bool returns name as a boolean (QEMU accepts on/yes/true/y and
// off/no/false/n), def when absent, or QEMU's error text.
func (o *Opts) Bool(name string, def bool) (bool, error) {
	v, ok := o.Get(name)
	if !ok {
		return def, nil
	}
	b, err := parseBool(name, v)
	if err != nil {
		return false, err
	}
	return b, nil
}

// Number returns name as an unsigned number (decimal, 0x hex or 0 octal).
func (o *Opts) Number(name string, def uint64) (uint64, error) {
	v, ok := o.Get(name)
	if !ok {
		return def, nil
	}
	n, err := parseNumber(name, v)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Size returns name as a byte count (qemu_strtosz syntax, see optval.Size).
func (o *Opts) Size(name string, def uint64) (uint64, error) {
	v, ok := o.Get(name)
	if !ok {
		return def, nil
	}
	n, err := parseSize(name, v)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// String renders the group back into QemuOpts syntax, commas escaped.
func (o *Opts) String() string {
	var parts []string
	for _, kv := range o.List {
		parts = append(parts, kv.Name+"="+strings.ReplaceAll(kv.Value, ",", ",,"))
	}
	if o.ID != "" {
		parts = append(parts, "id="+strings.ReplaceAll(o.ID, ",", ",,"))
	}
	return strings.Join(parts, ",")
}

// Map returns the last value of each key (id included when set).
func (o *Opts) Map() map[string]string {
	m := make(map[string]string, len(o.List)+1)
	for _, kv := range o.List {
		m[kv.Name] = kv.Value
	}
	if o.ID != "" {
		m["id"] = o.ID
	}
	return m
}

// optType is a QemuOptDesc type.
type optType int

const (
	optString optType = iota
	optBool
	optNumber
	optSize
)

// optsList is a QemuOptsList: name, implied first key, merge semantics and
// the accepted keys (nil desc accepts any key, like QEMU's empty desc).
type optsList struct {
	name    string
	implied string
	merge   bool
	desc    map[string]optType
}

// ParseOpts parses s with QemuOpts syntax (util/qemu-option.c): "k=v"
// pairs separated by ",", ",," standing for a literal comma, an optional
// implied first key (impliedKey, "" for none) for a leading value without
// "=", a bare "flag" meaning flag=on and "noflag" flag=off, and "id=" kept
// apart. Any key is accepted; values are not interpreted.
func ParseOpts(s, impliedKey string) (*Opts, error) {
	o, _, _, err := parseOpts(&optsList{implied: impliedKey}, s, impliedKey != "", false)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// getOptValue reads a value up to an unescaped ",", unescaping ",,".
func getOptValue(p string) (val, rest string) {
	var b strings.Builder
	i := 0
	for i < len(p) {
		if p[i] == ',' {
			if i+1 >= len(p) || p[i+1] != ',' {
				break
			}
			i++
		}
		b.WriteByte(p[i])
		i++
	}
	return b.String(), p[i:]
}

func isHelpOption(s string) bool { return s == "help" || s == "?" }

// nextOpt is get_opt_name_value: it returns the next name/value and rest,
// plus a deprecation warning for short-form booleans when warn is set.
func nextOpt(params, firstname string, warn bool) (name, value, rest, warning string, isHelp bool) {
	n := strings.IndexAny(params, "=,")
	if n < 0 {
		n = len(params)
	}
	var p string
	if n == len(params) || params[n] != '=' {
		if firstname != "" {
			name = firstname
			value, p = getOptValue(params)
		} else {
			name = params[:n]
			p = params[n:]
			prefix := ""
			if strings.HasPrefix(name, "no") {
				name = name[2:]
				value = "off"
				prefix = "no"
			} else {
				value = "on"
				isHelp = isHelpOption(name)
			}
			if !isHelp && warn {
				warning = "warning: short-form boolean option '" + prefix + name + "' deprecated\n"
				if name == "delay" {
					on := "off"
					if prefix != "" {
						on = "on"
					}
					warning += "Please use nodelay=" + on + " instead\n"
				} else {
					warning += "Please use " + name + "=" + value + " instead\n"
				}
			}
		}
	} else {
		name = params[:n]
		value, p = getOptValue(params[n+1:])
	}
	p = strings.TrimPrefix(p, ",")
	return name, value, p, warning, isHelp
}

// parseOpts is opts_parse + opts_do_parse. It returns the warnings QEMU
// prints while parsing (each line without program prefix) and whether a
// help request ("help" or "?" as a flag) stopped the parse (only for lists
// with a desc, as QEMU does).
func parseOpts(l *optsList, params string, permitAbbrev, warn bool) (o *Opts, warnings []string, help bool, err *qerror.Error) {
	o = &Opts{Group: l.name}
	// opts_parse_id + qemu_opts_create: the id is looked at first.
	if id, hasID := findID(params); hasID {
		if l.merge {
			return nil, nil, false, errInvalidParameter("id")
		}
		if !optval.ID(id) {
			e := errExpects("id", "an identifier")
			e.Hint = optval.IDHint
			return nil, nil, false, e
		}
		o.ID = id
	}
	first := ""
	if permitAbbrev {
		first = l.implied
	}
	for p := params; p != ""; {
		var name, value, w string
		var isHelp bool
		name, value, p, w, isHelp = nextOpt(p, first, warn)
		if w != "" {
			warnings = append(warnings, w)
		}
		if isHelp && l.desc != nil {
			return nil, warnings, true, nil
		}
		first = ""
		if name == "id" {
			continue
		}
		if l.desc != nil {
			t, ok := l.desc[name]
			if !ok {
				return nil, warnings, false, errInvalidParameter(name)
			}
			switch t {
			case optBool:
				if _, e := parseBool(name, value); e != nil {
					return nil, warnings, false, e
				}
			case optNumber:
				if _, e := parseNumber(name, value); e != nil {
					return nil, warnings, false, e
				}
			case optSize:
				if _, e := parseSize(name, value); e != nil {
					return nil, warnings, false, e
				}
			}
		}
		o.List = append(o.List, Opt{name, value})
	}
	return o, warnings, false, nil
}

func findID(params string) (string, bool) {
	for p := params; p != ""; {
		var name, value string
		name, value, p, _, _ = nextOpt(p, "", false)
		if name == "id" {
			return value, true
		}
	}
	return "", false
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

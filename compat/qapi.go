package compat

import (
	"strings"

	"github.com/tidwall/gjson"

	"tlcvm/compat/qerror"
)

// field is one member of a QAPI struct as the input visitors check it.
type field struct {
	name     string
	kind     byte // 's' string, 'b' bool, 'i' int, 'e' enum, 'o' object/any
	enum     []string
	required bool
}

// input is a keyval or JSON argument seen through QEMU's QAPI input
// visitor: keyval values are strings typed on demand, JSON values typed.
type input struct {
	kv   *Keyval
	json *JSON
	used map[string]bool
}

func (in *input) has(name string) bool {
	if in.json != nil {
		return in.json.Get(name).Exists()
	}
	_, ok := in.kv.Get(name)
	if ok {
		return true
	}
	for _, p := range in.kv.Pairs {
		if strings.HasPrefix(p.Name, name+".") {
			return true
		}
	}
	return false
}

// visit checks fields in schema order and returns the first error, as the
// generated visit_type_* functions do; names are marked used.
func (in *input) visit(fields []field) (map[string]string, *qerror.Error) {
	if in.used == nil {
		in.used = map[string]bool{}
	}
	out := map[string]string{}
	for _, f := range fields {
		if !in.has(f.name) {
			if f.required {
				return nil, errMissing(f.name)
			}
			continue
		}
		in.used[f.name] = true
		if f.kind == 'o' {
			continue
		}
		var v string
		if in.json != nil {
			r := in.json.Get(f.name)
			want := map[byte]string{'s': "string", 'e': "string", 'b': "boolean", 'i': "integer"}[f.kind]
			switch f.kind {
			case 's', 'e':
				if r.Type != gjson.String {
					return nil, newErr(ErrBadValue, "Invalid parameter type for '"+f.name+"', expected: "+want)
				}
				v = r.Str
			case 'b':
				if r.Type != gjson.True && r.Type != gjson.False {
					return nil, newErr(ErrBadValue, "Invalid parameter type for '"+f.name+"', expected: "+want)
				}
				v = r.Raw
			case 'i':
				if r.Type != gjson.Number || strings.ContainsAny(r.Raw, ".eE") {
					return nil, newErr(ErrBadValue, "Invalid parameter type for '"+f.name+"', expected: "+want)
				}
				v = r.Raw
			}
		} else {
			v, _ = in.kv.Get(f.name)
			switch f.kind {
			case 'b':
				if _, e := parseBool(f.name, v); e != nil {
					return nil, e
				}
			case 'i':
				if _, ok := parseInt64(v); !ok {
					return nil, errExpects(f.name, "integer")
				}
			}
		}
		if f.kind == 'e' && !contains(f.enum, v) {
			return nil, errNotAccept(f.name, v)
		}
		out[f.name] = v
	}
	return out, nil
}

// checkUnexpected is visit_check_struct: the first unused member.
func (in *input) checkUnexpected() *qerror.Error {
	if in.json != nil {
		for _, m := range in.json.Members {
			if !in.used[m.Key] {
				return errUnexpected(m.Key)
			}
		}
		return nil
	}
	for _, p := range in.kv.Pairs {
		top, _, _ := strings.Cut(p.Name, ".")
		if !in.used[top] {
			return errUnexpected(top)
		}
	}
	return nil
}

// newInput parses arg as JSON (leading "{") or keyval with implied key.
func newInput(arg, implied string) (*input, *qerror.Error) {
	if strings.HasPrefix(arg, "{") {
		j, e := parseJSONObject(arg)
		if e != nil {
			return nil, e
		}
		return &input{json: j}, nil
	}
	k := &Keyval{}
	if e := k.parse(arg, implied); e != nil {
		return nil, e
	}
	return &input{kv: k}, nil
}

var displayTypes = []string{"default", "none", "gtk", "sdl", "egl-headless", "curses", "cocoa", "spice-app", "dbus"}

var displayVariant = map[string][]field{
	"gtk":          {{name: "grab-on-hover", kind: 'b'}, {name: "zoom-to-fit", kind: 'b'}, {name: "show-tabs", kind: 'b'}, {name: "show-menubar", kind: 'b'}},
	"curses":       {{name: "charset", kind: 's'}},
	"egl-headless": {{name: "rendernode", kind: 's'}},
	"dbus":         {{name: "rendernode", kind: 's'}, {name: "addr", kind: 's'}, {name: "p2p", kind: 'b'}, {name: "audiodev", kind: 's'}},
	"sdl":          {{name: "grab-mod", kind: 'e', enum: []string{"lshift-lctrl-lalt", "rctrl"}}},
	"cocoa":        {{name: "left-command-key", kind: 'b'}, {name: "full-grab", kind: 'b'}, {name: "swap-opt-cmd", kind: 'b'}},
}

// display is vl.c parse_display.
func (s *parseState) display(arg, loc string) (bool, error) {
	c := s.cfg
	if isHelpOption(arg) {
		return s.info("display", "", loc)
	}
	if rest, ok := strings.CutPrefix(arg, "vnc"); ok {
		if !strings.HasPrefix(rest, "=") {
			return false, s.fail(loc, newErr(ErrBadValue, "VNC requires a display argument vnc=<display>"))
		}
		c.VNC = append(c.VNC, rest[1:])
		return false, nil
	}
	in, e := newInput(arg, "type")
	if e != nil {
		return false, s.fail(loc, e)
	}
	base := []field{
		{name: "type", kind: 'e', enum: displayTypes, required: true},
		{name: "full-screen", kind: 'b'}, {name: "window-close", kind: 'b'},
		{name: "show-cursor", kind: 'b'},
		{name: "gl", kind: 'e', enum: []string{"off", "on", "core", "es"}},
	}
	v, e := in.visit(base)
	var variant map[string]string
	if e == nil {
		variant, e = in.visit(displayVariant[v["type"]])
	}
	if e == nil {
		e = in.checkUnexpected()
	}
	if e != nil {
		return false, s.fail(loc, e)
	}
	c.Display = Display{Type: v["type"], Opts: in.kv, JSON: in.json,
		Members: append(displayMembers(base, v), displayMembers(displayVariant[v["type"]], variant)...)}
	return false, nil
}

// displayMembers returns the members of fields that were given, in the fields' order
// (visit has checked every value).
func displayMembers(fields []field, vals map[string]string) []DisplayMember {
	var out []DisplayMember
	for _, f := range fields {
		val, ok := vals[f.name]
		if !ok {
			continue
		}
		m := DisplayMember{Key: f.name, Value: val}
		if f.kind == 'b' {
			m.IsBool = true
			m.Bool, _ = parseBool(f.name, val)
		}
		out = append(out, m)
	}
	return out
}

var audioDrivers = []string{"none", "alsa", "coreaudio", "dbus", "dsound", "jack", "oss", "pa", "sdl", "sndio", "spice", "wav"}

var audioVariant = map[string][]field{
	"oss":       {{name: "try-mmap", kind: 'b'}, {name: "exclusive", kind: 'b'}, {name: "dsp-policy", kind: 'i'}},
	"alsa":      {{name: "threshold", kind: 'i'}},
	"pa":        {{name: "server", kind: 's'}},
	"jack":      {{name: "start-server", kind: 'b'}, {name: "exact-name", kind: 'b'}, {name: "server-name", kind: 's'}},
	"wav":       {{name: "path", kind: 's'}},
	"dbus":      {{name: "nsamples", kind: 'i'}},
	"coreaudio": {{name: "buffer-count", kind: 'i'}},
}

// parseAudiodev is audio_parse_option: QAPI Audiodev through the visitor.
func parseAudiodev(arg string) (*Audiodev, *qerror.Error) {
	in, e := newInput(arg, "driver")
	if e != nil {
		return nil, e
	}
	v, e := in.visit([]field{
		{name: "id", kind: 's', required: true},
		{name: "timer-period", kind: 'i'},
		{name: "driver", kind: 'e', enum: audioDrivers, required: true},
	})
	if e == nil {
		_, e = in.visit(append([]field{{name: "in", kind: 'o'}, {name: "out", kind: 'o'}}, audioVariant[v["driver"]]...))
	}
	if e == nil {
		e = in.checkUnexpected()
	}
	if e != nil {
		return nil, e
	}
	return &Audiodev{Driver: v["driver"], ID: v["id"], Keyval: in.kv, JSON: in.json}, nil
}

// compat is -compat: QAPI CompatPolicy.
func (s *parseState) compat(arg, loc string) error {
	in, e := newInput(arg, "")
	if e != nil {
		return s.fail(loc, e)
	}
	_, e = in.visit([]field{
		{name: "deprecated-input", kind: 'e', enum: []string{"accept", "reject", "crash"}},
		{name: "deprecated-output", kind: 'e', enum: []string{"accept", "hide"}},
		{name: "unstable-input", kind: 'e', enum: []string{"accept", "reject", "crash"}},
		{name: "unstable-output", kind: 'e', enum: []string{"accept", "hide"}},
	})
	if e == nil {
		e = in.checkUnexpected()
	}
	if e != nil {
		return s.fail(loc, e)
	}
	s.cfg.Compat, s.cfg.CompatObj = in.kv, in.json
	return nil
}

// parseBlockdev checks what every -blockdev needs (driver); the driver's
// own members are checked by the block layer.
func parseBlockdev(arg string) (*Blockdev, *qerror.Error) {
	in, e := newInput(arg, "driver")
	if e != nil {
		return nil, e
	}
	if !in.has("driver") {
		return nil, errMissing("driver")
	}
	b := &Blockdev{Keyval: in.kv, JSON: in.json}
	if in.json != nil {
		r := in.json.Get("driver")
		if r.Type != gjson.String {
			return nil, newErr(ErrBadValue, "Invalid parameter type for 'driver', expected: string")
		}
		b.Driver = r.Str
		b.NodeName, _ = in.json.String("node-name")
	} else {
		b.Driver, _ = in.kv.Get("driver")
		b.NodeName, _ = in.kv.Get("node-name")
	}
	return b, nil
}

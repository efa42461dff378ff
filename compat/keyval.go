package compat

import (
	"strings"

	"tlcvm/compat/qerror"
)

// Keyval is an argument in QEMU's keyval syntax (util/keyval.c), used by
// -machine, -blockdev, -object, -audiodev, -display, -compat in non-JSON
// form: dotted keys ("cache.direct=on"), ",," escapes, an optional implied
// first key. Pairs keep their written order; a repeated key replaces the
// earlier value in place.
type Keyval struct {
	Pairs []Opt
	// Help is set when a bare "help" or "?" appeared.
	Help bool
}

// Get returns the value of a (dotted) key.
func (k *Keyval) Get(key string) (string, bool) {
	if k == nil {
		return "", false
	}
	for _, p := range k.Pairs {
		if p.Name == key {
			return p.Value, true
		}
	}
	return "", false
}

// Set replaces or appends key=value.
func (k *Keyval) Set(key, value string) {
	for i := range k.Pairs {
		if k.Pairs[i].Name == key {
			k.Pairs[i].Value = value
			return
		}
	}
	k.Pairs = append(k.Pairs, Opt{key, value})
}

// ParseKeyval parses s with keyval syntax; impliedKey ("" for none) names a
// leading value without "=". Errors carry QEMU's texts.
func ParseKeyval(s, impliedKey string) (*Keyval, error) {
	k := &Keyval{}
	if err := k.parse(s, impliedKey); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keyval) parse(params, implied string) *qerror.Error {
	s := params
	for s != "" {
		var err *qerror.Error
		s, err = k.parseOne(s, implied)
		if err != nil {
			return err
		}
		implied = ""
	}
	return nil
}

// qapiNameLen is parse_qapi_name(s, false) without downstream "__RFQDN_"
// prefixes: a letter, then letters, digits, '-', '_'.
func qapiNameLen(s string) int {
	i := 0
	if i >= len(s) || !isAlpha(s[i]) {
		return 0
	}
	for i < len(s) && (isAlpha(s[i]) || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_') {
		i++
	}
	return i
}

func keyIndexLen(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

func (k *Keyval) parseOne(params, implied string) (string, *qerror.Error) {
	n := strings.IndexAny(params, "=,")
	if n < 0 {
		n = len(params)
	}
	key := params
	keyLen := n
	isImplied := false
	if n > 0 && (n == len(params) || params[n] != '=') {
		if isHelpOption(params[:n]) {
			k.Help = true
			rest := params[n:]
			return strings.TrimPrefix(rest, ","), nil
		}
		if implied != "" {
			isImplied = true
			key = implied
			keyLen = len(implied)
		}
	}
	keyEnd := key[:keyLen]
	// Validate the fragments.
	s := keyEnd
	first := true
	for {
		var l int
		if !first && keyIndexLen(s) > 0 {
			l = keyIndexLen(s)
		} else {
			l = qapiNameLen(s)
		}
		if l == 0 || (l < len(s) && s[l] != '.') {
			return "", errInvalidParameter(keyEnd)
		}
		if l >= 128 {
			frag := ""
			if !first || l != len(s) {
				frag = " fragment"
			}
			return "", newErr(ErrInvalidParameter, "Parameter"+frag+" '"+s[:l]+"' is too long")
		}
		first = false
		if l == len(s) {
			break
		}
		s = s[l+1:]
	}
	var val, rest string
	if isImplied {
		val = params[:n]
		rest = strings.TrimPrefix(params[n:], ",")
	} else {
		after := params[keyLen:]
		if !strings.HasPrefix(after, "=") {
			return "", newErr(ErrInvalidParameter, "Expected '=' after parameter '"+keyEnd+"'")
		}
		after = after[1:]
		var b strings.Builder
		i := 0
		for i < len(after) {
			if after[i] == ',' {
				i++
				if i >= len(after) || after[i] != ',' {
					break
				}
			}
			b.WriteByte(after[i])
			i++
		}
		val, rest = b.String(), after[i:]
	}
	// keyval_parse_put: a key may not be both a value and a prefix.
	for _, p := range k.Pairs {
		if strings.HasPrefix(p.Name, keyEnd+".") {
			return "", newErr(ErrInvalidParameter, "Parameters '"+keyEnd+".*' used inconsistently")
		}
		if strings.HasPrefix(keyEnd, p.Name+".") {
			return "", newErr(ErrInvalidParameter, "Parameters '"+p.Name+".*' used inconsistently")
		}
	}
	k.Set(keyEnd, val)
	return rest, nil
}

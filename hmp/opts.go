package hmp

import (
	"fmt"
	"strings"

	"tlcvm/compat/optval"
)

// impliedKey names the key of a bare first value for the QemuOpts lists that HMP's 'O'
// type reads (QEMU's implied_opt_name); "" when the list has none.
func impliedKey(list string) string {
	switch list {
	case "device":
		return "driver"
	case "netdev":
		return "type"
	case "object":
		return "qom-type"
	case "chardev":
		return "backend"
	}
	return ""
}

// parseOpts parses a QemuOpts string ("e1000,id=n1,mac=..."; ",," is a literal comma) into
// args, as qemu_opts_parse_noisily(list, s, permit_abbrev=true) followed by
// qemu_opts_to_qdict does: every value is a string, a bare "flag" is "on" and a bare
// "noflag" is "off", a later key replaces an earlier one.
func parseOpts(s, implied string, args Args) error {
	first := true
	for p := 0; p < len(s); {
		// Key runs to '=' or ','; value to a single ',' (",," is an escaped comma).
		k := p
		for k < len(s) && s[k] != '=' && s[k] != ',' {
			k++
		}
		var key, val string
		if k < len(s) && s[k] == '=' {
			key = s[p:k]
			v, np := optValue(s, k+1)
			val, p = v, np
		} else if first && implied != "" {
			key = implied
			v, np := optValue(s, p)
			val, p = v, np
		} else {
			key = s[p:k]
			p = k
			if p < len(s) {
				p++
			}
			val = "on"
			if strings.HasPrefix(key, "no") {
				key, val = key[2:], "off"
			}
		}
		first = false
		if key == "id" && !optval.ID(val) {
			return fmt.Errorf("Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.")
		}
		args[key] = val
	}
	return nil
}

// optValue reads a value at s[p:] up to a single comma and returns it with the position
// after the comma.
func optValue(s string, p int) (string, int) {
	var b strings.Builder
	for p < len(s) {
		if s[p] == ',' {
			if p+1 < len(s) && s[p+1] == ',' {
				b.WriteByte(',')
				p += 2
				continue
			}
			return b.String(), p + 1
		}
		b.WriteByte(s[p])
		p++
	}
	return b.String(), p
}

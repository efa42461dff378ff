package hmp

import (
	"encoding/json"
	"strings"
)

// qom-list, qom-get, qom-set: hmp_qom_list, hmp_qom_get and hmp_qom_set over their QMP
// twins. qom-get prints the value as qobject_to_json_pretty does.

type qomPropInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func qomCommands() []Command {
	return []Command{
		{Name: "qom-list", Args: "path:s?", Params: "path", Help: "list QOM properties",
			Run: func(c *Call) {
				path, ok := c.Args.Str("path")
				if !ok {
					c.Print("/\n")
					return
				}
				var props []qomPropInfo
				if c.Fail(c.Query("qom-list", map[string]any{"path": path}, &props)) {
					return
				}
				for _, p := range props {
					c.Printf("%s (%s)\n", p.Name, p.Type)
				}
			}},
		{Name: "qom-get", Args: "path:s,property:s", Params: "path property", Help: "print QOM property",
			Run: func(c *Call) {
				path, _ := c.Args.Str("path")
				prop, _ := c.Args.Str("property")
				raw, err := c.Execute("qom-get", map[string]any{"path": path, "property": prop})
				if c.Fail(err) {
					return
				}
				var b strings.Builder
				prettyJSON(&b, []byte(raw), 0)
				c.Printf("%s\n", b.String())
			}},
		{Name: "qom-set", Args: "json:-j,path:s,property:s,value:S", Params: "[-j] path property value",
			Help: "set QOM property.\n\t\t\t-j: the value is specified in json format.",
			Run: func(c *Call) {
				path, _ := c.Args.Str("path")
				prop, _ := c.Args.Str("property")
				value, _ := c.Args.Str("value")
				if !c.Args.Bool("json") {
					qomSetString(c, path, prop, value)
					return
				}
				var v json.RawMessage
				if err := json.Unmarshal([]byte(value), &v); err != nil {
					c.Printf("Error: JSON parse error, %s\n", jsonErrText(value))
					return
				}
				c.Do("qom-set", map[string]any{"path": path, "property": prop, "value": v})
			}},
	}
}

// qomSetString is object_property_parse: the value is text read by the string input
// visitor as the property's type wants it. Scalars (strings, booleans, integers) are
// converted here and set through qom-set; QEMU's texts for a value the type refuses.
func qomSetString(c *Call, path, prop, value string) {
	var props []qomPropInfo
	if err := c.Query("qom-list", map[string]any{"path": path}, &props); err != nil {
		c.Fail(err)
		return
	}
	typ := ""
	for _, p := range props {
		if p.Name == prop {
			typ = p.Type
		}
	}
	var v any = value
	switch {
	case typ == "bool":
		switch value {
		case "on", "yes", "true", "y":
			v = true
		case "off", "no", "false", "n":
			v = false
		default:
			c.Printf("Error: Parameter '%s' expects 'on' or 'off'\n", prop)
			return
		}
	case strings.HasPrefix(typ, "int") || strings.HasPrefix(typ, "uint"):
		n := json.Number(value)
		if _, err := n.Int64(); err != nil {
			c.Printf("Error: Parameter '%s' expects an integer\n", prop)
			return
		}
		v = n
	}
	c.Do("qom-set", map[string]any{"path": path, "property": prop, "value": v})
}

// jsonErrText is the part of QEMU's JSON parser error hmp_qom_set prints for text that is
// no JSON value: the lexer's "invalid keyword" for a bare word, else "expecting value".
func jsonErrText(s string) string {
	t := strings.TrimSpace(s)
	if t == "" {
		return "expecting value"
	}
	return "invalid keyword '" + t + "'"
}

// prettyJSON writes raw (QEMU's compact encoding, as QMP sent it) as qobject_to_json_pretty
// does: one member or element per line, four spaces per level, "key": value, and "{\n}" /
// "[\n]" for empty containers. Scalars are copied as they came, escapes included.
func prettyJSON(b *strings.Builder, raw []byte, level int) []byte {
	raw = skipJSONSpace(raw)
	if len(raw) == 0 {
		return raw
	}
	switch raw[0] {
	case '{', '[':
		open, end := raw[0], byte('}')
		if open == '[' {
			end = ']'
		}
		b.WriteByte(open)
		raw = skipJSONSpace(raw[1:])
		first := true
		for len(raw) > 0 && raw[0] != end {
			before := len(raw)
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString("\n" + strings.Repeat("    ", level+1))
			if open == '{' {
				raw = prettyJSON(b, raw, level+1) // the key
				raw = skipJSONSpace(raw)
				if len(raw) > 0 && raw[0] == ':' {
					raw = raw[1:]
				}
				b.WriteString(": ")
			}
			raw = skipJSONSpace(prettyJSON(b, raw, level+1))
			if len(raw) > 0 && raw[0] == ',' {
				raw = skipJSONSpace(raw[1:])
			}
			if len(raw) == before { // not JSON: stop rather than spin
				break
			}
		}
		b.WriteString("\n" + strings.Repeat("    ", level))
		b.WriteByte(end)
		if len(raw) > 0 {
			raw = raw[1:]
		}
		return raw
	case '"':
		i := 1
		for i < len(raw) && raw[i] != '"' {
			if raw[i] == '\\' {
				i++
			}
			i++
		}
		i = min(i+1, len(raw))
		b.Write(raw[:i])
		return raw[i:]
	default:
		i := 0
		for i < len(raw) && !strings.ContainsRune(",:]} \t\r\n", rune(raw[i])) {
			i++
		}
		b.Write(raw[:i])
		return raw[i:]
	}
}

func skipJSONSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

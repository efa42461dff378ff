package hmp

import (
	"encoding/json"
	"strings"
)

// HMP's NBD server commands, as QEMU 7.2's block/monitor/block-hmp-cmds.c: nbd_server_start
// (socket_parse's address syntax; -a adds every block device with a medium, -w makes those
// exports writable), nbd_server_add, nbd_server_remove, nbd_server_stop, each calling the
// QMP command of the same name.

func nbdCommands() []Command {
	return []Command{
		{Name: "nbd_server_start", Args: "all:-a,writable:-w,uri:s", Params: "nbd_server_start [-a] [-w] host:port",
			Help: "serve block devices on the given host and port", Run: nbdServerStart},
		{Name: "nbd_server_add", Args: "writable:-w,device:B,name:s?", Params: "nbd_server_add [-w] device [name]",
			Help: "export a block device via NBD",
			Run: func(c *Call) {
				device, _ := c.Args.Str("device")
				args := map[string]any{"device": device, "writable": c.Args.Bool("writable")}
				if name, ok := c.Args.Str("name"); ok {
					args["name"] = name
				}
				c.Do("nbd-server-add", args)
			}},
		{Name: "nbd_server_remove", Args: "force:-f,name:s", Params: "nbd_server_remove [-f] name",
			Help: "remove an export previously exposed via NBD",
			Run: func(c *Call) {
				name, _ := c.Args.Str("name")
				mode := "safe"
				if c.Args.Bool("force") {
					mode = "hard"
				}
				c.Do("nbd-server-remove", map[string]any{"name": name, "mode": mode})
			}},
		{Name: "nbd_server_stop", Params: "nbd_server_stop", Help: "stop serving block devices using the NBD protocol",
			Run: func(c *Call) { c.Do("nbd-server-stop", nil) }},
	}
}

// nbdServerStart is hmp_nbd_server_start.
func nbdServerStart(c *Call) {
	uri, _ := c.Args.Str("uri")
	writable, all := c.Args.Bool("writable"), c.Args.Bool("all")
	if writable && !all {
		c.Print("Error: -w only valid together with -a\n")
		return
	}
	addr, msg := socketParse(uri)
	if msg != "" {
		c.Printf("Error: %s\n", msg)
		return
	}
	if !c.Do("nbd-server-start", map[string]any{"addr": addr}) || !all {
		return
	}
	raw, err := c.Execute("query-block", nil)
	if c.Fail(err) {
		return
	}
	var list []struct {
		Device   string           `json:"device"`
		Inserted *json.RawMessage `json:"inserted"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return
	}
	for _, b := range list {
		if b.Inserted == nil {
			continue
		}
		if _, err := c.Execute("nbd-server-add", map[string]any{"device": b.Device, "writable": writable}); err != nil {
			_, _ = c.Execute("nbd-server-stop", nil)
			c.Fail(err)
			return
		}
	}
}

// socketParse is socket_parse, giving nbd-server-start's SocketAddressLegacy: "unix:PATH",
// "fd:NAME", "vsock:CID:PORT", "tcp:HOST:PORT" or "HOST:PORT" ("[V6]:PORT", ",ipv4",
// ",ipv6", ",to=PORT").
func socketParse(s string) (map[string]any, string) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		if s == "unix:" {
			return nil, "invalid Unix socket address"
		}
		return map[string]any{"type": "unix", "data": map[string]any{"path": s[5:]}}, ""
	case strings.HasPrefix(s, "fd:"):
		if s == "fd:" {
			return nil, "invalid file descriptor address"
		}
		return map[string]any{"type": "fd", "data": map[string]any{"str": s[3:]}}, ""
	case strings.HasPrefix(s, "vsock:"):
		cid, port, ok := strings.Cut(s[6:], ":")
		if !ok || cid == "" || port == "" || !digits(cid) || !digits(port) {
			return nil, "error parsing address '" + s[6:] + "'"
		}
		return map[string]any{"type": "vsock", "data": map[string]any{"cid": cid, "port": port}}, ""
	case strings.HasPrefix(s, "tcp:"):
		s = s[4:]
	}
	data, msg := inetParse(s)
	if msg != "" {
		return nil, msg
	}
	return map[string]any{"type": "inet", "data": data}, ""
}

// inetParse is inet_parse: host and port, then options.
func inetParse(s string) (map[string]any, string) {
	addr, opts, _ := strings.Cut(s, ",")
	var host, port string
	switch {
	case strings.HasPrefix(addr, "["):
		end := strings.Index(addr, "]:")
		if end < 0 || end+2 >= len(addr) {
			return nil, "error parsing IPv6 address '" + s + "'"
		}
		host, port = addr[1:end], addr[end+2:]
	default:
		i := strings.LastIndexByte(addr, ':')
		if i < 0 || i == len(addr)-1 || strings.Contains(addr[:i], ":") {
			return nil, "error parsing address '" + s + "'"
		}
		host, port = addr[:i], addr[i+1:]
	}
	data := map[string]any{"host": host, "port": port}
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "":
		case o == "ipv4" || o == "ipv4=on":
			data["ipv4"] = true
		case o == "ipv6" || o == "ipv6=on":
			data["ipv6"] = true
		case strings.HasPrefix(o, "to=") && digits(o[3:]):
			n := 0
			for _, d := range o[3:] {
				n = n*10 + int(d-'0')
			}
			data["to"] = n
		default:
			return nil, "error parsing '" + o + "' in '" + s + "'"
		}
	}
	return data, ""
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

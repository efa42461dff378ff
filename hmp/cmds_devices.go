package hmp

import (
	"fmt"
	"strings"
)

// HMP's device and network commands (hmp-commands.hx): device_add, device_del, netdev_add,
// netdev_del, set_link and `info network`, each through the QMP command that does the work.
// QEMU's HMP handlers call into qdev and net directly for what has no QMP twin (the help
// texts, `info network`, netdev_add's QemuOpts form); here those are tlcvm's internal QMP
// commands.

type textReply struct {
	Text string `json:"text"`
}

// optsArgs returns the 'O' argument's members as a JSON object of strings.
func optsArgs(a Args) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	return out
}

// NetdevHelp is show_netdevs' list of the back-ends this build of QEMU 7.2 has (`-netdev
// help`, `netdev_add help`).
const NetdevHelp = "Available netdev backend types:\nsocket\nstream\ndgram\nhubport\ntap\nuser\nl2tpv3\nvde\nbridge\nvhost-user\nvhost-vdpa\n"

// isHelp is QEMU's is_help_option.
func isHelp(s string) bool { return s == "help" || s == "?" }

func deviceCommands() []Command {
	return []Command{
		{Name: "device_add", Args: "device:O", Params: "driver[,prop=value][,...]",
			Help: "add device, like -device on the command line",
			Run: func(c *Call) {
				// qmp_device_add from HMP first offers qdev_device_help.
				driver, _ := c.Args.Str("driver")
				help := isHelp(driver)
				for k := range c.Args {
					help = help || isHelp(k)
				}
				if help {
					// qdev_device_help reports its error without hmp_handle_error's prefix
					var r textReply
					if err := c.Query("x-tlcvm-device-help", map[string]any{"driver": driver}, &r); err != nil {
						c.Printf("%s\n", err)
						return
					}
					c.Print(r.Text)
					return
				}
				c.Do("device_add", optsArgs(c.Args))
			}},
		{Name: "device_del", Args: "id:s", Params: "device", Help: "remove device",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				c.Do("device_del", map[string]any{"id": id})
			}},
		{Name: "netdev_add", Args: "netdev:O",
			Params: "[user|tap|socket|stream|dgram|vde|bridge|hubport|netmap|vhost-user],id=str[,prop=value][,...]",
			Help:   "add host network device",
			Run: func(c *Call) {
				if t, _ := c.Args.Str("type"); isHelp(t) {
					c.Print(NetdevHelp)
					return
				}
				c.Do("x-tlcvm-netdev-add-opts", optsArgs(c.Args))
			}},
		{Name: "netdev_del", Args: "id:s", Params: "id", Help: "remove host network device",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				c.Do("netdev_del", map[string]any{"id": id})
			}},
		{Name: "set_link", Args: "name:s,up:b", Params: "name on|off", Help: "change the link status of a network adapter",
			Run: func(c *Call) {
				name, _ := c.Args.Str("name")
				c.Do("set_link", map[string]any{"name": name, "up": c.Args.Bool("up")})
			}},
		{Name: "chardev-add", Args: "args:s", Params: "args", Help: "add chardev",
			Run: func(c *Call) {
				args, _ := c.Args.Str("args")
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-chardev-add-opts", map[string]any{"args": args}, &r)) {
					c.Print(r.Text)
				}
			}},
		{Name: "chardev-change", Args: "id:s,args:s", Params: "id args", Help: "change chardev",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				args, _ := c.Args.Str("args")
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-chardev-add-opts", map[string]any{"args": args, "id": id}, &r)) {
					c.Print(r.Text)
				}
			}},
		{Name: "chardev-remove", Args: "id:s", Params: "id", Help: "remove chardev",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				c.Do("chardev-remove", map[string]any{"id": id})
			}},
		{Name: "chardev-send-break", Args: "id:s", Params: "id", Help: "send a break on chardev",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				c.Do("chardev-send-break", map[string]any{"id": id})
			}},
		{Name: "ringbuf_write", Args: "device:s,data:s", Params: "device data",
			Help: "Write to a ring buffer character device",
			Run: func(c *Call) {
				dev, _ := c.Args.Str("device")
				data, _ := c.Args.Str("data")
				c.Do("ringbuf-write", map[string]any{"device": dev, "data": data})
			}},
		{Name: "ringbuf_read", Args: "device:s,size:i", Params: "device size",
			Help: "Read from a ring buffer character device",
			Run: func(c *Call) {
				dev, _ := c.Args.Str("device")
				size, _ := c.Args.Int("size")
				var data string
				if c.Fail(c.Query("ringbuf-read", map[string]any{"device": dev, "size": size}, &data)) {
					return
				}
				// hmp_ringbuf_read: backslashes doubled, control characters but \n and \t as \uXXXX
				var b strings.Builder
				for _, ch := range []byte(data) {
					switch {
					case ch == '\\':
						b.WriteString("\\\\")
					case (ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f:
						fmt.Fprintf(&b, "\\u%04X", ch)
					default:
						b.WriteByte(ch)
					}
				}
				c.Print(b.String() + "\n")
			}},
		{Name: "object_add", Args: "object:S", Params: "[qom-type=]type,id=str[,prop=value][,...]",
			Help: "create QOM object",
			Run: func(c *Call) {
				obj, _ := c.Args.Str("object")
				c.Do("x-tlcvm-object-add-opts", map[string]any{"object": obj})
			}},
		{Name: "object_del", Args: "id:s", Params: "id", Help: "destroy QOM object",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				c.Do("object-del", map[string]any{"id": id})
			}},
		{Info: true, Name: "memdev", Params: "", Help: "show memory backends", Run: infoMemdev},
		{Info: true, Name: "memory-devices", Params: "", Help: "show memory devices", Run: infoMemoryDevices},
		{Info: true, Name: "memory_size_summary", Params: "",
			Help: "show the amount of initially allocated and present hotpluggable (if enabled) memory in bytes.",
			Run: func(c *Call) {
				var r struct {
					Base    uint64  `json:"base-memory"`
					Plugged *uint64 `json:"plugged-memory"`
				}
				if c.Fail(c.Query("query-memory-size-summary", nil, &r)) {
					return
				}
				c.Printf("base memory: %d\n", r.Base)
				if r.Plugged != nil {
					c.Printf("plugged memory: %d\n", *r.Plugged)
				}
			}},
		{Info: true, Name: "iothreads", Params: "", Help: "show iothreads",
			Run: func(c *Call) {
				var l []struct {
					ID          string `json:"id"`
					ThreadID    int64  `json:"thread-id"`
					PollMaxNS   int64  `json:"poll-max-ns"`
					PollGrow    int64  `json:"poll-grow"`
					PollShrink  int64  `json:"poll-shrink"`
					AioMaxBatch int64  `json:"aio-max-batch"`
				}
				if c.Fail(c.Query("query-iothreads", nil, &l)) {
					return
				}
				for _, t := range l {
					c.Printf("%s:\n  thread_id=%d\n  poll-max-ns=%d\n  poll-grow=%d\n  poll-shrink=%d\n  aio-max-batch=%d\n",
						t.ID, t.ThreadID, t.PollMaxNS, t.PollGrow, t.PollShrink, t.AioMaxBatch)
				}
			}},
		{Info: true, Name: "network", Params: "", Help: "show the network state",
			Run: func(c *Call) {
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-info-network", nil, &r)) {
					c.Print(r.Text)
				}
			}},
	}
}

// infoMemdev is hmp_info_memdev.
func infoMemdev(c *Call) {
	var l []struct {
		ID        string   `json:"id"`
		Size      int64    `json:"size"`
		Merge     bool     `json:"merge"`
		Dump      bool     `json:"dump"`
		Prealloc  bool     `json:"prealloc"`
		Share     bool     `json:"share"`
		Reserve   *bool    `json:"reserve"`
		Policy    string   `json:"policy"`
		HostNodes []uint16 `json:"host-nodes"`
	}
	if c.Fail(c.Query("query-memdev", nil, &l)) {
		return
	}
	for _, m := range l {
		c.Printf("memory backend: %s\n", m.ID)
		c.Printf("  size:  %d\n", m.Size)
		c.Printf("  merge: %t\n", m.Merge)
		c.Printf("  dump: %t\n", m.Dump)
		c.Printf("  prealloc: %t\n", m.Prealloc)
		c.Printf("  share: %t\n", m.Share)
		if m.Reserve != nil {
			c.Printf("  reserve: %t\n", *m.Reserve)
		}
		c.Printf("  policy: %s\n", m.Policy)
		c.Printf("  host nodes: %s\n", ranges(m.HostNodes))
	}
	c.Print("\n")
}

// infoMemoryDevices is hmp_info_memory_devices (DIMMs; tlcvm plugs no other kind).
func infoMemoryDevices(c *Call) {
	var l []struct {
		Type string `json:"type"`
		Data struct {
			ID           string `json:"id"`
			Addr         uint64 `json:"addr"`
			Slot         int64  `json:"slot"`
			Node         int64  `json:"node"`
			Size         uint64 `json:"size"`
			Memdev       string `json:"memdev"`
			Hotplugged   bool   `json:"hotplugged"`
			Hotpluggable bool   `json:"hotpluggable"`
		} `json:"data"`
	}
	if c.Fail(c.Query("query-memory-devices", nil, &l)) {
		return
	}
	for _, m := range l {
		d := m.Data
		c.Printf("Memory device [%s]: \"%s\"\n", m.Type, d.ID)
		c.Printf("  addr: 0x%x\n  slot: %d\n  node: %d\n  size: %d\n  memdev: %s\n  hotplugged: %t\n  hotpluggable: %t\n",
			d.Addr, d.Slot, d.Node, d.Size, d.Memdev, d.Hotplugged, d.Hotpluggable)
	}
}

// ranges is the string output visitor's form of an integer list: runs as "a-b", joined
// by commas.
func ranges(l []uint16) string {
	var b strings.Builder
	for i := 0; i < len(l); {
		j := i
		for j+1 < len(l) && l[j+1] == l[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", l[i], l[j])
		} else {
			fmt.Fprintf(&b, "%d", l[i])
		}
		i = j + 1
	}
	return b.String()
}

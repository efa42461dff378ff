package main

import (
	"fmt"
	"net"
	"slices"

	"tlcvm/compat"
	"tlcvm/qmp/cmds"
	"tlcvm/vnc"
)

// vncDisplay is one -vnc display: its id ("default" unless id= names it, as QEMU) and
// its server (nil for -vnc none).
type vncDisplay struct {
	id string
	s  *vnc.Server
}

// buildVNC opens the -vnc displays (and -display vnc=…) in command-line order, as QEMU's
// vnc_init_func does during start-up: a display that does not parse, names an unknown
// audiodev or cannot listen stops the start with "-vnc ARG: error".
func (v *vm) buildVNC() error {
	cfg := v.plan.cfg
	for _, arg := range cfg.VNC {
		c, err := vnc.Parse(arg)
		if err != nil {
			return failf(cfg, "-vnc "+arg, "%v", err)
		}
		id := c.ID
		if id == "" {
			id = "default"
		}
		if c.Disabled {
			v.vnc = append(v.vnc, vncDisplay{id: id}) // listed, not listening (-vnc none)
			continue
		}
		if c.Audiodev != "" && !hasAudiodev(cfg.Audiodevs, c.Audiodev) {
			return failf(cfg, "-vnc "+arg, "Audiodev '%s' not found", c.Audiodev)
		}
		s, err := vnc.Listen(c, vnc.Options{Name: v.vncName(), Log: v.log, Key: v.input.SendKey})
		if err != nil {
			return failf(cfg, "-vnc "+arg, "%v", err)
		}
		if b := s.Banner(); b != "" {
			fmt.Fprintln(v.stderr, b)
		}
		v.vnc = append(v.vnc, vncDisplay{id: id, s: s})
		v.serves = append(v.serves, s.Serve)
	}
	return nil
}

func hasAudiodev(list []compat.Audiodev, id string) bool {
	for _, a := range list {
		if a.ID == id {
			return true
		}
	}
	return false
}

// vncInfo is query-vnc's and query-vnc-servers' view of the displays.
func (v *vm) vncInfo() []cmds.VNCDisplay {
	v.vncMu.Lock()
	defer v.vncMu.Unlock()
	var out []cmds.VNCDisplay
	for _, d := range v.vnc {
		if d.s == nil {
			out = append(out, cmds.VNCDisplay{ID: d.id, Auth: "none"})
			continue
		}
		in := d.s.Info()
		cd := cmds.VNCDisplay{ID: d.id, Host: in.Host, Service: in.Service, Family: in.Family, Auth: in.Auth}
		for _, a := range in.Listeners {
			cd.Servers = append(cd.Servers, cmds.VNCAddr{Host: a.Host, Service: a.Service, Family: a.Family})
		}
		for _, c := range in.Clients {
			cd.Clients = append(cd.Clients, cmds.VNCClient{Host: c.Host, Service: c.Service, Family: c.Family, Websocket: c.Websocket})
		}
		out = append(out, cd)
	}
	return out
}

// vncAddClient hands a connected client to the first display (QEMU's vnc_display_find(NULL)):
// false when it does not listen (-vnc none) or there is none.
func (v *vm) vncAddClient(conn net.Conn) bool {
	v.vncMu.Lock()
	defer v.vncMu.Unlock()
	if len(v.vnc) == 0 || v.vnc[0].s == nil {
		return false
	}
	return v.vnc[0].s.AddClient(conn)
}

// vncUpdate is display-update for the first display (vnc_display_find(NULL)); a -vnc none
// display gets a server then, serving at once. A nil open only looks the display up.
func (v *vm) vncUpdate(open func() ([]net.Listener, error)) (bool, error) {
	v.vncMu.Lock()
	defer v.vncMu.Unlock()
	if len(v.vnc) == 0 {
		return false, nil
	}
	d := &v.vnc[0]
	if open == nil {
		return true, nil
	}
	if d.s == nil {
		s, err := vnc.Idle(vnc.Options{Name: v.vncName(), Log: v.log, Key: v.input.SendKey})
		if err != nil {
			return true, err
		}
		s.Serve()
		d.s = s
	}
	return true, d.s.Update(open)
}

// vncPassword is vnc_display_password (pw set) and vnc_display_pw_expire (expires set) on
// the display called id (vnc_display_find: nil is the first). A -vnc none display has no
// password authentication, so it takes an expiry but no password.
func (v *vm) vncPassword(id, pw *string, expires *int64) bool {
	v.vncMu.Lock()
	defer v.vncMu.Unlock()
	i := 0
	if id != nil {
		i = slices.IndexFunc(v.vnc, func(d vncDisplay) bool { return d.id == *id })
	}
	if i < 0 || i >= len(v.vnc) {
		return false
	}
	s := v.vnc[i].s
	if pw != nil && (s == nil || s.SetPassword(*pw) != nil) {
		return false
	}
	if expires != nil && s != nil {
		s.ExpirePassword(*expires)
	}
	return true
}

// vncName is the desktop name QEMU sends: "QEMU", or "QEMU (<-name>)".
func (v *vm) vncName() string {
	if g := v.plan.cfg.Name.Guest; g != "" {
		return "QEMU (" + g + ")"
	}
	return "QEMU"
}

package hmp

// vncInfo2 is one element of query-vnc-servers.
type vncInfo2 struct {
	ID     string `json:"id"`
	Auth   string `json:"auth"`
	Server []struct {
		Host      string `json:"host"`
		Service   string `json:"service"`
		Family    string `json:"family"`
		Websocket bool   `json:"websocket"`
		Auth      string `json:"auth"`
	} `json:"server"`
	Clients []struct {
		Host      string `json:"host"`
		Service   string `json:"service"`
		Family    string `json:"family"`
		Websocket bool   `json:"websocket"`
	} `json:"clients"`
}

// vncBasic is hmp_info_VncBasicInfo.
func vncBasic(c *Call, name, host, service, family string, websocket bool) {
	ws := ""
	if websocket {
		ws = " (Websocket)"
	}
	c.Printf("  %s: %s:%s (%s%s)\n", name, host, service, family, ws)
}

// hmpInfoVNC is hmp_info_vnc: per display its servers with their auth, then its clients.
func hmpInfoVNC(c *Call) {
	var l []vncInfo2
	if c.Fail(c.Query("query-vnc-servers", nil, &l)) {
		return
	}
	if len(l) == 0 {
		c.Print("None\n")
		return
	}
	for _, d := range l {
		c.Printf("%s:\n", d.ID)
		for _, s := range d.Server {
			vncBasic(c, "Server", s.Host, s.Service, s.Family, s.Websocket)
			c.Printf("    Auth: %s (Sub: none)\n", s.Auth)
		}
		for _, cl := range d.Clients {
			vncBasic(c, "Client", cl.Host, cl.Service, cl.Family, cl.Websocket)
			c.Print("    x509_dname: none\n    sasl_username: none\n")
		}
		if len(d.Server) == 0 {
			c.Printf("  Auth: %s (Sub: none)\n", d.Auth)
		}
	}
}

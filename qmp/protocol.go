package qmp

// The protocol commands: capability negotiation, introspection and descriptor passing.

// QMPCapability is a capability the client may enable with qmp_capabilities.
type QMPCapability string

// EnumValues implements Enum.
func (QMPCapability) EnumValues() []string { return []string{"oob"} }

// CapabilitiesArgs are qmp_capabilities' arguments.
type CapabilitiesArgs struct {
	Enable []QMPCapability `json:"enable,omitempty"`
}

// CommandInfo is one element of query-commands.
type CommandInfo struct {
	Name string `json:"name"`
}

// FDNameArgs are getfd's and closefd's arguments.
type FDNameArgs struct {
	Fdname string `json:"fdname"`
}

// AddFDArgs are add-fd's arguments.
type AddFDArgs struct {
	FdsetID *int64  `json:"fdset-id,omitempty"`
	Opaque  *string `json:"opaque,omitempty"`
}

// RemoveFDArgs are remove-fd's arguments.
type RemoveFDArgs struct {
	FdsetID int64  `json:"fdset-id"`
	FD      *int64 `json:"fd,omitempty"`
}

// ProtocolCommands returns qmp_capabilities, query-commands, query-qmp-schema, getfd,
// closefd, add-fd, remove-fd and query-fdsets. NewServer registers those not registered yet;
// register them yourself to choose their place in the schema.
func ProtocolCommands() []Command {
	return []Command{
		{Name: "qmp_capabilities", Args: &CapabilitiesArgs{}, AllowPreconfig: true, Run: qmpCapabilities},
		{Name: "query-commands", Returns: []CommandInfo{}, AllowPreconfig: true, Run: queryCommands},
		{Name: "query-qmp-schema", Returns: []SchemaInfo{}, AllowPreconfig: true, Run: func(c *Call) (any, error) {
			return c.server.reg.SchemaValue(), nil
		}},
		{Name: "getfd", Args: &FDNameArgs{}, Run: func(c *Call) (any, error) {
			fd, ok := c.TakeFD()
			if !ok {
				return nil, GenericError("No file descriptor supplied via SCM_RIGHTS")
			}
			return nil, c.Session.AddFD(c.Args.(*FDNameArgs).Fdname, fd)
		}},
		{Name: "closefd", Args: &FDNameArgs{}, Run: func(c *Call) (any, error) {
			return nil, c.Session.CloseFD(c.Args.(*FDNameArgs).Fdname)
		}},
		{Name: "add-fd", Args: &AddFDArgs{}, Returns: AddfdInfo{}, Run: func(c *Call) (any, error) {
			a := c.Args.(*AddFDArgs)
			fd, ok := c.TakeFD()
			if !ok {
				return nil, GenericError("No file descriptor supplied via SCM_RIGHTS")
			}
			info, err := c.server.fdsets.Add(fd, a.FdsetID, a.Opaque)
			if err != nil {
				closeFDs([]int{fd})
				return nil, err
			}
			return info, nil
		}},
		{Name: "remove-fd", Args: &RemoveFDArgs{}, Run: func(c *Call) (any, error) {
			a := c.Args.(*RemoveFDArgs)
			return nil, c.server.fdsets.Remove(a.FdsetID, a.FD)
		}},
		{Name: "query-fdsets", Returns: []FdsetInfo{}, Run: func(c *Call) (any, error) {
			return c.server.fdsets.Query(), nil
		}},
	}
}

func qmpCapabilities(c *Call) (any, error) {
	if c.conn == nil {
		return nil, Errorf(ClassCommandNotFound, "Capabilities negotiation is already complete, command ignored")
	}
	c.conn.mu.Lock()
	defer c.conn.mu.Unlock()
	if c.conn.negotiated {
		return nil, Errorf(ClassCommandNotFound, "Capabilities negotiation is already complete, command ignored")
	}
	oob := false
	for _, capab := range c.Args.(*CapabilitiesArgs).Enable {
		oob = oob || capab == "oob" // every capability is offered: the list is ["oob"]
	}
	c.conn.negotiated, c.conn.oob = true, oob
	return nil, nil
}

// queryCommands lists the commands newest registration first, as QEMU's prepending does.
func queryCommands(c *Call) (any, error) {
	names := c.server.reg.Commands()
	out := make([]CommandInfo, 0, len(names))
	for i := len(names) - 1; i >= 0; i-- {
		out = append(out, CommandInfo{Name: names[i]})
	}
	return out, nil
}

package cmds

import (
	"net"
	"os"

	"golang.org/x/sys/unix"

	"tlcvm/qmp"
)

// add_client (qapi/misc.json): a connected socket, passed with getfd, becomes a client of
// a display server. libvirt sends it for virDomainOpenGraphics and OpenGraphicsFD (a VNC
// client the management application connects without a TCP port).

// AddClientArgs are add_client's arguments.
type AddClientArgs struct {
	Protocol string `json:"protocol"`
	Fdname   string `json:"fdname"`
	Skipauth *bool  `json:"skipauth,omitempty"`
	TLS      *bool  `json:"tls,omitempty"`
}

func registerAddClient(r *qmp.Registry, d *Deps) {
	r.Register(qmp.Command{Name: "add_client", Args: &AddClientArgs{},
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*AddClientArgs)
			fd, err := c.Session.TakeFD(a.Fdname)
			if err != nil {
				return nil, err
			}
			switch a.Protocol {
			case "vnc":
				// QEMU's add_client_vnc: the first display takes the client; with none
				// (no -vnc, or -vnc none) the descriptor is closed and nothing is said.
				if d.VNCAddClient != nil && vncAddClient(d.VNCAddClient, fd) {
					return nil, nil
				}
				unix.Close(fd)
				return nil, nil
			case "spice":
				unix.Close(fd)
				return nil, qmp.DeviceNotActive("SPICE is not in use")
			case "@dbus-display":
				unix.Close(fd)
				return nil, qmp.DeviceNotActive("D-Bus display is not in use")
			}
			unix.Close(fd)
			return nil, qmp.GenericError("protocol '%s' is invalid", a.Protocol)
		}})
}

// vncAddClient wraps fd as a connection and hands it to the display; false (fd still the
// caller's) when it is not a socket or the display refuses it.
func vncAddClient(add func(net.Conn) bool, fd int) bool {
	dup, err := unix.Dup(fd)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(dup), "vnc-client")
	conn, err := net.FileConn(f) // dups again: f is closed either way
	f.Close()
	if err != nil {
		return false
	}
	if !add(conn) {
		conn.Close()
		return false
	}
	unix.Close(fd)
	return true
}

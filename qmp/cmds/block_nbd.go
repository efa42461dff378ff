package cmds

import (
	"tlcvm/blockdev"
	"tlcvm/nbd"
)

// blockdev-add's nbd driver (BlockdevOptionsNbd): the client node a migration with storage
// mirrors into (libvirt's migration-*-storage); package blockdev connects it.

// BlockdevOptionsNbd is the nbd driver's members (QEMU 7.2's, in its order).
type BlockdevOptionsNbd struct {
	Server         SocketAddress `json:"server"`
	Export         *string       `json:"export,omitempty"`
	TLSCreds       *string       `json:"tls-creds,omitempty"`
	TLSHostname    *string       `json:"tls-hostname,omitempty"`
	XDirtyBitmap   *string       `json:"x-dirty-bitmap,omitempty" qapi:"unstable"`
	ReconnectDelay *uint32       `json:"reconnect-delay,omitempty"`
	OpenTimeout    *uint32       `json:"open-timeout,omitempty"`
}

// nbdOptions converts the nbd members.
func nbdOptions(v *BlockdevOptionsNbd) *blockdev.NBDOptions {
	o := &blockdev.NBDOptions{Server: nbd.SocketAddress{Type: string(v.Server.Type)}}
	switch a := v.Server.Variant.(type) {
	case *InetSocketAddress:
		o.Server.Host, o.Server.Port = a.Host, a.Port
	case *UnixSocketAddress:
		o.Server.Path, o.Server.Abstract = a.Path, a.Abstract != nil && *a.Abstract
	}
	if v.Export != nil {
		o.Export = *v.Export
	}
	if v.TLSCreds != nil {
		o.TLSCreds = *v.TLSCreds
	}
	if v.XDirtyBitmap != nil {
		o.DirtyBitmap = *v.XDirtyBitmap
	}
	return o
}

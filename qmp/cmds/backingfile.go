package cmds

import "tlcvm/qmp"

// change-backing-file (qapi/block-core.json): the backing file name an image in a device's
// chain records, rewritten in its header (blockdev.Graph.ChangeBackingFile).

// ChangeBackingFileArgs are change-backing-file's arguments.
type ChangeBackingFileArgs struct {
	Device        string `json:"device"`
	ImageNodeName string `json:"image-node-name"`
	BackingFile   string `json:"backing-file"`
}

// backingFileChanger is what change-backing-file needs of the block layer.
type backingFileChanger interface {
	ChangeBackingFile(device, imageNode, backingFile string) error
}

func registerChangeBackingFile(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	changeBackingFileCommand(r, d.Block)
}

func changeBackingFileCommand(r *qmp.Registry, g backingFileChanger) {
	r.Register(qmp.Command{Name: "change-backing-file", Args: &ChangeBackingFileArgs{}, Run: func(c *qmp.Call) (any, error) {
		a := c.Args.(*ChangeBackingFileArgs)
		return nil, g.ChangeBackingFile(a.Device, a.ImageNodeName, a.BackingFile)
	}})
}

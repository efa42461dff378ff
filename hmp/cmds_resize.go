package hmp

// block_resize: hmp_block_resize over QMP block_resize (the device by name, never a node).

func resizeCommands() []Command {
	return []Command{
		{Name: "block_resize", Args: "device:B,size:o", Params: "device size", Help: "resize a block image",
			Run: func(c *Call) {
				dev, _ := c.Args.Str("device")
				size, _ := c.Args.Int("size")
				c.Do("block_resize", map[string]any{"device": dev, "size": size})
			}},
	}
}

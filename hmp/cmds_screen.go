package hmp

// screendump: hmp_screendump, through the QMP command.

type screendumpArgs struct {
	Filename string  `json:"filename"`
	Device   *string `json:"device,omitempty"`
	Head     *int64  `json:"head,omitempty"`
	Format   *string `json:"format,omitempty"`
}

func screenCommands() []Command {
	return []Command{
		{Name: "screendump", Args: "filename:F,format:-fs,device:s?,head:i?",
			Params: "filename [-f format] [device [head]]",
			Help: "save screen from head 'head' of display device 'device'" +
				"in specified format 'format' as image 'filename'." +
				"Currently only 'png' and 'ppm' formats are supported.",
			Run: func(c *Call) {
				var a screendumpArgs
				a.Filename, _ = c.Args.Str("filename")
				if f, ok := c.Args.Str("format"); ok {
					if f != "ppm" && f != "png" {
						c.Printf("Error: invalid parameter value: %s\n", f)
						return
					}
					a.Format = &f
				}
				if id, ok := c.Args.Str("device"); ok {
					head, _ := c.Args.Int("head")
					a.Device, a.Head = &id, &head
				}
				c.Do("screendump", a)
			}},
	}
}

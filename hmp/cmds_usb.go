package hmp

// info usb: hmp_info_usb (hw/usb/bus.c) prints x-query-usb's text.

type humanReadableText struct {
	Text string `json:"human-readable-text"`
}

func usbCommands() []Command {
	return []Command{
		{Info: true, Name: "usb", Params: "", Help: "show guest USB devices",
			Run: func(c *Call) {
				var r humanReadableText
				if !c.Fail(c.Query("x-query-usb", nil, &r)) {
					c.Print(r.Text)
				}
			}},
	}
}

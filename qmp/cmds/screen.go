package cmds

import (
	"bufio"
	"os"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
	"tlcvm/qmp"
)

// screendump (qapi/ui.json, ui/console.c qmp_screendump): the display's surface as PPM
// or PNG.

// ImageFormat is QAPI's ImageFormat.
type ImageFormat string

// EnumValues lists QAPI's values.
func (ImageFormat) EnumValues() []string { return []string{"ppm", "png"} }

// ScreendumpArgs are screendump's arguments.
type ScreendumpArgs struct {
	Filename string       `json:"filename"`
	Device   *string      `json:"device,omitempty"`
	Head     *int64       `json:"head,omitempty"`
	Format   *ImageFormat `json:"format,omitempty"`
}

func registerScreen(r *qmp.Registry, d *Deps) {
	r.Register(qmp.Command{Name: "screendump", Args: &ScreendumpArgs{},
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*ScreendumpArgs)
			if a.Head != nil && a.Device == nil {
				return nil, qmp.GenericError("'head' must be specified together with 'device'")
			}
			con := d.Console
			if err := d.lookupConsole(a.Device, a.Head); err != nil {
				return nil, err
			}
			if con == nil {
				return nil, qmp.GenericError("There is no console to take a screendump from")
			}
			fd, err := unix.Open(a.Filename, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o666)
			if err != nil {
				return nil, qmp.Errorf("GenericError", "failed to open file '%s': %s", a.Filename, qerror.Strerror(err))
			}
			f := os.NewFile(uintptr(fd), a.Filename)
			defer f.Close()
			w := bufio.NewWriter(f)
			if a.Format != nil && *a.Format == "png" {
				err = con.WritePNG(w)
			} else {
				err = con.WritePPM(w)
			}
			if err == nil {
				err = w.Flush()
			}
			if err != nil {
				return nil, qmp.Errorf("GenericError", "failed to write file '%s': %s", a.Filename, qerror.Strerror(err))
			}
			return nil, nil
		}})
}

package cmds

import (
	"encoding/base64"
	"strings"

	"tlcvm/chardev"
	"tlcvm/compat/qerror"
	"tlcvm/qmp"
)

// ringbuf-write and ringbuf-read (chardev/char-ringbuf.c): bytes into and out of a ringbuf
// chardev's ring, as text or base64.

// DataFormat is QAPI's DataFormat.
type DataFormat string

// EnumValues implements qmp.Enum.
func (DataFormat) EnumValues() []string { return []string{"utf8", "base64"} }

// RingbufWriteArgs is ringbuf-write's arguments.
type RingbufWriteArgs struct {
	Device string      `json:"device"`
	Data   string      `json:"data"`
	Format *DataFormat `json:"format,omitempty"`
}

// RingbufReadArgs is ringbuf-read's arguments.
type RingbufReadArgs struct {
	Device string      `json:"device"`
	Size   int64       `json:"size"`
	Format *DataFormat `json:"format,omitempty"`
}

// ringbuf finds a ringbuf chardev, with QEMU's texts ("X is not a ringbuf device" from
// package chardev: reading nothing from another back-end fails so).
func ringbuf(h ChardevHotplug, id string) (*chardev.Chardev, error) {
	c, ok := h.Lookup(id)
	if !ok {
		return nil, qmp.GenericError("Device '%s' not found", id)
	}
	if _, err := c.RingbufRead(0); err != nil {
		return nil, err
	}
	return c, nil
}

// qbase64Decode is QEMU's qbase64_decode: only the base64 alphabet and '=' are taken, then
// glib decodes leniently (a trailing partial group counts once padding ends the data).
func qbase64Decode(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, qerror.New(nil, "Base64 data contains invalid characters")
		}
	}
	raw := strings.ReplaceAll(s, "=", "")
	if rem := len(raw) % 4; rem == 1 || (rem != 0 && !strings.HasSuffix(s, "=")) {
		raw = raw[:len(raw)-rem]
	}
	return base64.RawStdEncoding.DecodeString(raw)
}

func registerRingbuf(r *qmp.Registry, h ChardevHotplug) {
	r.Register(
		qmp.Command{Name: "ringbuf-write", Args: &RingbufWriteArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*RingbufWriteArgs)
				ch, err := ringbuf(h, a.Device)
				if err != nil {
					return nil, err
				}
				data := []byte(a.Data)
				if i := strings.IndexByte(a.Data, 0); i >= 0 {
					data = data[:i] // QEMU takes a C string
				}
				if a.Format != nil && *a.Format == "base64" {
					if data, err = qbase64Decode(a.Data); err != nil {
						return nil, err
					}
				}
				return nil, ch.RingbufWrite(data)
			}},
		qmp.Command{Name: "ringbuf-read", Args: &RingbufReadArgs{}, Returns: "",
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*RingbufReadArgs)
				ch, err := ringbuf(h, a.Device)
				if err != nil {
					return nil, err
				}
				if a.Size <= 0 {
					return nil, qmp.GenericError("size must be greater than zero")
				}
				b, err := ch.RingbufRead(int(min(a.Size, 1<<30)))
				if err != nil {
					return nil, err
				}
				if a.Format != nil && *a.Format == "base64" {
					return base64.StdEncoding.EncodeToString(b), nil
				}
				s := string(b)
				if i := strings.IndexByte(s, 0); i >= 0 {
					s = s[:i] // a C string
				}
				return strings.ToValidUTF8(s, "\uFFFD"), nil
			}},
	)
}

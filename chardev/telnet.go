package chardev

import "net"

// Telnet bytes (RFC 854) QEMU's tcp_chr_process_IAC_bytes looks at.
const (
	iac      = 0xff
	iacBreak = 0xf3
	iacIP    = 0xf4
	iacNOP   = 0xf1
	iacEOR   = 0xef
	iacSB    = 0xfa
	iacSE    = 0xf0
)

// telnetInit is the negotiation QEMU sends a new telnet client: binary, no
// echo, character mode (or, for tn3270, QEMU's RFC 1576 sequence).
func telnetInit(tn3270 bool) []byte {
	if tn3270 {
		return []byte{
			0xff, 0xfd, 0x19, // IAC DO EOR
			0xff, 0xfb, 0x19, // IAC WILL EOR
			0xff, 0xfd, 0x00, // IAC DO BINARY
			0xff, 0xfb, 0x00, // IAC WILL BINARY
			0xff, 0xfd, 0x18, // IAC DO TERMINAL TYPE
			0xff, 0xfa, 0x18, // IAC SB TERMINAL TYPE
			0x01, 0xff, 0xf0, // SEND IAC SE
		}
	}
	return []byte{
		0xff, 0xfb, 0x01, // IAC WILL ECHO
		0xff, 0xfb, 0x03, // IAC WILL Suppress go ahead
		0xff, 0xfb, 0x00, // IAC WILL Binary
		0xff, 0xfd, 0x00, // IAC DO Binary
	}
}

// telnetConn strips telnet commands from what the client sends, as QEMU's
// tcp_chr_process_IAC_bytes does: option negotiations vanish, IAC IAC is a
// literal 0xff, IAC BREAK becomes a break event.
type telnetConn struct {
	net.Conn
	state  int // QEMU's do_telnetopt: 1 data, 2 after IAC, 3.. in an option
	tn3270 bool
	brk    func()
}

func (t *telnetConn) Read(p []byte) (int, error) {
	for {
		n, err := t.Conn.Read(p)
		n = t.filter(p[:n])
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// filter rewrites buf in place and returns the data length left.
func (t *telnetConn) filter(buf []byte) int {
	j := 0
	for i := 0; i < len(buf); i++ {
		ch := buf[i]
		if t.state > 1 {
			if ch == iac && t.state == 2 {
				buf[j] = ch // IAC IAC: a literal 0xff
				j++
				t.state = 1
			} else {
				switch {
				case ch == iacBreak && t.state == 2:
					if t.brk != nil {
						t.brk()
					}
					t.state++
				case t.tn3270 && (ch == iacEOR || ch == iacSB || ch == iacSE) && t.state == 2:
					// kept, as QEMU keeps them to split tn3270 records; the
					// two bytes can only fit where the IAC was dropped.
					if j+2 <= i+1 {
						buf[j], buf[j+1] = iac, ch
						j += 2
					}
					t.state++
				case t.tn3270 && (ch == iacIP || ch == iacNOP) && t.state == 2:
					t.state++
				}
				t.state++
			}
			if t.state >= 4 {
				t.state = 1
			}
			continue
		}
		if ch == iac {
			t.state = 2
			continue
		}
		buf[j] = ch
		j++
	}
	return j
}

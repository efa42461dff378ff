package vnc

import (
	"bufio"
	"bytes"
	"crypto/des" //nolint:gosec // the RFB protocol's VNC authentication is DES, by definition
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"

	"tlcvm/input"
)

// errProtocol is returned for a client that breaks the protocol; the
// server drops that client, as QEMU's vnc_client_error does.
var errProtocol = errors.New("vnc: protocol error")

// Client message types (RFC 6143 §7.5, QEMU ui/vnc.h).
const (
	msgSetPixelFormat    = 0
	msgSetEncodings      = 2
	msgFramebufferUpdReq = 3
	msgKeyEvent          = 4
	msgPointerEvent      = 5
	msgClientCutText     = 6
	msgQEMU              = 255
	qemuExtKeyEvent      = 0
	qemuAudio            = 1
	maxCutText           = 1 << 20 // QEMU: "exceeds our limit of 1MB"
	dirtyPixelsPerBit    = 16      // QEMU's update granularity in x
	serverVersion        = "RFB 003.008\n"
	authNone             = 1
	authVNC              = 2 // VNC authentication: a DES challenge-response (RFC 6143 7.2.2)
	challengeSize        = 16
	authFailedReason     = "Authentication failed\x00" // QEMU sends sizeof(err)
	readBufSize          = 4096
	writeBufSize         = 64 << 10
)

// message is one decoded client-to-server message.
type message struct {
	typ          byte
	pf           pixelFormat // SetPixelFormat
	encodings    []int32     // SetEncodings
	incremental  bool        // FramebufferUpdateRequest
	x, y, w, h   uint16      // FramebufferUpdateRequest; x, y for PointerEvent
	down         bool        // KeyEvent
	key, keycode uint32      // KeyEvent (keycode: QEMU extended key event)
	buttons      uint8       // PointerEvent
	cutLen       int         // ClientCutText: bytes read and dropped
	sub          byte        // QEMU message subtype
}

// readMessage decodes one client message from r. Every length is bounded:
// SetEncodings by its u16 count, ClientCutText by maxCutText (its payload
// is discarded, not stored). Unknown types are errProtocol.
func readMessage(r *bufio.Reader) (message, error) {
	var m message
	t, err := r.ReadByte()
	if err != nil {
		return m, err
	}
	m.typ = t
	var b [20]byte
	switch t {
	case msgSetPixelFormat:
		if _, err := io.ReadFull(r, b[:19]); err != nil {
			return m, err
		}
		m.pf = decodePixelFormat(b[3:19])
	case msgSetEncodings:
		if _, err := io.ReadFull(r, b[:3]); err != nil {
			return m, err
		}
		n := int(binary.BigEndian.Uint16(b[1:3]))
		m.encodings = make([]int32, 0, min(n, 64))
		for i := 0; i < n; i++ {
			if _, err := io.ReadFull(r, b[:4]); err != nil {
				return m, err
			}
			m.encodings = append(m.encodings, int32(binary.BigEndian.Uint32(b[:4])))
		}
	case msgFramebufferUpdReq:
		if _, err := io.ReadFull(r, b[:9]); err != nil {
			return m, err
		}
		m.incremental = b[0] != 0
		m.x, m.y = binary.BigEndian.Uint16(b[1:]), binary.BigEndian.Uint16(b[3:])
		m.w, m.h = binary.BigEndian.Uint16(b[5:]), binary.BigEndian.Uint16(b[7:])
	case msgKeyEvent:
		if _, err := io.ReadFull(r, b[:7]); err != nil {
			return m, err
		}
		m.down, m.key = b[0] != 0, binary.BigEndian.Uint32(b[3:])
	case msgPointerEvent:
		if _, err := io.ReadFull(r, b[:5]); err != nil {
			return m, err
		}
		m.buttons = b[0]
		m.x, m.y = binary.BigEndian.Uint16(b[1:]), binary.BigEndian.Uint16(b[3:])
	case msgClientCutText:
		if _, err := io.ReadFull(r, b[:7]); err != nil {
			return m, err
		}
		n := int64(int32(binary.BigEndian.Uint32(b[3:])))
		if n < 0 { // extended clipboard: abs() as QEMU
			n = -n
		}
		if n > maxCutText {
			return m, fmt.Errorf("%w: client_cut_text msg payload has %d bytes which exceeds our limit of 1MB", errProtocol, n)
		}
		if _, err := io.CopyN(io.Discard, r, n); err != nil {
			return m, unexpected(err)
		}
		m.cutLen = int(n)
	case msgQEMU:
		sub, err := r.ReadByte()
		if err != nil {
			return m, unexpected(err)
		}
		m.sub = sub
		switch sub {
		case qemuExtKeyEvent:
			if _, err := io.ReadFull(r, b[:10]); err != nil {
				return m, err
			}
			m.down = binary.BigEndian.Uint16(b[0:]) != 0
			m.key, m.keycode = binary.BigEndian.Uint32(b[2:]), binary.BigEndian.Uint32(b[6:])
		case qemuAudio:
			if _, err := io.ReadFull(r, b[:2]); err != nil {
				return m, err
			}
			switch binary.BigEndian.Uint16(b[:2]) {
			case 0, 1: // enable, disable
			case 2: // set format: u8 fmt, u8 channels, u32 freq
				if _, err := io.ReadFull(r, b[:6]); err != nil {
					return m, err
				}
			default:
				return m, fmt.Errorf("%w: invalid audio message", errProtocol)
			}
		default:
			return m, fmt.Errorf("%w: Msg: %d", errProtocol, sub)
		}
	default:
		return m, fmt.Errorf("%w: Msg: %d", errProtocol, t)
	}
	return m, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseVersion is QEMU's sscanf(version, "RFB %03d.%03d\n", ...): "RFB",
// any whitespace, then two numbers of at most 3 characters (sign
// included) separated by '.'.
func parseVersion(v []byte) (major, minor int, ok bool) {
	if len(v) < 3 || string(v[:3]) != "RFB" {
		return 0, 0, false
	}
	i := 3
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	major, i, ok = scanInt3(v, i)
	if !ok || i >= len(v) || v[i] != '.' {
		return 0, 0, false
	}
	minor, _, ok = scanInt3(v, i+1)
	return major, minor, ok
}

func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// scanInt3 is scanf's %3d: skip whitespace, then up to 3 characters of an
// optionally signed decimal.
func scanInt3(v []byte, i int) (int, int, bool) {
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	end := min(i+3, len(v))
	neg := false
	j := i
	if j < end && (v[j] == '-' || v[j] == '+') {
		neg = v[j] == '-'
		j++
	}
	start, n := j, 0
	for j < end && v[j] >= '0' && v[j] <= '9' {
		n = n*10 + int(v[j]-'0')
		j++
	}
	if j == start {
		return 0, i, false
	}
	if neg {
		n = -n
	}
	return n, j, true
}

// client is one connection.
type client struct {
	srv      *Server
	conn     net.Conn
	addr     Client
	seq      uint64 // connection order, for Info (set by newClient)
	running  bool   // guarded by srv.mu: past ClientInit
	admitted bool   // guarded by srv.mu: admit ran (pending released)
	shared   bool   // guarded by srv.mu: asked for a shared session
	pf       pixelFormat
	conv     converter
	w        *bufio.Writer
}

func (c *client) serve() {
	log := c.srv.log.With().Str("client", c.addr.Host+":"+c.addr.Service).Logger()
	err := c.run()
	c.srv.drop(c)
	_ = c.conn.Close()
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		log.Debug().Err(err).Msg("vnc: client dropped")
	} else {
		log.Debug().Msg("vnc: client disconnected")
	}
}

// run serves c until it fails or disconnects; it never returns nil.
func (c *client) run() error {
	r := bufio.NewReaderSize(c.conn, readBufSize)
	c.w = bufio.NewWriterSize(c.conn, writeBufSize)
	shared, err := c.handshake(r)
	if err != nil {
		return err
	}
	if !c.srv.admit(c, shared) {
		return fmt.Errorf("%w: refused by share policy", errProtocol)
	}
	if err := c.serverInit(); err != nil {
		return err
	}
	c.pf = serverFormat
	c.conv = newConverter(c.pf)
	for {
		m, err := readMessage(r)
		if err != nil {
			return err
		}
		if err := c.handle(m); err != nil {
			return err
		}
	}
}

// handshake runs ProtocolVersion, security and ClientInit; it returns the
// ClientInit shared flag.
func (c *client) handshake(r *bufio.Reader) (bool, error) {
	if _, err := c.w.WriteString(serverVersion); err != nil {
		return false, err
	}
	if err := c.w.Flush(); err != nil {
		return false, err
	}
	var v [12]byte
	if _, err := io.ReadFull(r, v[:]); err != nil {
		return false, err
	}
	major, minor, ok := parseVersion(v[:])
	if !ok {
		return false, fmt.Errorf("%w: Malformed protocol version %q", errProtocol, v[:])
	}
	if major != 3 || minor != 3 && minor != 4 && minor != 5 && minor != 7 && minor != 8 {
		_ = c.writeU32(0) // VNC_AUTH_INVALID
		_ = c.w.Flush()
		return false, fmt.Errorf("%w: Unsupported client version %d.%d", errProtocol, major, minor)
	}
	if minor == 4 || minor == 5 {
		minor = 3
	}
	auth := byte(authNone)
	if c.srv.cfg.Password {
		auth = authVNC
	}
	if minor == 3 {
		if err := c.writeU32(uint32(auth)); err != nil {
			return false, err
		}
	} else {
		if _, err := c.w.Write([]byte{1, auth}); err != nil {
			return false, err
		}
		if err := c.w.Flush(); err != nil {
			return false, err
		}
		sec, err := r.ReadByte()
		if err != nil {
			return false, err
		}
		if sec != auth {
			c.reject(minor)
			return false, fmt.Errorf("%w: security type %d rejected", errProtocol, sec)
		}
		if minor >= 8 && auth == authNone {
			if err := c.writeU32(0); err != nil { // SecurityResult OK
				return false, err
			}
		}
	}
	if auth == authVNC {
		if err := c.authVNC(r, minor); err != nil {
			return false, err
		}
	}
	if err := c.w.Flush(); err != nil {
		return false, err
	}
	shared, err := r.ReadByte()
	if err != nil {
		return false, err
	}
	return shared != 0, nil
}

// reject is the failed SecurityResult (with its reason from 3.8 on); the caller closes.
func (c *client) reject(minor int) {
	_ = c.writeU32(1)
	if minor >= 8 {
		_ = c.writeU32(uint32(len(authFailedReason)))
		_, _ = c.w.WriteString(authFailedReason)
	}
	_ = c.w.Flush()
}

// authVNC is QEMU's start_auth_vnc and protocol_client_auth_vnc: a random challenge, the
// client's DES encryption of it with the password, then the SecurityResult (sent in every
// protocol version for this type). It fails while no password is set or once it expired.
func (c *client) authVNC(r *bufio.Reader, minor int) error {
	var challenge, response [challengeSize]byte
	if _, err := rand.Read(challenge[:]); err != nil {
		return err
	}
	if _, err := c.w.Write(challenge[:]); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	if _, err := io.ReadFull(r, response[:]); err != nil {
		return err
	}
	pw, ok := c.srv.passwordNow()
	if !ok || !bytes.Equal(VNCAuthResponse(pw, challenge[:]), response[:]) {
		c.reject(minor)
		return fmt.Errorf("%w: authentication failed", errProtocol)
	}
	return c.writeU32(0) // SecurityResult OK
}

// VNCAuthResponse is a VNC-authentication answer to challenge: each 8-byte half encrypted
// with DES, the key being the password's first 8 bytes (zero-padded), each byte's bits
// reversed as the RFB protocol has it.
func VNCAuthResponse(password string, challenge []byte) []byte {
	var key [8]byte
	copy(key[:], password)
	for i := range key {
		key[i] = bits.Reverse8(key[i])
	}
	b, _ := des.NewCipher(key[:]) // a key of 8 bytes is always accepted
	out := make([]byte, len(challenge))
	for i := 0; i+8 <= len(challenge); i += 8 {
		b.Encrypt(out[i:i+8], challenge[i:i+8])
	}
	return out
}

func (c *client) writeU32(v uint32) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	_, err := c.w.Write(b[:])
	return err
}

func (c *client) serverInit() error {
	s := c.srv
	b := make([]byte, 24, 24+len(s.name))
	binary.BigEndian.PutUint16(b[0:], uint16(s.w))
	binary.BigEndian.PutUint16(b[2:], uint16(s.h))
	serverFormat.encode(b[4:20])
	binary.BigEndian.PutUint32(b[20:], uint32(len(s.name)))
	b = append(b, s.name...)
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	return c.w.Flush()
}

func (c *client) handle(m message) error {
	log := c.srv.log
	switch m.typ {
	case msgSetPixelFormat:
		pf, ok := m.pf.normalize()
		if !ok {
			return fmt.Errorf("%w: unsupported bits per pixel %d", errProtocol, m.pf.BPP)
		}
		c.pf, c.conv = pf, newConverter(pf)
		if !m.pf.TrueColour {
			if _, err := c.w.Write(pf.colourMap()); err != nil {
				return err
			}
			return c.w.Flush()
		}
	case msgSetEncodings:
		log.Debug().Int("n", len(m.encodings)).Msg("vnc: SetEncodings (Raw is always used)")
	case msgFramebufferUpdReq:
		if m.incremental {
			return nil // the framebuffer never changes: nothing is dirty
		}
		return c.sendUpdate(int(m.x), int(m.y), int(m.w), int(m.h))
	case msgKeyEvent:
		c.srv.key(input.KeysymToNum(m.key), m.down)
	case msgQEMU:
		if m.sub == qemuExtKeyEvent {
			c.srv.key(int(m.keycode), m.down)
		}
	case msgPointerEvent, msgClientCutText:
		log.Debug().Uint8("type", m.typ).Msg("vnc: event dropped")
	}
	return nil
}

// sendUpdate sends the requested area clipped to the framebuffer, widened
// to QEMU's 16-pixel dirty columns, as one Raw rectangle; nothing when the
// area is empty (as QEMU).
func (c *client) sendUpdate(x, y, w, h int) error {
	s := c.srv
	x1, y1 := min(x+w, s.w), min(y+h, s.h)
	if x >= s.w || y >= s.h || x1 <= x || y1 <= y {
		return nil
	}
	x = x / dirtyPixelsPerBit * dirtyPixelsPerBit
	x1 = min((x1+dirtyPixelsPerBit-1)/dirtyPixelsPerBit*dirtyPixelsPerBit, s.w)
	var hdr [16]byte
	hdr[0] = 0 // FramebufferUpdate
	binary.BigEndian.PutUint16(hdr[2:], 1)
	binary.BigEndian.PutUint16(hdr[4:], uint16(x))
	binary.BigEndian.PutUint16(hdr[6:], uint16(y))
	binary.BigEndian.PutUint16(hdr[8:], uint16(x1-x))
	binary.BigEndian.PutUint16(hdr[10:], uint16(y1-y))
	// hdr[12:16] = encoding 0, Raw
	if _, err := c.w.Write(hdr[:]); err != nil {
		return err
	}
	row := make([]byte, 0, (x1-x)*4)
	for yy := y; yy < y1; yy++ {
		off := (yy*s.w + x) * 4
		row = c.conv.convert(row[:0], s.fb[off:off+(x1-x)*4])
		if _, err := c.w.Write(row); err != nil {
			return err
		}
	}
	return c.w.Flush()
}

// admit applies the share policy and connection limit at ClientInit
// (QEMU protocol_client_init) and marks c running.
func (s *Server) admit(c *client, shared bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending--
	c.admitted = true
	if s.closed {
		return false
	}
	switch s.cfg.Share {
	case ShareIgnore:
	case ShareForceShared:
		if !shared {
			return false
		}
	default: // allow-exclusive
		if !shared {
			for o := range s.clients {
				if o != c && o.running {
					_ = o.conn.Close()
				}
			}
		}
	}
	n := 1
	for o := range s.clients {
		if o != c && o.running && o.shared {
			n++
		}
	}
	if shared && s.cfg.Connections > 0 && n > s.cfg.Connections {
		return false
	}
	c.running, c.shared = true, shared
	return true
}

// drop forgets c.
func (s *Server) drop(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.admitted && s.clients[c] {
		s.pending--
	}
	delete(s.clients, c)
}

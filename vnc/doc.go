// Package vnc is tlcvm's VNC server: the -vnc option parser and an RFB
// 3.8 server (RFC 6143) that behaves like QEMU 7.2's ui/vnc.c for a guest
// whose display was never initialised, so that libvirt domains with
// <graphics type='vnc'> run and `virsh vncdisplay` / VNC viewers work.
//
// Parse turns the raw -vnc argument ("127.0.0.1:0,audiodev=audio1") into a
// Config with QEMU's QemuOpts rules and error texts; Listen binds the
// socket(s) as QEMU does (display N is port 5900+N, to= scans upwards, an
// empty host binds "::" and "0.0.0.0"); Serve accepts clients; Update moves
// the listeners elsewhere, clients staying (display-update; Idle is a -vnc none
// server listening nowhere until then); Info feeds query-vnc /
// query-vnc-servers / "info vnc"; Close disconnects everyone.
//
// The handshake, byte for byte as QEMU 7.2 sends it (security None; with password=on
// type 2, VNC authentication, in its place):
//
//	server                                   client
//	"RFB 003.008\n"  ───────────────────────▶
//	                 ◀─────────────────────── "RFB 003.00x\n"  (x = 3,4,5,7,8)
//	   3.3/3.4/3.5:  u32 1 (None)  ─────────▶
//	   3.7/3.8:      u8 1, u8 1    ─────────▶
//	                 ◀─────────────────────── u8 1 (None)
//	   3.8 only:     u32 0 (SecurityResult OK)
//	   type 2:       16-byte challenge ──────▶
//	                 ◀─────────────────────── 16 bytes: DES(challenge), key = password
//	                                          (8 bytes, each byte's bits reversed)
//	                 u32 0 (OK) in every version, or as "bad type" below (no password set,
//	                 expired, or a wrong answer)
//	   bad type:     u32 1 [3.8: u32 22 "Authentication failed\0"], close
//	   bad version:  u32 0, close (other majors/minors); garbage: close
//	                 ◀─────────────────────── u8 shared flag (ClientInit)
//	ServerInit:
//	  ┌────────┬────────┬──────────────────────────────────┬─────────┬──────┐
//	  │ u16 w  │ u16 h  │ PIXEL_FORMAT (16 bytes)          │ u32 len │ name │
//	  │ 640    │ 480    │ 32 24 0 1 255 255 255 16 8 0 pad │ 4       │ QEMU │
//	  └────────┴────────┴──────────────────────────────────┴─────────┴──────┘
//
// Client messages accepted: SetPixelFormat (0; 8/16/32 bpp, colour-map
// requests get QEMU's 3:3:2 map), SetEncodings (2; ignored: Raw is always
// used), FramebufferUpdateRequest (3), KeyEvent (4), PointerEvent (5),
// ClientCutText (6; at most 1 MiB, discarded) and QEMU's 255 (extended key
// event, audio control). Any other type, a bad bpp or an oversized length
// drops that client only.
//
// A non-incremental FramebufferUpdateRequest is answered with one Raw
// rectangle covering the request, clipped to the screen and widened to
// QEMU's 16-pixel columns; an incremental one with nothing, since the
// framebuffer never changes:
//
//	u8 0, u8 pad, u16 1, u16 x, u16 y, u16 w, u16 h, s32 0 (Raw), w*h pixels
//
// The framebuffer is QEMU's placeholder console (package console, which
// screendump saves too): black (all-zero x8r8g8b8
// bytes) with "Guest has not initialized the display (yet)." in QEMU's VGA
// 8x16 font, grey (0xaaaaaa) on opaque black, centred as
// qemu_create_placeholder_surface does. It is byte-identical to what QEMU
// 7.2 sends for a VGA guest that has not started (testdata golden file).
// Keys go to Options.Key as qcodes, as QEMU's do_key_event makes them: a
// KeyEvent's keysym through the en-us keymap (input.KeysymToNum), an extended
// key event's key number as it is; the machine's PS/2 keyboard gets them.
// Pointer events and cut text are read and dropped.
package vnc

// Package console is the guest's graphic console (QEMU's ui/console.c): the surface of
// the display device, which the VNC server sends and screendump saves, so that both show
// the same pixels.
//
// tlcvm's guest never programs its display adapter, so the surface is QEMU's
// placeholder, as qemu_create_placeholder_surface draws it for a display whose guest has
// not set a mode: 640x480, black, with "Guest has not initialized the display (yet)." in
// QEMU's VGA 8x16 font, grey (0xaaaaaa), centred (font.go; byte-identical to QEMU 7.2's
// framebuffer over RFB and to its screendump).
//
// Formats written (screendump):
//
//	PPM  "P6\n640 480\n255\n" then width*height RGB triples, top row first (ppm_save)
//	PNG  8-bit RGB, non-interlaced (png_save); the pixels are the PPM's
package console

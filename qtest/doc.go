// Package qtest is QEMU's qtest protocol (QEMU 7.2 softmmu/qtest.c): the line-based test
// interface that -qtest puts on a chardev, through which a test harness reads and writes
// guest memory and I/O ports, intercepts interrupt lines and, under the qtest accelerator,
// drives the guest clock. It sees the machine through the small Machine interface and
// never imports qmp or hmp.
//
// # Wire format
//
// Requests are lines ending in '\n', split on single spaces (two spaces make an empty
// word). Numbers are C strtoul with base 0: 0x… hex, 0… octal, else decimal, an optional
// sign ("-1" is 2^64-1), no trailing characters. Every request gets one reply line; IRQ
// messages may come before it at any time:
//
//	client                                  server
//	clock_step [NS]                    ──>  OK <virtual clock ns>       (qtest accel only)
//	clock_set NS                       ──>  OK <virtual clock ns>       (qtest accel only)
//	readb|readw|readl|readq ADDR       ──>  OK 0x%016x
//	writeb|writew|writel|writeq ADDR V ──>  OK                          (little-endian)
//	read ADDR SIZE                     ──>  OK 0x<2*SIZE hex digits>
//	write ADDR SIZE 0xHEX              ──>  OK   (short data: zeros;  "ERR invalid argument size")
//	b64read ADDR SIZE                  ──>  OK <base64>
//	b64write ADDR SIZE B64             ──>  OK                          ("ERR invalid argument size")
//	memset ADDR SIZE BYTE              ──>  OK
//	inb|inw|inl PORT                   ──>  OK 0x%04x
//	outb|outw|outl PORT V              ──>  OK
//	irq_intercept_in|_out QOM-PATH     ──>  OK | FAIL Unknown device | FAIL IRQ intercept already enabled
//	set_irq_in QOM-PATH NAME NUM LEVEL ──>  OK
//	endianness                         ──>  OK little
//	module_load TYPE NAME              ──>  FAIL                        (tlcvm loads no modules)
//	anything else                      ──>  FAIL Unknown command 'WORD'
//	                                   <──  IRQ raise N | IRQ lower N   (after irq_intercept_in)
//
// clock_step and clock_set exist only under the qtest accelerator (QEMU's qtest_enabled());
// with -qtest on another accelerator they are unknown commands, as in QEMU. Without
// NS, clock_step advances to the next timer deadline of the virtual clock (none: the clock
// stays).
//
// Where QEMU 7.2 asserts (a missing word, a malformed number, read of size 0, a port above
// 0xffff) and aborts the whole process, the server replies "FAIL assertion failed: (…)"
// with QEMU's assertion text and keeps serving; a size above MaxSize gets
// "FAIL Cannot allocate N bytes".
//
// # Log
//
// The -qtest-log file (stderr without one, nothing with "none") records the session as
// QEMU does, times in seconds since the connection opened:
//
//	[I 0.000000] OPENED
//	[R +0.000213] readb 0x1000
//	[S +0.000230] OK 0x0000000000000000
//	[I +1.250011] CLOSED
package qtest

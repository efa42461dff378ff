// Package chardev implements QEMU 7.2's character-device back ends for
// tlcvm: what -chardev, -serial, -monitor, -mon and -qmp connect to. It
// imports nothing of tlcvm's; the command-line layer turns option groups
// into a Spec (SpecFromKV, ParseLegacy), the composition root opens it
// (Open, or Registry.Open) and hands the Chardev to its front ends: a
// monitor calls Serve, a serial port calls SetInput and Write.
//
// # Back ends
//
//	socket   unix path=, tcp host=/port= (to=, ipv4/ipv6, telnet, tn3270,
//	         nodelay), or an inherited fd= (libvirt's pre-opened listener);
//	         server (listen before Open returns; wait=on blocks for the first
//	         client) or client (connect, reconnect=SECONDS)
//	pty      /dev/ptmx + TIOCSPTLCK/TIOCGPTN, raw mode; prints
//	         "char device redirected to /dev/pts/N (label ID)" on stdout
//	stdio    raw terminal (ISIG kept unless signal=off), restored at Close
//	file     path= (append=on), output only
//	pipe     PATH.in/PATH.out, else PATH read-write
//	serial   a host tty device (legacy "/dev/…")
//	null, vc nothing in, output discarded ("vc" has no display here)
//	ringbuf  output kept in a power-of-two ring (RingbufRead/RingbufWrite)
//	udp      datagrams to host:port from localaddr:localport
//
// Common keys: logfile=/logappend= (a copy of the output), mux=on.
//
// # Peers and front ends
//
// Every back end yields peer connections over time. A server socket accepts
// one client at a time and keeps accepting after it leaves (libvirt
// reconnects after a restart); every other back end has one peer for its
// whole life. Front ends attach to the chardev, not to a peer:
//
//	         back end                         front ends
//	listener ──accept──> peer ──read──> [mux: C-a escapes, focus] ──> monitor (Serve fn)
//	                       ^                                     └──> serial  (SetInput fn)
//	                       └──────────── write <── Write / Conn.Write <───┘
//
// Without mux=on a chardev takes one front end; with mux=on up to four, and
// C-a c moves the input focus (the newest front end starts with it, so with
// -serial mon:stdio the serial port has the keyboard), C-a h prints help,
// C-a x prints "QEMU: Terminated" and calls Options.Quit, C-a b sends a
// break, C-a t toggles output timestamps, C-a C-a sends C-a. Output from every
// front end reaches the peer.
//
// Guest output (Write) never blocks a vCPU for long: without a peer it is
// dropped, as QEMU drops output to a disconnected socket, and a slow peer
// gets at most 64 KiB queued. Monitor output (Conn.Write) waits for the peer.
//
// # query-chardev filenames (QEMU 7.2, checked against the binary)
//
//	disconnected:unix:/p,server=on         unix:/p,server=on        (server, connected)
//	disconnected:unix:/p                   unix:/p                  (client)
//	disconnected:tcp:127.0.0.1:4444,server=on
//	tcp:127.0.0.1:4444,server=on <-> 127.0.0.1:50312                (connected)
//	disconnected:telnet:0.0.0.0:23,server=on  disconnected:tcp::::4452,server=on
//	disconnected:fd:,server=on             (port= without host=: QEMU never listens)
//	pty:/dev/pts/3  stdio  file  null  vc  pipe  serial  udp  ringbuf  mux
//
// An inherited fd= listener reports the socket's own address
// ("disconnected:unix:/var/lib/libvirt/qemu/domain-1-x/monitor.sock,server=on").
// At Close a listening unix socket's path is removed, inherited ones too, as
// QEMU does; inherited descriptors are closed only then.
//
// # Errors
//
// Errors wrap one of the Err* sentinels and read exactly as QEMU 7.2 prints
// them after "qemu-system-x86_64: -chardev …: ", e.g. "Failed to bind socket
// to /x/s: No such file or directory", "Failed to find an available port:
// Address already in use", "Failed to connect to '127.0.0.1:1': Connection
// refused", "chardev: socket: no port given", "'bogus' is not a valid char
// driver". They are *qerror.Error values: qerror.Hint returns QEMU's second
// line where it has one; Silent marks legacy strings QEMU rejects without a
// message of its own.
//
// Logging goes to the zerolog.Logger in Options (default: none).
package chardev

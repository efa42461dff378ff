// Package transport opens the channels a migration stream travels through, in both
// directions, from QEMU's migration URIs. It knows nothing of the stream: Open gives the
// engine an io.WriteCloser, Listen a Source whose Accept gives an io.ReadCloser.
//
// # Schemes
//
//	URI                      outgoing (migrate)                  incoming (-incoming, migrate-incoming)
//	exec:CMD                 /bin/sh -c CMD, stdin fed           /bin/sh -c CMD, stdout read
//	fd:NAME                  getfd's descriptor (Env.LookupFD)   same; read from its current offset
//	fd:N                     refused: N is a name, never taken   inherited descriptor N (libvirt's restore)
//	file:PATH[,offset=N]     created/cut to N, written from N    read from N          (QEMU 8.2's)
//	file:/dev/fdset/N        add-fd's set N (Env.Open)           same
//	tcp:HOST:PORT            connected in the background         listening at Listen; one connection
//	unix:PATH                connected in the background         listening at Listen; one connection
//
// A number after "fd:" is never a descriptor of the process on the way out: QEMU 7.2's
// migrate looks names up in the getfd table only (monitor_get_fd), so "migrate fd:8"
// cannot write into whatever 8 is (an open disk image, libvirt's log, stderr as fd:2).
// Paths of file: go through Env.Open, QEMU's qemu_open, so that "/dev/fdset/N" is a
// duplicate of a descriptor add-fd put in set N with the access mode asked for.
//
// Blanks after "exec:" are kept and harmless ("exec: dd of=a.chk", the seed's form).
// tcp: takes QEMU's inet_parse forms: "HOST:PORT", ":PORT" (every address), "[V6]:PORT",
// and the options ",ipv4[=on|off]", ",ipv6[=on|off]", ",to=N". "tcp:…:0" binds any free
// port; Source.URI and SocketAddresses report it.
//
// # Both ways, more than one channel (duplex.go)
//
// A socket channel carries a return path: ReturnPath on the source reads what Reply on
// the destination writes on the same connection (pipes, files and commands have none:
// "Unable to open return-path for postcopy"); Flush pushes the stream out without closing
// it, since a source waits for its destination's SHUT before it closes. A tcp:/unix:
// destination told to Expect multifd channels sorts what it accepts by the first four
// bytes ("QEVM": Accept, 0x11223344: AcceptChannel); the source opens each channel with
// Open on the same URI.
//
// # Data path
//
//	stream.Writer ──(1 MiB writes)──> pipe (1 MiB, F_SETPIPE_SZ) ──> sh -c CMD
//	     (writes under 64 KiB: bufio 1 MiB) └──> fd / file / socket
//	sh -c CMD ──> pipe (1 MiB) ──(reads ≥ 512 KiB)──> stream.Reader
//	fd / file / socket ──────────┘   (smaller reads: bufio 64 KiB)
//
// Every byte is copied once in user space on each side (into the stream writer's buffer;
// out of the stream reader's into guest RAM): the buffers here serve only small pieces.
//
// # Life of an outgoing channel
//
//	Open ──> opening ──(dial done / synchronous open)──> open ──Write*──> Close ──> closed
//	            │                                          │      (flush, close fd,
//	            └───────────── Abort / Close during Write ─┴──>   wait for the command)
//	                           (drop data, kill -9 the command's process group, reap)
//
// What QEMU 7.2 checks synchronously in its migrate command fails Open (unknown scheme,
// malformed address, fd not found, command not started, file not opened); a connection
// failure is reported by Connected and by Write, as QEMU reports it in query-migrate's
// error-desc. Close after the last Write flushes, closes the descriptor (so a reader such
// as libvirt's sees EOF) and waits for an exec'd command: a non-zero exit is ErrCommand,
// "Command 'dd of=/full/a.chk' exited with status 1: dd: error writing …", and replaces a
// write's "Broken pipe" as the reason. Cancel is Abort: a Close between Writes flushes and
// waits for the command, however long it takes (a Close that finds a Write blocked on
// another goroutine aborts, as a convenience).
//
// # Errors
//
// Texts are QEMU 7.2's where QEMU has one, checked against the real binary:
//
//	Parameter 'uri' expects a valid migration protocol      migrate, unknown scheme
//	unknown migration protocol: X                           incoming, unknown scheme
//	error parsing address 'x'   error parsing IPv6 address '[::1'   error parsing port in address ':'
//	invalid Unix socket address   UNIX socket path '…' is too long
//	File descriptor named 'x' has not been found   Invalid file descriptor number 'x'
//	Failed to connect to '127.0.0.1:1': Connection refused
//	address resolution failed for h:1: Name or service not known
//	Failed to bind socket: Cannot assign requested address   Failed to bind socket to /p: …
//	Unable to write to command: Broken pipe   (socket, file; "Unable to read from …")
//	Unable to open /p: No such file or directory
//	RDMA ERROR: could not create rdma event channel         rdma: (QEMU on a host without RDMA)
//
// Each wraps a sentinel (ErrUnknownProtocol, ErrUnsupported, ErrBadURI, ErrFDNotFound, ErrConnect,
// ErrCommand, ErrWrite, ErrRead, ErrAborted) and the errno, for errors.Is.
//
// # Signals and descriptors
//
// Go ignores SIGPIPE for descriptors other than 1 and 2 (a write fails with EPIPE);
// descriptors 0–2 handed over as fd:N are therefore duplicated, never written directly.
// Taken descriptors are made close-on-exec so that an exec'd command never holds libvirt's
// pipe open; pipes and sockets are made non-blocking so that Abort interrupts a blocked
// Read or Write. Commands run in their own process group: cancel kills the shell and its
// children. QEMU itself ignores SIGPIPE process-wide; tlcvm's composition root may do the
// same (signal.Ignore(syscall.SIGPIPE)), this package does not need it.
package transport

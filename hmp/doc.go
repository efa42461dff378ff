// Package hmp is QEMU 7.2's human monitor (HMP) for tlcvm: the "(qemu) " prompt on a
// -monitor character device, and the text behind QMP's human-monitor-command.
//
// HMP never re-implements an operation. Each command parses its line with QEMU's
// argument grammar (monitor/hmp.c), calls the same QMP command as its twin through an
// Executor, and formats the QMP result as QEMU's hmp-cmds.c does, byte for byte:
//
//	line ──> command name ──> args spec ("fmt:/,addr:l") ──> Args ──> Run(*Call)
//	                                                                   │
//	                            Executor.Execute("query-status", nil) <┘
//	                                                                   │
//	        "VM status: paused (postmigrate)\r\n" <── format result <──┘
//
// Wire formats. Output text uses "\r\n" line ends everywhere, as QEMU's monitor_puts
// turns each "\n" into "\r\n"; human-monitor-command returns the same bytes. A terminal
// session (Serve) is:
//
//	server: QEMU 7.2.22 monitor - type 'help' for more information\r\n
//	server: "(qemu) "               (prompt: no newline)
//	client: i                          (one byte; clients may send any chunking)
//	server: i ESC[K                    (echo: redraw the line, clear to end of line)
//	client: n
//	server: ESC[D in ESC[K             (cursor back over the old line, then redraw)
//	 ...
//	client: \r                         (CR or LF runs the line; CR LF runs it, then an
//	server: \r\n<output>(qemu)          empty line, which prints just another prompt)
//
// Errors. Lines QEMU rejects print its message and, for argument errors,
// `Try "help <cmd>" for more information`; a failed QMP command prints
// "Error: <desc>". Parse and EvalExpr return *ParseError values wrapping ErrEmpty,
// ErrUnknownCommand or ErrArgs.
//
// Extending. Later features add commands with Register (e.g. migrate, info migrate);
// `help` and `info` list exactly the registered commands, sorted as QEMU sorts them,
// so the help text never promises a command tlcvm does not have.
//
// Deviations from QEMU, on purpose: x/i prints QEMU's "Asm output not supported on
// this arch" (there is no disassembler); x and xp print at most 1 MiB of guest memory;
// QEMU messages that QEMU writes to its own stdout/stderr during parsing ("unterminated
// string", QemuOpts errors, the hex-with-suffix deprecation warning) go to the logger;
// `help log` lists no log items.
package hmp

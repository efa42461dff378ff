// Package qmp is tlcvm's QEMU Machine Protocol core: the wire protocol exactly as QEMU 7.2
// speaks it, the command table, the introspection schema generated from that table, events,
// and descriptor passing. It imports nothing else of tlcvm; command handlers live in
// qmp/cmds and elsewhere, and register here.
//
// # Wire protocol
//
// Every message is one JSON object written as QEMU writes it (qobject/json-writer.c: ", " and
// ": " separators, numbers as %.17g, non-ASCII escaped as \uXXXX) followed by "\r\n" (QEMU
// appends "\n" and its monitor turns every "\n" into "\r\n"; in pretty mode that applies to
// every line). Object keys appear in QDict order: by tdb_hash bucket, later insertion first
// within a bucket (see QDictOrder, QAPIOrder).
//
//	server                                             client
//	  | {"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7},
//	  |          "package": "..."}, "capabilities": ["oob"]}}\r\n
//	  |----------------------------------------------------->|
//	  |         {"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}
//	  |<-----------------------------------------------------|   (enable is optional)
//	  | {"return": {}}\r\n                                   |
//	  |----------------------------------------------------->|   command mode from here
//	  |         {"execute": "query-status", "id": ANY}       |
//	  |<-----------------------------------------------------|
//	  | {"timestamp": {"seconds": S, "microseconds": U}, "event": "STOP"}\r\n   (any time)
//	  | {"return": {...}, "id": ANY}\r\n                     |   or {"id": ANY, "error":
//	  |----------------------------------------------------->|       {"class": C, "desc": D}}
//
// Before negotiation only qmp_capabilities runs; every other command, known or not, fails
// with CommandNotFound "Expecting capabilities negotiation with 'qmp_capabilities'", and no
// events are sent. A second qmp_capabilities fails with CommandNotFound "Capabilities
// negotiation is already complete, command ignored". "id" may be any JSON value and is echoed
// verbatim (re-encoded in QEMU's form); a request without "id" gets a reply without one.
// Requests may carry only "execute" (or "exec-oob" once OOB is enabled), "arguments" (an
// object) and "id"; anything else is an error in QEMU's words.
//
// # Input
//
// Input is a byte stream, not lines (StreamParser, a port of QEMU's json-lexer, json-streamer
// and json-parser): values need no separator, may be split over reads or share one, and may
// use single-quoted strings. Invalid input is answered with a GenericError without "id"
// ("JSON parse error, stray 'x'", "... expecting value", ...), after which the lexer skips to
// the next structural character or control byte and the monitor keeps serving. A value may
// hold at most 2 Mi tokens, 64 MiB of token text and 1024 nesting levels (json-streamer.c):
// past a limit the value is dropped with "JSON token size limit exceeded", "JSON token count
// limit exceeded" or "JSON nesting depth limit exceeded", and what follows the offending
// token is read as new input, as QEMU reads it. Parse errors are cut at 1023 bytes
// (parse_error's buffer); "stray" errors are not.
//
// Memory: a value's tokens are kept in 12-byte slots and shared arenas, a long token in
// chunks and then in one buffer that a parsed string uses without a copy, and an error reply
// (whose text may quote megabytes of input) is encoded and written in pieces of 64 KiB. After
// a value or reply of megabytes the connection returns the memory to the system
// (debug.FreeOSMemory) instead of keeping the process at its peak.
//
// # Execution and OOB
//
// Commands from every connection and from Execute (HMP) run one at a time under the
// server's lock (QEMU's big lock); replies return in order per connection. Without OOB a
// connection reads its next request only when the previous one has completed, and its
// reader runs each command itself, as soon as it is parsed, and writes the reply with the
// events the command emitted before it in one write: one goroutine wake-up per round trip.
// The reply is encoded from the handler's Go value while the command still holds the lock
// (no Value tree in between; see jsonWriter.goValue). A NewHeldServer greets its clients at
// once but runs no command until it is opened, as QEMU's monitor I/O thread greets while the
// main loop is still being set up.
// Events emitted outside a command are queued and written by the connection's writer
// goroutine, so an emitter never blocks on a slow client. With OOB enabled up to 8 in-band
// requests queue for a worker goroutine, and a request with "exec-oob" naming an AllowOOB
// command runs at once on the reader and may overtake queued ones. Handlers reach other
// commands with Call.Exec (inline, no deadlock).
//
// # Descriptors
//
// On a *net.UnixConn descriptors arrive with SCM_RIGHTS in the same recvmsg as command bytes
// and are attached to the next command parsed; getfd names one in the connection's Session,
// add-fd puts one in the global FDSets ("/dev/fdset/N"), and descriptors no command claimed
// are closed after it.
//
// # Arguments, replies and schema
//
// Command arguments are decoded strictly into the registered Go struct with QEMU's error
// texts ("Parameter 'a.b' is missing", "Invalid parameter type for 'x', expected: integer",
// ...). Replies are encoded from Go values; the introspection schema (query-qmp-schema) is
// generated on first request from the registered Go types in introspect.py's form: masked
// numeric type names in order of first use, "[T]" arrays, builtins str/int/number/bool/null/
// any, enums, objects with "default": null for optional members, flat unions, alternates.
// See types.go for the Go ↔ QAPI mapping and its struct tags.
//
// # Errors
//
// Only Error ({"class", "desc"}) travels on the wire. A handler returns any error; the
// registry turns it into an Error in one place, ErrorClasses.ToError: an Error in the chain
// passes unchanged, an error wrapping a sentinel of the table gets the table's class,
// anything else is a GenericError with the error's text. The table is built once by the
// composition root (cmds.ErrorClasses) and handed over with Registry.SetErrorClasses;
// nothing registers classes from init.
package qmp

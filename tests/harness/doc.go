// Package harness runs qemu-system-x86_64 binaries (QEMU 7.2 and tlcvm) as
// child processes for end-to-end tests and records what they do, so that two
// binaries can be compared and golden transcripts kept.
//
// Pieces, bottom up:
//
//   - Process (process.go): start a binary under argv[0] "qemu-system-x86_64"
//     (through a symlink, so error prefixes agree), collect stdout/stderr in
//     Streams, wait, signal, and kill it — with its process group and any
//     -daemonize child it Tracks — when the test ends. No process outlives
//     its test.
//   - QMP (qmp.go): a client of a QMP socket. It parses the JSON stream (not
//     lines), keeps member order (Value), sets events aside while waiting for
//     a reply, and passes descriptors with SCM_RIGHTS in the same sendmsg as
//     the command, as libvirt does.
//   - HMP (hmp.go): a client of a human monitor on a socket or on stdio; it
//     reads up to the "(qemu) " prompt. Screen renders readline's redraws.
//   - Script, Run, Transcript (script.go, run.go, render.go): the case
//     language of tests/testdata (documented in package tests), the runner,
//     and the rendering that both the differential and golden tests compare.
//   - Match, Mask, Shape (match.go): structural JSON comparison with
//     placeholders ("<int>", "<string>", "<re:…>" …).
//   - CmdlineCase (cmdline.go): one-line command-line cases.
//   - SeccompFilters (seccomp.go): the seccomp filters a process runs under, read with
//     PTRACE_SECCOMP_GET_FILTER by a re-executed copy of the test binary (a tracer that is
//     also the parent would take the tracee's ptrace stops for its exit).
//
// The wire, as the harness sees it (docs/interop/qmp-spec.txt):
//
//	client                               server
//	  | ---- connect ------------------------> |
//	  | <--- {"QMP": {"version": …, "capabilities": ["oob"]}}\r\n
//	  | ---- {"execute": "qmp_capabilities"} -> |
//	  | <--- {"return": {}}\r\n                 |
//	  | ---- {"execute": X, "id": I} [+ SCM_RIGHTS fds]
//	  | <--- {"timestamp": …, "event": E, "data": …}\r\n   (any time)
//	  | <--- {"return": R, "id": I}\r\n  or  {"id": I, "error": {"class": C, "desc": D}}\r\n
//
// Every wait has a generous timeout (DefaultTimeout, TLCVM_TEST_TIMEOUT) that
// only stops a hung test; nothing asserts on elapsed time.
package harness

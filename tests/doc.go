// Package tests holds tlcvm's end-to-end tests: they start the built binary
// (and QEMU 7.2, the reference) as separate processes and talk to them the
// way libvirt, go-qemu and people do. There is no non-test code here besides
// the harness in tests/harness.
//
// # Binaries
//
// The binary under test is $TLCVM_BIN; when unset, TestMain builds
// ./cmd/qemu-system-x86_64 into a temporary directory, or falls back to
// bin/qemu-system-x86_64. The reference is $QEMU_BIN or
// /usr/bin/qemu-system-x86_64. Tests that need a missing binary skip and say
// why. Running QEMU against itself checks the corpus:
//
//	TLCVM_BIN=/usr/bin/qemu-system-x86_64 go test ./tests/...
//
// # Suites
//
//   - TestDifferential: every case of testdata/qmp/*.txt and
//     testdata/hmp/*.txt runs against QEMU and against tlcvm in the same test;
//     the two rendered transcripts must be equal (and each must meet the
//     case's <- patterns).
//   - TestCmdline: every line of testdata/cmdline.txt is a command line run
//     on both binaries; exit status and stderr (and stdout if asked) must
//     be equal.
//   - TestGolden: testdata/golden/*.txt are transcripts (iotests style)
//     replayed against tlcvm. Regenerate from QEMU with
//     TLCVM_BIN=/usr/bin/qemu-system-x86_64 go test ./tests -run Golden -update
//     and read the diff before committing it.
//   - TestGoQemu: github.com/digitalocean/go-qemu/qmp drives the binary.
//
// # Case files
//
// A case file holds one or more cases (each begins with "case: NAME"; a
// file without one is a single case named after the file). One directive a
// line; # starts a comment:
//
//	args: -machine none -nodefaults -display none   the command line; $DIR is the case's directory
//	qmp: socket | none          the harness adds -qmp unix:$DIR/qmp.sock,server=on,wait=off (default socket)
//	hmp-monitor: stdio | socket where "(qemu)" lines go; socket adds -monitor unix:$DIR/hmp.sock,…
//	scrub: REGEX [=> TEXT]      rewrite volatile text in every rendered line (default <scrubbed>)
//	skip: REASON
//	-> TEXT                     send TEXT (+ "\n"), record one reply; events are set aside
//	-> @fd TEXT                 … passing /dev/null as SCM_RIGHTS in the same sendmsg
//	-> @shape[:N] TEXT          … recording only the reply's shape to depth N (arrays → <array>)
//	send: TEXT                  send TEXT without awaiting a reply; a "Go-quoted" TEXT is sent exactly
//	poll: TEXT                  resend TEXT until the reply matches the <- below; only that reply is recorded
//	recv                        record one reply
//	<- PATTERN                  the message recorded by the step above matches PATTERN
//	hmp: COMMAND LINE           human-monitor-command, record its reply
//	(qemu) COMMAND LINE         type a line at the HMP monitor, record output up to the next prompt
//	wait-event: NAME            record the set-aside and coming events up to NAME
//	events                      record the events set aside so far (those that came before
//	                            the last reply: deterministic when the commands emitted them)
//	signal: TERM                signal the process
//	expect-exit[: STATUS]       read QMP to EOF (recording it), wait for exit, record status and stderr
//	negotiate | reconnect | close
//
// TEXT may use Go templates: {{repeat "[" 1000}}. PATTERN is JSON where these
// strings are placeholders: "<any>", "<int>", "<number>", "<string>",
// "<bool>", "<null>", "<array>", "<object>", "<re:REGEX>". Placeholders
// also mask: the value is rendered as the placeholder in both transcripts,
// so it may legitimately differ between QEMU and tlcvm. Always masked:
// event timestamps (TIMESTAMP), the version package string (PACKAGE), vCPU
// thread ids (THREAD_ID), the case directory (TEST_DIR), pty numbers and
// the sender pid of "terminating on signal".
//
// Events are recorded only where a wait-event or expect-exit consumes them,
// so the order in which events and replies interleave on the wire (a race
// in QEMU too) is not compared.
//
// # Transcripts
//
// A rendered transcript (and a golden file) is the case's lines, each
// followed by what it produced:
//
//	args: -machine none -nodefaults -display none
//	<- {"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": PACKAGE}, "capabilities": ["oob"]}}
//	-> {"execute": "qmp_capabilities"}
//	<- {"return": {}}
//	(qemu) info status
//	| (qemu) info status
//	| VM status: running
//	expect-exit
//	exit: exit 0
//	stderr: qemu-system-x86_64: terminating on signal 15 from pid PID (PROCESS)
//
// JSON is rendered as QEMU prints it (", " and ": ", member order kept,
// non-ASCII as \uXXXX); HMP output as a terminal shows it. The differential
// also compares each HMP chunk's exact bytes (a "raw:" line), so readline's
// redraw sequences must match too.
//
// Environment: TLCVM_BIN, QEMU_BIN, TLCVM_TEST_TIMEOUT (a Go duration; the
// harness's generous give-up time, 60s by default), TLCVM_SHOW=1 with -v to
// log every transcript.
package tests

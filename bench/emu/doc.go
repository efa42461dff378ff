// Package emu starts a QEMU-compatible emulator for one benchmark run,
// times it from exec to QMP greeting, and makes sure it is gone afterwards.
//
// One run:
//
//	harness                               emulator (own process group)
//	mkdir DIR; inotify watch DIR
//	t0 ── fork/exec ────────────────────> BIN ARGS -qmp unix:DIR/qmp.sock,server=on,wait=off
//	                                      … initialises, bind()+listen() DIR/qmp.sock
//	IN_CREATE qmp.sock  <───────────────  (socket file appears)
//	connect (retry while ECONNREFUSED)
//	greeting line read  <───────────────  {"QMP": {…}}\r\n
//	t1: greeting time = t1 - t0
//	… benchmark …
//	{"execute":"quit"} ─────────────────>  exits
//	waitid(WNOWAIT) sees the exit; SIGKILL to the process group (stragglers);
//	reap; close the inotify descriptor; rm -r DIR
//
// Closing an inotify descriptor waits for a kernel SRCU grace period
// (4-15 ms here), so it happens in Stop, never between t0 and t1.
//
// Waiting on inotify rather than polling keeps the harness off the CPU the
// emulator needs (these machines have 2 cores) and adds no polling delay to
// a start-up that should take a few milliseconds.
//
// Processes are started with Setpgid (their own group, killed as a group by
// id, never by name) and Pdeathsig=SIGKILL (they die with the harness).
package emu

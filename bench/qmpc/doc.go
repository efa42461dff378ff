// Package qmpc is the benchmark harness's minimal QMP client: just enough
// of the QEMU Machine Protocol to time a greeting and to run sequential
// commands as fast as the server answers.
//
// QEMU 7.2 writes one JSON object per line, each ending in "\r\n"
// (qapi/qmp-spec: 2.2 Server Greeting, 2.4 Commands Responses, 2.5 Events):
//
//	server: {"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "…"}, "capabilities": ["oob"]}}\r\n
//	client: {"execute": "qmp_capabilities"}
//	server: {"return": {}}\r\n
//	client: {"execute": "query-status"}
//	server: {"return": {"status": "running", "singlestep": false, "running": true}}\r\n
//	server: {"timestamp": {…}, "event": "STOP", "data": {…}}\r\n     (may arrive between any two lines)
//	server: {"error": {"class": "GenericError", "desc": "…"}}\r\n
//
// The client relies on that line framing (as libvirt and go-qemu do), bounds
// every line to MaxMessage bytes, skips events while waiting for a reply, and
// matches replies by order (one command in flight at a time).
package qmpc

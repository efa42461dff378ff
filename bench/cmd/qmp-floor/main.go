// Command qmp-floor is the floor the QMP benchmarks compare tlcvm with: the least a Go
// program must do to look like a QMP monitor to the harness. It takes an emulator's command
// line, uses only "-qmp unix:PATH,…", listens there, sends a greeting to each client and
// answers every line with one fixed reply (query-status's), until a line names "quit".
//
// Start-up to its greeting is the cost of exec'ing a Go binary and opening a socket; its round
// trips are the kernel's and the Go runtime's (netpoller, one goroutine per connection, a
// buffered reader and one write per reply): no emulator can be faster through the same
// client, so tlcvm's figures are stated as a fraction of these, measured in the same run.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
)

const (
	greeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "qmp-floor"}, "capabilities": ["oob"]}}` + "\r\n"
	reply    = `{"return": {"status": "running", "singlestep": false, "running": true}}` + "\r\n"
	bye      = `{"return": {}}` + "\r\n"
)

func main() {
	path := ""
	for i, a := range os.Args {
		if a == "-qmp" && i+1 < len(os.Args) {
			spec, _, _ := strings.Cut(os.Args[i+1], ",")
			path = strings.TrimPrefix(spec, "unix:")
		}
	}
	if path == "" {
		fmt.Fprintln(os.Stderr, "qmp-floor: needs -qmp unix:PATH")
		os.Exit(2)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "qmp-floor:", err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "qmp-floor:", err)
			os.Exit(1)
		}
		go serve(c)
	}
}

func serve(c net.Conn) {
	defer c.Close()
	if _, err := c.Write([]byte(greeting)); err != nil {
		return
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		if bytes.Contains(line, []byte(`"quit"`)) {
			c.Write([]byte(bye))
			os.Exit(0)
		}
		if _, err := c.Write([]byte(reply)); err != nil {
			return
		}
	}
}

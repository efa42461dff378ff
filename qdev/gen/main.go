// Command gen captures the property lines `info qtree` prints for each device type from the
// real QEMU 7.2 binary and writes them as a Go table (zz_generated_qtree.go) into package
// qdev, whose renderer prints them with each device's own values.
//
//	go run ./qdev/gen                   # from the module root
//	go generate ./qdev                  # same, through go:generate
//	go run ./qdev/gen -out /tmp/x -qemu /usr/bin/qemu-system-x86_64
//
// It starts QEMU under -S with the machines and devices of captures (below), asks
// human-monitor-command "info qtree" over -qmp stdio, and keeps, for each type, the lines of
// its first "dev:" block at the device's own indent: gpio, clock, property and sysbus mmio
// lines. What the parent bus prints (a PCI function's class and bar lines, a USB device's
// address line) and the child buses are left out: the renderer makes those from the tree.
// The output is deterministic, so a second run against the same binary gives the same bytes.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// captures are the command lines (after -nodefaults -display none -S -accel tcg) whose
// devices are captured: the pc and q35 boards and the devices people add to them. A type's
// first capture is kept, and what a -device sets there is every device's default: set no
// property a device can go without.
var captures = [][]string{
	{"-machine", "pc", "-m", "128", "-vga", "std",
		"-blockdev", "null-co,node-name=nul0", "-blockdev", "null-co,node-name=nul1",
		"-blockdev", "null-co,node-name=nul2",
		"-device", "virtio-net-pci", "-device", "e1000", "-device", "rtl8139",
		"-device", "e1000e", "-device", "virtio-blk-pci,drive=nul0", "-device", "ide-hd,drive=nul1,bus=ide.0",
		"-device", "ide-cd,bus=ide.1", "-device", "ahci", "-device", "virtio-scsi-pci",
		"-device", "scsi-hd,drive=nul2", "-device", "scsi-cd",
		"-device", "qemu-xhci", "-device", "usb-tablet", "-device", "usb-kbd", "-device", "usb-mouse", "-device", "usb-hub",
		"-device", "piix3-usb-uhci", "-device", "usb-ehci", "-device", "virtio-serial-pci",
		"-device", "virtserialport", "-device", "virtconsole", "-device", "virtio-balloon-pci",
		"-device", "virtio-rng-pci", "-device", "pci-bridge,chassis_nr=1", "-device", "isa-serial",
		"-device", "pvpanic", "-device", "vmgenid", "-chardev", "null,id=par0", "-device", "isa-parallel,chardev=par0", "-device", "floppy", "-device", "lsi53c895a",
		"-device", "virtio-keyboard-pci", "-device", "virtio-mouse-pci", "-device", "virtio-tablet-pci",
		"-device", "i6300esb", "-device", "pci-serial", "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=t",
		"-fsdev", "local,id=fs0,path=/tmp,security_model=none"},
	// The PCIe ports alone where they can be (chassis 0, slot 0 are taken once), so that
	// their chassis lines are the defaults.
	{"-machine", "q35", "-m", "128", "-device", "pcie-root-port"},
	{"-machine", "q35", "-m", "128", "-device", "ioh3420"},
	{"-machine", "q35", "-m", "128", "-device", "pcie-root-port,chassis=1,id=rp1",
		"-device", "x3130-upstream,bus=rp1,id=up", "-device", "xio3130-downstream,bus=up"},
	{"-machine", "q35", "-m", "128",
		"-device", "pcie-root-port,chassis=1,id=rp1", "-device", "ioh3420,chassis=2",
		"-device", "x3130-upstream,bus=rp1,id=up", "-device", "xio3130-downstream,bus=up,chassis=3",
		"-device", "pcie-pci-bridge", "-device", "ich9-usb-ehci1", "-device", "ich9-usb-uhci1",
		"-device", "nec-usb-xhci", "-device", "intel-hda", "-device", "virtio-gpu-pci",
		"-audiodev", "none,id=a0", "-device", "hda-duplex,audiodev=a0", "-device", "hda-micro,audiodev=a0",
		"-device", "hda-output,audiodev=a0", "-device", "ich9-intel-hda", "-device", "virtio-vga"},
}

func main() {
	bin := flag.String("qemu", "/usr/bin/qemu-system-x86_64", "QEMU binary to capture from")
	out := flag.String("out", "", "output directory (default: the qdev package directory)")
	flag.Parse()
	lg := log.New(os.Stderr, "qdev/gen: ", 0)
	dir := *out
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			lg.Fatal(err)
		}
		dir = wd
		if filepath.Base(wd) == "gen" {
			dir = filepath.Dir(wd)
		} else if _, err := os.Stat(filepath.Join(wd, "qdev")); err == nil {
			dir = filepath.Join(wd, "qdev")
		}
	}
	table := map[string][]string{}
	version := ""
	for _, args := range captures {
		text, v, err := qtree(*bin, args)
		if err != nil {
			lg.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		version = v
		for typ, lines := range parse(text) {
			if _, ok := table[typ]; !ok {
				table[typ] = lines
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "zz_generated_qtree.go"), render(table, version), 0o644); err != nil {
		lg.Fatal(err)
	}
}

// qtree runs QEMU with args and returns its info qtree and version.
func qtree(bin string, args []string) (string, string, error) {
	argv := append([]string{"-nodefaults", "-display", "none", "-S", "-accel", "tcg", "-qmp", "stdio"}, args...)
	cmd := exec.Command(bin, argv...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", "", err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return "", "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(outp)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	next := func() (map[string]json.RawMessage, error) {
		for sc.Scan() {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				return nil, err
			}
			if _, ev := m["event"]; !ev {
				return m, nil
			}
		}
		return nil, io.ErrUnexpectedEOF
	}
	greeting, err := next()
	if err != nil {
		return "", "", err
	}
	var g struct {
		Version struct {
			Qemu    struct{ Major, Minor, Micro int }
			Package string
		}
	}
	_ = json.Unmarshal(greeting["QMP"], &g)
	version := fmt.Sprintf("%d.%d.%d %s", g.Version.Qemu.Major, g.Version.Qemu.Minor, g.Version.Qemu.Micro, g.Version.Package)
	for _, c := range []string{`{"execute":"qmp_capabilities"}`,
		`{"execute":"human-monitor-command","arguments":{"command-line":"info qtree"}}`} {
		if _, err := io.WriteString(in, c+"\n"); err != nil {
			return "", "", err
		}
		r, err := next()
		if err != nil {
			return "", "", err
		}
		if e, ok := r["error"]; ok {
			return "", "", fmt.Errorf("%s", e)
		}
		var s string
		if json.Unmarshal(r["return"], &s) == nil {
			return s, version, nil
		}
	}
	return "", "", fmt.Errorf("no reply")
}

// parse splits info qtree into each type's first block of own lines.
func parse(text string) map[string][]string {
	out := map[string][]string{}
	text = strings.ReplaceAll(text, "\r\n", "\n") // the monitor's line ends
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		body := strings.TrimLeft(l, " ")
		if !strings.HasPrefix(body, "dev: ") {
			continue
		}
		typ, _, _ := strings.Cut(strings.TrimPrefix(body, "dev: "), ",")
		indent := len(l) - len(body) + 2
		var own []string
		for j := i + 1; j < len(lines); j++ {
			b := strings.TrimLeft(lines[j], " ")
			if len(lines[j])-len(b) != indent || strings.HasPrefix(b, "bus: ") {
				break
			}
			if strings.HasPrefix(b, "class ") && !strings.HasPrefix(b, "class = ") || strings.HasPrefix(b, "bar ") ||
				(strings.HasPrefix(b, "addr ") && strings.Contains(b, ", port ")) ||
				(strings.HasPrefix(b, "port ") && strings.Contains(b, ", guest ")) {
				continue
			}
			own = append(own, b)
		}
		if _, ok := out[typ]; !ok {
			out[typ] = own
		}
	}
	return out
}

func render(table map[string][]string, version string) []byte {
	var b strings.Builder
	b.WriteString("// Code generated by go run ./qdev/gen; DO NOT EDIT.\n")
	fmt.Fprintf(&b, "// Captured from QEMU %s.\n\npackage qdev\n\n", version)
	b.WriteString("// qtreeLines are the lines info qtree prints of each type's own (gpio, property at its\n")
	b.WriteString("// default, sysbus mmio), in QEMU's order.\n")
	b.WriteString("var qtreeLines = map[string][]string{\n")
	types := make([]string, 0, len(table))
	for t := range table {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(&b, "\t%q: {", t)
		for i, l := range table[t] {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", l)
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	src, err := format.Source([]byte(b.String()))
	if err != nil {
		panic(err) // the generator's own bug
	}
	return src
}

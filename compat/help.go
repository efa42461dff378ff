package compat

import (
	_ "embed"
	"strings"
)

// helpText is `qemu-system-x86_64 -help` of QEMU 7.2.22 after the two
// version lines, generated from the real binary (usage line rewritten at
// render time).
//
//go:embed help.txt
var helpText string

// QEMUVersion is the QEMU release tlcvm reports.
const QEMUVersion = "7.2.22"

// PackageVersion is tlcvm's own version, shown in the package string
// (set with -ldflags "-X tlcvm/compat.PackageVersion=...").
var PackageVersion = "dev"

// VersionText is what -version prints, in the shape of Debian's
// "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-...)".
func VersionText() string {
	return "QEMU emulator version " + QEMUVersion + " (tlcvm " + PackageVersion + ")\n" +
		"Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n"
}

// HelpText is what -help prints; prog is Config.Prog (argv[0]'s basename).
func HelpText(prog string) string {
	body := strings.Replace(helpText, "usage: qemu-system-x86_64 ", "usage: "+prog+" ", 1)
	return VersionText() + body
}

// Package compat is QEMU 7.2's command-line language for tlcvm: it turns
// the argv of qemu-system-x86_64 into a typed Config, or into exactly the
// stderr text and exit status 1 that QEMU 7.2 would produce. It knows no
// machines and imports no other tlcvm package; cmd/ passes what it knows
// of the selected machine type to Check and ApplyDefaults.
//
// # Phases (mirroring softmmu/vl.c qemu_init)
//
//	argv ─► pass 1: every "-opt" must be in the table; HAS_ARG options
//	        need a next element            ("-x: invalid option",
//	                                        "-m: requires an argument")
//	     ─► pass 2: options in order; each argument is parsed by its
//	        parser (QemuOpts, keyval, JSON, plain string); errors carry
//	        the location "-opt arg"; -version/-help/-machine help/
//	        -accel help/-display help/-object help stop here
//	     ─► Parse's tail: checks QEMU makes before creating the machine
//	        (-append without -kernel, -d items, -cpu help, -device help)
//	cmd: select machine type ("unsupported machine type" is cmd's)
//	     ─► ApplyDefaults(limits): default serial/parallel/monitor/net/vga
//	     ─► Check(limits): typed -machine/-m/-smp/-boot values, -rtc, fw_cfg,
//	        chardevs, accelerators, CPU topology, monitors, -serial
//
// Messages are "<prog>: <location>: <message>\n[hint]" where prog is the
// basename of argv[0] (QEMU's error_init); warnings printed before an error
// are part of the error's Msg; warnings of a successful parse are in
// Config.Warnings.
//
// # Argument syntaxes
//
// QemuOpts (util/qemu-option.c), used by -m -name -smp -boot -accel
// -chardev -mon -drive -netdev -net -nic -device -global -rtc -fw_cfg
// -sandbox -msg -overcommit -trace -action:
//
//	[implied-value,]key=value[,key=value]...
//	value "a,,b" means "a,b"; bare "flag" = flag=on (deprecation warning),
//	"noflag" = flag=off; "help"/"?" asks for help; id= is kept apart;
//	booleans on/yes/true/y, off/no/false/n; sizes qemu_strtosz; numbers
//	strtoull base 0 (all three read by package compat/optval, which
//	every other package uses for QEMU's values too).
//
// keyval (util/keyval.c), used by -machine -object -blockdev -audiodev
// -display -compat: like QemuOpts but keys are dotted QAPI names
// ("cache.direct=on"), no flags, values typed by the QAPI visitor.
//
// JSON, when the argument starts with "{": -device -object -blockdev
// -netdev -audiodev -display -compat. QEMU's JSON dialect (also
// 'single-quoted' strings), kept with ordered members (type JSON).
//
// Legacy chardev strings (-serial, -monitor, -qmp, -parallel) are turned
// into -chardev groups by qemu_chr_parse_compat rules, with ids
// compat_monitorN, serialN, parallelN.
//
// Divergence: -localtime (removed from QEMU in 3.x, rejected by 7.2) is
// accepted as -rtc base=localtime so the kvm-88-era manual line parses.
package compat

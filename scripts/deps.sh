#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks use, only when missing.
#   qemu-system-x86   the reference QEMU 7.2 for the differential tests
#   qemu-system-gui   its UI and audio modules: without them QEMU prints "qemu: module
#                     ui-ui-gtk not found, do you want to install qemu-system-gui package?"
#                     on every start, and every differential test compares that noise
#   qemu-utils        qemu-img
#   libvirt-daemon-system, libvirt-clients   tests/libvirt and bench/run-libvirt.sh
#   virtinst          virt-install (tests/libvirt: the virt-install flows) and, through its
#                     python3-libvirt, the libvirt API calls virsh has no twin for (TestFlows)
#   python3           bench helpers
#   makedumpfile      reads back the kdump-compressed dumps (tests/dump_test.go)
#   gdb               opens the ELF dumps as cores (tests/dump_test.go)
#   gcc-multilib      gcc -m32 builds the ATA PIO guest QEMU runs in tests/ataguest_test.go
#                     (installed only when gcc cannot already build a freestanding -m32 program)
set -euo pipefail
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg-query -W -f='${Status}' qemu-system-gui 2>/dev/null | grep -q 'ok installed' || need+=(qemu-system-gui)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v python3 >/dev/null || need+=(python3)
[[ -x /usr/sbin/libvirtd ]] || need+=(libvirt-daemon-system)
command -v virsh >/dev/null || need+=(libvirt-clients)
command -v virt-install >/dev/null || need+=(virtinst)
command -v makedumpfile >/dev/null || need+=(makedumpfile)
command -v gdb >/dev/null || need+=(gdb)
# the freestanding guest needs gcc's 32-bit code generation and linker only, not a 32-bit libc
printf 'void _start(void){}\n' | gcc -m32 -ffreestanding -nostdlib -static -x c - -o /dev/null 2>/dev/null || need+=(gcc-multilib)
if ((${#need[@]})); then
	if [[ $(id -u) -ne 0 ]]; then echo "deps: need root to install ${need[*]}" >&2; exit 1; fi
	echo "deps: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The reference QEMU must start without set-up noise (a module it cannot find).
if noise=$(/usr/bin/qemu-system-x86_64 -chardev null 2>&1 | grep -E '^[^:]+: module .* not found'); then
	echo "deps: the reference QEMU is incomplete; it prints:" >&2
	echo "$noise" >&2
	exit 1
fi

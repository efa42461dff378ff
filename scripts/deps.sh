#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks use, only when missing.
# libvirt-daemon-system/libvirt-clients drive tlcvm in tests/libvirt.
# qemu-system-x86 is the reference QEMU 7.2 for the differential tests; qemu-utils gives qemu-img.
set -euo pipefail
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v python3 >/dev/null || need+=(python3)
# libvirt for the end-to-end suite tests/libvirt and bench/run-libvirt.sh
[[ -x /usr/sbin/libvirtd ]] || need+=(libvirt-daemon-system)
command -v virsh >/dev/null || need+=(libvirt-clients)
if ((${#need[@]})); then
	if [[ $(id -u) -ne 0 ]]; then echo "deps: need root to install ${need[*]}" >&2; exit 1; fi
	echo "deps: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

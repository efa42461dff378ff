#!/usr/bin/env bash
# bench/run-libvirt.sh — libvirt driving tlcvm beside QEMU 7.2, in one run:
# probe of a new binary, virsh start, save, restore, destroy (medians, ratios).
#
#   bench/run-libvirt.sh [libvirt-bench flags…]      e.g. bench/run-libvirt.sh -n 9
#
# Environment: TLCVM_BIN (default bin/qemu-system-x86_64), BENCH_WORK (default
# /tmp/tlcvm-bench), BENCH_DOC (default BENCHMARKS.md), BENCH_WRITE (1: rewrite the
# "libvirt" section; 0: print only). Needs root; starts virtlogd/libvirtd with
# scripts/libvirt-setup.sh when they are not running and stops only what it started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ $(id -u) -ne 0 ]]; then
	echo "bench: libvirt part skipped: needs root (libvirtd qemu:///system)" >&2
	exit 0
fi
WORK=${BENCH_WORK:-/tmp/tlcvm-bench}
mkdir -p "$WORK"
INVOCATION="bench/run-libvirt.sh${*:+ $*}"
TLCVM_BIN=${TLCVM_BIN:-$ROOT/bin/qemu-system-x86_64}
[[ -x $TLCVM_BIN ]] || { echo "bench: no tlcvm binary at $TLCVM_BIN (make build)" >&2; exit 1; }
export STATE=$WORK/libvirt-setup.state
rm -f "$STATE"
scripts/libvirt-setup.sh start >/dev/null
trap 'scripts/libvirt-setup.sh stop >/dev/null' EXIT
go build -o "$WORK/libvirt-bench" ./bench/libvirt-bench
# A private copy: others may rebuild bin/ during the run.
cp "$TLCVM_BIN" "$WORK/tlcvm-libvirt/qemu-system-x86_64" 2>/dev/null || {
	mkdir -p "$WORK/tlcvm-libvirt"; cp "$TLCVM_BIN" "$WORK/tlcvm-libvirt/qemu-system-x86_64"; }
DOC_ARGS=()
[[ ${BENCH_WRITE:-1} == 1 ]] && DOC_ARGS=(-doc "${BENCH_DOC:-$ROOT/BENCHMARKS.md}")
"$WORK/libvirt-bench" -tlcvm "$WORK/tlcvm-libvirt/qemu-system-x86_64" \
	-json "$WORK/libvirt-$(date -u +%Y%m%dT%H%M%SZ).jsonl" -invocation "$INVOCATION" "${DOC_ARGS[@]}" "$@"

#!/usr/bin/env bash
# bench/run-libvirt-migrate.sh — `virsh migrate --live` between two libvirt hosts
# (scripts/two-hosts.sh), tlcvm beside QEMU 7.2 in one run: the wall time of the virsh
# command for the same domain, its disk shared (--unsafe) and then not shared
# (--copy-storage-all), medians, ratio (issue 12's target: ≤ 1/2 of QEMU's), and where
# the time goes (phases read from both hosts' libvirtd debug logs).
#
#   bench/run-libvirt-migrate.sh [libvirt-bench flags…]      e.g. bench/run-libvirt-migrate.sh -n 5
#
# Environment: TLCVM_BIN (default bin/qemu-system-x86_64), BENCH_WORK (default
# /tmp/tlcvm-bench), BENCH_DOC (default BENCHMARKS.md), BENCH_WRITE (1: rewrite the
# "libvirt-migrate" section; 0: print only). Needs root; starts the two hosts unless they
# are up (and then stops them again).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ $(id -u) -ne 0 ]]; then
	echo "bench: libvirt migration part skipped: needs root (two libvirt hosts)" >&2
	exit 0
fi
WORK=${BENCH_WORK:-/tmp/tlcvm-bench}
mkdir -p "$WORK"
INVOCATION="bench/run-libvirt-migrate.sh${*:+ $*}"
# A bed of its own is part of how the figures were taken: name it.
for v in TWOHOSTS_NS TWOHOSTS_SHARED TWOHOSTS_NET TWOHOSTS_DIR; do
	if [[ -n ${!v:-} ]]; then INVOCATION="$v=${!v} $INVOCATION"; fi
done
TLCVM_BIN=${TLCVM_BIN:-$ROOT/bin/qemu-system-x86_64}
[[ -x $TLCVM_BIN ]] || { echo "bench: no tlcvm binary at $TLCVM_BIN (make build)" >&2; exit 1; }
go build -o "$WORK/libvirt-bench" ./bench/libvirt-bench
# A private copy: others may rebuild bin/ during the run.
mkdir -p "$WORK/tlcvm-libvirt-migrate"
cp "$TLCVM_BIN" "$WORK/tlcvm-libvirt-migrate/qemu-system-x86_64"
DOC_ARGS=()
[[ ${BENCH_WRITE:-1} == 1 ]] && DOC_ARGS=(-doc "${BENCH_DOC:-$ROOT/BENCHMARKS.md}")
exec "$WORK/libvirt-bench" -migrate "$ROOT/scripts/two-hosts.sh" -n 3 \
	-tlcvm "$WORK/tlcvm-libvirt-migrate/qemu-system-x86_64" \
	-json "$WORK/libvirt-migrate-$(date -u +%Y%m%dT%H%M%SZ).jsonl" -invocation "$INVOCATION" "${DOC_ARGS[@]}" "$@"

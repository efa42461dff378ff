#!/usr/bin/env bash
# bench/run.sh — the foundation benchmarks: tlcvm beside QEMU 7.2, in one run.
#
#   bench/run.sh [tlcvm-bench flags…]          e.g. bench/run.sh -n 40 -only startup
#
# Environment:
#   TLCVM_BIN    tlcvm binary (default: bin/qemu-system-x86_64; else built from
#                ./cmd/qemu-system-x86_64 into BENCH_WORK; else QEMU as a labelled stand-in)
#   QEMU_BIN     the peer (default /usr/bin/qemu-system-x86_64)
#   BENCH_WORK   scratch directory: harness binary, JSON lines (default /tmp/tlcvm-bench)
#   BENCH_DOC    document to update (default BENCHMARKS.md at the repository root)
#   BENCH_WRITE  1 (default) rewrites the "foundation" section of BENCH_DOC; 0 only prints
#
# Prints the Markdown table on stdout, progress on stderr; raw numbers go to
# BENCH_WORK/foundation-<UTC time>.jsonl. Every emulator it starts is in its own
# process group and is reaped (or SIGKILLed by group id) before the next starts;
# ^C reaches the harness directly (same foreground process group).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run.sh "$@"

echo "bench: building the harness" >&2
go build -o "$WORK/tlcvm-bench" ./bench/cmd/tlcvm-bench

if [ -z "${TLCVM_BIN:-}" ]; then
  if [ -x bin/qemu-system-x86_64 ]; then
    TLCVM_BIN=$ROOT/bin/qemu-system-x86_64
  elif [ -d cmd/qemu-system-x86_64 ]; then
    echo "bench: building tlcvm from ./cmd/qemu-system-x86_64 (run 'make build' to use bin/)" >&2
    go build -o "$WORK/qemu-system-x86_64" ./cmd/qemu-system-x86_64
    TLCVM_BIN=$WORK/qemu-system-x86_64
  else
    TLCVM_BIN=${QEMU_BIN:-/usr/bin/qemu-system-x86_64}
    echo "bench: no tlcvm binary yet: QEMU stands in for tlcvm (the table says so)" >&2
  fi
fi
export TLCVM_BIN

JSON=$(bench_json foundation)
bench_doc_args
"$WORK/tlcvm-bench" -json "$JSON" "${DOC_ARGS[@]}" "$@"
# The libvirt part (bench/run-libvirt.sh: probe, virsh start/save/restore/destroy beside
# QEMU; needs root and libvirt, skips itself otherwise). BENCH_LIBVIRT=0 leaves it out.
if [ "${BENCH_LIBVIRT:-1}" = 1 ]; then
  "$ROOT/bench/run-libvirt.sh"
fi
# The QMP part (bench/run-qmp.sh: round trips and start-up beside the floor and QEMU, memory
# on huge QMP lines) and the density part (bench/run-density.sh: hundreds of VMs).
# BENCH_QMP=0 and BENCH_DENSITY=0 leave them out.
if [ "${BENCH_QMP:-1}" = 1 ]; then
  "$ROOT/bench/run-qmp.sh"
fi
if [ "${BENCH_DENSITY:-1}" = 1 ]; then
  "$ROOT/bench/run-density.sh"
fi
# The block-job part (bench/run-blockjobs.sh: mirror, commit, stream, backups, NBD reads
# beside QEMU, dd and qemu-nbd; ~8 GB of images). BENCH_BLOCKJOBS=0 leaves it out.
if [ "${BENCH_BLOCKJOBS:-1}" = 1 ]; then
  "$ROOT/bench/run-blockjobs.sh"
fi
# The file-checkpoint part (bench/run-filecp.sh: mapped-ram checkpoints to file:, the
# incremental second checkpoint, restores by mapping; ~3 min, files up to ~6 GB).
# BENCH_FILECP=0 leaves it out.
if [ "${BENCH_FILECP:-1}" = 1 ]; then
  "$ROOT/bench/run-filecp.sh"
fi
# The memory-dump part (bench/run-dump.sh: dump-guest-memory of a 4 GiB guest, ELF and
# kdump-zlib, beside QEMU; ~1 min, files up to 4 GiB) and the dirty-rate part
# (bench/run-dirtyrate.sh: calc-dirty-rate against the configured rate; ~8 min).
# BENCH_DUMP=0 and BENCH_DIRTYRATE=0 leave them out.
if [ "${BENCH_DUMP:-1}" = 1 ]; then
  "$ROOT/bench/run-dump.sh"
fi
if [ "${BENCH_DIRTYRATE:-1}" = 1 ]; then
  "$ROOT/bench/run-dirtyrate.sh"
fi
# The migration part (bench/run-migrate.sh: live migration over a veth pair between two
# network namespaces beside QEMU, the link's own throughput; ~6 min, needs root).
# BENCH_MIGRATE=0 leaves it out.
if [ "${BENCH_MIGRATE:-1}" = 1 ]; then
  "$ROOT/bench/run-migrate.sh"
fi

#!/usr/bin/env bash
# bench/run-dump.sh — the memory-dump benchmark of issue 11 (~1 min): dump-guest-memory of a
# 4 GiB guest that wrote 64 MiB, ELF and kdump-zlib, tlcvm beside QEMU 7.2 (the peer kit's
# dirty.elf under TCG) in one run: time, apparent size and blocks on disk.
#
#   bench/run-dump.sh [tlcvm-bench dump flags…]          e.g. bench/run-dump.sh -reps 5
#
# Environment:
#   TLCVM_BIN    tlcvm binary (default: bin/qemu-system-x86_64, else built into BENCH_WORK)
#   QEMU_BIN     the peer (default /usr/bin/qemu-system-x86_64)
#   KIT          the peer kit (default /work/shared/bench): its guest/ is built into BENCH_WORK
#                (without gcc -m32 the QEMU side is skipped)
#   BENCH_WORK   scratch: harness, JSON lines, dumps under dump/ (default /tmp/tlcvm-bench)
#   BENCH_DOC    document to update (default BENCHMARKS.md at the repository root)
#   BENCH_WRITE  1 (default) rewrites the "dump" section of BENCH_DOC; 0 only prints
#
# QEMU's ELF dumps are as large as its RAM (4 GiB): each dump is deleted after use; the
# harness refuses to start with less than -min-free GiB free (default 12).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run-dump.sh "$@"
mkdir -p "$WORK/dump"

echo "bench: building the harness and the QEMU guest (dirty.elf)" >&2
go build -o "$WORK/tlcvm-bench" ./bench/cmd/tlcvm-bench
bench_dirty_elf

bench_tlcvm

JSON=$(bench_json dump)
bench_doc_args
exec "$WORK/tlcvm-bench" dump -image-dir "$WORK/dump" -json "$JSON" "${DOC_ARGS[@]}" "$@"

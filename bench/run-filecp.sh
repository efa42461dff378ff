#!/usr/bin/env bash
# bench/run-filecp.sh — the file-checkpoint benchmarks of issue 6, in one run (~3 min):
# dd's write bandwidth; a full mapped-ram checkpoint to file: of a 4 GiB guest (and the
# streamed one, and QEMU 7.2's exec:cat of its own guest); the incremental second x-tlc
# checkpoint to the same file; restores by mapping (4 GiB, 16 GiB, before-run) beside
# QEMU's -incoming exec:cat; the guest's page-write rate after a mapped restore.
#
#   bench/run-filecp.sh [tlcvm-bench filecp flags…]     e.g. bench/run-filecp.sh -big-fill 4G
#
# Environment:
#   TLCVM_BIN    tlcvm binary (default: bin/qemu-system-x86_64, else built into BENCH_WORK)
#   QEMU_BIN     the peer (default /usr/bin/qemu-system-x86_64)
#   KIT          the peer kit (default /work/shared/bench): its guest/ is built into BENCH_WORK
#                (without gcc -m32 the QEMU rows are skipped)
#   BENCH_WORK   scratch: harness, JSON lines, files under ckpt/ (default /tmp/tlcvm-bench)
#   BENCH_DOC    document to update (default BENCHMARKS.md at the repository root)
#   BENCH_WRITE  1 (default) rewrites the "filecp" section of BENCH_DOC; 0 only prints
#
# Files are up to ~6 GB each and deleted after use; the harness refuses to start with less
# than -min-free GiB free (default 30).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run-filecp.sh "$@"
mkdir -p "$WORK/ckpt"

echo "bench: building the harness and the QEMU guest (dirty.elf)" >&2
go build -o "$WORK/tlcvm-bench" ./bench/cmd/tlcvm-bench
bench_dirty_elf

bench_tlcvm
df -h "$WORK/ckpt" >&2

JSON=$(bench_json filecp)
bench_doc_args
exec "$WORK/tlcvm-bench" filecp -image-dir "$WORK/ckpt" -json "$JSON" "${DOC_ARGS[@]}" "$@"

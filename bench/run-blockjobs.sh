#!/usr/bin/env bash
# bench/run-blockjobs.sh — the block-job benchmarks of issue 13, tlcvm beside QEMU 7.2 on the
# same images: mirror, commit and stream of a 4 GiB qcow2 holding 1 GiB (beside dd of the
# same bytes), a full then an incremental backup after 64 MiB of writes, NBD reads of a
# 1 GiB export (beside qemu-nbd).
#
#   bench/run-blockjobs.sh [tlcvm-bench blockjobs flags…]     e.g. bench/run-blockjobs.sh -n 1
#
# Environment:
#   TLCVM_BIN    tlcvm binary (default: bin/qemu-system-x86_64, else built into BENCH_WORK)
#   QEMU_BIN     the peer (default /usr/bin/qemu-system-x86_64)
#   BENCH_WORK   scratch: harness, JSON lines, images under blockjobs/ (default /tmp/tlcvm-bench)
#   BENCH_DOC    document to update (default BENCHMARKS.md at the repository root)
#   BENCH_WRITE  1 (default) rewrites the "blockjobs" section of BENCH_DOC; 0 only prints
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run-blockjobs.sh "$@"

echo "bench: building the harness" >&2
go build -o "$WORK/tlcvm-bench" ./bench/cmd/tlcvm-bench
bench_tlcvm
JSON=$(bench_json blockjobs)
bench_doc_args
exec "$WORK/tlcvm-bench" blockjobs -image-dir "$WORK/blockjobs" -json "$JSON" "${DOC_ARGS[@]}" "$@"

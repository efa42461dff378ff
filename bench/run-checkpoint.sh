#!/usr/bin/env bash
# bench/run-checkpoint.sh — the checkpoint benchmarks of issue 3: tlcvm (QEMU mode and x-tlc)
# beside QEMU 7.2 in one run, plus the machine's limits (memory copy, pipe into a file,
# file read back through a pipe).
#
#   bench/run-checkpoint.sh [tlcvm-bench checkpoint flags…]
#   e.g. bench/run-checkpoint.sh -mems 1G -scenarios idle,ws64 -reps 1
#
# Environment:
#   TLCVM_BIN    tlcvm binary (default: bin/qemu-system-x86_64, else built into BENCH_WORK)
#   QEMU_BIN     the peer (default /usr/bin/qemu-system-x86_64)
#   KIT          the peer kit (default /work/shared/bench): its guest/ is built into BENCH_WORK
#   BENCH_WORK   scratch: harness, dirty.elf, JSON lines, streams under ckpt/ (default /tmp/tlcvm-bench)
#   BENCH_DOC    document to update (default BENCHMARKS.md at the repository root)
#   BENCH_WRITE  1 (default) rewrites the "checkpoint" section of BENCH_DOC; 0 only prints
#
# Streams can be GBs: each is deleted after its try; the harness refuses to start with
# less than -min-free GiB free (default 20). QEMU tries are capped (-qemu-cap, 60 s).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run-checkpoint.sh "$@"
KIT=${KIT:-/work/shared/bench}
mkdir -p "$WORK/guest" "$WORK/ckpt"

echo "bench: building the harness and the QEMU guest (dirty.elf)" >&2
go build -o "$WORK/tlcvm-bench" ./bench/cmd/tlcvm-bench
if ! OUT_ELF="$WORK/guest/dirty.elf" "$KIT/guest/build.sh"; then
  echo "bench: building dirty.elf failed (needs gcc -m32: apt-get install gcc-multilib)" >&2
  exit 1
fi

bench_tlcvm
export DIRTY_ELF=$WORK/guest/dirty.elf
df -h "$WORK/ckpt" >&2

JSON=$(bench_json checkpoint)
bench_doc_args
exec "$WORK/tlcvm-bench" checkpoint -image-dir "$WORK/ckpt" -json "$JSON" "${DOC_ARGS[@]}" "$@"

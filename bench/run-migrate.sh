#!/usr/bin/env bash
# bench/run-migrate.sh — the network migration benchmark of issue 12 (~6 min): live migration
# of 1 GiB and 4 GiB guests (idle, 64 MiB hot, 512 MiB hot; postcopy for 512 MiB hot) over a
# veth pair between two network namespaces the run creates and deletes (10.213.77.0/30),
# tlcvm beside QEMU 7.2 running the peer kit's guest under TCG, interleaved, with the link's
# own TCP throughput measured in the same run. Needs root (ip netns).
#
#   bench/run-migrate.sh [tlcvm-bench migrate flags…]   e.g. bench/run-migrate.sh -mems 1G -reps 2
#
# Environment (bench/lib.sh): TLCVM_BIN, QEMU_BIN, BENCH_WORK, BENCH_DOC, BENCH_WRITE
# ("migrate" section), KIT (the peer kit, for dirty.elf).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run-migrate.sh "$@"

if [ "$(id -u)" != 0 ]; then
  echo "bench: the migration benchmark needs root (ip netns): skipped" >&2
  exit 0
fi
echo "bench: building the harness" >&2
go build -o "$WORK/tlcvm-bench" ./bench/cmd/tlcvm-bench
bench_tlcvm
bench_dirty_elf
JSON=$(bench_json migrate)
bench_doc_args
exec "$WORK/tlcvm-bench" migrate -json "$JSON" "${DOC_ARGS[@]}" "$@"

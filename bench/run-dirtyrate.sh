#!/usr/bin/env bash
# bench/run-dirtyrate.sh — the dirty-rate benchmark of issue 11 (~8 min): calc-dirty-rate
# against the workload's configured rate at 1, 10, 100 and 1,000 MiB/s, in page-sampling,
# dirty-bitmap and dirty-ring modes, beside the rate the workload's own counters show.
# tlcvm only (QEMU 7.2 has no guest with a configured rate; under TCG it crashes on
# dirty-bitmap and dirty-ring).
#
#   bench/run-dirtyrate.sh [tlcvm-bench dirtyrate flags…]   e.g. bench/run-dirtyrate.sh -rates 10,100 -reps 5
#
# Environment (bench/lib.sh): TLCVM_BIN, QEMU_BIN (recorded only), BENCH_WORK, BENCH_DOC,
# BENCH_WRITE ("dirtyrate" section).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run-dirtyrate.sh "$@"

echo "bench: building the harness" >&2
go build -o "$WORK/tlcvm-bench" ./bench/cmd/tlcvm-bench
bench_tlcvm
JSON=$(bench_json dirtyrate)
bench_doc_args
exec "$WORK/tlcvm-bench" dirtyrate -json "$JSON" "${DOC_ARGS[@]}" "$@"

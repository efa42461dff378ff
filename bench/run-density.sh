#!/usr/bin/env bash
# bench/run-density.sh — hundreds of VMs on this host (issue 10): 500 tlcvm started with -S,
# 200 running the default workload and 200 running with idle guests, each with its QMP
# connection open, beside QEMU 7.2 up to what fits (it stops starting VMs below -min-avail MiB
# of MemAvailable). ~12 minutes; the running phase keeps both CPUs busy for about a minute.
#
#   bench/run-density.sh [tlcvm-bench density flags…]   e.g. bench/run-density.sh -running 100
#
# Environment (bench/lib.sh): TLCVM_BIN, QEMU_BIN, BENCH_WORK, BENCH_DOC, BENCH_WRITE
# ("density" section).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run-density.sh "$@"

echo "bench: building the harness" >&2
go build -o "$WORK/tlcvm-bench" ./bench/cmd/tlcvm-bench
bench_tlcvm
JSON=$(bench_json density)
bench_doc_args
exec "$WORK/tlcvm-bench" density -json "$JSON" "${DOC_ARGS[@]}" "$@"

#!/usr/bin/env bash
# bench/run-qmp.sh — the QMP benchmarks of issue 10, in one run: round trips and start-up to
# the greeting beside the floor (bench/cmd/qmp-floor) and QEMU 7.2, interleaved; memory on
# single huge QMP lines beside QEMU 7.2 (QEMU reads its monitor a byte per main-loop turn:
# that part takes 15 minutes or more; BENCH_QMP_MEMORY=0 leaves it out).
#
#   bench/run-qmp.sh [tlcvm-bench qmp flags…]         e.g. bench/run-qmp.sh -only rt -rt-reps 9
#
# Environment (bench/lib.sh): TLCVM_BIN, QEMU_BIN, BENCH_WORK, BENCH_DOC, BENCH_WRITE
# (1, the default, rewrites the "qmp" section of BENCH_DOC; 0 only prints).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run-qmp.sh "$@"

echo "bench: building the harness and the floor" >&2
go build -o "$WORK/tlcvm-bench" ./bench/cmd/tlcvm-bench
go build -o "$WORK/qmp-floor" ./bench/cmd/qmp-floor
bench_tlcvm
export QMP_FLOOR=$WORK/qmp-floor
ONLY=()
if [ "${BENCH_QMP_MEMORY:-1}" = 0 ]; then
  ONLY=(-only rt,startup)
fi
JSON=$(bench_json qmp)
bench_doc_args
exec "$WORK/tlcvm-bench" qmp -json "$JSON" "${DOC_ARGS[@]}" "${ONLY[@]}" "$@"

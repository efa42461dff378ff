# bench/lib.sh — what the bench/run-*.sh scripts share. Source it with the script's name and
# arguments:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run-qmp.sh "$@"
#
# It sets ROOT (and changes there), WORK (BENCH_WORK, default /tmp/tlcvm-bench; created),
# INVOCATION (exported as BENCH_INVOCATION), and defines:
#
#   bench_tlcvm      sets and exports TLCVM_BIN: as given, else bin/qemu-system-x86_64, else
#                    ./cmd/qemu-system-x86_64 built into WORK
#   bench_dirty_elf  builds the peer kit's QEMU guest (KIT, default /work/shared/bench) into
#                    WORK/guest/dirty.elf and exports DIRTY_ELF; without gcc -m32 it warns
#                    that the QEMU side is skipped and removes a stale dirty.elf
#   bench_json KIND  prints the path of this run's raw measurements, WORK/KIND-<UTC time>.jsonl
#   bench_doc_args   sets the array DOC_ARGS: -doc BENCH_DOC (default BENCHMARKS.md at the
#                    root) unless BENCH_WRITE=0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WORK=${BENCH_WORK:-/tmp/tlcvm-bench}
mkdir -p "$WORK"
_bench_script=$1
shift
INVOCATION="bench/$_bench_script${*:+ $*}"
[ -n "${TLCVM_BIN:-}" ] && INVOCATION="TLCVM_BIN=$TLCVM_BIN $INVOCATION"
export BENCH_INVOCATION=$INVOCATION

bench_tlcvm() {
  if [ -z "${TLCVM_BIN:-}" ]; then
    if [ -x bin/qemu-system-x86_64 ]; then
      TLCVM_BIN=$ROOT/bin/qemu-system-x86_64
    else
      echo "bench: building tlcvm from ./cmd/qemu-system-x86_64" >&2
      go build -o "$WORK/qemu-system-x86_64" ./cmd/qemu-system-x86_64
      TLCVM_BIN=$WORK/qemu-system-x86_64
    fi
  fi
  export TLCVM_BIN
}

bench_json() {
  local json
  json=$WORK/$1-$(date -u +%Y%m%dT%H%M%SZ).jsonl
  echo "bench: raw measurements -> $json" >&2
  echo "$json"
}

bench_doc_args() {
  DOC_ARGS=()
  if [ "${BENCH_WRITE:-1}" = 1 ]; then
    DOC_ARGS=(-doc "${BENCH_DOC:-$ROOT/BENCHMARKS.md}")
  fi
}

bench_dirty_elf() {
  mkdir -p "$WORK/guest"
  if ! OUT_ELF="$WORK/guest/dirty.elf" "${KIT:-/work/shared/bench}/guest/build.sh" >&2; then
    echo "bench: building dirty.elf failed (needs gcc -m32): the QEMU side is skipped" >&2
    rm -f "$WORK/guest/dirty.elf"
  fi
  export DIRTY_ELF=$WORK/guest/dirty.elf
}

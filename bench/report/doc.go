// Package report turns benchmark figures into the Markdown table that
// bench/run.sh prints and BENCHMARKS.md keeps, and rewrites one generated
// section of BENCHMARKS.md in place.
//
// The table has one row per metric:
//
//	| metric | tlcvm | QEMU 7.2 | ratio | target | met? |
//	|---|---|---|---|---|---|
//	| start → QMP greeting, -machine none, median (ms) | 3.1 | 71.0 | 0.044 (1/22.9) | ≤ 1/15 of QEMU | yes |
//
// ratio is always tlcvm ÷ QEMU. A target is one of: the ratio at most x
// (times: lower is better), the ratio at least x (rates: higher is better),
// or tlcvm's own value at most x (absolute budgets such as memory).
//
// Generated sections in BENCHMARKS.md are delimited by HTML comments, which
// Markdown does not render:
//
//	<!-- bench:foundation:begin -->
//	…replaced wholesale by every run that writes the document…
//	<!-- bench:foundation:end -->
//
// Everything outside the markers is left byte for byte as it was.
package report

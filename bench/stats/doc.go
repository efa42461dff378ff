// Package stats summarises benchmark samples: median, percentiles, mean,
// spread, and the ratio of two measurements.
//
// Percentiles use linear interpolation between closest ranks (the "type 7"
// estimator, numpy's default): for n sorted samples x[0..n-1] and p in
// [0,100], h = (n-1)·p/100 and P(p) = x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1]-x[⌊h⌋]).
// So the median of an even count is the mean of the two middle samples, and
// p90 of 1..10 is 9.1.
//
// Nothing here reads a clock: the harness measures, this package only counts.
package stats

package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Sentinel errors; functions wrap them with %w.
var (
	// ErrEmpty means there were no samples to summarise.
	ErrEmpty = errors.New("stats: no samples")
	// ErrNotFinite means a sample was NaN or ±Inf.
	ErrNotFinite = errors.New("stats: sample is not finite")
	// ErrPercentile means p was outside [0,100].
	ErrPercentile = errors.New("stats: percentile outside [0,100]")
	// ErrZeroBase means a ratio's denominator was zero.
	ErrZeroBase = errors.New("stats: ratio with zero denominator")
)

// Summary describes a set of samples. The JSON names are the ones the
// harness writes in its JSON lines.
type Summary struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
	Stddev float64 `json:"stddev"` // sample standard deviation (n-1); 0 for one sample
}

// Summarize returns the Summary of samples. It does not modify samples.
func Summarize(samples []float64) (Summary, error) {
	s, err := sorted(samples)
	if err != nil {
		return Summary{}, err
	}
	var sum float64
	for _, v := range s {
		sum += v
	}
	mean := sum / float64(len(s))
	var ss float64
	for _, v := range s {
		ss += (v - mean) * (v - mean)
	}
	sd := 0.0
	if len(s) > 1 {
		sd = math.Sqrt(ss / float64(len(s)-1))
	}
	return Summary{
		N:      len(s),
		Min:    s[0],
		Median: percentileSorted(s, 50),
		P90:    percentileSorted(s, 90),
		Max:    s[len(s)-1],
		Mean:   mean,
		Stddev: sd,
	}, nil
}

// Median returns the 50th percentile of samples.
func Median(samples []float64) (float64, error) { return Percentile(samples, 50) }

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of samples, with
// linear interpolation between closest ranks. It does not modify samples.
func Percentile(samples []float64, p float64) (float64, error) {
	if !(p >= 0 && p <= 100) {
		return 0, fmt.Errorf("%w: %v", ErrPercentile, p)
	}
	s, err := sorted(samples)
	if err != nil {
		return 0, err
	}
	return percentileSorted(s, p), nil
}

// Ratio returns a/b. It fails when b is zero or either value is not finite,
// so a table never shows Inf or NaN as if it were a measurement.
func Ratio(a, b float64) (float64, error) {
	if !finite(a) || !finite(b) {
		return 0, fmt.Errorf("%w: %v / %v", ErrNotFinite, a, b)
	}
	if b == 0 {
		return 0, fmt.Errorf("%w: %v / 0", ErrZeroBase, a)
	}
	return a / b, nil
}

func sorted(samples []float64) ([]float64, error) {
	if len(samples) == 0 {
		return nil, ErrEmpty
	}
	for i, v := range samples {
		if !finite(v) {
			return nil, fmt.Errorf("%w: sample %d is %v", ErrNotFinite, i, v)
		}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return s, nil
}

func percentileSorted(s []float64, p float64) float64 {
	h := float64(len(s)-1) * p / 100
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	a, b, f := s[lo], s[lo+1], h-float64(lo)
	v := a + f*(b-a)
	if !finite(v) { // b-a overflowed: samples near ±MaxFloat64
		v = a*(1-f) + b*f
	}
	return min(max(v, a), b) // rounding never leaves [a,b]
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

package stats_test

import (
	"errors"
	"math"
	"testing"

	"tlcvm/bench/stats"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestPercentile(t *testing.T) {
	one10 := []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1} // unsorted on purpose
	tests := []struct {
		name    string
		samples []float64
		p       float64
		want    float64
		err     error
	}{
		{"median odd", []float64{3, 1, 2}, 50, 2, nil},
		{"median even", []float64{4, 1, 3, 2}, 50, 2.5, nil},
		{"p90 of 1..10", one10, 90, 9.1, nil},
		{"p0 is min", one10, 0, 1, nil},
		{"p100 is max", one10, 100, 10, nil},
		{"single sample", []float64{7}, 90, 7, nil},
		{"duplicates", []float64{5, 5, 5, 5}, 90, 5, nil},
		{"negative values", []float64{-3, -1, -2}, 50, -2, nil},
		{"empty", nil, 50, 0, stats.ErrEmpty},
		{"NaN sample", []float64{1, math.NaN()}, 50, 0, stats.ErrNotFinite},
		{"Inf sample", []float64{math.Inf(1)}, 50, 0, stats.ErrNotFinite},
		{"p below 0", one10, -1, 0, stats.ErrPercentile},
		{"p above 100", one10, 101, 0, stats.ErrPercentile},
		{"p NaN", one10, math.NaN(), 0, stats.ErrPercentile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stats.Percentile(tc.samples, tc.p)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && !near(got, tc.want) {
				t.Fatalf("Percentile(%v, %v) = %v, want %v", tc.samples, tc.p, got, tc.want)
			}
		})
	}
}

func TestPercentileDoesNotModifyInput(t *testing.T) {
	in := []float64{3, 1, 2}
	if _, err := stats.Median(in); err != nil {
		t.Fatal(err)
	}
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Fatalf("input reordered: %v", in)
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		samples []float64
		want    stats.Summary
		err     error
	}{
		{"one", []float64{4}, stats.Summary{N: 1, Min: 4, Median: 4, P90: 4, Max: 4, Mean: 4}, nil},
		{"1..10", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
			stats.Summary{N: 10, Min: 1, Median: 5.5, P90: 9.1, Max: 10, Mean: 5.5, Stddev: math.Sqrt(82.5 / 9)}, nil},
		{"two", []float64{2, 4}, stats.Summary{N: 2, Min: 2, Median: 3, P90: 3.8, Max: 4, Mean: 3, Stddev: math.Sqrt2}, nil},
		{"empty", []float64{}, stats.Summary{}, stats.ErrEmpty},
		{"NaN", []float64{math.NaN()}, stats.Summary{}, stats.ErrNotFinite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stats.Summarize(tc.samples)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got.N != tc.want.N || !near(got.Min, tc.want.Min) || !near(got.Median, tc.want.Median) ||
				!near(got.P90, tc.want.P90) || !near(got.Max, tc.want.Max) || !near(got.Mean, tc.want.Mean) ||
				!near(got.Stddev, tc.want.Stddev) {
				t.Fatalf("Summarize(%v) = %+v, want %+v", tc.samples, got, tc.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b, want float64
		err        error
	}{
		{1, 4, 0.25, nil},
		{71, 71, 1, nil},
		{0, 5, 0, nil},
		{1, 0, 0, stats.ErrZeroBase},
		{math.NaN(), 1, 0, stats.ErrNotFinite},
		{1, math.Inf(-1), 0, stats.ErrNotFinite},
	}
	for _, tc := range tests {
		got, err := stats.Ratio(tc.a, tc.b)
		if !errors.Is(err, tc.err) {
			t.Fatalf("Ratio(%v,%v) err = %v, want %v", tc.a, tc.b, err, tc.err)
		}
		if err == nil && !near(got, tc.want) {
			t.Fatalf("Ratio(%v,%v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// The percentile is monotone in p and bounded by min and max.
func FuzzPercentile(f *testing.F) {
	f.Add(1.0, 2.0, 3.0, 50.0)
	f.Add(-1.0, 1e300, 0.0, 90.0)
	f.Fuzz(func(t *testing.T, a, b, c, p float64) {
		s := []float64{a, b, c}
		v, err := stats.Percentile(s, p)
		if err != nil {
			return
		}
		lo, _ := stats.Percentile(s, 0)
		hi, _ := stats.Percentile(s, 100)
		if v < lo || v > hi {
			t.Fatalf("P(%v) of %v = %v outside [%v,%v]", p, s, v, lo, hi)
		}
	})
}

package suite_test

import (
	"math"
	"strings"
	"testing"

	"tlcvm/bench/suite"
)

// BJMarkdown: seconds, rates and shares in their units, the baseline named, a side that
// did not run as a dash.
func TestBJMarkdown(t *testing.T) {
	for _, c := range []struct {
		row  suite.BJRow
		want string
	}{
		{suite.BJRow{Metric: "mirror", Unit: "s", TLCVM: 1.234, QEMU: 2, Base: 3, BaseName: "dd", Target: "t"},
			"| mirror | 1.23 s | 2.00 s | 3.00 s (dd) | t |"},
		{suite.BJRow{Metric: "nbd", Unit: "MB/s", TLCVM: 900.4, QEMU: math.NaN(), Base: 800, BaseName: "qemu-nbd"},
			"| nbd | 900 MB/s | — | 800 MB/s (qemu-nbd) |  |"},
		{suite.BJRow{Metric: "share", Unit: "%", TLCVM: 4.56, QEMU: 5, Base: math.NaN()},
			"| share | 4.6 % | 5.0 % | — |  |"},
	} {
		got := suite.BJMarkdown([]suite.BJRow{c.row})
		if lines := strings.Split(strings.TrimSpace(got), "\n"); len(lines) != 3 || lines[2] != c.want {
			t.Errorf("BJMarkdown(%+v):\n%s\nwant row %s", c.row, got, c.want)
		}
	}
}

package machine

import (
	"fmt"
	"strconv"
	"strings"
)

// WorkloadKey is the fw_cfg file that configures the guest workload.
const WorkloadKey = "opt/tlcvm/workload"

// DefaultWorkload is used when no fw_cfg entry is given: a modest, steady writer.
const DefaultWorkload = "ws=16M,rate=4M"

// Workload is the parsed guest workload configuration.
//
// Syntax: comma-separated items, any order, later items win:
//
//	ws=SIZE     working-set size in bytes (suffixes K, M, G, T: powers of 1024;
//	            rounded down to whole 4 KiB pages; 0 means idle). Placed from
//	            guest-physical 2 MiB and split evenly between the vCPUs.
//	rate=SIZE   bytes of pages dirtied per second of guest time, all vCPUs together
//	            (one 8-byte store dirties one 4 KiB page); rate=max: as fast as possible
//	idle        no working set: the guest boots, prints its banner and halts
//
// Examples: "ws=64M,rate=max", "ws=512M,rate=200M", "idle". The empty string means
// DefaultWorkload. Anything else is refused by New with an ErrWorkload error.
type Workload struct {
	WS   uint64 // bytes, a multiple of PageSize; 0 = idle
	Rate uint64 // bytes/s; 0 = max
}

// String renders the configuration in the same syntax.
func (w Workload) String() string {
	if w.WS == 0 {
		return "idle"
	}
	rate := "max"
	if w.Rate != 0 {
		rate = fmtSize(w.Rate)
	}
	return "ws=" + fmtSize(w.WS) + ",rate=" + rate
}

func fmtSize(v uint64) string {
	for _, u := range []struct {
		s     string
		shift uint
	}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}} {
		if v >= 1<<u.shift && v%(1<<u.shift) == 0 {
			return strconv.FormatUint(v>>u.shift, 10) + u.s
		}
	}
	return strconv.FormatUint(v, 10)
}

// defaultWorkload is DefaultWorkload parsed; items missing from a string keep these values.
var defaultWorkload = Workload{WS: 16 << 20, Rate: 4 << 20}

// ParseWorkload parses a workload string (see Workload). Items not given keep their
// default ("ws=64M" alone means ws=64M,rate=4M).
func ParseWorkload(s string) (Workload, error) {
	if strings.TrimSpace(s) == "" {
		return defaultWorkload, nil
	}
	return parseOnto(defaultWorkload, s)
}

func parseOnto(w Workload, s string) (Workload, error) {
	for _, item := range strings.Split(s, ",") {
		key, val, hasVal := strings.Cut(strings.TrimSpace(item), "=")
		switch key {
		case "idle":
			if hasVal {
				return w, fmt.Errorf("%w: %s: 'idle' takes no value", ErrWorkload, WorkloadKey)
			}
			w.WS = 0
		case "ws":
			n, err := parseSize(val)
			if err != nil || !hasVal {
				return w, fmt.Errorf("%w: %s: ws=%q is not a size (e.g. ws=64M)", ErrWorkload, WorkloadKey, val)
			}
			w.WS = n &^ (PageSize - 1)
		case "rate":
			if val == "max" {
				w.Rate = 0
				continue
			}
			n, err := parseSize(val)
			if err != nil || !hasVal || n == 0 {
				return w, fmt.Errorf("%w: %s: rate=%q is not a positive rate in bytes/s or 'max' (e.g. rate=4M)", ErrWorkload, WorkloadKey, val)
			}
			w.Rate = n
		default:
			return w, fmt.Errorf("%w: %s: unknown item %q (valid: ws=SIZE, rate=SIZE|max, idle)", ErrWorkload, WorkloadKey, item)
		}
	}
	return w, nil
}

// parseSize accepts a decimal number with an optional K/M/G/T suffix (powers of 1024,
// either case) and an optional trailing B.
func parseSize(s string) (uint64, error) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "b")
	shift := uint(0)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		case 't', 'T':
			shift = 40
		}
		if shift != 0 {
			s = s[:n-1]
		}
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, strconv.ErrSyntax
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if v > (^uint64(0))>>shift {
		return 0, strconv.ErrRange
	}
	return v << shift, nil
}

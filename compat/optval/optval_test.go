package optval_test

import (
	"errors"
	"math"
	"syscall"
	"testing"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

var errKind = errors.New("kind")

// TestSize: qemu_strtosz's results; the error cases read as QEMU 7.2's parse_option_size
// reports them (checked against qemu-system-x86_64 -chardev ringbuf,size=X).
func TestSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  error
	}{
		{"0", 0, nil}, {"512", 512, nil}, {"1k", 1024, nil}, {"1K", 1024, nil},
		{"512M", 512 << 20, nil}, {"1G", 1 << 30, nil}, {"2T", 2 << 40, nil},
		{"1P", 1 << 50, nil}, {"1E", 1 << 60, nil}, {"15E", 15 << 60, nil},
		{"1b", 1, nil}, {"1B", 1, nil}, {"1.5G", 3 << 29, nil}, {"1.k", 1024, nil},
		{"1.5k", 1536, nil}, {"0x10", 16, nil}, {"0x10M", 16 << 20, nil}, {" 12", 12, nil},
		{"010", 10, nil}, {"+5", 5, nil},
		{"", 0, syscall.EINVAL}, {"5X", 0, syscall.EINVAL}, {"-1", 0, syscall.EINVAL},
		{"1e3", 0, syscall.EINVAL}, {"1.5", 0, syscall.EINVAL}, {"1.5B", 0, syscall.EINVAL},
		{"0x1.5M", 0, syscall.EINVAL}, {"1MB", 0, syscall.EINVAL}, {"0x10x", 0, syscall.EINVAL},
		{"1_0", 0, syscall.EINVAL}, {"12 ", 0, syscall.EINVAL}, {"abc", 0, syscall.EINVAL},
		{"16E", 0, syscall.ERANGE}, {"20E", 0, syscall.ERANGE},
		{"99999999999999999999", 0, syscall.ERANGE},
		{"99999999999999999999x", 0, syscall.EINVAL},
	} {
		got, err := optval.Size(tc.in)
		if got != tc.want || err != tc.err {
			t.Errorf("Size(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestScanSize: the end pointer and the default suffix of qemu_strtosz_MiB.
func TestScanSize(t *testing.T) {
	for _, tc := range []struct {
		in        string
		unit      byte
		want      uint64
		rest      string
		hexSuffix bool
	}{
		{"4k rest", 'B', 4096, " rest", false},
		{"512", 'M', 512 << 20, "", false},
		{"1.5G", 'M', 3 << 29, "", false},
		{"0x10", 'M', 16 << 20, "", false},
		{"0x10k,", 'B', 16 << 10, ",", true},
		{"1.k", 'M', 1024, "", false},
	} {
		got, rest, hs, err := optval.ScanSize(tc.in, tc.unit)
		if err != nil || got != tc.want || rest != tc.rest || hs != tc.hexSuffix {
			t.Errorf("ScanSize(%q, %c) = %d, %q, %v, %v; want %d, %q, %v", tc.in, tc.unit, got, rest, hs, err, tc.want, tc.rest, tc.hexSuffix)
		}
	}
}

func TestNumbers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  error
	}{
		{"0", 0, nil}, {"10", 10, nil}, {"010", 8, nil}, {"0x1f", 31, nil}, {" 7", 7, nil},
		{"-1", math.MaxUint64, nil}, {"+3", 3, nil},
		{"", 0, syscall.EINVAL}, {"x", 0, syscall.EINVAL}, {"7 ", 0, syscall.EINVAL},
		{"0b1", 0, syscall.EINVAL}, {"1_0", 0, syscall.EINVAL}, {"08", 0, syscall.EINVAL},
		{"99999999999999999999", 0, syscall.ERANGE}, {"99999999999999999999x", 0, syscall.EINVAL},
	} {
		got, err := optval.Uint64(tc.in)
		if (err == nil && got != tc.want) || err != tc.err {
			t.Errorf("Uint64(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
		err  error
	}{
		{"-5", -5, nil}, {"0x10", 16, nil}, {"-9223372036854775808", math.MinInt64, nil},
		{"9223372036854775807", math.MaxInt64, nil},
		{"9223372036854775808", math.MaxInt64, syscall.ERANGE},
		{"-9223372036854775809", math.MinInt64, syscall.ERANGE},
		{"1_000", 0, syscall.EINVAL}, {"", 0, syscall.EINVAL},
	} {
		got, err := optval.Int64(tc.in)
		if got != tc.want || err != tc.err {
			t.Errorf("Int64(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestBool(t *testing.T) {
	for _, tc := range []struct {
		in       string
		words    optval.BoolWords
		want, ok bool
	}{
		{"on", optval.QAPIWords, true, true}, {"yes", optval.QAPIWords, true, true},
		{"true", optval.QAPIWords, true, true}, {"y", optval.QAPIWords, true, true},
		{"off", optval.QAPIWords, false, true}, {"no", optval.QAPIWords, false, true},
		{"false", optval.QAPIWords, false, true}, {"n", optval.QAPIWords, false, true},
		{"ON", optval.QAPIWords, false, false}, {"", optval.QAPIWords, false, false},
		{"on", optval.OnOff, true, true}, {"off", optval.OnOff, false, true},
		{"yes", optval.OnOff, false, false}, {"n", optval.OnOff, false, false},
	} {
		if got, ok := optval.Bool(tc.in, tc.words); got != tc.want || ok != tc.ok {
			t.Errorf("Bool(%q, %d) = %v, %v", tc.in, tc.words, got, ok)
		}
	}
}

// TestParseTexts: QEMU 7.2's texts (util/qemu-option.c, qapi/qapi-util.c), each an error of
// the caller's kind.
func TestParseTexts(t *testing.T) {
	check := func(err error, want, hint string) {
		t.Helper()
		if err == nil || err.Error() != want || qerror.Hint(err) != hint || !errors.Is(err, errKind) {
			t.Errorf("got %v (hint %q), want %q (hint %q) of errKind", err, qerror.Hint(err), want, hint)
		}
	}
	_, err := optval.ParseBool(errKind, "lossy", "maybe")
	check(err, "Parameter 'lossy' expects 'on' or 'off'", "")
	_, err = optval.ParseNumber(errKind, "reconnect", "x")
	check(err, "Parameter 'reconnect' expects a number", "")
	_, err = optval.ParseNumber(errKind, "reconnect", "99999999999999999999")
	check(err, "Value '99999999999999999999' is too large for parameter 'reconnect'", "")
	_, err = optval.ParseNumber(errKind, "reconnect", "99999999999999999999x")
	check(err, "Parameter 'reconnect' expects a number", "")
	_, err = optval.ParseSize(errKind, "size", "1.5")
	check(err, "Parameter 'size' expects a non-negative number below 2^64", optval.SizeHint)
	_, err = optval.ParseSize(errKind, "size", "20E")
	check(err, "Value '20E' is out of range for parameter 'size'", "")
	if v, err := optval.ParseSize(errKind, "size", "64k"); v != 64<<10 || err != nil {
		t.Errorf("ParseSize(64k) = %d, %v", v, err)
	}
	if v, err := optval.ParseBool(errKind, "x", "y"); !v || err != nil {
		t.Errorf("ParseBool(y) = %v, %v", v, err)
	}
}

// FuzzScanSize: any input scans without a panic; Size agrees with ScanSize; the rest is a
// suffix of the input.
func FuzzScanSize(f *testing.F) {
	for _, s := range []string{"1.5G", "0x10M", "1.k", " -1", "99999999999999999999x", "1e3", ".5K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, rest, _, err := optval.ScanSize(s, 'B')
		if len(rest) > len(s) || s[len(s)-len(rest):] != rest {
			t.Fatalf("%q: rest %q is not a suffix", s, rest)
		}
		w, werr := optval.Size(s)
		if err == nil && rest == "" && (werr != nil || w != v) {
			t.Fatalf("%q: ScanSize %d, Size %d %v", s, v, w, werr)
		}
		if (err != nil || rest != "") && werr == nil {
			t.Fatalf("%q: Size accepted what ScanSize did not take whole", s)
		}
	})
}

func TestID(t *testing.T) {
	for in, want := range map[string]bool{
		"a": true, "net0": true, "drive-virtio-disk0": true, "a.b_c-d": true, "Z9": true,
		"": false, "0a": false, "-a": false, "_a": false, "a b": false, "a,b": false, "é": false, "aé": false,
	} {
		if got := optval.ID(in); got != want {
			t.Errorf("ID(%q) = %v, want %v", in, got, want)
		}
	}
}

// size_to_str's texts, as info qtree prints them for QEMU 7.2's size properties.
func TestSizeString(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		want string
	}{
		{0, "0 B"}, {512, "512 B"}, {4096, "4 KiB"}, {134217728, "128 MiB"},
		{2147483648, "2 GiB"}, {34359738368, "32 GiB"}, {4294967295, "4 GiB"},
		{18446744073709551615, "16 EiB"}, {1000, "0.977 KiB"}, {1536, "1.5 KiB"},
	} {
		if got := optval.SizeString(c.v); got != c.want {
			t.Errorf("SizeString(%d) = %q, want %q", c.v, got, c.want)
		}
	}
}

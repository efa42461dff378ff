package procmem_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"tlcvm/bench/procmem"
)

// Captured from QEMU 7.2 (-machine pc -m 4G -smp 4, idle), trimmed.
const statusQEMU = `Name:	qemu-system-x86
Umask:	0022
State:	S (sleeping)
Tgid:	11100
VmPeak:	 5470012 kB
VmHWM:	   48716 kB
VmRSS:	   47512 kB
RssAnon:	   20220 kB
RssFile:	   27292 kB
RssShmem:	       0 kB
Threads:	7
Cpus_allowed:	3
Cpus_allowed_list:	0-1
`

const rollupQEMU = `563cc6bb8000-7ffd298f6000 ---p 00000000 00:00 0                          [rollup]
Rss:                1816 kB
Pss:                 202 kB
Pss_Dirty:           112 kB
Pss_Anon:            112 kB
Pss_File:             90 kB
Pss_Shmem:             0 kB
Private_Dirty:       112 kB
Swap:                  0 kB
`

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want procmem.Status
		err  error
	}{
		{"qemu", statusQEMU, procmem.Status{VmRSS: 47512 << 10, VmHWM: 48716 << 10, RssAnon: 20220 << 10,
			RssFile: 27292 << 10, Threads: 7}, nil},
		{"kernel thread has no VmRSS", "Name:\tkthreadd\nThreads:\t1\n", procmem.Status{}, procmem.ErrMissing},
		{"bad unit", "VmRSS:\t12 MB\n", procmem.Status{}, procmem.ErrSyntax},
		{"overflow", "VmRSS:\t18446744073709551615 kB\n", procmem.Status{}, procmem.ErrSyntax},
		{"empty", "", procmem.Status{}, procmem.ErrMissing},
		{"too large", strings.Repeat("x", 70<<10), procmem.Status{}, procmem.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := procmem.ParseStatus(strings.NewReader(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseRollup(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want procmem.Rollup
		err  error
	}{
		{"qemu", rollupQEMU, procmem.Rollup{Rss: 1816 << 10, Pss: 202 << 10, PssAnon: 112 << 10,
			PssFile: 90 << 10, PrivateDirty: 112 << 10}, nil},
		{"header only", "0-1 ---p 00000000 00:00 0 [rollup]\n", procmem.Rollup{}, procmem.ErrMissing},
		{"no Pss", "Rss: 4 kB\n", procmem.Rollup{}, procmem.ErrMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := procmem.ParseRollup(strings.NewReader(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The parsers read the live files of this very process.
func TestReadSelf(t *testing.T) {
	st, err := procmem.ReadStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.VmRSS == 0 || st.Threads == 0 {
		t.Fatalf("implausible status %+v", st)
	}
	ro, err := procmem.ReadRollup(os.Getpid())
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no smaps_rollup on this kernel")
	}
	if err != nil {
		t.Fatal(err)
	}
	if ro.Pss == 0 || ro.Pss > ro.Rss {
		t.Fatalf("implausible rollup %+v", ro)
	}
}

func FuzzFields(f *testing.F) {
	f.Add([]byte(statusQEMU))
	f.Add([]byte(rollupQEMU))
	f.Add([]byte("VmRSS: 1 kB\nx"))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := procmem.Fields(strings.NewReader(string(in)))
		if err != nil {
			return
		}
		for k := range m {
			if strings.ContainsAny(k, " \t\n") {
				t.Fatalf("key %q from %q", k, in)
			}
		}
		_, _ = procmem.ParseStatus(strings.NewReader(string(in)))
		_, _ = procmem.ParseRollup(strings.NewReader(string(in)))
	})
}

func TestParseStat(t *testing.T) {
	// comm with a space and a parenthesis; utime 150, stime 25 ticks.
	in := "4242 (qemu (x) 1) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 25 0 0 20 0 6 0 100 2000000 2000 18446744073709551615\n"
	got, err := procmem.ParseStat([]byte(in))
	if err != nil || got != 1750*time.Millisecond {
		t.Fatalf("ParseStat = %v, %v; want 1.75s", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 1 0"} {
		if _, err := procmem.ParseStat([]byte(bad)); !errors.Is(err, procmem.ErrSyntax) {
			t.Errorf("ParseStat(%q) = %v, want ErrSyntax", bad, err)
		}
	}
	if d, err := procmem.ReadCPU(os.Getpid()); err != nil || d < 0 {
		t.Errorf("ReadCPU(self) = %v, %v", d, err)
	}
}

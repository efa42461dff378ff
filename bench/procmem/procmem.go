package procmem

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors; functions wrap them with %w.
var (
	// ErrSyntax means a line did not have the "Key: value [kB]" shape.
	ErrSyntax = errors.New("procmem: malformed line")
	// ErrMissing means a required key was absent.
	ErrMissing = errors.New("procmem: key missing")
	// ErrTooLarge means the input exceeded maxInput bytes.
	ErrTooLarge = errors.New("procmem: input too large")
)

// maxInput bounds what we read from one procfs file (status is ~1.5 KiB,
// smaps_rollup ~1 KiB).
const maxInput = 64 << 10

// Status holds the memory lines of /proc/PID/status, in bytes.
type Status struct {
	VmRSS    uint64 `json:"vm_rss"`
	VmHWM    uint64 `json:"vm_hwm"`
	RssAnon  uint64 `json:"rss_anon"`
	RssFile  uint64 `json:"rss_file"`
	RssShmem uint64 `json:"rss_shmem"`
	Threads  uint64 `json:"threads"`
}

// Rollup holds the sums of /proc/PID/smaps_rollup, in bytes.
type Rollup struct {
	Rss          uint64 `json:"rss"`
	Pss          uint64 `json:"pss"`
	PssAnon      uint64 `json:"pss_anon"`
	PssFile      uint64 `json:"pss_file"`
	PrivateDirty uint64 `json:"private_dirty"`
	Swap         uint64 `json:"swap"`
}

// Fields parses "Key: value [kB]" lines into a map. Values with the kB unit
// are converted to bytes. Lines without a colon (the smaps_rollup header)
// are skipped; lines whose value is not a number (Name:, State:, Cpus_allowed:)
// are skipped too, because status mixes numbers and text.
func Fields(r io.Reader) (map[string]uint64, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("procmem: read: %w", err)
	}
	if len(data) > maxInput {
		return nil, ErrTooLarge
	}
	out := make(map[string]uint64)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxInput)
	for sc.Scan() {
		line := sc.Bytes()
		key, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || bytes.ContainsAny(key, " \t") {
			continue // header line like "55d0-7ffd ---p 00000000 00:00 0 [rollup]"
		}
		f := bytes.Fields(rest)
		if len(f) == 0 || len(f) > 2 {
			continue
		}
		v, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			continue // text-valued line
		}
		if len(f) == 2 {
			if string(f[1]) != "kB" {
				return nil, fmt.Errorf("%w: %q", ErrSyntax, line)
			}
			if v > (1<<64-1)/1024 {
				return nil, fmt.Errorf("%w: %q overflows", ErrSyntax, line)
			}
			v *= 1024
		}
		out[string(key)] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("procmem: scan: %w", err)
	}
	return out, nil
}

// ParseStatus parses the contents of /proc/PID/status. VmRSS is required.
func ParseStatus(r io.Reader) (Status, error) {
	m, err := Fields(r)
	if err != nil {
		return Status{}, err
	}
	if _, ok := m["VmRSS"]; !ok {
		return Status{}, fmt.Errorf("%w: VmRSS (kernel thread or zombie?)", ErrMissing)
	}
	return Status{
		VmRSS: m["VmRSS"], VmHWM: m["VmHWM"], RssAnon: m["RssAnon"],
		RssFile: m["RssFile"], RssShmem: m["RssShmem"], Threads: m["Threads"],
	}, nil
}

// ParseRollup parses the contents of /proc/PID/smaps_rollup. Rss and Pss are
// required.
func ParseRollup(r io.Reader) (Rollup, error) {
	m, err := Fields(r)
	if err != nil {
		return Rollup{}, err
	}
	for _, k := range []string{"Rss", "Pss"} {
		if _, ok := m[k]; !ok {
			return Rollup{}, fmt.Errorf("%w: %s", ErrMissing, k)
		}
	}
	return Rollup{
		Rss: m["Rss"], Pss: m["Pss"], PssAnon: m["Pss_Anon"], PssFile: m["Pss_File"],
		PrivateDirty: m["Private_Dirty"], Swap: m["Swap"],
	}, nil
}

// ReadStatus reads /proc/PID/status.
func ReadStatus(pid int) (Status, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Status{}, fmt.Errorf("procmem: %w", err)
	}
	defer f.Close()
	return ParseStatus(f)
}

// ReadRollup reads /proc/PID/smaps_rollup (Linux ≥ 4.14; the caller needs
// ptrace access to pid, which a parent has over its own child).
func ReadRollup(pid int) (Rollup, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return Rollup{}, fmt.Errorf("procmem: %w", err)
	}
	defer f.Close()
	return ParseRollup(f)
}

// ClockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on Linux).
const ClockTick = 10 * time.Millisecond

// ParseStat returns the CPU time (utime + stime) from the contents of /proc/PID/stat.
func ParseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')') // comm may hold spaces and parentheses
	if i < 0 {
		return 0, fmt.Errorf("%w: stat without comm", ErrSyntax)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat has %d fields after comm", ErrSyntax, len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] { // fields 14 and 15: utime, stime
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: stat: %v", ErrSyntax, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * ClockTick, nil
}

// ReadCPU returns the CPU time pid has used (all its threads, user and system).
func ReadCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("procmem: %w", err)
	}
	return ParseStat(b)
}

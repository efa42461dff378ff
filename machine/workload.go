package machine

import (
	"fmt"
	"strconv"
	"strings"

	"tlcvm/compat/optval"
)

// WorkloadKey is the fw_cfg file that configures the guest workload.
const WorkloadKey = "opt/tlcvm/workload"

// DefaultWorkload is used when no fw_cfg entry is given: a modest, steady writer.
const DefaultWorkload = "ws=16M,rate=4M"

// Workload is the parsed guest workload configuration.
//
// Syntax: comma-separated items, any order, later items win:
//
//	ws=SIZE     working-set size in bytes (QEMU's size syntax, optval.Size: suffixes
//	            K, M, G, T, P, E, powers of 1024; "1.5G"; rounded down to whole 4 KiB
//	            pages; 0 means idle). Placed from
//	            guest-physical 2 MiB and split evenly between the vCPUs.
//	rate=SIZE   bytes of pages dirtied per second of guest time, all vCPUs together
//	            (one 8-byte store dirties one 4 KiB page); rate=max: as fast as possible
//	fill=SIZE   after the working set's initial fill, also write SIZE bytes of whole pages
//	            once (rounded down to pages), right after the working set in RAM order
//	            (continuing from 4 GiB above the low-memory limit), split evenly between
//	            the vCPUs, paced like the fill; content depends on the page only. A
//	            resident set larger than the working set: "ws=64M,fill=3G". New refuses
//	            a fill that does not fit in RAM after the working set.
//	dimm=SIZE   from each DIMM the guest onlines (memory hotplug, pc-dimm; also those
//	            present at boot), write the first SIZE bytes of whole pages once, on
//	            vCPU 0, paced like the fill, content a function of the guest-physical
//	            address (DIMMWord); dimm=all: the whole DIMM. Default 0: onlined, unused
//	idle        no working set: the guest boots, prints its banner and halts (fill=0);
//	            dimm= and the disk items still apply
//	disk=NAME   a disk the guest writes to: a disk device's id (-device …,id=NAME) or a
//	            drive's name (-drive id=NAME); several disk= items name several disks
//	disk-rate=SIZE  bytes written per second of guest time, all vCPUs and disks together;
//	            disk-rate=max (the default): as fast as the disks take them
//	disk-offset=SIZE  where the written region starts on each disk (default 0)
//	disk-size=SIZE    the region's length (default: to the end of the smallest disk)
//	disk-bs=SIZE      bytes per write request (default 64K; a multiple of 512)
//	cdlock      at boot the guest locks the tray of every CD-ROM (ATAPI PREVENT ALLOW
//	            MEDIUM REMOVAL), as an OS does for a mounted disc, and never unlocks it:
//	            the monitor can open it only with force (Config.Media)
//	disk-verify       read each block back before rewriting it and check it holds the
//	                  previous pass (from pass 2 on)
//
// Examples: "ws=64M,rate=max", "ws=512M,rate=200M", "ws=64M,fill=3G", "idle". The empty
// string means DefaultWorkload. Anything else is refused by New with an ErrWorkload error.
type Workload struct {
	WS   uint64 // bytes, a multiple of PageSize; 0 = idle
	Rate uint64 // bytes/s; 0 = max
	Fill uint64 // bytes written once after the working set, a multiple of PageSize
	DIMM uint64 // bytes written once from each onlined DIMM (^0: all), a multiple of PageSize
	// CDLock: the guest locks the CD-ROM trays at boot.
	CDLock bool

	DiskWorkload
}

// DiskWorkload is the disk part of a workload (disk.go says what the guest does).
type DiskWorkload struct {
	Disks      []string // disk= names, in order
	DiskRate   uint64   // bytes/s; 0 = max
	DiskOffset uint64   // bytes, a multiple of 512
	DiskSize   uint64   // bytes; 0 = to the end of the smallest disk
	DiskBS     uint64   // bytes per request, a multiple of 512 (0: defaultDiskBS)
	DiskVerify bool     // read each block back before rewriting it
}

// String renders the configuration in the same syntax.
func (w Workload) String() string {
	dimm := ""
	switch w.DIMM {
	case 0:
	case dimmFillAll:
		dimm = ",dimm=all"
	default:
		dimm = ",dimm=" + fmtSize(w.DIMM)
	}
	if w.CDLock {
		dimm += ",cdlock"
	}
	if w.WS == 0 && w.Fill == 0 {
		return "idle" + dimm + w.DiskWorkload.String()
	}
	rate := "max"
	if w.Rate != 0 {
		rate = fmtSize(w.Rate)
	}
	s := "ws=" + fmtSize(w.WS) + ",rate=" + rate
	if w.Fill != 0 {
		s += ",fill=" + fmtSize(w.Fill)
	}
	return s + dimm + w.DiskWorkload.String()
}

// String renders the disk items (",disk=…"; "" without disks).
func (d DiskWorkload) String() string {
	if len(d.Disks) == 0 {
		return ""
	}
	var b strings.Builder
	for _, n := range d.Disks {
		b.WriteString(",disk=" + n)
	}
	if d.DiskRate != 0 {
		b.WriteString(",disk-rate=" + fmtSize(d.DiskRate))
	}
	if d.DiskOffset != 0 {
		b.WriteString(",disk-offset=" + fmtSize(d.DiskOffset))
	}
	if d.DiskSize != 0 {
		b.WriteString(",disk-size=" + fmtSize(d.DiskSize))
	}
	if d.DiskBS != 0 && d.DiskBS != defaultDiskBS {
		b.WriteString(",disk-bs=" + fmtSize(d.DiskBS))
	}
	if d.DiskVerify {
		b.WriteString(",disk-verify")
	}
	return b.String()
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
			w.WS, w.Fill = 0, 0
		case "cdlock":
			if hasVal {
				return w, fmt.Errorf("%w: %s: 'cdlock' takes no value", ErrWorkload, WorkloadKey)
			}
			w.CDLock = true
		case "ws":
			n, err := optval.Size(val)
			if err != nil || !hasVal {
				return w, fmt.Errorf("%w: %s: ws=%q is not a size (e.g. ws=64M)", ErrWorkload, WorkloadKey, val)
			}
			w.WS = n &^ (PageSize - 1)
		case "rate":
			if val == "max" {
				w.Rate = 0
				continue
			}
			n, err := optval.Size(val)
			if err != nil || !hasVal || n == 0 {
				return w, fmt.Errorf("%w: %s: rate=%q is not a positive rate in bytes/s or 'max' (e.g. rate=4M)", ErrWorkload, WorkloadKey, val)
			}
			w.Rate = n
		case "fill":
			n, err := optval.Size(val)
			if err != nil || !hasVal {
				return w, fmt.Errorf("%w: %s: fill=%q is not a size (e.g. fill=3G)", ErrWorkload, WorkloadKey, val)
			}
			w.Fill = n &^ (PageSize - 1)
		case "dimm":
			if val == "all" {
				w.DIMM = dimmFillAll
				continue
			}
			n, err := optval.Size(val)
			if err != nil || !hasVal {
				return w, fmt.Errorf("%w: %s: dimm=%q is not a size or 'all' (e.g. dimm=64M)", ErrWorkload, WorkloadKey, val)
			}
			w.DIMM = n &^ (PageSize - 1)
		case "disk":
			if !hasVal || val == "" || len(w.Disks) >= maxDisks {
				return w, fmt.Errorf("%w: %s: disk=%q is not a disk name (at most %d disks)", ErrWorkload, WorkloadKey, val, maxDisks)
			}
			w.Disks = append(w.Disks, val)
		case "disk-verify":
			if hasVal {
				return w, fmt.Errorf("%w: %s: 'disk-verify' takes no value", ErrWorkload, WorkloadKey)
			}
			w.DiskVerify = true
		case "disk-rate":
			if val == "max" {
				w.DiskRate = 0
				continue
			}
			n, err := optval.Size(val)
			if err != nil || !hasVal || n == 0 {
				return w, fmt.Errorf("%w: %s: disk-rate=%q is not a positive rate in bytes/s or 'max' (e.g. disk-rate=1M)", ErrWorkload, WorkloadKey, val)
			}
			w.DiskRate = n
		case "disk-offset", "disk-size", "disk-bs":
			n, err := optval.Size(val)
			if err != nil || !hasVal || n%512 != 0 || (key == "disk-bs" && (n == 0 || n > maxDiskBS)) {
				return w, fmt.Errorf("%w: %s: %s=%q is not a multiple of 512 bytes (disk-bs: at most 16M)", ErrWorkload, WorkloadKey, key, val)
			}
			*map[string]*uint64{"disk-offset": &w.DiskOffset, "disk-size": &w.DiskSize, "disk-bs": &w.DiskBS}[key] = n
		default:
			return w, fmt.Errorf("%w: %s: unknown item %q (valid: ws=SIZE, rate=SIZE|max, fill=SIZE, dimm=SIZE|all, idle, cdlock, disk=NAME, disk-rate=SIZE|max, disk-offset=SIZE, disk-size=SIZE, disk-bs=SIZE, disk-verify)", ErrWorkload, WorkloadKey, item)
		}
	}
	return w, nil
}

// checkFits refuses a fill= that does not fit in ram bytes of RAM after the working set
// (as the guest clamps it: from 2 MiB, ws within the low memory of size low).
func (w Workload) checkFits(ram, low uint64) error {
	if w.Fill == 0 {
		return nil
	}
	ws := w.WS
	if low <= gpaWSBase {
		ws = 0
	} else if ws > low-gpaWSBase {
		ws = (low - gpaWSBase) &^ (PageSize - 1)
	}
	if ram < gpaWSBase+ws || w.Fill > ram-gpaWSBase-ws {
		room := uint64(0)
		if ram > gpaWSBase+ws {
			room = ram - gpaWSBase - ws
		}
		return fmt.Errorf("%w: %s: fill=%s does not fit in %s of RAM after 2M + ws=%s (at most fill=%s)",
			ErrWorkload, WorkloadKey, fmtSize(w.Fill), fmtSize(ram), fmtSize(ws), fmtSize(room))
	}
	return nil
}

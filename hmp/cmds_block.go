package hmp

import (
	"fmt"
	"math"
	"strings"
)

// HMP's block commands: `info block`, formatting query-block and query-named-block-nodes
// as QEMU 7.2's block/monitor/block-hmp-cmds.c print_block_info and block/qapi.c
// bdrv_image_info_dump do.

type hmpImageInfo struct {
	Filename              string         `json:"filename"`
	Format                string         `json:"format"`
	DirtyFlag             *bool          `json:"dirty-flag"`
	ActualSize            *int64         `json:"actual-size"`
	VirtualSize           int64          `json:"virtual-size"`
	ClusterSize           *int64         `json:"cluster-size"`
	Encrypted             *bool          `json:"encrypted"`
	BackingFilename       *string        `json:"backing-filename"`
	FullBackingFilename   *string        `json:"full-backing-filename"`
	BackingFilenameFormat *string        `json:"backing-filename-format"`
	Snapshots             []hmpSnapshot  `json:"snapshots"`
	BackingImage          *hmpImageInfo  `json:"backing-image"`
	FormatSpecific        *hmpFormatSpec `json:"format-specific"`
}

type hmpFormatSpec struct {
	Type string `json:"type"`
	Data struct {
		Compat          string `json:"compat"`
		CompressionType string `json:"compression-type"`
		LazyRefcounts   *bool  `json:"lazy-refcounts"`
		RefcountBits    int64  `json:"refcount-bits"`
		Corrupt         *bool  `json:"corrupt"`
		ExtendedL2      *bool  `json:"extended-l2"`
	} `json:"data"`
}

type hmpBlockDeviceInfo struct {
	File             string       `json:"file"`
	NodeName         *string      `json:"node-name"`
	RO               bool         `json:"ro"`
	Drv              string       `json:"drv"`
	BackingFile      *string      `json:"backing_file"`
	BackingFileDepth int64        `json:"backing_file_depth"`
	Encrypted        bool         `json:"encrypted"`
	DetectZeroes     string       `json:"detect_zeroes"`
	Image            hmpImageInfo `json:"image"`
	Cache            struct {
		Writeback bool `json:"writeback"`
		Direct    bool `json:"direct"`
		NoFlush   bool `json:"no-flush"`
	} `json:"cache"`
}

type hmpBlockInfo struct {
	Device    string              `json:"device"`
	Qdev      *string             `json:"qdev"`
	Removable bool                `json:"removable"`
	Locked    bool                `json:"locked"`
	Inserted  *hmpBlockDeviceInfo `json:"inserted"`
	TrayOpen  bool                `json:"tray_open"`
	IOStatus  *string             `json:"io-status"`
}

func blockCommands() []Command {
	return []Command{
		{Info: true, Name: "block", Args: "nodes:-n,verbose:-v,device:B?", Params: "[-n] [-v] [device]",
			Help: "show info of one block device or all block devices (-n: show named nodes; -v: show details)",
			Run:  infoBlock},
	}
}

func infoBlock(c *Call) {
	device, hasDevice := c.Args.Str("device")
	verbose, nodes := c.Args.Bool("verbose"), c.Args.Bool("nodes")
	printed := false
	if !nodes {
		var list []hmpBlockInfo
		if c.Fail(c.Query("query-block", nil, &list)) {
			return
		}
		for i := range list {
			bi := &list[i]
			if hasDevice && device != bi.Device {
				continue
			}
			if i > 0 { // QEMU separates from the list's previous entry, printed or not
				c.Print("\n")
			}
			printBlockInfo(c, bi, bi.Inserted, verbose)
			printed = true
		}
	}
	if (!hasDevice && !nodes) || printed {
		return
	}
	var list []hmpBlockDeviceInfo
	if c.Fail(c.Query("query-named-block-nodes", nil, &list)) {
		return
	}
	for i := range list {
		n := &list[i]
		if hasDevice && (n.NodeName == nil || device != *n.NodeName) {
			continue
		}
		if i > 0 {
			c.Print("\n")
		}
		printBlockInfo(c, nil, n, verbose)
	}
}

func printBlockInfo(c *Call, info *hmpBlockInfo, ins *hmpBlockDeviceInfo, verbose bool) {
	switch {
	case info != nil && info.Device != "":
		c.Print(info.Device)
		if ins != nil && ins.NodeName != nil {
			c.Printf(" (%s)", *ins.NodeName)
		}
	case ins != nil && ins.NodeName != nil:
		c.Print(*ins.NodeName)
	case info != nil && info.Qdev != nil:
		c.Print(*info.Qdev)
	default:
		c.Print("<anonymous>")
	}
	if ins != nil {
		ro, enc := "", ""
		if ins.RO {
			ro = ", read-only"
		}
		if ins.Encrypted {
			enc = ", encrypted"
		}
		c.Printf(": %s (%s%s%s)\n", ins.File, ins.Drv, ro, enc)
	} else {
		c.Print(": [not inserted]\n")
	}
	if info != nil {
		if info.Qdev != nil {
			c.Printf("    Attached to:      %s\n", *info.Qdev)
		}
		if info.IOStatus != nil && *info.IOStatus != "ok" {
			c.Printf("    I/O status:       %s\n", *info.IOStatus)
		}
		if info.Removable {
			locked, tray := "not ", "closed"
			if info.Locked {
				locked = ""
			}
			if info.TrayOpen {
				tray = "open"
			}
			c.Printf("    Removable device: %slocked, tray %s\n", locked, tray)
		}
	}
	if ins == nil {
		return
	}
	mode := "writethrough"
	if ins.Cache.Writeback {
		mode = "writeback"
	}
	if ins.Cache.Direct {
		mode += ", direct"
	}
	if ins.Cache.NoFlush {
		mode += ", ignore flushes"
	}
	c.Printf("    Cache mode:       %s\n", mode)
	if ins.BackingFile != nil {
		c.Printf("    Backing file:     %s (chain depth: %d)\n", *ins.BackingFile, ins.BackingFileDepth)
	}
	if ins.DetectZeroes != "" && ins.DetectZeroes != "off" {
		c.Printf("    Detect zeroes:    %s\n", ins.DetectZeroes)
	}
	if verbose {
		c.Print("\nImages:\n")
		for img := &ins.Image; img != nil; img = img.BackingImage {
			imageInfoDump(c, img)
		}
	}
}

// imageInfoDump is bdrv_image_info_dump.
func imageInfoDump(c *Call, img *hmpImageInfo) {
	c.Printf("image: %s\nfile format: %s\nvirtual size: %s (%d bytes)\n", img.Filename, img.Format, sizeToStr(img.VirtualSize), img.VirtualSize)
	if img.ActualSize != nil {
		c.Printf("disk size: %s\n", sizeToStr(*img.ActualSize))
	}
	if img.Encrypted != nil && *img.Encrypted {
		c.Print("encrypted: yes\n")
	}
	if img.ClusterSize != nil {
		c.Printf("cluster_size: %d\n", *img.ClusterSize)
	}
	if img.DirtyFlag != nil && *img.DirtyFlag {
		c.Print("cleanly shut down: no\n")
	}
	if img.BackingFilename != nil {
		c.Printf("backing file: %s", *img.BackingFilename)
		if img.FullBackingFilename == nil {
			c.Print(" (cannot determine actual path)")
		} else if *img.FullBackingFilename != *img.BackingFilename {
			c.Printf(" (actual path: %s)", *img.FullBackingFilename)
		}
		c.Print("\n")
		if img.BackingFilenameFormat != nil {
			c.Printf("backing file format: %s\n", *img.BackingFilenameFormat)
		}
	}
	if len(img.Snapshots) > 0 {
		c.Print("Snapshot list:\n")
		snapshotTable(c, img.Snapshots)
	}
	if fs := img.FormatSpecific; fs != nil && fs.Type == "qcow2" {
		c.Print("Format specific information:\n")
		d := fs.Data
		c.Printf("    compat: %s\n    compression type: %s\n", d.Compat, d.CompressionType)
		if d.LazyRefcounts != nil {
			c.Printf("    lazy refcounts: %t\n", *d.LazyRefcounts)
		}
		c.Printf("    refcount bits: %d\n", d.RefcountBits)
		if d.Corrupt != nil {
			c.Printf("    corrupt: %t\n", *d.Corrupt)
		}
		if d.ExtendedL2 != nil {
			c.Printf("    extended l2: %t\n", *d.ExtendedL2)
		}
	}
}

// sizeToStr is QEMU's size_to_str: three significant digits and a binary unit.
func sizeToStr(v int64) string {
	suffixes := []string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	_, e := math.Frexp(float64(v) / (1000.0 / 1024.0))
	i := (e - 1) / 10
	if i < 0 {
		i = 0
	}
	if i >= len(suffixes) {
		i = len(suffixes) - 1
	}
	s := fmt.Sprintf("%.3g", float64(v)/float64(uint64(1)<<(10*i)))
	return strings.TrimSpace(s) + " " + suffixes[i] + "B"
}

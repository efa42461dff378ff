package hmp

import (
	"encoding/json"

	"tlcvm/compat/optval"
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
		Bitmaps         []struct {
			Flags       []string `json:"flags"`
			Name        string   `json:"name"`
			Granularity int64    `json:"granularity"`
		} `json:"bitmaps"`
		RefcountBits int64 `json:"refcount-bits"`
		Corrupt      *bool `json:"corrupt"`
		ExtendedL2   *bool `json:"extended-l2"`
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
	Throttle         hmpThrottle  `json:"-"`
	Cache            struct {
		Writeback bool `json:"writeback"`
		Direct    bool `json:"direct"`
		NoFlush   bool `json:"no-flush"`
	} `json:"cache"`
}

// hmpThrottle is BlockDeviceInfo's I/O limits (absent members are 0, as QEMU prints them).
type hmpThrottle struct {
	Bps       int64  `json:"bps"`
	BpsRd     int64  `json:"bps_rd"`
	BpsWr     int64  `json:"bps_wr"`
	BpsMax    int64  `json:"bps_max"`
	BpsRdMax  int64  `json:"bps_rd_max"`
	BpsWrMax  int64  `json:"bps_wr_max"`
	Iops      int64  `json:"iops"`
	IopsRd    int64  `json:"iops_rd"`
	IopsWr    int64  `json:"iops_wr"`
	IopsMax   int64  `json:"iops_max"`
	IopsRdMax int64  `json:"iops_rd_max"`
	IopsWrMax int64  `json:"iops_wr_max"`
	IopsSize  int64  `json:"iops_size"`
	Group     string `json:"group"`
}

// UnmarshalJSON reads the limits from the same object as the rest.
func (b *hmpBlockDeviceInfo) UnmarshalJSON(data []byte) error {
	type plain hmpBlockDeviceInfo
	if err := json.Unmarshal(data, (*plain)(b)); err != nil {
		return err
	}
	return json.Unmarshal(data, &b.Throttle)
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
		{Info: true, Name: "blockstats", Params: "", Help: "show block device statistics", Run: infoBlockstats},
		{Name: "qemu-io", Args: "qdev:-d,device:B,command:s", Params: "[-d] [device] \"[command]\"",
			Help: "run a qemu-io command on a block device\n\t\t\t-d: [device] is a device ID rather than a drive ID or node name",
			Run: func(c *Call) {
				device, _ := c.Args.Str("device")
				command, _ := c.Args.Str("command")
				var r struct {
					Text string `json:"text"`
				}
				if !c.Fail(c.Query("x-tlcvm-qemu-io", map[string]any{"device": device, "qdev": c.Args.Bool("qdev"), "command": command}, &r)) {
					c.Print(r.Text)
				}
			}},
		{Name: "block_set_io_throttle", Args: "device:B,bps:l,bps_rd:l,bps_wr:l,iops:l,iops_rd:l,iops_wr:l",
			Params: "device bps bps_rd bps_wr iops iops_rd iops_wr", Help: "change I/O throttle limits for a block drive",
			Run: blockSetIOThrottle},
	}
}

// infoBlockstats is hmp_info_blockstats: query-blockstats' devices, one line each
// (idle_time_ns 0 when there is none).
func infoBlockstats(c *Call) {
	var list []struct {
		Device *string `json:"device"`
		Stats  struct {
			RdBytes          int64 `json:"rd_bytes"`
			WrBytes          int64 `json:"wr_bytes"`
			RdOperations     int64 `json:"rd_operations"`
			WrOperations     int64 `json:"wr_operations"`
			FlushOperations  int64 `json:"flush_operations"`
			WrTotalTimeNs    int64 `json:"wr_total_time_ns"`
			RdTotalTimeNs    int64 `json:"rd_total_time_ns"`
			FlushTotalTimeNs int64 `json:"flush_total_time_ns"`
			RdMerged         int64 `json:"rd_merged"`
			WrMerged         int64 `json:"wr_merged"`
			IdleTimeNs       int64 `json:"idle_time_ns"`
		} `json:"stats"`
	}
	if c.Fail(c.Query("query-blockstats", nil, &list)) {
		return
	}
	for _, b := range list {
		if b.Device == nil {
			continue
		}
		s := b.Stats
		c.Printf("%s: rd_bytes=%d wr_bytes=%d rd_operations=%d wr_operations=%d flush_operations=%d "+
			"wr_total_time_ns=%d rd_total_time_ns=%d flush_total_time_ns=%d rd_merged=%d wr_merged=%d idle_time_ns=%d\n",
			*b.Device, s.RdBytes, s.WrBytes, s.RdOperations, s.WrOperations, s.FlushOperations,
			s.WrTotalTimeNs, s.RdTotalTimeNs, s.FlushTotalTimeNs, s.RdMerged, s.WrMerged, s.IdleTimeNs)
	}
}

// blockSetIOThrottle is hmp_block_set_io_throttle: the name is a drive's when a drive has
// it, else a device's id (or QOM path); the burst members keep their defaults.
func blockSetIOThrottle(c *Call) {
	name, _ := c.Args.Str("device")
	args := map[string]any{}
	for _, k := range []string{"bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"} {
		args[k], _ = c.Args.Int(k)
	}
	var drives []struct {
		Device string `json:"device"`
	}
	if c.Fail(c.Query("query-block", nil, &drives)) {
		return
	}
	args["id"] = name
	for _, d := range drives {
		if d.Device == name && name != "" {
			delete(args, "id")
			args["device"] = name
		}
	}
	c.Do("block_set_io_throttle", args)
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
	if t := ins.Throttle; t.Bps != 0 || t.BpsRd != 0 || t.BpsWr != 0 || t.Iops != 0 || t.IopsRd != 0 || t.IopsWr != 0 {
		c.Printf("    I/O throttling:   bps=%d bps_rd=%d bps_wr=%d bps_max=%d bps_rd_max=%d bps_wr_max=%d "+
			"iops=%d iops_rd=%d iops_wr=%d iops_max=%d iops_rd_max=%d iops_wr_max=%d iops_size=%d group=%s\n",
			t.Bps, t.BpsRd, t.BpsWr, t.BpsMax, t.BpsRdMax, t.BpsWrMax,
			t.Iops, t.IopsRd, t.IopsWr, t.IopsMax, t.IopsRdMax, t.IopsWrMax, t.IopsSize, t.Group)
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
	c.Printf("image: %s\nfile format: %s\nvirtual size: %s (%d bytes)\n", img.Filename, img.Format, optval.SizeString(uint64(img.VirtualSize)), img.VirtualSize)
	if img.ActualSize != nil {
		c.Printf("disk size: %s\n", optval.SizeString(uint64(*img.ActualSize)))
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
		if d.Bitmaps != nil {
			// dump_qlist/dump_qdict's layout: list items by index, members in QDict order.
			c.Print("    bitmaps:\n")
			for i, b := range d.Bitmaps {
				c.Printf("        [%d]:\n            flags:\n", i)
				for j, f := range b.Flags {
					c.Printf("                [%d]: %s\n", j, f)
				}
				c.Printf("            name: %s\n            granularity: %d\n", b.Name, b.Granularity)
			}
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

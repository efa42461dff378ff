package hmp

// HMP's block job commands, as QEMU 7.2's block/monitor/block-hmp-cmds.c: `info
// block-jobs` formats query-block-jobs; block_job_cancel, _complete, _pause, _resume and
// _set_speed call their block-job-* QMP twins (errors as hmp_handle_error prints them);
// block_stream is block-stream with the device as job id; drive_mirror and drive_backup
// are their QMP twins; commit is bdrv_commit (tlcvm's internal x-tlcvm-commit).

func jobCommands() []Command {
	dev := func(c *Call) string { d, _ := c.Args.Str("device"); return d }
	return []Command{
		{Info: true, Name: "block-jobs", Params: "", Help: "show progress of ongoing block device operations",
			Run: infoBlockJobs},
		{Name: "block_stream", Args: "device:B,speed:o?,base:s?", Params: "device [speed [base]]",
			Help: "copy data from a backing file into a block device",
			Run: func(c *Call) {
				args := map[string]any{"job-id": dev(c), "device": dev(c), "on-error": "report"}
				if speed, ok := c.Args.Int("speed"); ok {
					args["speed"] = speed
				}
				if base, ok := c.Args.Str("base"); ok {
					args["base"] = base
				}
				c.Do("block-stream", args)
			}},
		{Name: "commit", Args: "device:B", Params: "device|all",
			Help: "commit changes to the disk images (if -snapshot is used) or backing files",
			Run: func(c *Call) {
				// hmp_commit reports with error_report: the line alone, no "Error: ".
				if _, err := c.Execute("x-tlcvm-commit", map[string]any{"device": dev(c)}); err != nil {
					c.Printf("%s\n", err.Error())
				}
			}},
		{Name: "drive_mirror", Args: "reuse:-n,full:-f,device:B,target:s,format:s?",
			Params: "[-n] [-f] device target [format]",
			Help: "initiates live storage\n\t\t\t" +
				"migration for a device. The device's contents are\n\t\t\t" +
				"copied to the new image file, including data that\n\t\t\t" +
				"is written after the command is started.\n\t\t\t" +
				"The -n flag requests QEMU to reuse the image found\n\t\t\t" +
				"in new-image-file, instead of recreating it from scratch.\n\t\t\t" +
				"The -f flag requests QEMU to copy the whole disk,\n\t\t\t" +
				"so that the result does not need a backing file.\n\t\t\t",
			Run: func(c *Call) { c.Do("drive-mirror", driveJobArgs(c, true)) }},
		{Name: "drive_backup", Args: "reuse:-n,full:-f,compress:-c,device:B,target:s,format:s?",
			Params: "[-n] [-f] [-c] device target [format]",
			Help: "initiates a point-in-time\n\t\t\t" +
				"copy for a device. The device's contents are\n\t\t\t" +
				"copied to the new image file, excluding data that\n\t\t\t" +
				"is written after the command is started.\n\t\t\t" +
				"The -n flag requests QEMU to reuse the image found\n\t\t\t" +
				"in new-image-file, instead of recreating it from scratch.\n\t\t\t" +
				"The -f flag requests QEMU to copy the whole disk,\n\t\t\t" +
				"so that the result does not need a backing file.\n\t\t\t" +
				"The -c flag requests QEMU to compress backup data\n\t\t\t" +
				"(if the target format supports it).\n\t\t\t",
			Run: func(c *Call) { c.Do("drive-backup", driveJobArgs(c, false)) }},
		{Name: "block_job_set_speed", Args: "device:B,speed:o", Params: "device speed",
			Help: "set maximum speed for a background block operation",
			Run: func(c *Call) {
				speed, _ := c.Args.Int("speed")
				c.Do("block-job-set-speed", map[string]any{"device": dev(c), "speed": speed})
			}},
		{Name: "block_job_cancel", Args: "force:-f,device:B", Params: "[-f] device",
			Help: "stop an active background block operation (use -f" +
				"\n\t\t\t if you want to abort the operation immediately" +
				"\n\t\t\t instead of keep running until data is in sync)",
			Run: func(c *Call) {
				c.Do("block-job-cancel", map[string]any{"device": dev(c), "force": c.Args.Bool("force")})
			}},
		{Name: "block_job_complete", Args: "device:B", Params: "device",
			Help: "stop an active background block operation",
			Run:  func(c *Call) { c.Do("block-job-complete", map[string]any{"device": dev(c)}) }},
		{Name: "block_job_pause", Args: "device:B", Params: "device",
			Help: "pause an active background block operation",
			Run:  func(c *Call) { c.Do("block-job-pause", map[string]any{"device": dev(c)}) }},
		{Name: "block_job_resume", Args: "device:B", Params: "device",
			Help: "resume a paused background block operation",
			Run:  func(c *Call) { c.Do("block-job-resume", map[string]any{"device": dev(c)}) }},
	}
}

// driveJobArgs are the QMP arguments of hmp_drive_mirror and hmp_drive_backup: sync full
// with -f (else top), mode existing with -n (else absolute-paths), and for mirror unmap.
func driveJobArgs(c *Call, mirror bool) map[string]any {
	device, _ := c.Args.Str("device")
	target, _ := c.Args.Str("target")
	args := map[string]any{"device": device, "target": target, "sync": "top", "mode": "absolute-paths"}
	if format, ok := c.Args.Str("format"); ok {
		args["format"] = format
	}
	if c.Args.Bool("full") {
		args["sync"] = "full"
	}
	if c.Args.Bool("reuse") {
		args["mode"] = "existing"
	}
	if mirror {
		args["unmap"] = true
	} else if c.Args.Bool("compress") {
		args["compress"] = true
	}
	return args
}

// infoBlockJobs is hmp_info_block_jobs.
func infoBlockJobs(c *Call) {
	var jobs []struct {
		Type   string `json:"type"`
		Device string `json:"device"`
		Len    int64  `json:"len"`
		Offset int64  `json:"offset"`
		Speed  int64  `json:"speed"`
	}
	if c.Fail(c.Query("query-block-jobs", nil, &jobs)) {
		return
	}
	if len(jobs) == 0 {
		c.Print("No active jobs\n")
		return
	}
	for _, j := range jobs {
		if j.Type == "stream" {
			c.Printf("Streaming device %s: Completed %d of %d bytes, speed limit %d bytes/s\n",
				j.Device, j.Offset, j.Len, j.Speed)
			continue
		}
		c.Printf("Type %s, device %s: Completed %d of %d bytes, speed limit %d bytes/s\n",
			j.Type, j.Device, j.Offset, j.Len, j.Speed)
	}
}

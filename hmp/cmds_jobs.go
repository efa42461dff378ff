package hmp

// HMP's block job commands, as QEMU 7.2's block/monitor/block-hmp-cmds.c: `info
// block-jobs` formats query-block-jobs; block_job_cancel, _complete, _pause, _resume and
// _set_speed call their block-job-* QMP twins (errors as hmp_handle_error prints them);
// block_stream is block-stream with the device as job id.

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

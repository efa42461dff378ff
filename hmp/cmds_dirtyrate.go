package hmp

// The dirty-rate, dirty-limit and statistics commands of QEMU 7.2's hmp-commands.hx and
// hmp-commands-info.hx (calc_dirty_rate, set_vcpu_dirty_limit, cancel_vcpu_dirty_limit,
// info dirty_rate, info vcpu_dirty_limit, info stats), formatted as migration/dirtyrate.c,
// softmmu/dirtylimit.c and monitor/hmp-cmds.c do.

type dirtyRateInfo struct {
	DirtyRate     *int64 `json:"dirty-rate"`
	Status        string `json:"status"`
	StartTime     int64  `json:"start-time"`
	CalcTime      int64  `json:"calc-time"`
	SamplePages   uint64 `json:"sample-pages"`
	Mode          string `json:"mode"`
	VcpuDirtyRate []struct {
		ID        int64 `json:"id"`
		DirtyRate int64 `json:"dirty-rate"`
	} `json:"vcpu-dirty-rate"`
}

type dirtyLimitInfo struct {
	CPUIndex    int64 `json:"cpu-index"`
	LimitRate   int64 `json:"limit-rate"`
	CurrentRate int64 `json:"current-rate"`
}

func dirtyRateCommands() []Command {
	return []Command{
		{Name: "calc_dirty_rate", Args: "dirty_ring:-r,dirty_bitmap:-b,second:l,sample_pages_per_GB:l?",
			Params: "[-r] [-b] second [sample_pages_per_GB]",
			Help:   "start a round of guest dirty rate measurement (using -r to\n\t\t\t specify dirty ring as the method of calculation and\n\t\t\t -b to specify dirty bitmap as method of calculation)",
			Run:    hmpCalcDirtyRate},
		{Name: "set_vcpu_dirty_limit", Args: "dirty_rate:l,cpu_index:l?", Params: "dirty_rate [cpu_index]",
			Help: "set dirty page rate limit, use cpu_index to set limit\n\t\t\t\t\t on a specified virtual cpu",
			Run: func(c *Call) {
				rate, _ := c.Args.Int("dirty_rate")
				args := map[string]any{"dirty-rate": rate}
				if i, ok := c.Args.Int("cpu_index"); ok && i != -1 {
					args["cpu-index"] = i
				}
				if c.Do("set-vcpu-dirty-limit", args) {
					c.Print("[Please use 'info vcpu_dirty_limit' to query dirty limit for virtual CPU]\n")
				}
			}},
		{Name: "cancel_vcpu_dirty_limit", Args: "cpu_index:l?", Params: "[cpu_index]",
			Help: "cancel dirty page rate limit, use cpu_index to cancel\n\t\t\t\t\t limit on a specified virtual cpu",
			Run: func(c *Call) {
				args := map[string]any{}
				if i, ok := c.Args.Int("cpu_index"); ok && i != -1 {
					args["cpu-index"] = i
				}
				if c.Do("cancel-vcpu-dirty-limit", args) {
					c.Print("[Please use 'info vcpu_dirty_limit' to query dirty limit for virtual CPU]\n")
				}
			}},
		{Name: "dirty_rate", Info: true, Params: "", Help: "show dirty rate information", Run: hmpInfoDirtyRate},
		{Name: "vcpu_dirty_limit", Info: true, Params: "", Help: "show dirty page limit information of all vCPU",
			Run: func(c *Call) {
				var limits []dirtyLimitInfo
				if c.Fail(c.Query("query-vcpu-dirty-limit", nil, &limits)) {
					return
				}
				// QEMU asks dirtylimit_in_service(); a limit is in service exactly while
				// some vCPU is limited, i.e. while the list is not empty.
				if len(limits) == 0 {
					c.Print("Dirty page limit not enabled!\n")
					return
				}
				for _, l := range limits {
					c.Printf("vcpu[%d], limit rate %d (MB/s), current rate %d (MB/s)\n", l.CPUIndex, l.LimitRate, l.CurrentRate)
				}
			}},
		{Name: "stats", Info: true, Args: "target:s,names:s?,provider:s?", Params: "target [names] [provider]",
			Help: "show statistics for the given target (vm or vcpu); optionally filter byname (comma-separated list, or * for all) and provider",
			Run:  hmpInfoStats},
	}
}

func hmpCalcDirtyRate(c *Call) {
	sec, _ := c.Args.Int("second")
	if sec == 0 {
		c.Print("Incorrect period length specified!\n")
		return
	}
	ring, bitmap := c.Args.Bool("dirty_ring"), c.Args.Bool("dirty_bitmap")
	if ring && bitmap {
		c.Print("Either dirty ring or dirty bitmap can be specified!\n")
		return
	}
	mode := "page-sampling"
	switch {
	case bitmap:
		mode = "dirty-bitmap"
	case ring:
		mode = "dirty-ring"
	}
	args := map[string]any{"calc-time": sec, "mode": mode}
	if n, ok := c.Args.Int("sample_pages_per_GB"); ok && n != -1 {
		args["sample-pages"] = n
	}
	if c.Do("calc-dirty-rate", args) {
		c.Printf("Starting dirty rate measurement with period %d seconds\n", sec)
		c.Print("[Please use 'info dirty_rate' to check results]\n")
	}
}

func hmpInfoDirtyRate(c *Call) {
	var in dirtyRateInfo
	if c.Fail(c.Query("query-dirty-rate", nil, &in)) {
		return
	}
	c.Printf("Status: %s\n", in.Status)
	c.Printf("Start Time: %d (ms)\n", in.StartTime)         // seconds, labelled ms, as QEMU prints it
	c.Printf("Sample Pages: %d (per GB)\n", in.SamplePages) // 7.2 prints it in every mode
	c.Printf("Period: %d (sec)\n", in.CalcTime)
	c.Printf("Mode: %s\n", in.Mode)
	c.Print("Dirty rate: ")
	if in.DirtyRate == nil {
		c.Print("(not ready)\n")
		return
	}
	c.Printf("%d (MB/s)\n", *in.DirtyRate)
	for _, r := range in.VcpuDirtyRate {
		c.Printf("vcpu[%d], Dirty rate: %d (MB/s)\n", r.ID, r.DirtyRate)
	}
}

// hmpInfoStats is hmp_info_stats: the target and provider are checked here, with QEMU's
// texts, before the QMP queries. tlcvm (as QEMU under TCG) has no statistics provider, so
// the queries return nothing and nothing is printed.
func hmpInfoStats(c *Call) {
	target, _ := c.Args.Str("target")
	if target != "vm" && target != "vcpu" {
		c.Printf("invalid stats target %s\n", target)
		return
	}
	filter := map[string]any{"target": target}
	if p, ok := c.Args.Str("provider"); ok {
		if p != "kvm" {
			c.Printf("invalid stats provider %s\n", p)
			return
		}
		filter["providers"] = []map[string]any{{"provider": p}}
	}
	var schemas, results []any
	if c.Fail(c.Query("query-stats-schemas", map[string]any{}, &schemas)) {
		return
	}
	if c.Fail(c.Query("query-stats", filter, &results)) {
		return
	}
}

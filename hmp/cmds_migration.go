package hmp

import (
	"encoding/json"
	"time"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// The migration commands of QEMU 7.2's hmp-commands.hx and hmp-commands-info.hx (migrate,
// migrate_cancel, migrate_incoming, migrate_set_capability, migrate_set_parameter, info
// migrate, info migrate_capabilities, info migrate_parameters), formatted as
// migration/migration-hmp-cmds.c does, plus tlcvm's checkpoint stage report.

// RegisterMigration adds the migration commands to m (the composition root calls it when
// the migration engine is wired).
func RegisterMigration(m *Monitor) {
	for _, c := range migrationCommands() {
		m.Register(c)
	}
}

func migrationCommands() []Command {
	return []Command{
		{Name: "migrate", Args: "detach:-d,blk:-b,inc:-i,resume:-r,uri:s", Params: "[-d] [-b] [-i] [-r] uri",
			Help: "migrate to URI (using -d to not wait for completion)\n\t\t\t -b for migration without shared storage with full copy of disk\n\t\t\t -i for migration without shared storage with incremental copy of disk (base image shared between src and destination)\n\t\t\t -r to resume a paused migration",
			Run:  hmpMigrate},
		{Name: "migrate_cancel", Params: "", Help: "cancel the current VM migration",
			Run: func(c *Call) { _, _ = c.Execute("migrate_cancel", nil) }},
		{Name: "migrate_continue", Args: "state:s", Params: "state",
			Help: "Continue migration from the given paused state",
			Run: func(c *Call) {
				state, _ := c.Args.Str("state")
				c.Do("migrate-continue", map[string]any{"state": state})
			}},
		{Name: "migrate_pause", Params: "", Help: "Pause an ongoing migration (postcopy-only)",
			Run: func(c *Call) { c.Do("migrate-pause", nil) }},
		{Name: "migrate_recover", Args: "uri:s", Params: "uri",
			Help: "Continue a paused incoming postcopy migration",
			Run: func(c *Call) {
				uri, _ := c.Args.Str("uri")
				c.Do("migrate-recover", map[string]any{"uri": uri})
			}},
		{Name: "migrate_start_postcopy", Params: "",
			Help: "Followup to a migration command to switch the migration to postcopy mode. The postcopy-ram capability must be set on both source and destination before the original migration command .",
			Run:  func(c *Call) { c.Do("migrate-start-postcopy", nil) }},
		{Name: "migrate_incoming", Args: "uri:s", Params: "uri",
			Help: "Continue an incoming migration from an -incoming defer",
			Run: func(c *Call) {
				uri, _ := c.Args.Str("uri")
				c.Do("migrate-incoming", map[string]any{"uri": uri})
			}},
		{Name: "migrate_set_capability", Args: "capability:s,state:b", Params: "capability state",
			Help: "Enable/Disable the usage of a capability for migration", Run: hmpSetCapability},
		{Name: "migrate_set_parameter", Args: "parameter:s,value:s", Params: "parameter value",
			Help: "Set the parameter for migration", Run: hmpSetParameter},
		{Name: "migrate", Info: true, Params: "", Help: "show migration status", Run: hmpInfoMigrate},
		{Name: "migrate_capabilities", Info: true, Params: "", Help: "show current migration capabilities",
			Run: func(c *Call) {
				var caps []struct {
					Capability string `json:"capability"`
					State      bool   `json:"state"`
				}
				if c.Query("query-migrate-capabilities", nil, &caps) != nil {
					return
				}
				for _, cs := range caps {
					c.Printf("%s: %s\n", cs.Capability, onOff(cs.State))
				}
			}},
		{Name: "migrate_parameters", Info: true, Params: "", Help: "show current migration parameters",
			Run: hmpInfoMigrateParameters},
	}
}

// capabilityOn reports whether migration capability name is on (false when it cannot tell).
func capabilityOn(c *Call, name string) bool {
	var caps []struct {
		Capability string `json:"capability"`
		State      bool   `json:"state"`
	}
	if c.Query("query-migrate-capabilities", nil, &caps) != nil {
		return false
	}
	for _, cs := range caps {
		if cs.Capability == name {
			return cs.State
		}
	}
	return false
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// migrationInfo is what HMP reads of query-migrate.
type migrationInfo struct {
	Status           string  `json:"status"`
	TotalTime        *int64  `json:"total-time"`
	ExpectedDowntime *int64  `json:"expected-downtime"`
	Downtime         *int64  `json:"downtime"`
	SetupTime        *int64  `json:"setup-time"`
	ErrorDesc        *string `json:"error-desc"`
	RAM              *struct {
		Transferred             int64   `json:"transferred"`
		Remaining               int64   `json:"remaining"`
		Total                   int64   `json:"total"`
		Duplicate               int64   `json:"duplicate"`
		Skipped                 int64   `json:"skipped"`
		Normal                  int64   `json:"normal"`
		NormalBytes             int64   `json:"normal-bytes"`
		DirtyPagesRate          int64   `json:"dirty-pages-rate"`
		Mbps                    float64 `json:"mbps"`
		DirtySyncCount          int64   `json:"dirty-sync-count"`
		PostcopyRequests        int64   `json:"postcopy-requests"`
		PageSize                int64   `json:"page-size"`
		MultifdBytes            int64   `json:"multifd-bytes"`
		PagesPerSecond          int64   `json:"pages-per-second"`
		PrecopyBytes            int64   `json:"precopy-bytes"`
		DowntimeBytes           int64   `json:"downtime-bytes"`
		PostcopyBytes           int64   `json:"postcopy-bytes"`
		DirtySyncMissedZeroCopy int64   `json:"dirty-sync-missed-zero-copy"`
	} `json:"ram"`
	XBZRLE *struct {
		CacheSize     int64   `json:"cache-size"`
		Bytes         int64   `json:"bytes"`
		Pages         int64   `json:"pages"`
		CacheMiss     int64   `json:"cache-miss"`
		CacheMissRate float64 `json:"cache-miss-rate"`
		EncodingRate  float64 `json:"encoding-rate"`
		Overflow      int64   `json:"overflow"`
	} `json:"xbzrle-cache"`
	Compression *struct {
		Pages           int64   `json:"pages"`
		Busy            int64   `json:"busy"`
		BusyRate        float64 `json:"busy-rate"`
		CompressedSize  int64   `json:"compressed-size"`
		CompressionRate float64 `json:"compression-rate"`
	} `json:"compression"`
	CPUThrottlePercentage *int64 `json:"cpu-throttle-percentage"`
	SocketAddress         []struct {
		Type string `json:"type"`
		Host string `json:"host"`
		Port string `json:"port"`
		Path string `json:"path"`
	} `json:"socket-address"`
	Stages []struct {
		Stage      string `json:"stage"`
		ElapsedMS  int64  `json:"elapsed-ms"`
		Bytes      int64  `json:"bytes"`
		Iterations int64  `json:"iterations"`
		ThreadID   int64  `json:"thread-id"`
		CPU        int64  `json:"cpu"`
	} `json:"x-tlc-stages"`
	File *struct {
		Mode         string  `json:"mode"`
		Incremental  *bool   `json:"incremental"`
		Reason       *string `json:"reason"`
		WrittenBytes *int64  `json:"written-bytes"`
		Populate     *string `json:"populate"`
		PagesEager   *int64  `json:"pages-eager"`
		PagesLazy    *int64  `json:"pages-lazy"`
		PagesLeft    *int64  `json:"pages-left"`
	} `json:"x-tlc-file"`
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// hmpInfoMigrate is hmp_info_migrate, then the checkpoint (or migration) stages when there
// are some.
func hmpInfoMigrate(c *Call) {
	var info migrationInfo
	if err := c.Query("query-migrate", nil, &info); err != nil {
		return
	}
	c.Print("globals:\nstore-global-state: on\nonly-migratable: off\nsend-configuration: on\n" +
		"send-section-footer: on\ndecompress-error-check: on\nclear-bitmap-shift: 18\n")
	if info.Status == "" {
		return
	}
	c.Printf("Migration status: %s", info.Status)
	if info.Status == "failed" && info.ErrorDesc != nil {
		c.Printf(" (%s)\n", *info.ErrorDesc)
	} else {
		c.Print("\n")
	}
	c.Printf("total time: %d ms\n", deref(info.TotalTime))
	if info.ExpectedDowntime != nil {
		c.Printf("expected downtime: %d ms\n", *info.ExpectedDowntime)
	}
	if info.Downtime != nil {
		c.Printf("downtime: %d ms\n", *info.Downtime)
	}
	if info.SetupTime != nil {
		c.Printf("setup: %d ms\n", *info.SetupTime)
	}
	if r := info.RAM; r != nil {
		c.Printf("transferred ram: %d kbytes\n", r.Transferred>>10)
		c.Printf("throughput: %0.2f mbps\n", r.Mbps)
		c.Printf("remaining ram: %d kbytes\n", r.Remaining>>10)
		c.Printf("total ram: %d kbytes\n", r.Total>>10)
		c.Printf("duplicate: %d pages\n", r.Duplicate)
		c.Printf("skipped: %d pages\n", r.Skipped)
		c.Printf("normal: %d pages\n", r.Normal)
		c.Printf("normal bytes: %d kbytes\n", r.NormalBytes>>10)
		c.Printf("dirty sync count: %d\n", r.DirtySyncCount)
		c.Printf("page size: %d kbytes\n", r.PageSize>>10)
		c.Printf("multifd bytes: %d kbytes\n", r.MultifdBytes>>10)
		c.Printf("pages-per-second: %d\n", r.PagesPerSecond)
		if r.DirtyPagesRate != 0 {
			c.Printf("dirty pages rate: %d pages\n", r.DirtyPagesRate)
		}
		if r.PostcopyRequests != 0 {
			c.Printf("postcopy request count: %d\n", r.PostcopyRequests)
		}
		if r.PrecopyBytes != 0 {
			c.Printf("precopy ram: %d kbytes\n", r.PrecopyBytes>>10)
		}
		if r.DowntimeBytes != 0 {
			c.Printf("downtime ram: %d kbytes\n", r.DowntimeBytes>>10)
		}
		if r.PostcopyBytes != 0 {
			c.Printf("postcopy ram: %d kbytes\n", r.PostcopyBytes>>10)
		}
		if r.DirtySyncMissedZeroCopy != 0 {
			c.Printf("Zero-copy-send fallbacks happened: %d times\n", r.DirtySyncMissedZeroCopy)
		}
	}
	if x := info.XBZRLE; x != nil {
		c.Printf("cache size: %d bytes\n", x.CacheSize)
		c.Printf("xbzrle transferred: %d kbytes\n", x.Bytes>>10)
		c.Printf("xbzrle pages: %d pages\n", x.Pages)
		c.Printf("xbzrle cache miss: %d pages\n", x.CacheMiss)
		c.Printf("xbzrle cache miss rate: %0.2f\n", x.CacheMissRate)
		c.Printf("xbzrle encoding rate: %0.2f\n", x.EncodingRate)
		c.Printf("xbzrle overflow: %d\n", x.Overflow)
	}
	if z := info.Compression; z != nil {
		c.Printf("compression pages: %d pages\n", z.Pages)
		c.Printf("compression busy: %d\n", z.Busy)
		c.Printf("compression busy rate: %0.2f\n", z.BusyRate)
		c.Printf("compressed size: %d kbytes\n", z.CompressedSize>>10)
		c.Printf("compression rate: %0.2f\n", z.CompressionRate)
	}
	if info.CPUThrottlePercentage != nil {
		c.Printf("cpu throttle percentage: %d\n", *info.CPUThrottlePercentage)
	}
	if len(info.SocketAddress) > 0 {
		c.Print("socket address: [\n")
		for _, a := range info.SocketAddress {
			if a.Type == "unix" {
				c.Printf("\tunix:%s\n", a.Path)
			} else {
				c.Printf("\ttcp:%s:%s\n", a.Host, a.Port)
			}
		}
		c.Print("]\n")
	}
	printStages(c, &info)
	printFile(c, &info)
}

// printFile prints how a checkpoint to file: was written, or how a restore from one reads
// its pages.
func printFile(c *Call, info *migrationInfo) {
	f := info.File
	if f == nil {
		return
	}
	if f.Populate != nil {
		c.Printf("restore from file: %s, populate %s, pages populated eagerly: %d, lazily: %d, not yet: %d\n",
			f.Mode, *f.Populate, deref(f.PagesEager), deref(f.PagesLazy), deref(f.PagesLeft))
		return
	}
	kind := "full"
	if f.Incremental != nil && *f.Incremental {
		kind = "incremental"
	}
	c.Printf("checkpoint file: %s, %s, %d kbytes written", f.Mode, kind, deref(f.WrittenBytes)>>10)
	if f.Reason != nil {
		c.Printf(" (not incremental: %s)", *f.Reason)
	}
	c.Print("\n")
}

// printStages prints the seed's stage report: per stage elapsed ms, kbytes, thread and
// CPU; then total time, RAM transferred and downtime. The heading names what ran: a
// checkpoint (x-tlc: the guest runs on) or a migration (its last phase "stage 3", or
// "postcopy" when it switched).
func printStages(c *Call, info *migrationInfo) {
	if len(info.Stages) == 0 {
		return
	}
	if capabilityOn(c, "x-tlc") {
		c.Print("checkpoint stages:\n")
	} else {
		c.Print("migration stages:\n")
	}
	for _, s := range info.Stages {
		c.Printf("%s: %d ms, %d kbytes", s.Stage, s.ElapsedMS, s.Bytes>>10)
		if s.Stage == "stage 2" {
			c.Printf(", %d iterations", s.Iterations)
		}
		c.Printf(", thread %d, cpu %d\n", s.ThreadID, s.CPU)
	}
	var ram int64
	if info.RAM != nil {
		ram = info.RAM.Transferred
	}
	c.Printf("total: %d ms, ram transferred: %d kbytes, downtime: %d ms\n",
		deref(info.TotalTime), ram>>10, deref(info.Downtime))
}

// migrateArgs are migrate's QMP arguments.
type migrateArgs struct {
	URI    string `json:"uri"`
	Blk    bool   `json:"blk"`
	Inc    bool   `json:"inc"`
	Detach bool   `json:"detach"`
	Resume bool   `json:"resume"`
}

// migratePoll is how often a waiting migrate looks at the status (QEMU's timer: 100 ms).
const migratePoll = 20 * time.Millisecond

// hmpMigrate is hmp_migrate: without -d a terminal waits for the end (QEMU suspends the
// monitor and polls), then prints the stage report; through human-monitor-command it
// cannot wait and says so.
func hmpMigrate(c *Call) {
	uri, _ := c.Args.Str("uri")
	a := migrateArgs{URI: uri, Blk: c.Args.Bool("blk"), Inc: c.Args.Bool("inc"),
		Detach: true, Resume: c.Args.Bool("resume")}
	if _, err := c.Execute("migrate", a); c.Fail(err) {
		return
	}
	if c.Args.Bool("detach") {
		return
	}
	if c.sess == nil || c.sess.rl == nil {
		c.Print("terminal does not allow synchronous migration, continuing detached\n")
		return
	}
	for {
		var info migrationInfo
		if err := c.Query("query-migrate", nil, &info); err != nil {
			return
		}
		switch info.Status {
		case "completed":
			printStages(c, &info)
			printFile(c, &info)
			return
		case "failed", "cancelled", "":
			return
		}
		time.Sleep(migratePoll)
	}
}

func hmpSetCapability(c *Call) {
	name, _ := c.Args.Str("capability")
	state := c.Args.Bool("state")
	var caps []struct {
		Capability string `json:"capability"`
	}
	if err := c.Query("query-migrate-capabilities", nil, &caps); c.Fail(err) {
		return
	}
	known := false
	for _, cs := range caps {
		known = known || cs.Capability == name
	}
	if !known {
		c.Printf("Error: invalid parameter value: %s\n", name)
		return
	}
	c.Do("migrate-set-capabilities", map[string]any{
		"capabilities": []map[string]any{{"capability": name, "state": state}}})
}

// paramKind is how hmp_migrate_set_parameter parses a parameter's value.
type paramKind int

const (
	pkSize paramKind = iota // visit_type_size (bytes by default)
	pkMiB                   // max-bandwidth: qemu_strtosz_MiB
	pkUint8
	pkUint32
	pkBool
	pkStr
	pkEnum
	pkInt
	pkQMPOnly
)

var paramKinds = map[string]paramKind{
	"announce-initial": pkSize, "announce-max": pkSize, "announce-rounds": pkSize, "announce-step": pkSize,
	"compress-level": pkUint8, "compress-threads": pkUint8, "compress-wait-thread": pkBool,
	"decompress-threads": pkUint8, "throttle-trigger-threshold": pkUint8, "cpu-throttle-initial": pkUint8,
	"cpu-throttle-increment": pkUint8, "cpu-throttle-tailslow": pkBool, "tls-creds": pkStr,
	"tls-hostname": pkStr, "tls-authz": pkStr, "max-bandwidth": pkMiB, "downtime-limit": pkSize,
	"x-checkpoint-delay": pkUint32, "block-incremental": pkBool, "multifd-channels": pkUint8,
	"xbzrle-cache-size": pkSize, "max-postcopy-bandwidth": pkSize, "max-cpu-throttle": pkUint8,
	"multifd-compression": pkEnum, "multifd-zlib-level": pkUint8, "multifd-zstd-level": pkUint8,
	"block-bitmap-mapping": pkQMPOnly, "x-checkpoint-cpu": pkInt, "x-restore-populate": pkStr,
}

func hmpSetParameter(c *Call) {
	name, _ := c.Args.Str("parameter")
	value, _ := c.Args.Str("value")
	kind, ok := paramKinds[name]
	if !ok {
		c.Printf("Error: invalid parameter value: %s\n", name)
		return
	}
	// The values go through QEMU's string input visitor (parse_option_size, qemu_strtou64,
	// qemu_strtoi64, qapi_bool_parse); errors print as hmp_handle_error does.
	var v any
	switch kind {
	case pkSize:
		n, err := optval.ParseSize(nil, name, value)
		if err != nil {
			c.Print("Error: " + qerror.Report(err))
			return
		}
		v = n
	case pkMiB:
		n, rest, _, err := optval.ScanSize(value, 'M') // qemu_strtosz_MiB
		if err != nil || rest != "" || n > 1<<63-1 {
			c.Printf("Error: Invalid size %s\n", value)
			return
		}
		v = n
	case pkUint8, pkUint32:
		n, err := optval.Uint64(value)
		if err != nil {
			c.Printf("Error: Parameter '%s' expects uint64\n", name)
			return
		}
		if kind == pkUint8 && n > 255 {
			c.Printf("Error: Parameter '%s' expects uint8_t\n", name)
			return
		}
		if kind == pkUint32 && n > 1<<32-1 {
			c.Printf("Error: Parameter '%s' expects uint32_t\n", name)
			return
		}
		v = n
	case pkInt:
		n, err := optval.Int64(value)
		if err != nil {
			c.Printf("Error: Parameter '%s' expects int64\n", name)
			return
		}
		v = n
	case pkBool:
		b, err := optval.ParseBool(nil, name, value)
		if err != nil {
			c.Print("Error: " + qerror.Report(err))
			return
		}
		v = b
	case pkStr, pkEnum:
		v = value
	case pkQMPOnly:
		c.Print("Error: The block-bitmap-mapping parameter can only be set through QMP\n")
		return
	}
	c.Do("migrate-set-parameters", map[string]any{name: v})
}

// hmpInfoMigrateParameters is hmp_info_migrate_parameters, in its order.
func hmpInfoMigrateParameters(c *Call) {
	var raw map[string]json.RawMessage
	if err := c.Query("query-migrate-parameters", nil, &raw); err != nil {
		return
	}
	num := func(k string) string { return string(raw[k]) }
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(raw[k], &s)
		return s
	}
	boolean := func(k string) string { return onOff(string(raw[k]) == "true") }
	c.Printf("announce-initial: %s ms\n", num("announce-initial"))
	c.Printf("announce-max: %s ms\n", num("announce-max"))
	c.Printf("announce-rounds: %s\n", num("announce-rounds"))
	c.Printf("announce-step: %s ms\n", num("announce-step"))
	c.Printf("compress-level: %s\n", num("compress-level"))
	c.Printf("compress-threads: %s\n", num("compress-threads"))
	c.Printf("compress-wait-thread: %s\n", boolean("compress-wait-thread"))
	c.Printf("decompress-threads: %s\n", num("decompress-threads"))
	c.Printf("throttle-trigger-threshold: %s\n", num("throttle-trigger-threshold"))
	c.Printf("cpu-throttle-initial: %s\n", num("cpu-throttle-initial"))
	c.Printf("cpu-throttle-increment: %s\n", num("cpu-throttle-increment"))
	c.Printf("cpu-throttle-tailslow: %s\n", boolean("cpu-throttle-tailslow"))
	c.Printf("max-cpu-throttle: %s\n", num("max-cpu-throttle"))
	c.Printf("tls-creds: '%s'\n", str("tls-creds"))
	c.Printf("tls-hostname: '%s'\n", str("tls-hostname"))
	c.Printf("max-bandwidth: %s bytes/second\n", num("max-bandwidth"))
	c.Printf("downtime-limit: %s ms\n", num("downtime-limit"))
	c.Printf("x-checkpoint-delay: %s ms\n", num("x-checkpoint-delay"))
	c.Printf("block-incremental: %s\n", boolean("block-incremental"))
	c.Printf("multifd-channels: %s\n", num("multifd-channels"))
	c.Printf("multifd-compression: %s\n", str("multifd-compression"))
	c.Printf("xbzrle-cache-size: %s bytes\n", num("xbzrle-cache-size"))
	c.Printf("max-postcopy-bandwidth: %s\n", num("max-postcopy-bandwidth"))
	c.Printf("tls-authz: '%s'\n", str("tls-authz"))
	if m, ok := raw["block-bitmap-mapping"]; ok {
		var nodes []struct {
			NodeName string `json:"node-name"`
			Alias    string `json:"alias"`
			Bitmaps  []struct {
				Name  string `json:"name"`
				Alias string `json:"alias"`
			} `json:"bitmaps"`
		}
		_ = json.Unmarshal(m, &nodes)
		c.Print("block-bitmap-mapping:\n")
		for _, n := range nodes {
			c.Printf("  '%s' -> '%s'\n", n.NodeName, n.Alias)
			for _, b := range n.Bitmaps {
				c.Printf("    '%s' -> '%s'\n", b.Name, b.Alias)
			}
		}
	}
	if v, ok := raw["x-checkpoint-cpu"]; ok {
		c.Printf("x-checkpoint-cpu: %s\n", v)
	}
	if _, ok := raw["x-restore-populate"]; ok {
		c.Printf("x-restore-populate: %s\n", str("x-restore-populate"))
	}
}

package hmp

// Guest memory dumps: dump-guest-memory and info dump, through the QMP commands.

type dumpGuestMemoryArgs struct {
	Paging   bool   `json:"paging"`
	Protocol string `json:"protocol"`
	Detach   bool   `json:"detach"`
	Begin    *int64 `json:"begin,omitempty"`
	Length   *int64 `json:"length,omitempty"`
	Format   string `json:"format"`
}

type dumpQueryResult struct {
	Status    string `json:"status"`
	Completed int64  `json:"completed"`
	Total     int64  `json:"total"`
}

// hmpDumpGuestMemory is hmp_dump_guest_memory: one format flag at most, the file as
// "file:" protocol, the format always given (elf by default).
func hmpDumpGuestMemory(c *Call) {
	a := dumpGuestMemoryArgs{Paging: c.Args.Bool("paging"), Detach: c.Args.Bool("detach"), Format: "elf"}
	n := 0
	for _, f := range []struct{ key, format string }{
		{"windmp", "win-dmp"}, {"zlib", "kdump-zlib"}, {"lzo", "kdump-lzo"}, {"snappy", "kdump-snappy"},
	} {
		if c.Args.Bool(f.key) {
			n++
			a.Format = f.format
		}
	}
	if n > 1 {
		c.Print("Error: only one of '-z|-l|-s|-w' can be set\n")
		return
	}
	if v, ok := c.Args.Int("begin"); ok {
		a.Begin = &v
	}
	if v, ok := c.Args.Int("length"); ok {
		a.Length = &v
	}
	file, _ := c.Args.Str("filename")
	a.Protocol = "file:" + file
	c.Do("dump-guest-memory", a)
}

// hmpInfoDump is hmp_info_dump.
func hmpInfoDump(c *Call) {
	var r dumpQueryResult
	if c.Fail(c.Query("query-dump", nil, &r)) {
		return
	}
	c.Printf("Status: %s\n", r.Status)
	if r.Status == "active" && r.Total != 0 {
		c.Printf("Finished: %.2f %%\n", float32(100.0*float64(r.Completed)/float64(r.Total)))
	}
}

func dumpCommands() []Command {
	return []Command{
		{Name: "dump-guest-memory", Args: "paging:-p,detach:-d,windmp:-w,zlib:-z,lzo:-l,snappy:-s,filename:F,begin:l?,length:l?",
			Params: "[-p] [-d] [-z|-l|-s|-w] filename [begin length]",
			Help: "dump guest memory into file 'filename'.\n\t\t\t" +
				"-p: do paging to get guest's memory mapping.\n\t\t\t" +
				"-d: return immediately (do not wait for completion).\n\t\t\t" +
				"-z: dump in kdump-compressed format, with zlib compression.\n\t\t\t" +
				"-l: dump in kdump-compressed format, with lzo compression.\n\t\t\t" +
				"-s: dump in kdump-compressed format, with snappy compression.\n\t\t\t" +
				"-w: dump in Windows crashdump format (can be used instead of ELF-dump converting),\n\t\t\t" +
				"    for Windows x86 and x64 guests with vmcoreinfo driver only.\n\t\t\t" +
				"begin: the starting physical address.\n\t\t\t" +
				"length: the memory size, in bytes.",
			Run: hmpDumpGuestMemory},
		{Info: true, Name: "dump", Params: "", Help: "Display the latest dump status", Run: hmpInfoDump},
	}
}

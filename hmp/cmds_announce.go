package hmp

import "strings"

// announce_self: hmp_announce_self (monitor/hmp-cmds.c), announce-self with the migration
// parameters' announce-* values (query-migrate-parameters) and the interfaces given as a
// comma list. QEMU passes no error pointer: nothing is ever printed.

func announceCommands() []Command {
	return []Command{
		{Name: "announce_self", Args: "interfaces:s?,id:s?", Params: "[interfaces] [id]",
			Help: "Trigger GARP/RARP announcements",
			Run: func(c *Call) {
				// migrate_announce_params' defaults, when there are no migration parameters
				p := struct {
					Initial uint64 `json:"announce-initial"`
					Max     uint64 `json:"announce-max"`
					Rounds  uint64 `json:"announce-rounds"`
					Step    uint64 `json:"announce-step"`
				}{50, 550, 5, 100}
				_ = c.Query("query-migrate-parameters", nil, &p)
				args := map[string]any{"initial": p.Initial, "max": p.Max, "rounds": p.Rounds, "step": p.Step}
				if s, ok := c.Args.Str("interfaces"); ok && s != "" {
					args["interfaces"] = strings.Split(s, ",")
				}
				if id, ok := c.Args.Str("id"); ok {
					args["id"] = id
				}
				_, _ = c.Execute("announce-self", args)
			}},
	}
}

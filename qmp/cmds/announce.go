package cmds

import (
	"tlcvm/netdev"
	"tlcvm/qmp"
)

// announce-self (net/announce.c qmp_announce_self): RARP self-announcements of every NIC (or
// of the NICs named in interfaces) through their back-ends, on QEMU's schedule; netdev
// writes them to tap back-ends and drops them elsewhere (package netdev's Announcer). QEMU
// checks none of the numbers.

// AnnounceParameters is QAPI's AnnounceParameters, announce-self's boxed arguments.
type AnnounceParameters struct {
	Initial    int64     `json:"initial"`
	Max        int64     `json:"max"`
	Rounds     int64     `json:"rounds"`
	Step       int64     `json:"step"`
	Interfaces *[]string `json:"interfaces,omitempty"`
	ID         *string   `json:"id,omitempty"`
}

func registerAnnounce(r *qmp.Registry, d *Deps) {
	n := d.Net
	if n == nil {
		n = netdev.New() // no NICs: every round announces nothing
	}
	a := netdev.NewAnnouncer(n)
	r.Register(qmp.Command{Name: "announce-self", Args: &AnnounceParameters{},
		Run: func(c *qmp.Call) (any, error) {
			args := c.Args.(*AnnounceParameters)
			p := netdev.AnnounceParams{Initial: args.Initial, Max: args.Max, Rounds: args.Rounds, Step: args.Step}
			if args.Interfaces != nil {
				p.Interfaces = append([]string{}, *args.Interfaces...)
			}
			if args.ID != nil {
				p.ID = *args.ID
			}
			a.Announce(p)
			return nil, nil
		}})
}

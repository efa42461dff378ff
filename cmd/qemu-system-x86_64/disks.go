package main

import (
	"tlcvm/blockdev"
	"tlcvm/machine"
	"tlcvm/migration"
)

// blockDisks presents the block graph as the migration engine's Disks: images handed from
// one process to the other (QEMU's bdrv_inactivate_all / bdrv_activate_all).
type blockDisks struct{ g *blockdev.Graph }

var _ migration.Disks = blockDisks{}

func (d blockDisks) Inactivate() error { return d.g.InactivateAll() }
func (d blockDisks) Activate() error   { return d.g.ActivateAll() }
func (d blockDisks) EndIncoming()      { d.g.SetIncoming(false) }

// contMachine is the machine as QMP's cont sees it: QEMU 7.2's qmp_cont activates every
// image before it starts the guest (a source continuing after a completed migration, a
// destination whose late-block-activate held them back); a failure fails the command.
type contMachine struct {
	*machine.Machine
	g *blockdev.Graph
}

// Cont is qmp_cont: the run-state checks first (the machine's own errors), then the
// images, then the guest.
func (c contMachine) Cont() error {
	switch st, _ := c.Status(); st {
	case machine.StateFinishMigrate, machine.StateShutdown, machine.StateInternalError, machine.StateSuspended:
		return c.Machine.Cont()
	}
	if err := c.g.ActivateAll(); err != nil {
		return err
	}
	return c.Machine.Cont()
}

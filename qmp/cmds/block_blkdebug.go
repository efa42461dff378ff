package cmds

import "tlcvm/blockdev"

// blockdev-add's blkdebug driver (BlockdevOptionsBlkdebug): its rules go to package
// blockdev, which raises the events and injects the errors.

// BlkdebugEvent is QAPI's BlkdebugEvent enum.
type BlkdebugEvent string

// EnumValues implements qmp.Enum.
func (BlkdebugEvent) EnumValues() []string { return blockdev.BlkdebugEvents }

// BlkdebugIOType is QAPI's BlkdebugIOType enum.
type BlkdebugIOType string

// EnumValues implements qmp.Enum.
func (BlkdebugIOType) EnumValues() []string { return blockdev.BlkdebugIOTypes }

// BlockPermission is QAPI's BlockPermission enum.
type BlockPermission string

// EnumValues implements qmp.Enum.
func (BlockPermission) EnumValues() []string {
	return []string{"consistent-read", "write", "write-unchanged", "resize"}
}

// BlkdebugInjectErrorOptions is one inject-error rule.
type BlkdebugInjectErrorOptions struct {
	Event       BlkdebugEvent   `json:"event"`
	State       *int64          `json:"state,omitempty"`
	IOType      *BlkdebugIOType `json:"iotype,omitempty"`
	Errno       *int64          `json:"errno,omitempty"`
	Sector      *int64          `json:"sector,omitempty"`
	Once        *bool           `json:"once,omitempty"`
	Immediately *bool           `json:"immediately,omitempty"`
}

// BlkdebugSetStateOptions is one set-state rule.
type BlkdebugSetStateOptions struct {
	Event    BlkdebugEvent `json:"event"`
	State    *int64        `json:"state,omitempty"`
	NewState int64         `json:"new_state"`
}

// BlockdevOptionsBlkdebug is the blkdebug driver's members (QEMU 7.2's, in its order).
type BlockdevOptionsBlkdebug struct {
	Image             BlockdevRef                  `json:"image"`
	Config            *string                      `json:"config,omitempty"`
	Align             *int64                       `json:"align,omitempty"`
	MaxTransfer       *int64                       `json:"max-transfer,omitempty"`
	OptWriteZero      *int64                       `json:"opt-write-zero,omitempty"`
	MaxWriteZero      *int64                       `json:"max-write-zero,omitempty"`
	OptDiscard        *int64                       `json:"opt-discard,omitempty"`
	MaxDiscard        *int64                       `json:"max-discard,omitempty"`
	InjectError       []BlkdebugInjectErrorOptions `json:"inject-error,omitempty"`
	SetState          []BlkdebugSetStateOptions    `json:"set-state,omitempty"`
	TakeChildPerms    []BlockPermission            `json:"take-child-perms,omitempty"`
	UnshareChildPerms []BlockPermission            `json:"unshare-child-perms,omitempty"`
}

// blkdebugOptions converts the blkdebug members (conv converts the image reference).
func blkdebugOptions(v *BlockdevOptionsBlkdebug, conv func(BlockdevRef) *blockdev.Ref) *blockdev.BlkdebugOptions {
	deref := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	o := &blockdev.BlkdebugOptions{Image: conv(v.Image), Align: deref(v.Align)}
	if v.Config != nil {
		o.Config = *v.Config
	}
	for _, r := range v.InjectError {
		ie := blockdev.BlkdebugInjectError{Event: string(r.Event), State: deref(r.State), Errno: r.Errno, Sector: r.Sector,
			Once: r.Once != nil && *r.Once, Immediately: r.Immediately != nil && *r.Immediately}
		if r.IOType != nil {
			ie.IOType = string(*r.IOType)
		}
		o.InjectError = append(o.InjectError, ie)
	}
	for _, r := range v.SetState {
		o.SetState = append(o.SetState, blockdev.BlkdebugSetState{Event: string(r.Event), State: deref(r.State), NewState: r.NewState})
	}
	return o
}

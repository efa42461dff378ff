package machine

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"
)

// The guest's disk driver. With disk= items in the workload each vCPU writes deterministic
// blocks to the named disks, as a guest's block driver submits requests to its virtio-blk
// device: the program builds a request and exits (exitDisk, an MMIO doorbell); the vCPU
// thread carries it to the disk (Disk, adapted from a block backend by the composition
// root, so that machine never imports blockdev) and blocks until it completes, throttle
// waits included, as a guest waiting on its I/O; the next Run sees the completion and
// moves the driver on. A pause ends a wait: that request is not made, and the same request
// is built again after the resume.
//
// Each disk's region [disk-offset, disk-offset+disk-size) is split into blocks of disk-bs
// bytes, the blocks evenly between the vCPUs (vCPU i: blocks [B*i/n, B*(i+1)/n)). A vCPU
// writes its share block by block, each block to every disk in disk= order, then starts
// the next pass. The content of a block depends only on its byte offset on the disk and
// the pass (FillDiskBlock), so what a disk holds follows from the driver's cursor
// (DiskState): blocks before the cursor hold the current pass, the others the previous
// one (pass 0: never written). The cursor is part of the vCPU state (CPUState.Disk, saved
// in section cpu/N), so a checkpoint restores exactly; it is also published in guest RAM
// for observers:
//
//	0x6000 + 64*i   u64 pass   u64 block index in the share   u64 disk index   u64 bytes written
//	                u64 bytes read   u64 blocks that failed verification   u64 failed requests
//	                (1 u64 reserved)
//
// With disk-verify the driver reads each block before it rewrites it (from pass 2 on) and
// checks that it holds the previous pass, as FillDiskBlock makes it: a disk that is not
// what the restored guest wrote (an older image under a newer checkpoint, a job that lost
// data) is seen by the guest itself — counted in DiskState.Mismatches, the first one
// reported on the console ("tlcvm guest: disk NAME: block at OFF is not pass P").
//
// A request that fails (an I/O error, a disk gone) is counted in DiskState.Errors and
// skipped; a disk name that does not resolve at the driver's start is dropped with a line
// on the serial console.

// Disk is a guest disk as the vCPU's driver uses it. WriteAt and ReadAt block until the
// request is done or ctx ends (then nothing was done, and ctx's error is returned).
type Disk interface {
	WriteAt(ctx context.Context, p []byte, off int64) error
	ReadAt(ctx context.Context, p []byte, off int64) error
	Size() int64
}

// DiskResolver finds a disk by the name the workload gives it (a device id or a drive
// name); false when there is none.
type DiskResolver func(name string) (Disk, bool)

const (
	gpaDiskCounters = 0x6000    // per vCPU: pass, block, disk, written, read, mismatches (64 bytes)
	defaultDiskBS   = 64 << 10  // disk-bs default
	maxDiskBS       = 16 << 20  // largest disk-bs
	maxDisks        = 16        // disk= items
	diskSeed        = 0xd15c0de // mixed into every word written
)

// DiskState is the guest driver's state, part of the vCPU's (section cpu/N, version 2).
type DiskState struct {
	Names []string `json:"names"` // the disks, in disk= order (unresolvable ones dropped)
	Rate  uint64   `json:"rate"`  // bytes/s for all vCPUs; 0 = max
	BS    uint64   `json:"bs"`    // bytes per request
	// The vCPU's share: blocks [First, First+Blocks) from byte Offset of each disk.
	Offset uint64 `json:"offset"`
	First  uint64 `json:"first"`
	Blocks uint64 `json:"blocks"`
	// The cursor: the next request writes block First+Block to disk Disk in pass Pass.
	Pass  uint64 `json:"pass"`
	Block uint64 `json:"block"`
	Disk  uint64 `json:"disk"`
	// Written and Errors count bytes written and requests failed by this vCPU.
	Written uint64 `json:"written"`
	Errors  uint64 `json:"errors"`
	// Verify (disk-verify): the block at the cursor is read and checked before it is
	// written (from pass 2 on); Verified says that read is done for the cursor's block.
	// Read counts bytes read, Mismatches blocks that did not hold the previous pass.
	Verify     bool   `json:"verify,omitempty"`
	Verified   bool   `json:"verified,omitempty"`
	Read       uint64 `json:"read,omitempty"`
	Mismatches uint64 `json:"mismatches,omitempty"`
	// Pacing: requests since the epoch (guest ns).
	Paced uint64 `json:"paced"`
	Epoch uint64 `json:"epoch"`
}

// clone copies a state (CPUState is copied by value; this keeps copies apart).
func (d *DiskState) clone() *DiskState {
	if d == nil {
		return nil
	}
	c := *d
	c.Names = append([]string(nil), d.Names...)
	return &c
}

// Next returns the disk offset, disk index and pass of the request at the cursor.
func (d *DiskState) next() (off int64, disk int, pass uint64) {
	return int64(d.Offset + (d.First+d.Block)*d.BS), int(d.Disk), d.Pass
}

// advance moves the cursor past the request just done.
func (d *DiskState) advance() {
	d.Verified = false
	d.Paced++
	if d.Disk++; d.Disk < uint64(len(d.Names)) {
		return
	}
	d.Disk = 0
	if d.Block++; d.Block < d.Blocks {
		return
	}
	d.Block = 0
	d.Pass++
}

// check refuses a state the driver cannot run (a restored section is untrusted).
func (d *DiskState) check() error {
	switch {
	case len(d.Names) == 0 || len(d.Names) > maxDisks:
		return fmt.Errorf("disk state: %d disks", len(d.Names))
	case d.BS == 0 || d.BS%512 != 0 || d.BS > maxDiskBS || d.Offset%512 != 0:
		return fmt.Errorf("disk state: block size %d at %d", d.BS, d.Offset)
	case d.Blocks == 0 || d.Block >= d.Blocks || d.Disk >= uint64(len(d.Names)) || d.Pass == 0:
		return fmt.Errorf("disk state: cursor %d/%d disk %d pass %d", d.Block, d.Blocks, d.Disk, d.Pass)
	case d.First > 1<<50 || d.Blocks > 1<<50 || d.Offset > 1<<62:
		return fmt.Errorf("disk state: share %d+%d out of range", d.First, d.Blocks)
	}
	return nil
}

// FillDiskBlock fills p with what the guest writes at byte off of a disk in pass pass:
// each 8-byte word (little-endian) a hash of its offset and the pass. off and len(p) are
// multiples of 8.
func FillDiskBlock(p []byte, off, pass uint64) {
	for i := 0; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], mix((off+uint64(i))^pass<<48^diskSeed))
	}
}

// diskRequest is the request of an exitDisk: done is set by the vCPU thread when the
// request completed (ok or failed), left false when the wait was ended by a pause.
type diskRequest struct {
	disk Disk
	read bool // a read (disk-verify) into data, else a write of data
	off  int64
	data []byte
	done bool
	err  error
}

// startDisks sets up the driver at the workload's start (enterWorkload): resolve the
// disks, size the region, take this vCPU's share.
func (c *synthCPU) startDisks(w DiskWorkload) {
	c.st.Disk, c.disks = nil, nil
	if len(w.Disks) == 0 {
		return
	}
	bs := w.DiskBS
	if bs == 0 {
		bs = defaultDiskBS
	}
	d := &DiskState{Rate: w.DiskRate, BS: bs, Offset: w.DiskOffset, Pass: 1, Epoch: c.m.clock.Now(), Verify: w.DiskVerify}
	size := w.DiskSize
	for _, n := range w.Disks {
		var disk Disk
		ok := c.m.cfg.Disks != nil
		if ok {
			disk, ok = c.m.cfg.Disks(n)
		}
		if !ok || disk.Size() <= int64(w.DiskOffset) {
			if c.index == 0 {
				c.out(fmt.Sprintf("tlcvm guest: disk %s not found\r\n", n))
			}
			continue
		}
		d.Names = append(d.Names, n)
		c.disks = append(c.disks, disk)
		room := uint64(disk.Size()) - w.DiskOffset
		if size == 0 || size > room {
			size = room
		}
	}
	total := size / bs
	ncpu, i := max(c.st.Regs[regNCPU], 1), c.st.Regs[regCPU]
	d.First, d.Blocks = total*i/ncpu, total*(i+1)/ncpu-total*i/ncpu
	if len(d.Names) == 0 || d.Blocks == 0 {
		return
	}
	c.st.Disk = d
	c.publishDisk()
}

// diskDue reports whether the driver has a request to make now; if not, when it will
// (guest ns; 0: never).
func (c *synthCPU) diskDue() (bool, uint64) {
	d := c.st.Disk
	if d == nil || !c.st.afterBoot() {
		return false, 0
	}
	if d.Rate == 0 {
		return true, 0
	}
	now := c.m.clock.Now()
	elapsed := uint64(0)
	if now > d.Epoch {
		elapsed = now - d.Epoch
	}
	per := d.BS * max(c.st.Regs[regNCPU], 1)
	if d.Paced < mulDiv(elapsed, d.Rate, per*1e9) {
		return true, 0
	}
	next := mulDiv(d.Paced+1, per*1e9, d.Rate)
	return false, now + uint64(max(time.Duration(next-elapsed), minPace))
}

// diskExit builds the request at the cursor: with disk-verify, first the read of the block
// (from pass 2 on), then its write.
func (c *synthCPU) diskExit() exit {
	d := c.st.Disk
	off, i, pass := d.next()
	if uint64(len(c.diskBuf)) != d.BS {
		c.diskBuf = make([]byte, d.BS)
	}
	r := &diskRequest{disk: c.disk(i), off: off, data: c.diskBuf}
	if d.Verify && !d.Verified && pass > 1 {
		r.read = true
	} else {
		FillDiskBlock(c.diskBuf, uint64(off), pass)
	}
	c.pending = r
	return exit{reason: exitDisk, disk: r}
}

// disk returns the resolved disk i (resolved again after a restore).
func (c *synthCPU) disk(i int) Disk {
	d := c.st.Disk
	if len(c.disks) != len(d.Names) {
		c.disks = c.disks[:0]
		for _, n := range d.Names {
			var disk Disk
			if c.m.cfg.Disks != nil {
				disk, _ = c.m.cfg.Disks(n)
			}
			c.disks = append(c.disks, disk)
		}
	}
	return c.disks[i]
}

// completeDisk takes the completion of the last request (the start of Run, as KVM
// completes an MMIO exit on the next KVM_RUN): done moves the cursor, a request a pause
// ended is forgotten (it is built again).
func (c *synthCPU) completeDisk() {
	r := c.pending
	c.pending = nil
	if r == nil || !r.done || c.st.Disk == nil {
		return
	}
	d := c.st.Disk
	switch {
	case r.read && r.err != nil:
		d.Errors++
		d.Verified = true
	case r.read:
		d.Read += uint64(len(r.data))
		d.Verified = true
		c.verify(r)
	case r.err != nil:
		d.Errors++
		d.advance()
	default:
		d.Written += uint64(len(r.data))
		d.advance()
	}
	c.publishDisk()
}

// verify checks a block read before its rewrite holds the previous pass.
func (c *synthCPU) verify(r *diskRequest) {
	d := c.st.Disk
	_, i, pass := d.next()
	want := make([]byte, len(r.data))
	FillDiskBlock(want, uint64(r.off), pass-1)
	if string(want) == string(r.data) {
		return
	}
	if d.Mismatches++; d.Mismatches == 1 {
		c.out(fmt.Sprintf("tlcvm guest: disk %s: block at %d is not pass %d\r\n", d.Names[i], r.off, pass-1))
	}
}

// publishDisk stores the driver's counters in guest RAM (0x6000 + 64*i).
func (c *synthCPU) publishDisk() {
	d := c.st.Disk
	r := c.m.ram
	a := uint64(gpaDiskCounters + 64*c.index)
	if d == nil || a+64 > r.size {
		return
	}
	for k, v := range []uint64{d.Pass, d.Block, d.Disk, d.Written, d.Read, d.Mismatches, d.Errors} {
		atomic.StoreUint64((*uint64)(ptr(r.mem, a+8*uint64(k))), v)
	}
	r.noteWrite(a >> pageShift)
}

// afterBoot reports whether the program runs in long mode past its boot (the driver works
// in every such stage, idle included).
func (s *CPUState) afterBoot() bool {
	return s.working() || s.RIP == ripIdle
}

// diskIO carries out a disk exit on the vCPU thread: the write, waiting for the disk (its
// throttling, a job) until it completes or kick ends the run period. It reports whether
// the request completed.
func (v *vcpu) diskIO(kick <-chan struct{}, r *diskRequest) bool {
	if isKick(kick) {
		return false // the run period is over: make the request after the resume
	}
	if r.disk == nil {
		r.done, r.err = true, fmt.Errorf("tlcvm guest: disk gone")
		return true
	}
	var err error
	if r.read {
		err = r.disk.ReadAt(kickCtx{kick}, r.data, r.off)
	} else {
		err = r.disk.WriteAt(kickCtx{kick}, r.data, r.off)
	}
	if err != nil && isKick(kick) {
		return false
	}
	r.done, r.err = true, err
	return true
}

func isKick(kick <-chan struct{}) bool {
	select {
	case <-kick:
		return true
	default:
		return false
	}
}

// kickCtx is the context of a vCPU's I/O wait: done when the run period ends (pause,
// shutdown), without a goroutine per request.
type kickCtx struct{ kick <-chan struct{} }

func (k kickCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (k kickCtx) Done() <-chan struct{}       { return k.kick }
func (k kickCtx) Value(any) any               { return nil }
func (k kickCtx) Err() error {
	if isKick(k.kick) {
		return context.Canceled
	}
	return nil
}

// ExpectDisk overlays on img (disk number disk's content from byte 0, as it was before
// the guest wrote) what the guest's driver wrote to it by the cursors of states (one per
// vCPU, as CPUState.Disk or the counters in guest RAM give them): blocks before a cursor
// hold its pass, the blocks after it the pass before (none in pass 1). A checker's
// formula, for tests and tools.
func ExpectDisk(img []byte, disk int, states []DiskState) {
	for _, d := range states {
		if d.BS == 0 || disk >= len(d.Names) {
			continue
		}
		for b := uint64(0); b < d.Blocks; b++ {
			pass := d.Pass
			if b*uint64(len(d.Names))+uint64(disk) >= d.Block*uint64(len(d.Names))+d.Disk {
				pass--
			}
			off := d.Offset + (d.First+b)*d.BS
			if pass == 0 || off+d.BS > uint64(len(img)) {
				continue
			}
			FillDiskBlock(img[off:off+d.BS], off, pass)
		}
	}
}

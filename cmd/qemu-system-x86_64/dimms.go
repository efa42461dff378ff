package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"tlcvm/machine/memtree"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
	"tlcvm/machine"
	"tlcvm/objects"
	"tlcvm/qdev"
	"tlcvm/qmp/cmds"
)

// memHotplug is the board's ACPI memory hotplug block (PIIX4 PM / ICH9 LPC) and the
// pc-dimm model: slots, the device-memory region's allocator, the guest's _OST per slot.
// It implements qdev.Model, qdev.GuestUnplug and cmds.MemoryDevices.
type memHotplug struct {
	m       *machine.Machine
	objects *objects.Registry
	emit    func(string, any)
	acpi    bool // the machine has ACPI (-machine acpi=off: no memory hotplug)
	nvdimm  bool // -machine nvdimm=on
	slots   int
	nodes   int // NUMA nodes (0: none)

	mu    sync.Mutex
	dimms []*dimmState // plugged, in plug order; +checklocks:mu
	ost   []ostState   // per slot; +checklocks:mu
}

// dimmState is a plugged DIMM (qdev.Device.State).
type dimmState struct {
	dev        *qdev.Device
	slot       int
	addr, size uint64
	node       uint32
	memdev     *objects.Object
	block      *machine.RAMBlock
}

// ostState is a slot's last _OST (QEMU's ost_event, ost_status).
type ostState struct{ source, status uint32 }

var (
	_ qdev.Model         = (*memHotplug)(nil)
	_ qdev.GuestUnplug   = (*memHotplug)(nil)
	_ cmds.MemoryDevices = (*memHotplug)(nil)
)

func newMemHotplug(v *vm, emit func(string, any), nodes int) *memHotplug {
	cfg := v.plan.cfg
	h := &memHotplug{m: v.machine, objects: v.objects, emit: emit, acpi: true, slots: int(cfg.Memory.Slots), nodes: nodes}
	if s, ok := cfg.Machine.Prop("acpi"); (ok && s == "off") || v.plan.machine.Name == "none" {
		h.acpi = false
	}
	if s, ok := cfg.Machine.Prop("nvdimm"); ok {
		h.nvdimm, _ = optval.Bool(s, optval.QAPIWords)
	}
	h.ost = make([]ostState, h.slots)
	return h
}

// maxRAMSlots is QEMU's ACPI_MAX_RAM_SLOTS.
const maxRAMSlots = 256

func isMemoryDevice(typ string) bool { return typ == "pc-dimm" || typ == "nvdimm" }

func dimmErr(format string, a ...any) error { return qerror.Errorf(qdev.ErrProperty, format, a...) }

// Check resolves the memdev link as QEMU sets it.
func (h *memHotplug) Check(d *qdev.Device) error {
	id := d.PropString("memdev")
	if _, set := d.Prop("memdev"); !set {
		return nil
	}
	o, ok := h.objects.Get(id)
	if !ok {
		return qerror.Errorf(qdev.ErrDeviceNotFound, "Device '%s' not found", id)
	}
	if o.Memory == nil {
		return dimmErr("Invalid parameter type for 'memdev', expected: memory-backend")
	}
	return nil
}

// Realize is pc_memory_pre_plug, pc_dimm_pre_plug, memory_device_pre_plug, pc_dimm_realize
// and the plug, with their errors in QEMU 7.2's order.
func (h *memHotplug) Realize(d *qdev.Device) error {
	if !h.acpi {
		return dimmErr("memory hotplug is not enabled: missing acpi device or acpi disabled")
	}
	if d.Type == "nvdimm" {
		if !h.nvdimm {
			return dimmErr("nvdimm is not enabled: missing 'nvdimm' in '-M'")
		}
		return dimmErr("nvdimm devices are not supported by tlcvm")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	slot := int64(-1)
	if v, ok := d.Prop("slot"); ok {
		_ = json.Unmarshal(v, &slot)
	}
	if (slot < 0 || slot >= int64(h.slots)) && slot != -1 {
		return dimmErr("invalid slot number %d, valid range is [0-%d]", slot, uint64(h.slots)-1)
	}
	slot, err := h.freeSlot(slot)
	if err != nil {
		return err
	}
	base, region := h.m.DeviceMemory()
	if region == 0 {
		return dimmErr("the configuration is not prepared for memory devices (e.g., for memory hotplug), consider specifying the maxmem option")
	}
	o, ok := h.objects.Get(d.PropString("memdev"))
	if _, set := d.Prop("memdev"); !set || !ok {
		return dimmErr("'memdev' property must be set")
	}
	size := o.Memory.Size
	var used uint64
	for _, s := range h.dimms {
		used += s.size
	}
	cfg := h.m.Config()
	if total := cfg.MaxMem - cfg.RAMSize; used+size < used || used+size > total {
		return dimmErr("not enough space, currently 0x%x in use of total space for memory devices 0x%x", used, total)
	}
	var hint uint64
	if v, ok := d.Prop("addr"); ok {
		_ = json.Unmarshal(v, &hint)
	}
	addr, err := h.freeAddr(base, region, hint, dimmAlign(o), size)
	if err != nil {
		return err
	}
	var node uint32
	if v, ok := d.Prop("node"); ok {
		_ = json.Unmarshal(v, &node)
	}
	if (h.nodes > 0 && int(node) >= h.nodes) || (h.nodes == 0 && node > 0) {
		return dimmErr("'DIMM property node has value %d' which exceeds the number of numa nodes: %d", node, max(h.nodes, 1))
	}
	if h.objects.InUse(o) {
		return dimmErr("can't use already busy memdev: %s", o.ID)
	}
	st := &dimmState{dev: d, slot: int(slot), addr: addr, size: size, node: node, memdev: o}
	what := fmt.Sprintf("DIMM %d %s", slot, d.ID)
	st.block, err = h.m.PlugDIMM(o.ID, addr, size, d.Hotplugged, what, h.ostFunc(int(slot)))
	if err != nil {
		return err
	}
	h.objects.Use(o)
	d.Props["slot"] = json.RawMessage(strconv.FormatInt(slot, 10))
	d.Props["addr"] = json.RawMessage(strconv.FormatUint(addr, 10))
	d.Props["size"] = json.RawMessage(strconv.FormatUint(size, 10))
	d.Props["memdev"], _ = json.Marshal("/objects/" + o.ID)
	d.State = st
	h.dimms = append(h.dimms, st)
	return nil
}

// freeSlot is pc_dimm_get_free_slot: the hint if free, else the first free slot.
func (h *memHotplug) freeSlot(hint int64) (int64, error) {
	if h.slots == 0 {
		return 0, dimmErr("no slots where allocated, please specify the 'slots' option")
	}
	busy := make([]bool, h.slots)
	for _, s := range h.dimms {
		busy[s.slot] = true
	}
	if hint >= 0 {
		if busy[hint] {
			return 0, dimmErr("slot %d is busy", hint)
		}
		return hint, nil
	}
	for i, b := range busy {
		if !b {
			return int64(i), nil
		}
	}
	return 0, dimmErr("no free slots available")
}

// dimmAlign is the back-end's RAM block alignment: anonymous RAM is mapped at
// QEMU_VMALLOC_ALIGN (2 MiB), an fd (memfd, file) at its page size unless align= says more.
func dimmAlign(o *objects.Object) uint64 {
	if o.Memory.FD < 0 {
		return 2 << 20
	}
	var align uint64
	if v, ok := o.Props["align"]; ok {
		_ = json.Unmarshal(v, &align)
	}
	return max(align, machine.PageSize)
}

// freeAddr is memory_device_get_free_addr: the hint (0: none) checked, or the first fit
// in the device-memory region [base, base+region) after the plugged devices.
func (h *memHotplug) freeAddr(base, region, hint, align, size uint64) (uint64, error) {
	if hint != 0 && hint%align != 0 {
		return 0, dimmErr("address must be aligned to 0x%x bytes", align)
	}
	if size%align != 0 {
		return 0, dimmErr("backend memory size must be multiple of 0x%x", align)
	}
	end := base + region // one past the region
	start := (base + align - 1) &^ (align - 1)
	if hint != 0 {
		if hint < base || hint+size < hint || hint+size > end {
			return 0, dimmErr("can't add memory device [0x%x:0x%x], usable range for memory devices [0x%x:0x%x]", hint, size, base, region)
		}
		start = hint
	}
	plugged := slices.Clone(h.dimms)
	slices.SortFunc(plugged, func(a, b *dimmState) int { return cmp.Compare(a.addr, b.addr) })
	for _, s := range plugged {
		if s.addr < start+size && start < s.addr+s.size {
			if hint != 0 {
				id := s.dev.ID
				if id == "" {
					id = "(unnamed)"
				}
				return 0, dimmErr("address range conflicts with memory device id='%s'", id)
			}
			start = (s.addr + s.size + align - 1) &^ (align - 1)
		} else if s.addr >= start+size {
			break
		}
	}
	if start+size < start || start+size > end {
		return 0, dimmErr("could not find position in guest address space for memory device - memory fragmented due to alignments")
	}
	return start, nil
}

// ostFunc records a slot's _OST and emits ACPI_DEVICE_OST, as acpi_memory_ost_status.
func (h *memHotplug) ostFunc(slot int) machine.OST {
	return func(source, status uint32) {
		h.mu.Lock()
		h.ost[slot] = ostState{source, status}
		info := h.ospmLocked(slot)
		h.mu.Unlock()
		h.emit("ACPI_DEVICE_OST", cmds.ACPIDeviceOSTData{Info: info})
	}
}

// ospmLocked is a slot's query-acpi-ospm-status entry.
// +checklocks:h.mu
func (h *memHotplug) ospmLocked(slot int) cmds.ACPIOSTInfo {
	info := cmds.ACPIOSTInfo{Slot: strconv.Itoa(slot), SlotType: "DIMM",
		Source: int64(h.ost[slot].source), Status: int64(h.ost[slot].status)}
	for _, s := range h.dimms {
		if s.slot == slot && s.dev.ID != "" {
			id := s.dev.ID
			info.Device = &id
		}
	}
	return info
}

// Unrealize unmaps the DIMM and frees its slot and back-end.
func (h *memHotplug) Unrealize(d *qdev.Device) {
	st, ok := d.State.(*dimmState)
	if !ok {
		return
	}
	h.mu.Lock()
	h.dimms = slices.DeleteFunc(h.dimms, func(s *dimmState) bool { return s == st })
	h.mu.Unlock()
	h.m.UnplugDIMM(st.block)
	h.objects.Release(st.memdev)
}

// UnplugRequest is the ACPI memory hotplug eject request: the guest offlines and ejects
// the DIMM (its _OST calls reach ACPI_DEVICE_OST), then it leaves.
func (h *memHotplug) UnplugRequest(d *qdev.Device, done func()) error {
	st, ok := d.State.(*dimmState)
	if !ok {
		return nil
	}
	h.m.RequestDIMMEject(st.block, fmt.Sprintf("DIMM %d %s", st.slot, d.ID), h.ostFunc(st.slot), done)
	return nil
}

// List implements cmds.MemoryDevices.
func (h *memHotplug) List() []cmds.MemoryDeviceInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := slices.Clone(h.dimms)
	slices.SortFunc(l, func(a, b *dimmState) int { return cmp.Compare(a.addr, b.addr) })
	var out []cmds.MemoryDeviceInfo
	for _, s := range l {
		info := cmds.PCDIMMDeviceInfo{Addr: s.addr, Size: s.size, Slot: int64(s.slot), Node: int64(s.node),
			Memdev: "/objects/" + s.memdev.ID, Hotplugged: s.dev.Hotplugged, Hotpluggable: true}
		if s.dev.ID != "" {
			id := s.dev.ID
			info.ID = &id
		}
		out = append(out, cmds.MemoryDeviceInfo{Type: "dimm", Variant: cmds.PCDIMMDeviceInfoWrapper{Data: info}})
	}
	return out
}

// OSPM implements cmds.MemoryDevices.
func (h *memHotplug) OSPM() ([]cmds.ACPIOSTInfo, error) {
	if !h.acpi {
		return nil, qerror.New(qdev.ErrHotplug, "command is not supported, missing ACPI device")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []cmds.ACPIOSTInfo{}
	for i := range h.ost {
		out = append(out, h.ospmLocked(i))
	}
	return out, nil
}

// Plugged implements cmds.MemoryDevices.
func (h *memHotplug) Plugged() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n uint64
	for _, s := range h.dimms {
		n += s.size
	}
	return n
}

// regions are the plugged DIMMs' RAM regions (named after their memdev), in plug order.
func (h *memHotplug) regions() []memtree.DIMM {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]memtree.DIMM, 0, len(h.dimms))
	for _, s := range h.dimms {
		out = append(out, memtree.DIMM{Name: s.memdev.ID, Addr: s.addr, Size: s.size})
	}
	return out
}

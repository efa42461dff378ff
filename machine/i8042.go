package machine

import (
	"fmt"
	"strings"
	"sync"

	"tlcvm/input"
)

// The i8042 PS/2 controller with its keyboard and mouse (QEMU's hw/input/pckbd.c and
// ps2.c), the guest's input path:
//
//	send-key, input-send-event, VNC ──> input.Router ──> PS2Keyboard / PS2Mouse (handlers)
//	    ──> controller queues (keyboard: scancode set 1, mouse: 3-byte packets)
//	    ──> IRQ 1 / IRQ 12 ──> vCPU 0 ──> the guest's handler reads port 0x60 while port
//	        0x64 says the output buffer is full, and logs each key and packet on COM1
//
// The guest's firmware programs the controller as SeaBIOS does (command byte 0x47:
// keyboard and mouse interrupts, system flag, translation to set 1), enables the mouse
// (0xa8, then 0xd4 0xf4: data reporting on, the mouse answers 0xfa). Each queue holds at
// most ps2QueueSize bytes (QEMU's PS2_BUFFER_SIZE); bytes beyond are dropped as QEMU
// drops them. The controller's state is not part of a checkpoint: keys still queued when
// the VM is saved are lost.

const (
	irqKeyboard = 1  // ISA IRQ 1: the keyboard's output buffer is full
	irqMouse    = 12 // ISA IRQ 12: the mouse's (aux) output buffer is full

	i8042Data   = 0x60
	i8042Status = 0x64

	i8042StatOBF = 0x01 // output buffer full
	i8042StatSys = 0x04
	i8042StatAux = 0x20 // the byte in the output buffer is the mouse's

	i8042CmdKbdInt = 0x01
	i8042CmdAuxInt = 0x02
	i8042CmdSys    = 0x04
	i8042CmdXlate  = 0x40

	ps2QueueSize = 256
)

// i8042 is the controller: one output queue per port.
type i8042 struct {
	mu      sync.Mutex
	kbd     []byte // +checklocks:mu
	aux     []byte // +checklocks:mu
	cmd     byte   // command byte; +checklocks:mu
	pending byte   // controller command awaiting its data byte (0x60, 0xd4); +checklocks:mu
	mouseOn bool   // data reporting enabled (0xf4); +checklocks:mu
	buttons byte   // +checklocks:mu
	dx, dy  int64  // motion accumulated since the last packet; +checklocks:mu
	raise   func(irq int)
}

func (k *i8042) reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kbd, k.aux, k.cmd, k.pending, k.mouseOn, k.buttons, k.dx, k.dy = nil, nil, 0, 0, false, 0, 0, 0
}

// Out is an outb to the controller.
func (k *i8042) Out(port uint16, v byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case port == i8042Status:
		switch v {
		case 0x60, 0xd4: // write command byte; write to the mouse
			k.pending = v
		case 0xa8: // enable the mouse port
		}
	case port == i8042Data && k.pending == 0x60:
		k.cmd, k.pending = v, 0
	case port == i8042Data && k.pending == 0xd4:
		k.pending = 0
		switch v {
		case 0xf4:
			k.mouseOn = true
		case 0xf5:
			k.mouseOn = false
		}
		k.aux = append(k.aux, 0xfa) // acknowledge
	}
}

// In is an inb from the controller: port 0x60 pops the keyboard's byte first, then the
// mouse's (as kbd_update_irq gives the keyboard priority); 0x64 is the status.
func (k *i8042) In(port uint16) byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch port {
	case i8042Status:
		st := byte(i8042StatSys)
		if len(k.kbd) > 0 {
			st |= i8042StatOBF
		} else if len(k.aux) > 0 {
			st |= i8042StatOBF | i8042StatAux
		}
		return st
	case i8042Data:
		if len(k.kbd) > 0 {
			b := k.kbd[0]
			k.kbd = k.kbd[1:]
			return b
		}
		if len(k.aux) > 0 {
			b := k.aux[0]
			k.aux = k.aux[1:]
			return b
		}
	}
	return 0
}

// PS2Keyboard is the keyboard as an input handler.
type PS2Keyboard struct{ k *i8042 }

// Mask implements input.Handler.
func (PS2Keyboard) Mask() uint32 { return 1 << input.KindKey }

// Event implements input.Handler: the key's scancodes go to the keyboard queue.
func (p PS2Keyboard) Event(e input.Event) {
	codes := input.Set1(e.QCode, e.Down)
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	if len(codes) == 0 || len(p.k.kbd)+len(codes) > ps2QueueSize {
		return
	}
	p.k.kbd = append(p.k.kbd, codes...)
}

// Sync implements input.Handler: the keyboard interrupt, if enabled.
func (p PS2Keyboard) Sync() {
	p.k.mu.Lock()
	on := p.k.cmd&i8042CmdKbdInt != 0 && len(p.k.kbd) > 0
	p.k.mu.Unlock()
	if on {
		p.k.raise(irqKeyboard)
	}
}

// PS2Mouse is the mouse as an input handler: buttons and relative motion.
type PS2Mouse struct{ k *i8042 }

// Mask implements input.Handler.
func (PS2Mouse) Mask() uint32 { return 1<<input.KindBtn | 1<<input.KindRel }

// Event implements input.Handler.
func (p PS2Mouse) Event(e input.Event) {
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	switch e.Kind {
	case input.KindBtn:
		if e.Button > 2 { // wheel and side buttons: not on a standard PS/2 mouse
			return
		}
		bit := [3]byte{1, 4, 2}[e.Button] // left, middle, right → PS/2 bits 0, 2, 1
		if e.Down {
			k.buttons |= bit
		} else {
			k.buttons &^= bit
		}
	case input.KindRel:
		if e.Axis == 0 {
			k.dx += e.Value
		} else {
			k.dy += e.Value
		}
	}
}

// Sync implements input.Handler: one packet (ps2_mouse_send_packet: bit 3 set, sign
// bits, dx, -dy clamped to 9 bits), when reporting is on.
func (p PS2Mouse) Sync() {
	k := p.k
	k.mu.Lock()
	if !k.mouseOn || len(k.aux)+3 > ps2QueueSize {
		k.mu.Unlock()
		return
	}
	dx, dy := max(min(k.dx, 255), -256), max(min(-k.dy, 255), -256)
	k.dx, k.dy = 0, 0
	b := 0x08 | k.buttons
	if dx < 0 {
		b |= 0x10
	}
	if dy < 0 {
		b |= 0x20
	}
	k.aux = append(k.aux, b, byte(dx), byte(dy))
	on := k.cmd&i8042CmdAuxInt != 0
	k.mu.Unlock()
	if on {
		k.raise(irqMouse)
	}
}

// Keyboard and Mouse are the machine's PS/2 devices, for the input router.
func (m *Machine) Keyboard() PS2Keyboard { return PS2Keyboard{&m.kbc} }

// Mouse is the PS/2 mouse.
func (m *Machine) Mouse() PS2Mouse { return PS2Mouse{&m.kbc} }

// HasPS2 reports whether the machine has the i8042 (pc and q35 do; none does not).
func (m *Machine) HasPS2() bool { return m.cfg.Type != "none" }

// raiseIRQ makes vCPU 0 take an interrupt line at its next run (the I/O APIC routes
// ISA interrupts to the bootstrap processor).
func (m *Machine) raiseIRQ(line int) {
	m.noteIRQLevel(line, 1)
	m.irqs.Or(1 << line)
	m.wakeBSP()
}

// pendingIRQs takes the lines raised since the last call.
func (m *Machine) pendingIRQs() uint32 { return m.irqs.Swap(0) }

// guestInit is the firmware's controller set-up (SeaBIOS's ps2port init, reduced).
func (k *i8042) guestInit() {
	k.Out(i8042Status, 0x60)
	k.Out(i8042Data, i8042CmdKbdInt|i8042CmdAuxInt|i8042CmdSys|i8042CmdXlate)
	k.Out(i8042Status, 0xa8)
	k.Out(i8042Status, 0xd4)
	k.Out(i8042Data, 0xf4)
	for k.In(i8042Status)&i8042StatOBF != 0 { // flush: the mouse's acknowledge, and
		k.In(i8042Data) // keys typed before the firmware ran (SeaBIOS flushes too)
	}
}

// guestDrain is the guest's keyboard and mouse interrupt handler: it reads every byte
// the controller holds and returns the lines it logs (docs/workload.md):
//
//	tlcvm guest: key 1e press          one line per key: its set 1 bytes, press|release
//	tlcvm guest: key e0 48 release
//	tlcvm guest: mouse buttons=1 dx=10 dy=-5
func (k *i8042) guestDrain() []string {
	var out []string
	var key []byte
	var pkt []byte
	need := 0
	for {
		st := k.In(i8042Status)
		if st&i8042StatOBF == 0 {
			break
		}
		b := k.In(i8042Data)
		if st&i8042StatAux != 0 {
			if len(pkt) == 0 && b&0x08 == 0 {
				continue // not the first byte of a packet (an acknowledge)
			}
			pkt = append(pkt, b)
			if len(pkt) == 3 {
				dx, dy := int(pkt[1]), int(pkt[2])
				if pkt[0]&0x10 != 0 {
					dx -= 256
				}
				if pkt[0]&0x20 != 0 {
					dy -= 256
				}
				out = append(out, fmt.Sprintf("tlcvm guest: mouse buttons=%d dx=%d dy=%d\r\n", pkt[0]&7, dx, -dy))
				pkt = pkt[:0]
			}
			continue
		}
		key = append(key, b)
		switch {
		case len(key) == 1 && b == 0xe0:
			need = 1
			continue
		case len(key) == 1 && b == 0xe1:
			need = 2
			continue
		case need > 0:
			need--
			if need > 0 {
				continue
			}
		}
		var hex []string
		for _, c := range key {
			hex = append(hex, fmt.Sprintf("%02x", c))
		}
		dir := "press"
		if key[len(key)-1]&0x80 != 0 {
			dir = "release"
		}
		out = append(out, fmt.Sprintf("tlcvm guest: key %s %s\r\n", strings.Join(hex, " "), dir))
		key = key[:0]
	}
	return out
}

// guestInput is the guest's interrupt handler for the keyboard and mouse lines: once its
// firmware has run, it drains the controller and logs; before, the lines stay pending.
func (c *synthCPU) guestInput() {
	if c.st.RIP == ripReset || c.st.RIP == ripOff {
		return
	}
	c.irq &^= 1<<irqKeyboard | 1<<irqMouse
	for _, l := range c.m.kbc.guestDrain() {
		c.out(l)
	}
}

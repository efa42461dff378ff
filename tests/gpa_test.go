package tests_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestGpa2hva: HMP gpa2hva prints where tlcvm's guest RAM really is. Once the guest has
// written its page tables and data, the bytes at the printed host virtual address of
// tlcvm's process (/proc/PID/mem) are the bytes xp shows at the guest-physical address;
// gpa2hpa prints a host physical address at the same offset in its page. (The error texts
// are compared with QEMU in testdata/qmp/gpa.txt.)
func TestGpa2hva(t *testing.T) {
	p, hmp, tlb := pagingGuest(t)
	hmp("stop")
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	tlbLine := regexp.MustCompile(`(?m)^[0-9a-f]{16}: ([0-9a-f]{16}) `)
	hvaLine := regexp.MustCompile(`^Host virtual address for 0x([0-9a-f]+) \(pc\.ram\) is 0x([0-9a-f]+)\n$`)
	hpaLine := regexp.MustCompile(`^Host physical address for 0x([0-9a-f]+) \(pc\.ram\) is 0x([0-9a-f]+)\n$`)
	word := regexp.MustCompile(`0x([0-9a-f]{16})`)
	// The page-table root (its first entry is not zero) and the pages the guest mapped.
	cr3 := regexp.MustCompile(`CR3=([0-9a-f]{16})`).FindStringSubmatch(hmp("info registers"))
	if cr3 == nil {
		t.Fatal("info registers shows no CR3")
	}
	pas := []string{cr3[1]}
	for _, m := range tlbLine.FindAllStringSubmatch(tlb, -1) {
		pas = append(pas, m[1])
	}
	nonZero := 0
	for i, s := range pas {
		pa, _ := strconv.ParseUint(s, 16, 64)
		if pa >= 128<<20 || i > 64 {
			continue // the guest maps more than its RAM
		}
		if i > 0 {
			pa += 0x40
		}
		out := hmp(fmt.Sprintf("gpa2hva 0x%x", pa))
		h := hvaLine.FindStringSubmatch(out)
		if h == nil || h[1] != strconv.FormatUint(pa, 16) {
			t.Fatalf("gpa2hva 0x%x: %q", pa, out)
		}
		hva, _ := strconv.ParseUint(h[2], 16, 64)
		var host [64]byte
		if _, err := mem.ReadAt(host[:], int64(hva)); err != nil {
			t.Fatalf("reading tlcvm's memory at 0x%x: %v", hva, err)
		}
		words := word.FindAllStringSubmatch(hmp(fmt.Sprintf("xp /8xg 0x%x", pa)), -1)
		if len(words) != 8 {
			t.Fatalf("xp /8xg 0x%x: %d words", pa, len(words))
		}
		for i, w := range words {
			v, _ := strconv.ParseUint(w[1], 16, 64)
			if got := binary.LittleEndian.Uint64(host[8*i:]); got != v {
				t.Fatalf("guest 0x%x: xp shows %#x, host address 0x%x holds %#x", pa+uint64(8*i), v, hva+uint64(8*i), got)
			}
			if v != 0 {
				nonZero++
			}
		}
		out = hmp(fmt.Sprintf("gpa2hpa 0x%x", pa))
		if h := hpaLine.FindStringSubmatch(out); h == nil {
			t.Errorf("gpa2hpa 0x%x: %q", pa, out)
		} else if hpa, _ := strconv.ParseUint(h[2], 16, 64); hpa&0xfff != pa&0xfff || os.Geteuid() == 0 && hpa < 0x1000 {
			t.Errorf("gpa2hpa 0x%x: host physical 0x%x", pa, hpa)
		}
	}
	if nonZero == 0 {
		t.Fatal("the guest's mapped pages held only zeros: nothing compared")
	}
}

package blockdev

import (
	"fmt"
	"strings"
	"testing"
)

// mediaTable is every primitive in every state of every kind of device, as QEMU 7.2's
// block/qapi-sysemu.c and the device callbacks (hw/ide/core.c ide_cd_*, hw/block/fdc.c
// fd_change_cb) answer it; the differential transcripts (tests/testdata/qmp/media.txt)
// check the same transitions against the binary.
//
// State: tray o(pen)/c(losed), L(ocked)/-, M(edium)/-. Effects: moved (DEVICE_TRAY_MOVED),
// ejectreq (the guest's eject button), detach/attach (the medium's node), unload/load (the
// floppy's permission callback).
const mediaTable = `
# kind  state op          next outcome            effects
tray    c--   open        o--  ok                 moved
tray    c-M   open        o-M  ok                 moved
tray    cL-   open        cL-  locked             ejectreq
tray    cLM   open        cLM  locked             ejectreq
tray    o--   open        o--  ok                 -
tray    o-M   open        o-M  ok                 -
tray    oL-   open        oL-  ok                 -
tray    oLM   open        oLM  ok                 -
tray    c--   open-force  o--  ok                 moved
tray    c-M   open-force  o-M  ok                 moved
tray    cL-   open-force  o--  ok                 moved,ejectreq
tray    cLM   open-force  o-M  ok                 moved,ejectreq
tray    o--   open-force  o--  ok                 -
tray    o-M   open-force  o-M  ok                 -
tray    oL-   open-force  oL-  ok                 -
tray    oLM   open-force  oLM  ok                 -
tray    c--   close       c--  ok                 -
tray    c-M   close       c-M  ok                 -
tray    cL-   close       cL-  ok                 -
tray    cLM   close       cLM  ok                 -
tray    o--   close       c--  ok                 moved
tray    o-M   close       c-M  ok                 moved
tray    oL-   close       cL-  ok                 moved
tray    oLM   close       cLM  ok                 moved
tray    c--   remove      c--  tray-closed        -
tray    c-M   remove      c-M  tray-closed        -
tray    cL-   remove      cL-  tray-closed        -
tray    cLM   remove      cLM  tray-closed        -
tray    o--   remove      o--  ok                 -
tray    o-M   remove      o--  ok                 detach
tray    oL-   remove      oL-  ok                 -
tray    oLM   remove      oL-  ok                 detach
tray    c--   insert      c--  anon-tray-closed   -
tray    c-M   insert      c-M  anon-tray-closed   -
tray    cL-   insert      cL-  anon-tray-closed   -
tray    cLM   insert      cLM  anon-tray-closed   -
tray    o--   insert      o-M  ok                 attach
tray    o-M   insert      o-M  has-medium         -
tray    oL-   insert      oLM  ok                 attach
tray    oLM   insert      oLM  has-medium         -
tray    c--   lock        cL-  ok                 -
tray    cLM   lock        cLM  ok                 -
tray    o-M   lock        oLM  ok                 -
tray    cLM   unlock      c-M  ok                 -
tray    oL-   unlock      o--  ok                 -
tray    c-M   unlock      c-M  ok                 -
slot    c--   open        c--  no-tray            -
slot    c-M   open        c-M  no-tray            -
slot    c--   open-force  c--  no-tray            -
slot    c-M   open-force  c-M  no-tray            -
slot    c--   close       c--  ok                 -
slot    c-M   close       c-M  ok                 -
slot    c--   remove      c--  ok                 -
slot    c-M   remove      c--  ok                 detach,unload
slot    c--   insert      c-M  ok                 attach,load
slot    c-M   insert      c-M  has-medium         -
slot    c-M   lock        c-M  ok                 -
slot    c-M   unlock      c-M  ok                 -
none    c--   open        c--  no-tray            -
none    c-M   open        c-M  no-tray            -
none    c--   open-force  c--  no-tray            -
none    c-M   open-force  c-M  no-tray            -
none    c--   close       c--  ok                 -
none    c-M   close       c-M  ok                 -
none    c--   remove      c--  ok                 -
none    c-M   remove      c--  ok                 detach
none    c--   insert      c-M  ok                 attach
none    c-M   insert      c-M  has-medium         -
none    c-M   lock        c-M  ok                 -
fixed   c-M   open        c-M  not-removable      -
fixed   c-M   open-force  c-M  not-removable      -
fixed   c-M   close       c-M  not-removable      -
fixed   c-M   remove      c-M  not-removable      -
fixed   c-M   insert      c-M  anon-not-removable -
fixed   c-M   lock        c-M  ok                 -
fixed   c-M   unlock      c-M  ok                 -
`

func parseMedia(t *testing.T, s string) Media {
	t.Helper()
	if len(s) != 3 || !strings.ContainsRune("oc", rune(s[0])) || !strings.ContainsRune("L-", rune(s[1])) || !strings.ContainsRune("M-", rune(s[2])) {
		t.Fatalf("bad state %q", s)
	}
	return Media{Open: s[0] == 'o', Locked: s[1] == 'L', Inserted: s[2] == 'M'}
}

func lookupName[T fmt.Stringer](t *testing.T, what, name string, all []T) T {
	t.Helper()
	for _, v := range all {
		if v.String() == name {
			return v
		}
	}
	t.Fatalf("unknown %s %q", what, name)
	panic("unreachable")
}

var outcomeNames = map[string]outcome{
	"ok": outOK, "not-removable": outNotRemovable, "no-tray": outNoTray, "locked": outLocked,
	"tray-closed": outTrayClosed, "anon-not-removable": outAnonNotRemovable,
	"anon-tray-closed": outAnonTrayClosed, "has-medium": outHasMedium,
}

func effectsString(e effects) string {
	var out []string
	for _, f := range []struct {
		on   bool
		name string
	}{{e.moved, "moved"}, {e.ejectReq, "ejectreq"}, {e.detach, "detach"}, {e.attach, "attach"}, {e.unload, "unload"}, {e.load, "load"}} {
		if f.on {
			out = append(out, f.name)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}

func TestMediaStep(t *testing.T) {
	kinds := []mediaKind{mediaNone, mediaFixed, mediaSlot, mediaTray}
	ops := []mediaOp{opOpen, opOpenForce, opClose, opRemove, opInsert, opLock, opUnlock}
	seen := map[string]bool{}
	for _, line := range strings.Split(mediaTable, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 6 {
			t.Fatalf("bad row %q", line)
		}
		k := lookupName(t, "kind", f[0], kinds)
		op := lookupName(t, "op", f[2], ops)
		want, ok := outcomeNames[f[4]]
		if !ok {
			t.Fatalf("unknown outcome %q", f[4])
		}
		s, next := parseMedia(t, f[1]), parseMedia(t, f[3])
		seen[f[0]+" "+f[2]] = true
		r := mediaStep(k, s, op)
		if r.next != next || r.out != want || effectsString(r.eff) != f[5] {
			t.Errorf("%s %s %s: got %s %s %s, want %s %s %s", f[0], f[1], f[2],
				r.next, r.out, effectsString(r.eff), next, f[4], f[5])
		}
		// An error changes nothing but what QEMU does before refusing (the eject request).
		if r.out != outOK && r.out != outLocked && (r.next != s || r.eff != (effects{})) {
			t.Errorf("%s %s %s: refused with effects %s", f[0], f[1], f[2], effectsString(r.eff))
		}
	}
	for _, k := range kinds {
		for _, op := range ops {
			if !seen[k.String()+" "+op.String()] && !(k == mediaNone && op == opUnlock) {
				t.Errorf("table has no row for %s %s", k, op)
			}
		}
	}
}

// Every outcome has QEMU's text, naming the device or id the command was given.
func TestMediaOutcomeTexts(t *testing.T) {
	want := map[outcome]string{
		outNotRemovable:     "Device 'cd0' is not removable",
		outNoTray:           "Device 'cd0' does not have a tray",
		outLocked:           "Device 'cd0' is locked and force was not specified, wait for tray to open and try again",
		outTrayClosed:       "Tray of device 'cd0' is not open",
		outAnonNotRemovable: "Device is not removable",
		outAnonTrayClosed:   "Tray of the device is not open",
		outHasMedium:        "There already is a medium in the device",
	}
	if outOK.err("cd0") != nil {
		t.Error("outOK is an error")
	}
	for o, text := range want {
		if got := o.err("cd0").Error(); got != text {
			t.Errorf("outcome %d: %q, want %q", o, got, text)
		}
	}
}

func (o outcome) String() string {
	for name, v := range outcomeNames {
		if v == o {
			return name
		}
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

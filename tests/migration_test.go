package tests_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// End-to-end tests of issue 3 (checkpoint / migration) against the built binary.

// mvm is one tlcvm process with a QMP socket (and optionally an HMP one).
type mvm struct {
	t   *testing.T
	p   *harness.Process
	q   *harness.QMP
	dir string
}

func startMigVM(t *testing.T, bin, dir, name string, args ...string) *mvm {
	t.Helper()
	return startNamedVM(t, bin, dir, name, append([]string{"-nodefaults"}, args...)...)
}

// startNamedVM is startMigVM with QEMU's default devices (unless args say -nodefaults).
func startNamedVM(t *testing.T, bin, dir, name string, args ...string) *mvm {
	t.Helper()
	sock := filepath.Join(dir, name+".qmp")
	all := append([]string{"-display", "none", "-qmp", "unix:" + sock + ",server=on,wait=off"}, args...)
	p := harness.Start(t, harness.Config{Bin: bin, Args: all, Dir: dir})
	q, err := harness.DialQMP(sock, p, harness.DefaultTimeout)
	if err != nil {
		t.Fatalf("%s: %v (stderr %s)", name, err, p.Stderr.Bytes())
	}
	if err := q.Connect(); err != nil {
		t.Fatal(err)
	}
	return &mvm{t: t, p: p, q: q, dir: dir}
}

// do runs a command and returns its "return" value, failing on an error reply.
func (v *mvm) do(cmd string, args any) harness.Value {
	v.t.Helper()
	r, err := v.q.Execute(cmd, args)
	if err != nil {
		v.t.Fatalf("%s: %v", cmd, err)
	}
	ret, ok := r.Value.Get("return")
	if !ok {
		v.t.Fatalf("%s: %s", cmd, r.Raw)
	}
	return ret
}

// doFiles is do with descriptors passed by SCM_RIGHTS.
func (v *mvm) doFiles(cmd string, args any, files ...*os.File) {
	v.t.Helper()
	raw, _ := json.Marshal(map[string]any{"execute": cmd, "arguments": args})
	if err := v.q.SendWithFiles(raw, files...); err != nil {
		v.t.Fatal(err)
	}
	for {
		m, err := v.q.Recv()
		if err != nil {
			v.t.Fatal(err)
		}
		if m.IsEvent() {
			continue
		}
		if _, ok := m.Value.Get("return"); !ok {
			v.t.Fatalf("%s: %s", cmd, m.Raw)
		}
		return
	}
}

func (v *mvm) status() string {
	v.t.Helper()
	s, _ := v.do("query-status", nil).Get("status")
	return s.Str()
}

// waitMigration polls query-migrate until the status is one of want.
func (v *mvm) waitMigration(want ...string) harness.Value {
	v.t.Helper()
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		info := v.do("query-migrate", nil)
		st, _ := info.Get("status")
		for _, w := range want {
			if st.Str() == w {
				return info
			}
		}
		if st.Str() == "failed" {
			v.t.Fatalf("migration failed: %s", info)
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("migration still %s", info)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFilled waits until every vCPU has filled its share of the working set and rewrites it
// (the workload's loop stage, RIP 0x100080; docs/workload.md): the fill is paced by rate=.
func (v *mvm) waitFilled() {
	v.t.Helper()
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		regs := v.do("human-monitor-command", map[string]any{"command-line": "info registers"}).Str()
		if strings.Count(regs, "RIP=") > 0 && strings.Count(regs, "RIP=0000000000100080") == strings.Count(regs, "RIP=") {
			return
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("the working set is still being filled: %s", regs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (v *mvm) pmemsave(ram int, path string) []byte {
	v.t.Helper()
	v.do("pmemsave", map[string]any{"val": 0, "size": ram, "filename": path})
	b, err := os.ReadFile(path)
	if err != nil {
		v.t.Fatal(err)
	}
	return b
}

func (v *mvm) quit() {
	v.t.Helper()
	_, _ = v.q.Execute("quit", nil)
	if _, err := v.p.Wait(harness.DefaultTimeout); err != nil {
		v.t.Fatal(err)
	}
}

const migRAM = 128 << 20

func migArgs(workload string, extra ...string) []string {
	return append([]string{"-machine", "pc", "-m", "128", "-fw_cfg", "name=opt/tlcvm/workload,string=" + workload}, extra...)
}

// TestMigrationRoundTrip checkpoints a busy guest through every transport and restores
// it: the destination's RAM before cont equals the source's in postmigrate.
func TestMigrationRoundTrip(t *testing.T) {
	bin := requireCandidate(t)
	for _, tr := range []string{"exec", "file", "unix", "tcp", "fd"} {
		t.Run(tr, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			load := "ws=16M,,rate=max"
			if tr == "exec" {
				load = "ws=64M,,rate=max" // the busy workload of the issue
			}
			chk := filepath.Join(dir, "a.chk")
			var out, in string
			var dst *mvm
			switch tr {
			case "exec":
				out, in = "exec:cat > "+chk, "exec:cat "+chk
			case "file":
				out, in = "file:"+chk, "file:"+chk
			case "unix":
				out = "unix:" + filepath.Join(dir, "mig.sock")
				in = out
			case "tcp":
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				port := l.Addr().(*net.TCPAddr).Port
				l.Close()
				out = fmt.Sprintf("tcp:127.0.0.1:%d", port)
				in = out
			case "fd":
				out, in = "fd:out", "defer"
			}
			if tr == "unix" || tr == "tcp" {
				dst = startMigVM(t, bin, dir, "dst", migArgs(load, "-S", "-incoming", in)...)
			}
			src := startMigVM(t, bin, dir, "src", migArgs(load)...)
			src.do("migrate-set-capabilities", map[string]any{"capabilities": []map[string]any{{"capability": "events", "state": true}}})
			src.do("migrate-set-parameters", map[string]any{"max-bandwidth": uint64(9223372036853727232)})
			if tr == "fd" {
				f, err := os.Create(chk)
				if err != nil {
					t.Fatal(err)
				}
				src.doFiles("getfd", map[string]any{"fdname": "out"}, f)
				f.Close()
			}
			src.do("migrate", map[string]any{"uri": out})
			info := src.waitMigration("completed")
			if _, ok := info.Get("x-tlc-stages"); !ok {
				t.Errorf("query-migrate without x-tlc-stages: %s", info)
			}
			if st := src.status(); st != "postmigrate" {
				t.Fatalf("source %s, want postmigrate", st)
			}
			want := src.pmemsave(migRAM, filepath.Join(dir, "src.mem"))
			src.quit()
			if dst == nil {
				if tr == "fd" {
					dst = startMigVM(t, bin, dir, "dst", migArgs(load, "-S", "-incoming", "defer")...)
					f, err := os.Open(chk)
					if err != nil {
						t.Fatal(err)
					}
					dst.doFiles("getfd", map[string]any{"fdname": "in"}, f)
					f.Close()
					dst.do("migrate-incoming", map[string]any{"uri": "fd:in"})
				} else {
					dst = startMigVM(t, bin, dir, "dst", migArgs(load, "-S", "-incoming", in)...)
				}
			}
			dst.waitMigration("completed")
			if st := dst.status(); st != "paused" {
				t.Fatalf("destination %s, want paused (-S, source was running)", st)
			}
			got := dst.pmemsave(migRAM, filepath.Join(dir, "dst.mem"))
			if !bytes.Equal(got, want) {
				t.Fatal("restored RAM differs from the source's")
			}
			dst.do("cont", nil)
			if st := dst.status(); st != "running" {
				t.Errorf("destination after cont: %s", st)
			}
			dst.quit()
		})
	}
}

// TestMigrationTLCSeedSession replays the seed's HMP session: with x-tlc, two
// checkpoints in a row through "exec: dd" while the guest runs, then a restore from the
// first.
func TestMigrationTLCSeedSession(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	hsock := filepath.Join(dir, "hmp.sock")
	src := startMigVM(t, bin, dir, "src", migArgs("ws=16M,,rate=max", "-global", "migration.x-tlc=on",
		"-monitor", "unix:"+hsock+",server=on,wait=off")...)
	h, err := harness.DialHMP(hsock, src.p, harness.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Banner(); err != nil {
		t.Fatal(err)
	}
	out, err := h.Command("info migrate_capabilities")
	if err != nil || !strings.Contains(out, "x-tlc: on") {
		t.Fatalf("x-tlc not on: %q %v", out, err)
	}
	for _, name := range []string{"a.chk", "b.chk"} {
		out, err := h.Command(fmt.Sprintf(`migrate "exec: dd of=%s"`, filepath.Join(dir, name)))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"setup: ", "stage 1: ", "stage 2: ", "stage 3: ", "thread ", "cpu ", "total: ", "downtime: "} {
			if !strings.Contains(out, w) {
				t.Errorf("stage report lacks %q:\n%s", w, out)
			}
		}
		if st := src.status(); st != "running" {
			t.Fatalf("after checkpoint %s: %s, want running", name, st)
		}
	}
	out, _ = h.Command("info migrate")
	if !strings.Contains(out, "Migration status: completed") || !strings.Contains(out, "checkpoint stages:") {
		t.Errorf("info migrate:\n%s", out)
	}
	h.Close()
	src.quit()
	dst := startMigVM(t, bin, dir, "dst", migArgs("ws=16M,,rate=max", "-incoming", "exec: dd if="+filepath.Join(dir, "a.chk"))...)
	dst.waitMigration("completed")
	if st := dst.status(); st != "running" {
		t.Fatalf("restored guest %s, want running", st)
	}
	dst.quit()
}

// TestMigrationCancel cancels a slow checkpoint: the source keeps running.
func TestMigrationCancel(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	src := startMigVM(t, bin, dir, "src", migArgs("ws=32M,,rate=max")...)
	src.do("migrate-set-parameters", map[string]any{"max-bandwidth": 1 << 20})
	src.do("migrate", map[string]any{"uri": "exec:cat >/dev/null"})
	src.waitMigration("active")
	src.do("migrate_cancel", nil)
	src.waitMigration("cancelled")
	if st := src.status(); st != "running" {
		t.Fatalf("after cancel: %s", st)
	}
	src.do("migrate-set-parameters", map[string]any{"max-bandwidth": 0})
	src.do("migrate", map[string]any{"uri": "file:" + filepath.Join(dir, "after.chk")})
	src.waitMigration("completed")
	src.quit()
}

// TestMigrationFailures: the command exits, the destination is unreachable — failed with
// error-desc, the guest runs on, a later migrate works.
func TestMigrationFailures(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	src := startMigVM(t, bin, dir, "src", migArgs("ws=16M,,rate=max")...)
	for _, tc := range []struct{ uri, desc string }{
		{"exec:exit 1", "Unable to write to command: Broken pipe"},
		{"tcp:127.0.0.1:1", "Failed to connect to '127.0.0.1:1': Connection refused"},
		{"unix:" + filepath.Join(dir, "none.sock"), "Failed to connect to"},
	} {
		src.do("migrate", map[string]any{"uri": tc.uri})
		info := src.waitMigration("failed")
		desc, _ := info.Get("error-desc")
		if !strings.Contains(desc.Str(), tc.desc) {
			t.Errorf("%s: error-desc %q", tc.uri, desc.Str())
		}
		if st := src.status(); st != "running" {
			t.Errorf("%s: source %s", tc.uri, st)
		}
	}
	src.do("migrate", map[string]any{"uri": "file:" + filepath.Join(dir, "ok.chk")})
	src.waitMigration("completed")
	src.quit()
	if !strings.Contains(string(src.p.Stderr.Bytes()), "qemu-system-x86_64: Unable to write to command: Broken pipe") {
		t.Errorf("stderr: %s", src.p.Stderr.Bytes())
	}
}

// TestMigrationDamagedStream: a corrupted and a truncated stream make the destination
// print QEMU's error and exit 1, with nothing run.
func TestMigrationDamagedStream(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	chk := filepath.Join(dir, "good.chk")
	src := startMigVM(t, bin, dir, "src", migArgs("ws=8M,,rate=max")...)
	src.do("migrate", map[string]any{"uri": "file:" + chk})
	src.waitMigration("completed")
	src.quit()
	good, err := os.ReadFile(chk)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 1
	for name, data := range map[string][]byte{"corrupt": flipped, "truncated": good[:len(good)*2/3]} {
		path := filepath.Join(dir, name+".chk")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		p := harness.Start(t, harness.Config{Bin: bin, Dir: dir,
			Args: append([]string{"-nodefaults", "-display", "none"}, migArgs("ws=8M,,rate=max", "-incoming", "exec:cat "+path)...)})
		st, err := p.Wait(harness.DefaultTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if st.Code != 1 || !strings.Contains(string(p.Stderr.Bytes()), "qemu-system-x86_64: load of migration failed: ") {
			t.Errorf("%s: exit %s, stderr %q", name, st, p.Stderr.Bytes())
		}
	}
}

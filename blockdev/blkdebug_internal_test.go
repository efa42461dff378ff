package blockdev

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBlkdebugConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bd.conf")
	conf := "# comment\n[inject-error]\nevent = \"read_aio\"\nerrno = \"0x1c\"\nonce = \"on\"\nsector = \"8\"\n\n" +
		"[set-state]\n  event = \"write_aio\"\nstate = \"1\"\nnew_state = \"2\"\n[other \"id\"]\nx = \"y\"\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var o BlkdebugOptions
	if err := readBlkdebugConfig(path, &o); err != nil {
		t.Fatal(err)
	}
	if len(o.InjectError) != 1 || len(o.SetState) != 1 {
		t.Fatalf("%+v", o)
	}
	ie, ss := o.InjectError[0], o.SetState[0]
	if ie.Event != "read_aio" || *ie.Errno != 28 || !ie.Once || *ie.Sector != 8 || ss.Event != "write_aio" || ss.State != 1 || ss.NewState != 2 {
		t.Errorf("%+v %+v", ie, ss)
	}
	for _, bad := range []string{"event = \"x\"\n", "[inject-error]\nevent = read_aio\n", "[inject-error]\nerrno = \"x\"\n", "[inject-error\n"} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := readBlkdebugConfig(path, &BlkdebugOptions{}); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	if err := readBlkdebugConfig(filepath.Join(t.TempDir(), "nosuch"), &o); err == nil || err.Error() != "Could not read blkdebug config file: No such file or directory" {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := splitBlkdebugFilename("nocolon"); err == nil {
		t.Error("blkdebug:nocolon accepted")
	}
}

// FuzzBlkdebugConfig: any config file is parsed or refused, and its rules built or
// refused, without a panic.
func FuzzBlkdebugConfig(f *testing.F) {
	f.Add("[inject-error]\nevent = \"read_aio\"\nerrno = \"5\"\n")
	f.Add("[set-state]\nevent = \"none\"\nnew_state = \"-1\"\n# x\n")
	f.Add("[inject-error \"a\"]\niotype = \"flush\"\nonce = \"yes\"\nimmediately = \"n\"\n")
	f.Fuzz(func(t *testing.T, conf string) {
		path := filepath.Join(t.TempDir(), "c")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		var o BlkdebugOptions
		if readBlkdebugConfig(path, &o) == nil {
			d, err := newBlkdebug(&o)
			if err == nil {
				d.event(evReadAIO)
				_ = d.check(0, 512, ioRead)
			}
		}
	})
}

package sigpid_test

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"tlcvm/internal/sigpid"
)

func TestNotifyReportsSenderPID(t *testing.T) {
	ch, err := sigpid.Notify()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s := <-ch
	if s.Num != syscall.SIGHUP || s.PID != os.Getpid() {
		t.Fatalf("got %+v, want SIGHUP from %d", s, os.Getpid())
	}
	rep := sigpid.Report(s)
	if !strings.HasPrefix(rep, "terminating on signal 1 from pid ") || !strings.HasSuffix(rep, ")") {
		t.Fatalf("report %q", rep)
	}
	if got := sigpid.Report(sigpid.Signal{Num: 15}); got != "terminating on signal 15" {
		t.Fatalf("report %q", got)
	}
}

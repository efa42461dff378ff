package qerror_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"

	"tlcvm/compat/qerror"
)

var (
	errKind  = errors.New("kind")
	errOther = errors.New("other kind")
)

func TestErrorfIsKind(t *testing.T) {
	err := qerror.Errorf(errKind, "Device '%s' not found", "x")
	if err.Error() != "Device 'x' not found" {
		t.Fatalf("text %q", err)
	}
	if !errors.Is(err, errKind) || errors.Is(err, errOther) {
		t.Fatalf("errors.Is on kind wrong")
	}
	if qerror.Hint(err) != "" {
		t.Fatalf("unexpected hint")
	}
	if u := qerror.New(nil, "x").Unwrap(); u != nil {
		t.Fatalf("Unwrap of a kindless, causeless error = %v", u)
	}
}

func TestErrnoKeepsCause(t *testing.T) {
	_, cause := os.Open("/nonexistent/x")
	err := qerror.Errno(errKind, cause, "Could not open '%s'", "/nonexistent/x")
	if want := "Could not open '/nonexistent/x': No such file or directory"; err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	if !errors.Is(err, errKind) || !errors.Is(err, syscall.ENOENT) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("kind or cause lost: %v", err)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("errors.As does not reach the *os.PathError")
	}
}

func TestHintAndReport(t *testing.T) {
	err := qerror.Errorf(errKind, "Parameter 'id' expects an identifier").
		AppendHint("Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n")
	wrapped := fmt.Errorf("context: %w", err)
	if qerror.Hint(wrapped) != err.Hint {
		t.Fatalf("Hint through %%w = %q", qerror.Hint(wrapped))
	}
	want := "Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n"
	if got := qerror.Report(err); got != want {
		t.Fatalf("Report = %q, want %q", got, want)
	}
	if got := qerror.Report(errors.New("plain")); got != "plain\n" {
		t.Fatalf("Report(plain) = %q", got)
	}
}

func TestPrepend(t *testing.T) {
	base := qerror.Wrapf(errKind, syscall.EPIPE, "Unable to write").AppendHint("hint\n")
	err := qerror.Prepend(base, "%s: ", "prog")
	var e *qerror.Error
	if !errors.As(err, &e) || e.Msg != "prog: Unable to write" || e.Hint != "hint\n" {
		t.Fatalf("Prepend = %#v", err)
	}
	if !errors.Is(err, errKind) || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Prepend lost kind or cause")
	}
	if base.Msg != "Unable to write" {
		t.Fatalf("Prepend changed its argument: %q", base.Msg)
	}
	plain := errors.New("plain")
	err = qerror.Prepend(plain, "p: ")
	if err.Error() != "p: plain" || !errors.Is(err, plain) {
		t.Fatalf("Prepend(plain) = %v", err)
	}
	if qerror.Prepend(nil, "p: ") != nil {
		t.Fatalf("Prepend(nil) != nil")
	}
}

func TestFind(t *testing.T) {
	inner := qerror.Wrapf(errOther, syscall.EPIPE, "Unable to write to command: Broken pipe")
	outer := qerror.Wrapf(errKind, fmt.Errorf("section ram: %w", inner), "section ram: %v", inner)
	if got := qerror.Find(outer, errOther); got != inner {
		t.Fatalf("Find(errOther) = %v", got)
	}
	if got := qerror.Find(outer, errKind, errOther); got != outer {
		t.Fatalf("Find(errKind, errOther) = %v, want the outer error", got)
	}
	if qerror.Find(errors.New("x"), errKind) != nil || qerror.Find(nil, errKind) != nil {
		t.Fatalf("Find found something in a chain without *Error")
	}
}

func TestStrerror(t *testing.T) {
	_, notExist := os.Open("/nonexistent/x")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	_, closed := ln.Accept()
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "Success"},
		{notExist, "No such file or directory"},
		{syscall.EPIPE, "Broken pipe"},
		{fmt.Errorf("x: %w", syscall.EAGAIN), "Resource temporarily unavailable"},
		{os.ErrClosed, "Bad file descriptor"},
		{closed, "Bad file descriptor"},
		{&os.PathError{Op: "read", Path: "/x", Err: errors.New("short read")}, "Short read"},
		{errors.New("context deadline exceeded"), "Context deadline exceeded"},
		{errors.New("EOF"), "EOF"},
	} {
		if got := qerror.Strerror(c.err); got != c.want {
			t.Errorf("Strerror(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

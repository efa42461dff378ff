package errno_test

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"tlcvm/internal/errno"
)

func TestText(t *testing.T) {
	_, err := os.Open("/nonexistent/x")
	for _, c := range []struct {
		err  error
		want string
	}{
		{err, "No such file or directory"},
		{syscall.EAGAIN, "Resource temporarily unavailable"},
		{errors.New("plain"), "plain"},
	} {
		if got := errno.Text(c.err); got != c.want {
			t.Errorf("Text(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

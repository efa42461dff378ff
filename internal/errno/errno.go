// Package errno renders system errors as QEMU does: strerror(3)'s text with its capital
// ("No such file or directory"), which QEMU's error_setg_errno appends after ": ".
package errno

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// Text returns strerror's text for the errno inside err, or err's own text when it carries
// no errno.
func Text(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		s := en.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}

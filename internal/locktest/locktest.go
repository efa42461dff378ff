// Package locktest reads an image's lock bytes as another process sees them: the bytes of
// QEMU's file-posix scheme (100+i: permission i taken, 200+i: permission i not shared; i =
// consistent read, write, write unchanged, resize) that some open file description holds.
// Tests of tlcvm's block layer and of migration compare them with QEMU 7.2's.
package locktest

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Held returns the held lock bytes of path, comma-separated in increasing order ("" when
// none), testing each with F_OFD_GETLK from a description of its own.
func Held(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var held []string
	for _, off := range []int64{100, 101, 102, 103, 200, 201, 202, 203} {
		fl := unix.Flock_t{Type: unix.F_WRLCK, Start: off, Len: 1}
		if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &fl); err != nil {
			return "", fmt.Errorf("F_OFD_GETLK %s byte %d: %w", path, off, err)
		}
		if fl.Type != unix.F_UNLCK {
			held = append(held, fmt.Sprint(off))
		}
	}
	return strings.Join(held, ","), nil
}

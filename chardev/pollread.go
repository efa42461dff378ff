package chardev

import (
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// pollReader reads a descriptor that Go's poller cannot be trusted with: it waits with
// poll(2) for the descriptor or for its own wake-up pipe, then reads. Close writes to the
// pipe, so a waiting Read returns at once whatever the descriptor's O_NONBLOCK flag; that
// flag belongs to the open file description, which stdin shares with every other
// descriptor of it, and os.File.Fd() on any of them clears it (a blocked read(2) on a
// terminal then never returns, and Go's Close waits for it forever).
type pollReader struct {
	fd   int
	wake [2]int // pipe: Close writes wake[1]

	mu     sync.RWMutex // Read holds it shared; Close exclusively, to close fd after
	closed bool         // +checklocks:mu
	once   sync.Once
}

// newPollReader takes ownership of fd.
func newPollReader(fd int) (*pollReader, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, err
	}
	return &pollReader{fd: fd, wake: p}, nil
}

func (r *pollReader) Read(b []byte) (int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for !r.closed {
		fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}, {Fd: int32(r.wake[0]), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return 0, err
		}
		if fds[1].Revents != 0 {
			break
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := unix.Read(r.fd, b)
		switch {
		case errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN):
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
	return 0, os.ErrClosed
}

// Close wakes a waiting Read, waits for it to leave, and closes the descriptor.
func (r *pollReader) Close() error {
	var err error
	r.once.Do(func() {
		_, _ = unix.Write(r.wake[1], []byte{0})
		r.mu.Lock()
		r.closed = true
		err = unix.Close(r.fd)
		unix.Close(r.wake[0])
		unix.Close(r.wake[1])
		r.mu.Unlock()
	})
	return err
}

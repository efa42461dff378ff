package migration

import (
	"io"
	"time"

	"tlcvm/migration/transport"
)

// errText is the text QEMU would give: the transport's own error (QEMU's wording) when
// one is in the chain, else err's.
func errText(err error) string {
	if te := transport.Find(err); te != nil {
		return te.Error()
	}
	return err.Error()
}

// countWriter sits between the stream's buffer and the transport: it stops writing once
// the migration is cancelled and holds the rate to max-bandwidth the way QEMU's
// qemu_file_rate_limit does, in windows of 100 ms (max-bandwidth 0 means unlimited).
type countWriter struct {
	w           io.Writer
	j           *job
	windowStart time.Time
	windowBytes uint64
	// unlimited lifts max-bandwidth: stage 3 (QEMU's migration_completion sets the rate
	// limit to INT64_MAX) and postcopy (postcopy.go paces its background pages itself).
	unlimited bool
}

const rateWindow = 100 * time.Millisecond

func (c *countWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k, err := c.grant(len(p))
		if err != nil {
			return written, err
		}
		n, err := c.w.Write(p[:k])
		written += n
		c.windowBytes += uint64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// charge counts n bytes sent on another channel (multifd) against max-bandwidth, waiting
// as Write would.
func (c *countWriter) charge(n int) error {
	for n > 0 {
		k, err := c.grant(n)
		if err != nil {
			return err
		}
		c.windowBytes += uint64(k)
		n -= k
	}
	return nil
}

// grant returns how many of n bytes may be written now (at least one), sleeping while the
// window's budget is spent, or errCancelled. The caller adds what it wrote to windowBytes.
func (c *countWriter) grant(n int) (int, error) {
	for {
		if c.j.cancelled() {
			return 0, errCancelled
		}
		bw, _ := c.j.e.limits()
		// Once postcopy is asked for, what the buffers hold goes at once (QEMU's buffer
		// is small: its switch does not wait behind a backlog).
		if bw == 0 || bw >= 1<<50 || c.unlimited || c.j.pc.requested.Load() {
			return n, nil
		}
		budget := bw / uint64(time.Second/rateWindow)
		now := time.Now()
		if now.Sub(c.windowStart) >= rateWindow {
			c.windowStart, c.windowBytes = now, 0
		}
		if c.windowBytes >= budget {
			time.Sleep(rateWindow - now.Sub(c.windowStart))
			continue
		}
		return int(min(uint64(n), budget-c.windowBytes)), nil
	}
}

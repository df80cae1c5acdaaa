package boot

import (
	"context"
	"sync"
	"time"
)

// EchoCounter counts the bytes a guest prints on its serial console and
// implements Echo for them. The zero value is ready to use, and it is safe
// for concurrent use.
type EchoCounter struct {
	mu      sync.Mutex
	n       int64
	changed chan struct{} // closed by Add; nil until a waiter needs it
}

var _ Echo = (*EchoCounter)(nil)

// Add records n more bytes received.
func (c *EchoCounter) Add(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += int64(n)
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// Received returns the number of bytes received so far.
func (c *EchoCounter) Received() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// WaitBeyond waits until more than n bytes have been received, for at most
// timeout, and reports whether they have.
func (c *EchoCounter) WaitBeyond(ctx context.Context, n int64, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if c.n > n {
			c.mu.Unlock()
			return true
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		}
	}
}

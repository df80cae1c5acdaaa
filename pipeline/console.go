package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/bakeimg/bake/event"
)

// console receives the guest's serial output. It appends every byte to the
// console log, emits console events, and lets the boot typer wait for text.
type console struct {
	path    string
	file    *os.File
	emitter *event.Emitter

	mu      sync.Mutex
	window  []byte // the last windowSize bytes, for WaitFor
	total   int64  // bytes seen so far
	since   int64  // WaitFor matches output after this offset
	changed chan struct{}
}

const windowSize = 64 << 10

func openConsole(path string, emitter *event.Emitter) (*console, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to create console log: %w", err)
	}
	return &console{path: path, file: f, emitter: emitter, changed: make(chan struct{})}, nil
}

func (c *console) Write(p []byte) (int, error) {
	c.file.Write(p)
	c.emitter.Emit(event.Event{Kind: event.Console, Data: append([]byte(nil), p...)})

	c.mu.Lock()
	c.window = append(c.window, p...)
	if len(c.window) > windowSize {
		c.window = append([]byte(nil), c.window[len(c.window)-windowSize:]...)
	}
	c.total += int64(len(p))
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return len(p), nil
}

// waitFor blocks until text appears in output that arrived after mark.
func (c *console) waitFor(ctx context.Context, text string, since int64, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	needle := []byte(text)
	for {
		c.mu.Lock()
		start := int64(len(c.window)) - (c.total - since)
		if start < 0 {
			start = 0
		}
		found := bytes.Contains(c.window[start:], needle)
		tail := lastConsoleLine(c.window)
		changed := c.changed
		c.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("timed out after %s waiting for %q on the serial console; last console line: %q; full log: %s",
				timeout, text, tail, c.path)
		}
	}
}

// WaitFor implements the boot typer's console waiter. It matches output
// that arrived after the last key was sent (or since the VM started), so a
// prompt printed during boot.wait is not missed.
func (c *console) WaitFor(ctx context.Context, text string, timeout time.Duration) error {
	c.mu.Lock()
	since := c.since
	c.mu.Unlock()
	return c.waitFor(ctx, text, since, timeout)
}

// waitGrowth waits until the console has more than since bytes, for at
// most timeout, and reports whether it grew.
func (c *console) waitGrowth(ctx context.Context, since int64, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		grew := c.total > since
		changed := c.changed
		c.mu.Unlock()
		if grew {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		}
	}
}

// bytesSeen returns the number of console bytes received so far.
func (c *console) bytesSeen() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// keysSent moves the start of the WaitFor window to the current output.
func (c *console) keysSent() {
	c.mu.Lock()
	c.since = c.total
	c.mu.Unlock()
}

// Tail returns up to n bytes of the most recent console output.
func (c *console) Tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.window) > n {
		return string(c.window[len(c.window)-n:])
	}
	return string(c.window)
}

func (c *console) Close() error { return c.file.Close() }

// escapeSequence matches the ANSI/VT control sequences installers draw
// their menus with, so a quoted console line is readable.
var escapeSequence = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[@-Z\\-_])|[\x00-\x08\x0b-\x0c\x0e-\x1f]`)

func lastConsoleLine(raw []byte) string {
	b := escapeSequence.ReplaceAll(raw, nil)
	b = bytes.TrimRight(b, "\r\n ")
	if i := bytes.LastIndexAny(b, "\r\n"); i >= 0 {
		b = b[i+1:]
	}
	if len(b) > 200 {
		b = b[len(b)-200:]
	}
	return string(b)
}

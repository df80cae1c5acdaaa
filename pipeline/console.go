package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/bakeimg/bake/boot"
	"github.com/bakeimg/bake/event"
)

// console receives the guest's serial output. It masks secrets in it, such
// as a typed password the bootloader echoes, appends it to the console log,
// emits console events, and lets the boot typer wait for text.
type console struct {
	path     string
	file     *os.File
	emitter  *event.Emitter
	redactor *event.StreamRedactor
	flush    *time.Timer

	mu      sync.Mutex
	window  []byte // the last windowSize masked bytes, for WaitFor
	total   int64  // masked bytes passed on so far; window ends here
	since   int64  // WaitFor matches masked output after this offset
	changed chan struct{}

	// echo counts the bytes received from the guest, before masking, for
	// echo pacing.
	echo boot.EchoCounter

	// onPanic is called once when the guest kernel panics.
	onPanic  func(line string)
	panicked bool
}

// kernelPanic starts the line a Linux kernel prints when it panics. The
// guest will not recover, so there is no point waiting out a timeout.
var kernelPanic = []byte("Kernel panic - not syncing")

// redactHold is how long output that may begin a secret is held back
// before it is passed on unmasked, so a prompt is not hidden for long.
const redactHold = 2 * time.Second

const windowSize = 64 << 10

func openConsole(path string, emitter *event.Emitter, secrets []string) (*console, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to create console log: %w", err)
	}
	c := &console{path: path, file: f, emitter: emitter, changed: make(chan struct{})}
	c.redactor = event.NewStreamRedactor(secrets, c.pass)
	c.flush = time.AfterFunc(time.Hour, c.redactor.Flush)
	c.flush.Stop()
	return c, nil
}

// Write takes raw guest output.
func (c *console) Write(p []byte) (int, error) {
	c.echo.Add(len(p))
	c.redactor.Write(p)
	if c.redactor.Pending() {
		c.flush.Reset(redactHold)
	}
	return len(p), nil
}

// pass receives masked output. p may be the caller's read buffer, which
// is reused for the next read. The event gets its own copy because sinks
// such as the dashboard keep the bytes until their next frame.
func (c *console) pass(p []byte) {
	c.file.Write(p)
	c.emitter.Emit(event.Event{Kind: event.Console, Data: bytes.Clone(p)})

	c.mu.Lock()
	c.window = append(c.window, p...)
	if len(c.window) > windowSize {
		c.window = append([]byte(nil), c.window[len(c.window)-windowSize:]...)
	}
	c.total += int64(len(p))
	c.notifyLocked()
	var panicLine string
	if !c.panicked && c.onPanic != nil {
		// The marker may straddle two writes, so look a little before p.
		from := max(len(c.window)-len(p)-len(kernelPanic), 0)
		if i := bytes.Index(c.window[from:], kernelPanic); i >= 0 {
			c.panicked = true
			rest := c.window[from+i:]
			if j := bytes.IndexAny(rest, "\r\n"); j >= 0 {
				rest = rest[:j]
			}
			panicLine = string(rest)
		}
	}
	onPanic := c.onPanic
	c.mu.Unlock()
	if panicLine != "" {
		onPanic(panicLine)
	}
}

func (c *console) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// WaitFor implements the boot typer's console waiter. It matches output
// since the end of the previous match, or since the VM started, so a prompt
// printed during boot.wait and the echo of a line typed just before the
// wait both count.
func (c *console) WaitFor(ctx context.Context, text string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	needle := []byte(text)
	for {
		c.mu.Lock()
		windowStart := c.total - int64(len(c.window))
		from := max(c.since-windowStart, 0)
		i := bytes.Index(c.window[from:], needle)
		if i >= 0 {
			c.since = windowStart + from + int64(i+len(needle))
		}
		tail := lastConsoleLine(c.window)
		changed := c.changed
		c.mu.Unlock()
		if i >= 0 {
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

// Tail returns up to n bytes of the most recent console output.
func (c *console) Tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.window) > n {
		return string(c.window[len(c.window)-n:])
	}
	return string(c.window)
}

// Close passes on held-back output and closes the log.
func (c *console) Close() error {
	c.flush.Stop()
	c.redactor.Flush()
	return c.file.Close()
}

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

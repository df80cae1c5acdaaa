package tui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitForOutput(t *testing.T, out *syncBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q after 5s: %q", text, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type runResult struct{ err error }

func startRun(t *testing.T, ctx context.Context, events chan event.Event, opts Options) (*io.PipeWriter, *syncBuffer, chan runResult) {
	t.Helper()
	in, keys := io.Pipe()
	out := &syncBuffer{}
	opts.Input, opts.Output = in, out
	done := make(chan runResult, 1)
	go func() { done <- runResult{Run(ctx, events, opts)} }()
	t.Cleanup(func() { _ = keys.Close() })
	return keys, out, done
}

func waitRun(t *testing.T, done chan runResult) error {
	t.Helper()
	select {
	case r := <-done:
		return r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s")
		return nil
	}
}

func TestRunExitsOnQAfterClose(t *testing.T) {
	events := make(chan event.Event)
	keys, out, done := startRun(t, context.Background(), events, Options{Builds: []string{"a", "b"}})

	events <- started("a", 0)
	events <- finished("a", 5, "")
	events <- started("b", 0)
	events <- finished("b", 7, "disk full")
	close(events)
	waitForOutput(t, out, "all builds finished")

	_, _ = keys.Write([]byte("q"))
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	for _, want := range []string{"✓ a done in 5.0s\n", "✗ b failed after 7.0s: disk full\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}

func TestRunForcedQuitStopsBuilds(t *testing.T) {
	events := make(chan event.Event)
	stops := make(chan struct{}, 2)
	opts := Options{Builds: []string{"a"}, Stop: func() { stops <- struct{}{} }}
	keys, out, done := startRun(t, context.Background(), events, opts)

	events <- started("a", 0)
	waitForOutput(t, out, "1 running")
	_, _ = keys.Write([]byte{0x03})
	waitForOutput(t, out, "ctrl+c again")
	_, _ = keys.Write([]byte{0x03})

	if err := waitRun(t, done); !errors.Is(err, ErrQuit) {
		t.Fatalf("Run = %v, want ErrQuit", err)
	}
	if len(stops) != 1 {
		t.Errorf("Stop called %d times, want 1", len(stops))
	}
	if !strings.Contains(out.String(), "● a still running") {
		t.Error("summary lacks the running build")
	}

	// Senders must not block once the dashboard is gone.
	sent := make(chan struct{})
	go func() {
		for range 100 {
			events <- consoleOut("a", "late output\r\n")
		}
		close(events)
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(5 * time.Second):
		t.Fatal("sending events blocked after Run returned")
	}
}

func TestRunReturnsContextError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan event.Event)
	_, out, done := startRun(t, ctx, events, Options{Builds: []string{"a"}})
	waitForOutput(t, out, "0 running")

	cancel()
	if err := waitRun(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

func TestFeedBoundsConsoleBytes(t *testing.T) {
	f := newFeed()
	chunk := make([]byte, 1<<20)
	for range 20 {
		f.add(event.Event{Build: "a", Kind: event.Console, Data: chunk})
	}
	f.add(event.Event{Build: "a", Kind: event.Warning, Message: "kept"})

	msg := f.take()
	if got := len(msg.events); got != 17 {
		t.Errorf("events = %d, want 16 console events and the warning", got)
	}
	if got := msg.dropped["a"]; got != 4<<20 {
		t.Errorf("dropped = %d bytes, want %d", got, 4<<20)
	}
	if next := f.take(); len(next.events) != 0 || len(next.dropped) != 0 {
		t.Errorf("second take = %d events, %d dropped entries; want none", len(next.events), len(next.dropped))
	}
}

func TestRunQuitAfterBuildsFinished(t *testing.T) {
	events := make(chan event.Event)
	keys, out, done := startRun(t, context.Background(), events, Options{Builds: []string{"a"}})
	events <- started("a", 0)
	events <- finished("a", 3, "")
	waitForOutput(t, out, "1 done")

	_, _ = keys.Write([]byte("q"))
	if err := waitRun(t, done); err != nil {
		t.Errorf("Run = %v, want nil once every build finished", err)
	}
	close(events)
}

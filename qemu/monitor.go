package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// ErrMonitorClosed reports that the QMP connection ended, which in practice
// means QEMU exited or crashed.
var ErrMonitorClosed = errors.New("qmp connection closed (QEMU exited)")

// closeGrace is how long Execute waits to tell a failed or unanswered
// command apart from QEMU having exited.
const closeGrace = 250 * time.Millisecond

// Monitor is a QMP connection with context-aware commands and an event
// stream. A subscriber that falls behind loses events, so it cannot block
// command responses.
type Monitor struct {
	mon *qmp.SocketMonitor

	mu     sync.Mutex
	subs   []chan qmp.Event
	seen   map[string]int
	closed chan struct{}
}

// DialMonitor connects to the QMP unix socket at path, retrying until the
// socket accepts or ctx ends, and completes the capabilities handshake.
func DialMonitor(ctx context.Context, path string) (*Monitor, error) {
	var lastErr error
	for {
		mon, err := qmp.NewSocketMonitor("unix", path, time.Second)
		if err == nil {
			err = connectWithContext(ctx, mon)
			if err == nil {
				return newMonitor(mon)
			}
			mon.Disconnect()
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("failed to connect to QMP socket %q: %w (last error: %v)", path, ctx.Err(), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func connectWithContext(ctx context.Context, mon *qmp.SocketMonitor) error {
	done := make(chan error, 1)
	go func() { done <- mon.Connect() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		mon.Disconnect()
		return ctx.Err()
	}
}

func newMonitor(mon *qmp.SocketMonitor) (*Monitor, error) {
	// go-qemu blocks command responses while an event waits for a reader,
	// so one goroutine drains events for the whole life of the connection.
	events, err := mon.Events(context.Background())
	if err != nil {
		return nil, fmt.Errorf("failed to subscribe to QMP events: %w", err)
	}
	m := &Monitor{mon: mon, seen: map[string]int{}, closed: make(chan struct{})}
	go m.dispatch(events)
	return m, nil
}

func (m *Monitor) dispatch(events <-chan qmp.Event) {
	for ev := range events {
		m.mu.Lock()
		m.seen[ev.Event]++
		for _, ch := range m.subs {
			select {
			case ch <- ev:
			default: // a slow subscriber loses events rather than stalling QMP
			}
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	close(m.closed)
	for _, ch := range m.subs {
		close(ch)
	}
	m.subs = nil
	m.mu.Unlock()
}

// Subscribe returns a channel of QMP events from now on. It is closed when
// the connection ends.
func (m *Monitor) Subscribe() <-chan qmp.Event {
	ch := make(chan qmp.Event, 64)
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.closed:
		close(ch)
	default:
		m.subs = append(m.subs, ch)
	}
	return ch
}

// Seen returns how many events named name have arrived so far.
func (m *Monitor) Seen(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[name]
}

// Closed is closed when the QMP connection ends.
func (m *Monitor) Closed() <-chan struct{} { return m.closed }

// Execute runs one QMP command with optional arguments and decodes its
// "return" value into out when out is not nil.
func (m *Monitor) Execute(ctx context.Context, command string, args any, out any) error {
	raw, err := json.Marshal(struct {
		Execute string `json:"execute"`
		Args    any    `json:"arguments,omitempty"`
	}{command, args})
	if err != nil {
		return fmt.Errorf("failed to encode QMP command %q: %w", command, err)
	}

	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := m.mon.Run(append(raw, '\n'))
		done <- result{b, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-m.closed:
		// QEMU may answer and exit at once (quit, a guest powering off):
		// the answer then races the connection closing.
		select {
		case res = <-done:
		case <-time.After(closeGrace):
			return fmt.Errorf("qmp %s: %w", command, ErrMonitorClosed)
		}
	case <-ctx.Done():
		return fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
	if res.err != nil {
		// A write to a QEMU that just exited fails before the event reader
		// has seen the connection close.
		select {
		case <-m.closed:
			return fmt.Errorf("qmp %s: %w", command, ErrMonitorClosed)
		case <-time.After(closeGrace):
		}
		return fmt.Errorf("qmp %s failed: %w", command, res.err)
	}
	if out == nil {
		return nil
	}
	var envelope struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(res.out, &envelope); err != nil {
		return fmt.Errorf("qmp %s: invalid response %q: %w", command, res.out, err)
	}
	return json.Unmarshal(envelope.Return, out)
}

// Close ends the connection.
func (m *Monitor) Close() error { return m.mon.Disconnect() }

// Package tui is bake's live dashboard. It reads build events and nothing
// else: a list of builds, the selected VM's serial console rendered through a
// VT emulator, and the build's event log.
package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/term"

	"github.com/bakeimg/bake/event"
)

// rendererFPS is how often Bubble Tea's renderer wakes to compare the
// latest frame with the one on screen. Output from the builds reaches the
// model once per tick, but a key press changes the frame at once, so the
// renderer wakes more often than the tick to keep keys responsive. Waking
// at Bubble Tea's default of 60 a second costs CPU time and finds nothing
// new.
const rendererFPS = 10

// ErrQuit is returned by Run when the user quit while builds were still
// running and the events channel was open. Stop has been called by then.
var ErrQuit = errors.New("dashboard closed before the builds finished")

// Options configures Run.
type Options struct {
	// Builds names the builds in display order. Events for other names add
	// builds at the end of the list.
	Builds []string

	// Stop cancels all builds. Run calls it once, when the user confirms
	// quitting while builds are running or presses ctrl+c twice.
	Stop func()

	// Attach sends bytes to a VM's serial console: keystrokes typed while
	// attached, and the emulator's replies to terminal queries such as
	// cursor position reports. It may be called from any goroutine. Nil
	// disables attaching.
	Attach func(build string, data []byte)

	// NoColor draws without colours, using bold, faint and reverse video
	// only. Set it when NO_COLOR is set.
	NoColor bool

	// Input and Output are the terminal. Nil means standard input and
	// output.
	Input  io.Reader
	Output io.Writer

	// Scrollback is the number of console lines kept above each console's
	// screen. Zero means 5000.
	Scrollback int
}

// Run shows the dashboard until the events channel is closed and the user
// presses q, or until the user quits. Quitting while builds run shows a
// confirmation prompt, calls Stop and waits for the builds to finish or the channel
// to close. A second ctrl+c quits at once. After the dashboard closes, Run
// writes one summary line per build to Output.
//
// Run keeps reading events after it returns, discarding them until the
// channel is closed, so that senders never block on a dashboard that is gone.
func Run(ctx context.Context, events <-chan event.Event, opts Options) error {
	m := newModel(opts)
	m.feed = newFeed()
	go m.feed.run(events)

	progOpts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithFPS(rendererFPS)}
	if opts.Input != nil {
		progOpts = append(progOpts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		progOpts = append(progOpts, tea.WithOutput(opts.Output))
	}
	if !isTerminal(opts.Output) {
		// Without a terminal there is no size to query, so draw at the size
		// the guest consoles assume.
		progOpts = append(progOpts, tea.WithWindowSize(consoleWidth, consoleHeight))
	}
	if opts.NoColor {
		progOpts = append(progOpts, tea.WithColorProfile(colorprofile.Ascii))
	}

	final, err := tea.NewProgram(m, progOpts...).Run()
	m.feed.discard()
	m.close()
	if errors.Is(err, tea.ErrInterrupted) {
		// SIGINT reached the program instead of a ctrl+c key press.
		m.callStop()
		writeSummary(summaryOutput(opts.Output), m)
		return quitError(m)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("failed to run the dashboard: %w", err)
	}

	fm, ok := final.(*model)
	if !ok {
		fm = m
	}
	writeSummary(summaryOutput(opts.Output), fm)
	return quitError(fm)
}

// quitError returns ErrQuit if the dashboard closed while builds ran.
func quitError(m *model) error {
	if !m.closed && m.activeCount() > 0 {
		return ErrQuit
	}
	return nil
}

func summaryOutput(w io.Writer) io.Writer {
	if w == nil {
		return os.Stdout
	}
	return w
}

// isTerminal reports whether w is a terminal, where nil means standard
// output.
func isTerminal(w io.Writer) bool {
	if w == nil {
		w = os.Stdout
	}
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(f.Fd())
}

// writeSummary prints each build's outcome, so the result stays on the
// terminal after the dashboard's alternate screen is gone.
func writeSummary(w io.Writer, m *model) {
	for _, b := range m.builds {
		elapsed := formatDuration(b.elapsed(m.now()))
		switch b.status {
		case statusDone:
			fmt.Fprintf(w, "✓ %s done in %s\n", b.name, elapsed)
		case statusFailed:
			fmt.Fprintf(w, "✗ %s failed after %s: %s\n", b.name, elapsed, b.err)
		case statusRunning:
			fmt.Fprintf(w, "● %s still running after %s\n", b.name, elapsed)
		default:
			fmt.Fprintf(w, "· %s did not start\n", b.name)
		}
	}
}

// feed moves events from the channel into a queue that the model takes
// once per tick, so a burst of events costs one update and one frame.
type feed struct {
	mu           sync.Mutex
	pending      []event.Event
	consoleBytes int              // console bytes in pending
	dropped      map[string]int64 // console bytes dropped per build since the last take
	closed       bool
	dropping     bool
}

// maxFeedConsole bounds the console bytes waiting for the next tick. It is
// reached only when the UI stalls, for example while the terminal is
// stopped with ctrl+s; further console output is then dropped and counted.
const maxFeedConsole = 16 << 20

func newFeed() *feed {
	return &feed{}
}

func (f *feed) run(events <-chan event.Event) {
	for e := range events {
		f.add(e)
	}
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

func (f *feed) add(e event.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.dropping:
		return
	case e.Kind == event.Console && f.consoleBytes+len(e.Data) > maxFeedConsole:
		if f.dropped == nil {
			f.dropped = make(map[string]int64)
		}
		f.dropped[e.Build] += int64(len(e.Data))
		return
	case e.Kind == event.Console:
		f.consoleBytes += len(e.Data)
	}
	f.pending = append(f.pending, e)
}

// take returns the events queued since the last call.
func (f *feed) take() batchMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := batchMsg{events: f.pending, closed: f.closed, dropped: f.dropped}
	f.pending, f.consoleBytes, f.dropped = nil, 0, nil
	return msg
}

// discard drops queued and future events.
func (f *feed) discard() {
	f.mu.Lock()
	f.dropping = true
	f.pending = nil
	f.mu.Unlock()
}

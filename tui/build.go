package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/charmbracelet/x/ansi"
)

// maxLogEntries bounds each build's event log in memory.
const maxLogEntries = 5000

// status is the lifecycle state of a build.
type status int

const (
	statusQueued status = iota
	statusRunning
	statusDone
	statusFailed
)

// logEntry is one line of a build's event log.
type logEntry struct {
	time time.Time
	kind event.Kind
	text string // plain text, control sequences removed
}

// build is the dashboard's state for one build.
type build struct {
	name     string
	status   status
	started  time.Time
	finished time.Time
	err      string

	step        string
	stepStarted time.Time
	current     int64 // progress of the current step, where total 0 means unknown
	total       int64
	detail      string // message of the latest progress event

	console     *console
	consoleData []byte // console output of the current batch, written by flushConsole
	log         ring[logEntry]

	// Scroll state of the two panes: offsets count lines up from the
	// bottom, and follow pins the view to new output.
	consoleOffset int
	consoleFollow bool
	logOffset     int
	logFollow     bool
	consoleSeen   int64 // console.Total at the last syncScroll
	logSeen       int64 // log entries ever pushed at the last syncScroll
}

func newBuild(name string, scrollback int, reply func([]byte)) *build {
	return &build{
		name:          name,
		console:       newConsole(scrollback, reply),
		log:           newRing[logEntry](maxLogEntries),
		consoleFollow: true,
		logFollow:     true,
	}
}

// active reports whether the build has not finished yet.
func (b *build) active() bool {
	return b.status == statusQueued || b.status == statusRunning
}

// elapsed returns the build's run time so far, or its total once finished.
func (b *build) elapsed(now time.Time) time.Duration {
	switch {
	case b.started.IsZero():
		return 0
	case !b.finished.IsZero():
		return b.finished.Sub(b.started)
	default:
		return now.Sub(b.started)
	}
}

// apply updates the build from one event.
func (b *build) apply(e event.Event) {
	switch e.Kind {
	case event.BuildStarted:
		b.status = statusRunning
		b.started = e.Time
		b.addLog(e, "build started")
	case event.BuildFinished:
		b.finish(e)
	case event.StepStarted:
		b.step = e.Step
		b.stepStarted = e.Time
		b.current, b.total, b.detail = 0, 0, ""
		b.markRunning(e.Time)
		b.addLog(e, "▶ "+e.Step)
	case event.StepFinished:
		b.current, b.total, b.detail = 0, 0, ""
		b.addLog(e, stepFinishedText(e))
	case event.Progress:
		b.current, b.total = e.Current, e.Total
		b.detail = e.Message
		if e.Step != "" {
			b.step = e.Step
		}
		b.markRunning(e.Time)
	case event.Console:
		b.consoleData = append(b.consoleData, e.Data...)
		b.markRunning(e.Time)
	default:
		if text := logText(e); text != "" {
			b.addLog(e, text)
		}
	}
}

// flushConsole hands the console output of a batch to the emulator in one
// write, so that long runs of plain lines are not cut at event boundaries.
func (b *build) flushConsole() {
	if len(b.consoleData) > 0 {
		b.console.Write(b.consoleData)
		b.consoleData = b.consoleData[:0]
	}
}

// markRunning covers streams whose build.started event was lost or never
// sent: any progress means the build runs.
func (b *build) markRunning(t time.Time) {
	if b.status == statusQueued {
		b.status = statusRunning
		b.started = t
	}
}

func (b *build) finish(e event.Event) {
	b.finished = e.Time
	if b.started.IsZero() {
		b.started = e.Time
	}
	b.current, b.total, b.detail = 0, 0, ""
	b.err = e.Err
	if e.Err != "" {
		b.status = statusFailed
		b.addLog(e, "✗ build failed: "+e.Err)
		return
	}
	b.status = statusDone
	b.step = ""
	b.addLog(e, "✓ build finished")
}

func (b *build) addLog(e event.Event, text string) {
	text = strings.ReplaceAll(ansi.Strip(text), "\n", " ")
	b.log.push(logEntry{time: e.Time, kind: e.Kind, text: text})
}

func stepFinishedText(e event.Event) string {
	if e.Err != "" {
		return fmt.Sprintf("✗ %s failed after %s: %s", e.Step, formatDuration(e.Duration), e.Err)
	}
	return fmt.Sprintf("✓ %s %s", e.Step, formatDuration(e.Duration))
}

// logText returns the log line for events that only add to the log, or ""
// for events the log does not show, such as debug events.
func logText(e event.Event) string {
	switch e.Kind {
	case event.Output:
		if e.Stderr {
			return "┃ " + e.Message
		}
		return "│ " + e.Message
	case event.HTTPRequest:
		if e.HTTP == nil {
			return "http " + e.Message
		}
		return strings.TrimSpace(fmt.Sprintf("%s %s %d %s %s", e.HTTP.Method, e.HTTP.Path, e.HTTP.Status,
			formatBytes(e.HTTP.Bytes), e.HTTP.Remote))
	case event.KeysTyped:
		return "⌨ " + e.Message
	case event.Info:
		return "· " + e.Message
	case event.Warning:
		return "⚠ " + e.Message
	case event.Error:
		msg := e.Message
		if e.Err != "" {
			msg = strings.TrimSpace(msg + " " + e.Err)
		}
		return "✗ " + msg
	case event.Artifact:
		if e.Artifact == nil {
			return "artifact " + e.Message
		}
		return fmt.Sprintf("▣ %s %s", e.Artifact.Path, formatBytes(e.Artifact.Size))
	}
	return ""
}

// formatDuration prints durations the way the list and log show them:
// 4.2s under a minute, 3m07s under an hour, 1h02m07s above.
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm%02ds", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	}
}

// formatClock prints an elapsed time with one-second resolution.
func formatClock(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d < time.Hour {
		return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

// formatBytes prints a byte count with binary units.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// syncScroll shifts the offsets of panes that do not follow by the number
// of lines added since the last call, so a scrolled view keeps showing the
// same lines while output continues.
func (b *build) syncScroll() {
	consoleTotal := b.console.Total()
	if !b.consoleFollow {
		b.consoleOffset = max(0, b.consoleOffset+int(consoleTotal-b.consoleSeen))
	}
	b.consoleSeen = consoleTotal

	logTotal := b.log.dropped + int64(b.log.len())
	if !b.logFollow {
		b.logOffset = max(0, b.logOffset+int(logTotal-b.logSeen))
	}
	b.logSeen = logTotal
}

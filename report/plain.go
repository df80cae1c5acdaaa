// Package report turns the build event stream into plain CI lines, JSON
// lines and JUnit XML. Every type here only reads events.
package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bakeimg/bake/event"
)

// PlainOptions configures NewPlain. The zero value prints no console output
// and local wall-clock times.
type PlainOptions struct {
	// Console prints the guest's serial console output, line by line.
	Console bool
	// Location sets the time zone of the timestamps. Nil means time.Local.
	Location *time.Location
}

// Progress lines are printed when the percentage enters a new multiple of
// progressPercentStep, or when progressInterval has passed since the last
// line for that step.
const (
	progressPercentStep = 10
	progressInterval    = 10 * time.Second
)

// Plain prints events as timestamped lines prefixed by the build name, for
// CI logs and other output that is not a terminal. It prints debug events
// too, so a caller that hides them filters them out before Plain.
type Plain struct {
	opts PlainOptions

	mu     sync.Mutex
	w      io.Writer
	width  int // widest build name so far, for alignment
	builds map[string]*plainBuild
	err    error
}

var _ event.Sink = (*Plain)(nil)

type plainBuild struct {
	console  lineSplitter
	progress map[string]progressMark // by step
}

// progressMark is the last progress line printed for one step.
type progressMark struct {
	message string
	bucket  int // percent / progressPercentStep, or -1 when the total is unknown
	at      time.Time
}

// NewPlain returns a Plain printer writing to w. Emit is safe to call from
// several builds at once, and each event's lines are written with one Write.
func NewPlain(w io.Writer, opts PlainOptions) *Plain {
	if opts.Location == nil {
		opts.Location = time.Local
	}
	return &Plain{opts: opts, w: w, builds: map[string]*plainBuild{}}
}

// Emit prints the lines for ev, if any.
func (p *Plain) Emit(ev event.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()

	b := p.build(ev.Build)
	var lines []string
	switch ev.Kind {
	case event.Console:
		if p.opts.Console {
			for _, l := range b.console.write(ev.Data) {
				lines = append(lines, "console: "+l)
			}
		}
	case event.Progress:
		if line, ok := b.progressLine(ev); ok {
			lines = append(lines, line)
		}
	case event.BuildFinished:
		lines = append(lines, p.pendingConsole(b)...)
		lines = append(lines, plainBody(ev)...)
	case event.StepFinished:
		delete(b.progress, ev.Step)
		lines = append(lines, plainBody(ev)...)
	default:
		lines = plainBody(ev)
	}
	p.write(ev, lines)
}

// Flush prints every build's pending partial console line. Call it once the
// stream has ended.
func (p *Plain) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, b := range p.builds {
		p.write(event.Event{Time: time.Now(), Build: name}, p.pendingConsole(b))
	}
	return p.err
}

// Err returns the first error the writer returned, if any.
func (p *Plain) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *Plain) build(name string) *plainBuild {
	b, ok := p.builds[name]
	if !ok {
		b = &plainBuild{progress: map[string]progressMark{}}
		p.builds[name] = b
		p.width = max(p.width, len(name))
	}
	return b
}

func (p *Plain) pendingConsole(b *plainBuild) []string {
	if !p.opts.Console {
		return nil
	}
	if line, ok := b.console.flush(); ok {
		return []string{"console: " + line}
	}
	return nil
}

// write prefixes every line with the time and build name and writes them
// all at once, so lines from concurrent builds never interleave.
func (p *Plain) write(ev event.Event, lines []string) {
	if len(lines) == 0 || p.err != nil {
		return
	}
	prefix := ev.Time.In(p.opts.Location).Format("15:04:05") + " " +
		ev.Build + strings.Repeat(" ", p.width-len(ev.Build)) + " | "
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString(prefix)
		sb.WriteString(l)
		sb.WriteByte('\n')
	}
	if _, err := io.WriteString(p.w, sb.String()); err != nil {
		p.err = fmt.Errorf("failed to write plain output: %w", err)
	}
}

// progressLine returns the line for a progress event, or false when the
// previous line for the same step is recent and close enough.
func (b *plainBuild) progressLine(ev event.Event) (string, bool) {
	bucket, percent := -1, 0
	if ev.Total > 0 {
		percent = int(min(100, max(0, ev.Current*100/ev.Total)))
		bucket = percent / progressPercentStep
	}
	last, seen := b.progress[ev.Step]
	due := !seen || last.message != ev.Message || last.bucket != bucket ||
		ev.Time.Sub(last.at) >= progressInterval
	if !due {
		return "", false
	}
	b.progress[ev.Step] = progressMark{message: ev.Message, bucket: bucket, at: ev.Time}

	amount := strconv.FormatInt(ev.Current, 10)
	if ev.Total > 0 {
		amount = strconv.Itoa(percent) + "%"
	}
	text := cleanMessage(ev.Message)
	if text == "" {
		return stepPrefix(ev.Step) + amount, true
	}
	return stepPrefix(ev.Step) + text + " " + amount, true
}

// plainBody returns the text lines for ev without the time and build
// prefix. Multi-line messages become several lines.
func plainBody(ev event.Event) []string {
	step := stepPrefix(ev.Step)
	var text string
	switch ev.Kind {
	case event.BuildStarted:
		text = joinNonEmpty(": ", "build started", ev.Message)
	case event.BuildFinished:
		if ev.Err != "" {
			text = "ERROR: build failed after " + formatDuration(ev.Duration) + ": " + ev.Err
		} else {
			text = "build finished in " + formatDuration(ev.Duration)
		}
	case event.StepStarted:
		text = step + joinNonEmpty(": ", "started", ev.Message)
	case event.StepFinished:
		if ev.Err != "" {
			text = "ERROR: " + step + "failed after " + formatDuration(ev.Duration) + ": " + ev.Err
		} else {
			text = step + "finished in " + formatDuration(ev.Duration)
		}
	case event.Output:
		if ev.Stderr {
			step += "[stderr] "
		}
		text = step + ev.Message
	case event.HTTPRequest:
		text = "http: " + httpText(ev)
	case event.KeysTyped:
		text = step + "typed " + strconv.Quote(ev.Message)
	case event.Warning:
		text = "WARNING: " + step + joinNonEmpty(": ", ev.Message, ev.Err)
	case event.Error:
		text = "ERROR: " + step + joinNonEmpty(": ", ev.Message, ev.Err)
	case event.Artifact:
		text = step + artifactText(ev)
	case event.Info:
		text = step + joinNonEmpty(": ", ev.Message, ev.Err)
	case event.Debug:
		text = "DEBUG: " + step + joinNonEmpty(": ", ev.Message, ev.Err)
	default:
		text = step + joinNonEmpty(": ", string(ev.Kind), ev.Message, ev.Err)
	}
	return strings.Split(cleanMessage(text), "\n")
}

func stepPrefix(step string) string {
	if step == "" {
		return ""
	}
	return step + ": "
}

func joinNonEmpty(sep string, parts ...string) string {
	nonEmpty := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			nonEmpty = append(nonEmpty, p)
		}
	}
	return strings.Join(nonEmpty, sep)
}

func httpText(ev event.Event) string {
	if ev.HTTP == nil {
		return ev.Message
	}
	h := ev.HTTP
	text := fmt.Sprintf("%s %s %d %s", h.Method, h.Path, h.Status, formatBytes(h.Bytes))
	if h.Remote != "" {
		text += " from " + h.Remote
	}
	return text
}

func artifactText(ev event.Event) string {
	if ev.Artifact == nil {
		return joinNonEmpty(" ", "artifact", ev.Message)
	}
	a := ev.Artifact
	details := []string{}
	if a.Format != "" {
		details = append(details, a.Format)
	}
	details = append(details, formatBytes(a.Size))
	if a.SHA256 != "" {
		details = append(details, "sha256 "+a.SHA256)
	}
	return "artifact " + a.Path + " (" + strings.Join(details, ", ") + ")"
}

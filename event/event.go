// Package event defines the typed event stream that a build emits. The
// dashboard, the plain CI printer, the JSON writer and the JUnit writer all
// read the same stream and nothing else.
package event

import (
	"strings"
	"sync"
	"time"
)

// Kind names the type of an event. The string values are part of the
// documented JSON schema and stay stable.
type Kind string

const (
	BuildStarted  Kind = "build.started"
	BuildFinished Kind = "build.finished" // Err is set when the build failed
	StepStarted   Kind = "step.started"
	StepFinished  Kind = "step.finished" // Duration and, on failure, Err are set
	Progress      Kind = "progress"      // Current and Total (bytes or items) are set
	Console       Kind = "console"       // Data is raw serial console output
	Output        Kind = "output"        // Message is one line of provisioner output
	HTTPRequest   Kind = "http.request"  // HTTP is set
	KeysTyped     Kind = "boot.keys"     // Message is the typed text, secrets masked
	Debug         Kind = "debug"         // detail such as QEMU's argv, hidden unless asked for
	Info          Kind = "info"
	Warning       Kind = "warning"
	Error         Kind = "error"
	Artifact      Kind = "artifact" // Artifact is set
)

// Event is one thing that happened in one build.
type Event struct {
	Time     time.Time     `json:"time"`
	Build    string        `json:"build"`
	Kind     Kind          `json:"kind"`
	Step     string        `json:"step,omitempty"`
	Message  string        `json:"message,omitempty"`
	Stderr   bool          `json:"stderr,omitempty"` // Output: the line came from standard error
	Err      string        `json:"error,omitempty"`
	Data     []byte        `json:"-"` // owned by the event: sinks may keep it, so senders never reuse it
	Current  int64         `json:"current,omitempty"`
	Total    int64         `json:"total,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	HTTP     *HTTP         `json:"http,omitempty"`
	Artifact *ArtifactInfo `json:"artifact,omitempty"`
	// Interrupted is set on build.finished when a signal or the user
	// stopped the build, as opposed to a failure.
	Interrupted bool `json:"interrupted,omitempty"`
}

// HTTP describes one request the guest made to the seed server.
type HTTP struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	Bytes  int64  `json:"bytes"`
	Remote string `json:"remote,omitempty"`
}

// ArtifactInfo describes one file written to the output directory.
type ArtifactInfo struct {
	Path   string `json:"path"`
	Format string `json:"format,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

// Sink receives events. Implementations must be safe for concurrent use and
// must not block for long: the pipeline calls Emit inline.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e Event) { f(e) }

// Discard drops every event.
var Discard Sink = SinkFunc(func(Event) {})

// Fanout sends each event to every sink in order.
type Fanout []Sink

// Emit sends e to every sink.
func (f Fanout) Emit(e Event) {
	for _, s := range f {
		s.Emit(e)
	}
}

// Emitter stamps events with a build name and the time, and masks secrets in
// every text field before they reach a sink.
type Emitter struct {
	build string
	sink  Sink

	mu      sync.RWMutex
	masker  *strings.Replacer
	secrets []string
	step    string
}

// NewEmitter returns an Emitter for the named build.
func NewEmitter(build string, sink Sink) *Emitter {
	if sink == nil {
		sink = Discard
	}
	return &Emitter{build: build, sink: sink}
}

// Build returns the build name the emitter stamps on events.
func (e *Emitter) Build() string { return e.build }

// AddSecrets registers values that are replaced by "********" in every
// event emitted afterwards. Empty values are ignored.
func (e *Emitter) AddSecrets(values ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range values {
		if v != "" {
			e.secrets = append(e.secrets, v)
		}
	}
	pairs := make([]string, 0, 2*len(e.secrets))
	for _, s := range e.secrets {
		pairs = append(pairs, s, Mask)
	}
	e.masker = strings.NewReplacer(pairs...)
}

// Mask is the text that replaces a secret.
const Mask = "********"

// Redact returns s with every registered secret masked.
func (e *Emitter) Redact(s string) string {
	e.mu.RLock()
	m := e.masker
	e.mu.RUnlock()
	if m == nil || s == "" {
		return s
	}
	return m.Replace(s)
}

// SetStep records the step that later events belong to.
func (e *Emitter) SetStep(step string) {
	e.mu.Lock()
	e.step = step
	e.mu.Unlock()
}

// Emit stamps, masks and forwards ev.
func (e *Emitter) Emit(ev Event) {
	e.mu.RLock()
	if ev.Step == "" {
		ev.Step = e.step
	}
	e.mu.RUnlock()
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Build = e.build
	ev.Message = e.Redact(ev.Message)
	ev.Err = e.Redact(ev.Err)
	if len(ev.Data) > 0 {
		if masked := e.Redact(string(ev.Data)); masked != string(ev.Data) {
			ev.Data = []byte(masked)
		}
	}
	e.sink.Emit(ev)
}

// Infof emits an Info event.
func (e *Emitter) Infof(format string, args ...any) {
	e.Emit(Event{Kind: Info, Message: sprintf(format, args...)})
}

// Warnf emits a Warning event.
func (e *Emitter) Warnf(format string, args ...any) {
	e.Emit(Event{Kind: Warning, Message: sprintf(format, args...)})
}

// Progressf emits a Progress event for the current step.
func (e *Emitter) Progressf(current, total int64, format string, args ...any) {
	e.Emit(Event{Kind: Progress, Current: current, Total: total, Message: sprintf(format, args...)})
}

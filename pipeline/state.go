package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/bakeimg/bake/communicator"
	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/httpserve"
	"github.com/bakeimg/bake/qemu"
	"github.com/bakeimg/bake/recipes"
)

// State is the data the steps of one build share. Each step fills the
// fields it owns, and later steps and cleanups read them.
type State struct {
	Recipe  *recipes.Recipe
	Options Options
	Emitter *event.Emitter

	WorkDir   string // private 0700 directory removed after the build
	LogDir    string // kept after the build: console log, QEMU stderr
	OutputDir string // final output directory (exists only after export)

	Source struct {
		Path     string
		Digest   string
		Location string
	}
	DiskPath string
	SeedISO  string
	EFIVars  string

	HTTP    *httpserve.Server
	Machine *qemu.Machine

	Accelerator       string
	AcceleratorReason string // reason KVM was not used, empty when it was
	QEMUVersion       string

	Key         *communicator.Key
	SSH         *communicator.Client
	HostKey     string // authorized_keys form
	HostKeySHA  string // SHA256 fingerprint
	ForcedStop  bool   // the guest did not power off by itself
	StopMethod  string // stop method: "guest", "acpi" or "quit"
	expectingVM bool   // set once QEMU exiting is expected

	lastStep    string          // the step running or last run
	stepFailed  bool            // a step returned an error
	failedFirst bool            // a step failed before the build was interrupted
	parent      context.Context // the caller's context, which a signal cancels

	Timings   []Timing
	Artifacts []event.ArtifactInfo

	console *console
	data    recipes.TemplateData

	mu      sync.Mutex
	failure func(error)
}

// Timing is how long one step took.
type Timing struct {
	Step     string        `json:"step"`
	Duration time.Duration `json:"duration_ns"`
}

func newState(b *Build) *State {
	return &State{
		Recipe:  b.Recipe,
		Options: b.Options,
		Emitter: b.Emitter,
		data:    recipes.TemplateData{Name: b.Recipe.Name, Vars: b.Recipe.Vars},
	}
}

// fail aborts the build from a background watcher (QEMU exiting, the guest
// never fetching its seed) with err as the cause.
func (s *State) fail(err error) {
	s.mu.Lock()
	f := s.failure
	s.mu.Unlock()
	if f != nil {
		f(err)
	}
}

func (s *State) setFailure(cancel context.CancelCauseFunc) {
	s.mu.Lock()
	s.failure = func(err error) { cancel(err) }
	s.mu.Unlock()
}

func (s *State) render(text string) (string, error) {
	return recipes.Render(text, s.data)
}

func outputEvent(line string) event.Event {
	return event.Event{Kind: event.Output, Message: line}
}

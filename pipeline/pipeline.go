// Package pipeline runs one build: an ordered list of typed steps that share
// a State, each with a cleanup that runs in reverse order after success,
// failure or cancellation.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/recipes"
)

// Step is one stage of a build.
type Step interface {
	// Name is the short label shown in events and the manifest.
	Name() string
	// Run does the step's work. It must return promptly when ctx ends.
	Run(ctx context.Context, s *State) error
	// Cleanup undoes what Run left behind that must not outlive the build
	// (processes, sockets, temp files). It runs even when Run failed or was
	// never reached, so it must cope with a partly filled State.
	Cleanup(s *State) error
}

// Options configures a build.
type Options struct {
	// Home is bake's cache and state directory (downloads, logs, probes).
	Home string
	// Force replaces an existing output directory.
	Force bool
	// Accelerator overrides the recipe's vm.accelerator when not empty.
	Accelerator string
	// Version is bake's own version, recorded in the manifest.
	Version string
	// KeepWorkDir leaves the work directory in place after the build.
	KeepWorkDir bool
	// OnError, when set, is asked what to do about each failed step while
	// the VM still runs. It may block, for example to prompt the user.
	OnError func(ctx context.Context, f Failure) Decision
	// PauseOnError keeps a failed build's VM, disk and seed server as they
	// are until ctx ends (Ctrl-C), so the guest can be inspected, and only
	// then cleans up.
	PauseOnError bool
	// PowerdownTimeout is how long the shutdown step waits for the guest
	// after an ACPI powerdown before it quits QEMU. Zero means
	// DefaultPowerdownTimeout.
	PowerdownTimeout time.Duration
}

// Build is one recipe being baked.
type Build struct {
	Recipe  *recipes.Recipe
	Options Options
	Emitter *event.Emitter
	Steps   []Step

	mu    sync.Mutex
	state *State
}

// WriteConsole sends bytes to the running VM's serial console. It returns
// an error when no VM is running.
func (b *Build) WriteConsole(data []byte) error {
	b.mu.Lock()
	s := b.state
	b.mu.Unlock()
	if s == nil {
		return errors.New("the build has not started")
	}
	s.mu.Lock()
	m := s.Machine
	s.mu.Unlock()
	if m == nil {
		return errors.New("no VM is running for this build")
	}
	return m.WriteConsole(data)
}

// New returns a build of r with the standard steps.
func New(r *recipes.Recipe, opts Options, emitter *event.Emitter) *Build {
	emitter.AddSecrets(r.Secrets...)
	return &Build{Recipe: r, Options: opts, Emitter: emitter, Steps: DefaultSteps(r)}
}

// DefaultSteps returns the steps for r, in order.
func DefaultSteps(r *recipes.Recipe) []Step {
	steps := []Step{
		&stepPrepare{},
		&stepFetchSource{},
		&stepCreateDisk{},
		&stepHTTPServer{},
		&stepSeedMedia{},
		&stepStartVM{},
		&stepBoot{},
	}
	if r.Communicator != "none" {
		steps = append(steps, &stepConnect{}, &stepProvision{}, &stepShutdown{})
	} else {
		steps = append(steps, &stepWaitPoweroff{})
	}
	return append(steps, &stepExport{})
}

// Result summarises a finished build.
type Result struct {
	OutputDir string
	LogDir    string
	Artifacts []event.ArtifactInfo
	Err       error
}

// Run executes every step in order, stops at the first error, and then
// runs the cleanups of all steps in reverse order.
func (b *Build) Run(ctx context.Context) (res Result) {
	s := newState(b)
	b.mu.Lock()
	b.state = s
	b.mu.Unlock()
	started := time.Now()
	parent := ctx
	s.parent = parent
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.setFailure(cancel)
	b.Emitter.Emit(event.Event{Kind: event.BuildStarted, Message: b.Recipe.Name})

	var runErr error
	for _, step := range b.Steps {
		if ctx.Err() != nil {
			runErr = fmt.Errorf("%s: %w", step.Name(), context.Cause(ctx))
			break
		}
		if runErr = b.runStepWithRetry(ctx, s, step); runErr != nil {
			break
		}
	}

	// A step that failed before any interruption is a failure, even when
	// the user then ends a pause with Ctrl-C.
	interrupted := runErr != nil && !s.failedFirst && parent.Err() != nil
	if runErr != nil && b.Options.PauseOnError && parent.Err() == nil {
		b.pause(parent, s, runErr)
	}
	if interrupted {
		b.Emitter.Warnf("interrupted during %s: stopping the VM and removing temporary files", s.lastStep)
		runErr = &InterruptedError{Step: s.lastStep, Cause: runErr}
	}
	cleanupErr := b.cleanup(s)
	res = Result{OutputDir: s.OutputDir, LogDir: s.LogDir, Artifacts: s.Artifacts, Err: runErr}
	if runErr == nil && cleanupErr != nil {
		res.Err = cleanupErr
	}
	done := event.Event{Kind: event.BuildFinished, Duration: time.Since(started), Message: s.OutputDir, Interrupted: interrupted}
	if res.Err != nil {
		done.Err = res.Err.Error()
		done.Message = s.LogDir
	}
	b.Emitter.Emit(done)
	return res
}

func (b *Build) runStep(ctx context.Context, s *State, step Step) error {
	s.lastStep = step.Name()
	defer func() {
		if s.stepFailed && s.parent.Err() == nil {
			s.failedFirst = true
		}
	}()
	b.Emitter.SetStep(step.Name())
	b.Emitter.Emit(event.Event{Kind: event.StepStarted})
	start := time.Now()
	err := step.Run(ctx, s)
	took := time.Since(start)
	s.Timings = append(s.Timings, Timing{Step: step.Name(), Duration: took})
	finished := event.Event{Kind: event.StepFinished, Duration: took}
	if err != nil {
		awaitWatchers(ctx, s)
		// A watcher that aborted the build (QEMU crashed, the guest never
		// fetched its seed) has a more precise error than the step that saw ctx end.
		if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		if !strings.HasPrefix(err.Error(), step.Name()+":") {
			err = fmt.Errorf("%s: %w", step.Name(), err)
		}
		finished.Err = err.Error()
		s.stepFailed = true
	}
	b.Emitter.Emit(finished)
	return err
}

// crashGrace bounds how long a failed step waits for watchMachine. The
// guest's SSH connection breaks as soon as the QEMU process dies, a moment
// before the process is reaped and the watcher reports why it exited.
const crashGrace = 250 * time.Millisecond

// awaitWatchers gives watchMachine a moment to cancel ctx with QEMU's exit
// status and stderr after a step failed while the VM should be running, so
// a crash is reported as a crash and not as the lost connection it caused.
func awaitWatchers(ctx context.Context, s *State) {
	s.mu.Lock()
	running := s.Machine != nil && !s.expectingVM
	s.mu.Unlock()
	if !running || ctx.Err() != nil {
		return
	}
	timeout := time.NewTimer(crashGrace)
	defer timeout.Stop()
	select {
	case <-s.Machine.Exited():
	case <-timeout.C:
		return
	}
	select {
	case <-ctx.Done():
	case <-timeout.C:
	}
}

// runStepWithRetry runs step and, when it fails and Options.OnError is set,
// requests a decision: retry it, keep everything for inspection, or clean up.
func (b *Build) runStepWithRetry(ctx context.Context, s *State, step Step) error {
	for {
		err := b.runStep(ctx, s, step)
		if err == nil || b.Options.OnError == nil || ctx.Err() != nil {
			return err
		}
		switch b.Options.OnError(ctx, b.failure(s, step, err)) {
		case DecideRetry:
			b.Emitter.Infof("retrying %s", step.Name())
			continue
		case DecideKeep:
			b.pause(ctx, s, err)
		}
		return err
	}
}

// InterruptedError reports a build stopped by a signal or the user rather
// than by a failure. Cause is the error the running step returned.
type InterruptedError struct {
	Step  string
	Cause error
}

func (e *InterruptedError) Error() string {
	return "interrupted during " + e.Step + " (the VM was stopped and temporary files removed)"
}

func (e *InterruptedError) Unwrap() error { return e.Cause }

// Decision is what to do about a failed step.
type Decision int

const (
	DecideCleanup Decision = iota // stop the VM, remove temporary files
	DecideRetry                   // run the failed step again
	DecideKeep                    // keep everything as it is until interrupted
)

// Failure describes a failed step and how to reach the build's VM.
type Failure struct {
	Build      string
	Step       string
	Err        error
	SSHArgs    []string // ssh command line reaching the guest, nil without a VM
	ConsoleLog string
	SeedURL    string
}

func (b *Build) failure(s *State, step Step, err error) Failure {
	f := Failure{Build: b.Recipe.Name, Step: step.Name(), Err: err}
	if s.console != nil {
		f.ConsoleLog = s.console.path
	}
	if s.HTTP != nil {
		f.SeedURL = s.HTTP.LocalURL()
	}
	if s.Machine != nil && s.Machine.SSHPort() > 0 && s.Key != nil {
		f.SSHArgs = []string{"ssh", "-i", filepath.Join(s.WorkDir, "id_ed25519"), "-p", strconv.Itoa(s.Machine.SSHPort()),
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", b.Recipe.SSH.Username + "@127.0.0.1"}
	}
	return f
}

// pause reports how to reach the failed build's VM and waits until ctx
// ends.
func (b *Build) pause(ctx context.Context, s *State, cause error) {
	b.Emitter.SetStep("paused")
	msg := fmt.Sprintf("build failed (%v); keeping everything as it is until interrupted (Ctrl-C). Console log: %s", cause, s.LogDir)
	if s.Machine != nil {
		msg += fmt.Sprintf("; QMP socket: %s", filepath.Join(s.WorkDir, "qmp.sock"))
		if port := s.Machine.SSHPort(); port > 0 {
			msg += fmt.Sprintf("; SSH: ssh -i %s -p %d -o StrictHostKeyChecking=no %s@127.0.0.1",
				filepath.Join(s.WorkDir, "id_ed25519"), port, b.Recipe.SSH.Username)
		}
	}
	if s.HTTP != nil {
		msg += "; seed server: " + s.HTTP.LocalURL()
	}
	b.Emitter.Emit(event.Event{Kind: event.Warning, Message: msg})
	<-ctx.Done()
}

func (b *Build) cleanup(s *State) error {
	b.Emitter.SetStep("cleanup")
	var errs []error
	for i := len(b.Steps) - 1; i >= 0; i-- {
		if err := b.Steps[i].Cleanup(s); err != nil {
			errs = append(errs, fmt.Errorf("cleanup of %s: %w", b.Steps[i].Name(), err))
		}
	}
	if s.WorkDir != "" && !b.Options.KeepWorkDir {
		if err := os.RemoveAll(s.WorkDir); err != nil {
			errs = append(errs, fmt.Errorf("failed to remove work directory: %w", err))
		}
	}
	if s.console != nil {
		s.console.Close()
	}
	return errors.Join(errs...)
}

// DefaultHome returns $BAKE_HOME, or ~/.cache/bake.
func DefaultHome() string {
	if h := os.Getenv("BAKE_HOME"); h != "" {
		return h
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "bake")
	}
	return filepath.Join(os.TempDir(), "bake")
}

package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/pipeline"
)

// A build that failed and was then kept paused until Ctrl-C is a failed
// build, not an interrupted one: the interrupt only ended the pause.
func TestPausedFailureStaysFailure(t *testing.T) {
	fx := newFixture(t, "normal")
	r := fx.recipe(t, recipeOptions{provision: "[[provision]]\nshell = [\"exit 3\"]\n", formats: `"qcow2"`})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{onEvent: func(e event.Event) {
		if e.Kind == event.Warning && strings.Contains(e.Message, "keeping everything as it is") {
			cancel()
		}
	}}
	opts := fx.options()
	opts.PauseOnError = true
	res := pipeline.New(r, opts, event.NewEmitter(r.Name, rec)).Run(ctx)

	if res.Err == nil {
		t.Fatal("the build succeeded")
	}
	var stopped *pipeline.InterruptedError
	if errors.As(res.Err, &stopped) {
		t.Errorf("error = %v, reported as interrupted though the provisioner failed first", res.Err)
	}
	if !strings.Contains(res.Err.Error(), "exited with status 3") {
		t.Errorf("error = %v, want the provisioner's exit status", res.Err)
	}
	fx.assertNoLeftovers(t, res)
}

// A build interrupted while a step runs reports the interruption.
func TestInterruptedBuildSaysSo(t *testing.T) {
	fx := newFixture(t, "ssh-never")
	r := fx.recipe(t, recipeOptions{sshTimeout: "1m", formats: `"qcow2"`})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var finished event.Event
	rec := &recorder{onEvent: func(e event.Event) {
		if e.Kind == event.StepStarted && e.Step == "ssh" {
			cancel()
		}
		if e.Kind == event.BuildFinished {
			finished = e
		}
	}}
	res := pipeline.New(r, fx.options(), event.NewEmitter(r.Name, rec)).Run(ctx)

	var stopped *pipeline.InterruptedError
	if !errors.As(res.Err, &stopped) || stopped.Step != "ssh" {
		t.Fatalf("error = %v, want an interruption during ssh", res.Err)
	}
	if !errors.Is(res.Err, context.Canceled) {
		t.Errorf("error = %v does not wrap context.Canceled", res.Err)
	}
	if !finished.Interrupted {
		t.Error("build.finished event lacks interrupted")
	}
	fx.assertNoLeftovers(t, res)
}

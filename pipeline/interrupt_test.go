package pipeline_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
)

// TestBuildInterruptedAtEachStep cancels the build's context the moment a
// step starts, as Ctrl-C would, and checks that the cleanups leave nothing
// behind but the logs.
func TestBuildInterruptedAtEachStep(t *testing.T) {
	steps := []string{"prepare", "source", "disk", "http", "seed", "vm", "boot", "ssh", "provision", "shutdown", "export"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			fx := newFixture(t, "normal")
			r := fx.recipe(t, recipeOptions{formats: `"qcow2"`})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rec := &recorder{onEvent: func(e event.Event) {
				if e.Kind == event.StepStarted && e.Step == step {
					cancel()
				}
			}}
			res := fx.run(ctx, r, rec)
			if res.Err == nil {
				t.Fatal("interrupted build succeeded")
			}
			if !errors.Is(res.Err, context.Canceled) {
				t.Errorf("error does not wrap context.Canceled: %v", res.Err)
			}
			started := rec.stepsStarted()
			if last := started[len(started)-1]; last != step {
				t.Errorf("last step started = %q, want %q (steps %v)", last, step, started)
			}
			fx.assertNoLeftovers(t, res)
			fx.assertNoOutput(t)
		})
	}
}

// TestBuildInterruptedMidStep cancels while a step waits on the guest and
// checks that the build ends promptly and stops the guest's command too.
func TestBuildInterruptedMidStep(t *testing.T) {
	tests := []struct {
		name      string
		mode      string
		provision string
		step      string
	}{
		{name: "waiting for SSH", mode: "ssh-never", step: "ssh"},
		{name: "running a command", mode: "normal", provision: "[[provision]]\nshell = [\"sleep 60\"]\n", step: "provision"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, tt.mode)
			r := fx.recipe(t, recipeOptions{provision: tt.provision, sshTimeout: "60s", formats: `"qcow2"`})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var cancelled atomic.Int64
			rec := &recorder{onEvent: func(e event.Event) {
				if e.Kind == event.StepStarted && e.Step == tt.step {
					time.AfterFunc(500*time.Millisecond, func() {
						cancelled.Store(time.Now().UnixNano())
						cancel()
					})
				}
			}}
			res := fx.run(ctx, r, rec)
			ended := time.Now()
			if res.Err == nil {
				t.Fatal("interrupted build succeeded")
			}
			if !errors.Is(res.Err, context.Canceled) {
				t.Errorf("error does not wrap context.Canceled: %v", res.Err)
			}
			if at := cancelled.Load(); at == 0 {
				t.Fatalf("build ended before the cancel: %v", res.Err)
			} else if took := ended.Sub(time.Unix(0, at)); took > 5*time.Second {
				t.Errorf("build took %s to end after the cancel", took)
			}
			fx.assertNoLeftovers(t, res)
			fx.assertNoOutput(t)
		})
	}
}

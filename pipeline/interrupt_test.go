package pipeline_test

import (
	"context"
	"errors"
	"testing"

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

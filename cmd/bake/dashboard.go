package main

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/charmbracelet/x/term"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/pipeline"
	"github.com/bakeimg/bake/recipes"
	"github.com/bakeimg/bake/tui"
)

// useDashboard reports whether the interactive dashboard should run: only
// when stdout is a terminal and no plain or JSON output was asked for.
func useDashboard(o *options, stdout io.Writer) bool {
	if o.ci || o.json == "-" || os.Getenv("CI") != "" {
		return false
	}
	f, ok := stdout.(*os.File)
	return ok && term.IsTerminal(f.Fd()) && term.IsTerminal(os.Stdin.Fd())
}

// registry maps build names to running builds, for console attach.
type registry struct {
	mu     sync.Mutex
	builds map[string]*pipeline.Build
}

func (r *registry) add(b *pipeline.Build) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.builds == nil {
		r.builds = map[string]*pipeline.Build{}
	}
	r.builds[b.Recipe.Name] = b
}

func (r *registry) attach(name string, data []byte) {
	r.mu.Lock()
	b := r.builds[name]
	r.mu.Unlock()
	if b != nil {
		b.WriteConsole(data)
	}
}

// runDashboard runs the builds with the dashboard in front and returns the
// number of failed builds and whether the user quit early.
func runDashboard(ctx context.Context, o *options, list []*recipes.Recipe, extra event.Sink, stdout io.Writer) *tally {
	events := make(chan event.Event, 1024)
	sink := event.Fanout{extra, event.SinkFunc(func(e event.Event) { events <- e })}

	buildCtx, stopBuilds := context.WithCancel(ctx)
	defer stopBuilds()
	reg := &registry{}
	var results *tally
	done := make(chan struct{})
	go func() {
		results = runBuilds(buildCtx, o, list, sink, reg)
		close(events)
		close(done)
	}()

	names := make([]string, len(list))
	for i, r := range list {
		names[i] = r.Name
	}
	_, noColor := os.LookupEnv("NO_COLOR")
	err := tui.Run(ctx, events, tui.Options{
		Builds:  names,
		Stop:    stopBuilds,
		Attach:  reg.attach,
		NoColor: noColor || o.noColor,
		Output:  stdout,
	})
	if err != nil {
		// The dashboard has closed, so no one would see the builds finish.
		stopBuilds()
	}
	<-done
	results.quit = errors.Is(err, tui.ErrQuit)
	return results
}

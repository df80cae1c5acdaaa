package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/pipeline"
	"github.com/bakeimg/bake/recipes"
	"github.com/bakeimg/bake/report"
)

// loadRecipes loads every path, with one recipe per matrix build, and
// reports all errors of all recipes. A file whose builds reuse the name or
// output directory of an earlier file's build is reported and left out.
func loadRecipes(o *options, paths []string, stderr io.Writer) ([]*recipes.Recipe, bool) {
	var list []*recipes.Recipe
	ok := true
	for _, path := range paths {
		builds, err := recipes.LoadAll(path, recipes.LoadOptions{
			Vars:     o.varMap(),
			VarFiles: o.varFiles,
			Environ:  os.Environ(),
		})
		if err == nil {
			if errs := recipes.CheckDistinct(append(slices.Clip(list), builds...)); len(errs) > 0 {
				err = errs
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			ok = false
			continue
		}
		list = append(list, builds...)
	}
	return list, ok
}

func cmdValidate(o *options, paths []string, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		fmt.Fprintf(stderr, "bake validate: no recipe given\n%s", usageHint)
		return exitUsage
	}
	list, ok := loadRecipes(o, paths, stderr)
	for _, r := range list {
		fmt.Fprintf(stdout, "%s: ok (%s)\n", r.Path, r.Name)
		for _, w := range r.Warnings {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
		for i, p := range r.Provision {
			if len(p.Local) > 0 {
				fmt.Fprintf(stdout, "  provisioner %d runs commands on this host (local): %s\n", i+1, strings.Join(p.Local, "; "))
			}
		}
	}
	if !ok {
		return exitUsage
	}
	return exitOK
}

func cmdBuild(ctx context.Context, o *options, paths []string, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		fmt.Fprintf(stderr, "bake build: no recipe given\n%s", usageHint)
		return exitUsage
	}
	list, ok := loadRecipes(o, paths, stderr)
	if !ok {
		return exitUsage
	}
	list = filterRecipes(list, o)
	if len(list) == 0 {
		fmt.Fprintln(stderr, "bake build: --only/--except left no recipe to build")
		return exitUsage
	}

	// Prompts need the terminal, so asking replaces the dashboard.
	dashboard := useDashboard(o, stdout) && o.onError != "ask"
	if o.onError == "ask" {
		o.asker = newAsker(os.Stdin, stderr)
	}
	sinks, finish, err := openSinks(o, stdout, dashboard)
	if err != nil {
		fmt.Fprintf(stderr, "bake: %v\n", err)
		return exitUsage
	}
	var results *tally
	if dashboard {
		results = runDashboard(ctx, o, list, sinks, stdout)
	} else {
		results = runBuilds(ctx, o, list, sinks, &registry{})
	}
	if err := finish(); err != nil {
		fmt.Fprintf(stderr, "bake: %v\n", err)
		return exitBuildFailed
	}
	return results.exitCode()
}

func filterRecipes(list []*recipes.Recipe, o *options) []*recipes.Recipe {
	only, except := splitNames(o.only), splitNames(o.except)
	var out []*recipes.Recipe
	for _, r := range list {
		if len(only) > 0 && !only[r.Name] || except[r.Name] {
			continue
		}
		out = append(out, r)
	}
	return out
}

// openSinks builds the event consumers the flags ask for and returns a
// function that flushes and closes them.
func openSinks(o *options, stdout io.Writer, dashboard bool) (event.Sink, func() error, error) {
	var sinks event.Fanout
	var closers []func() error

	if o.json != "-" && !dashboard {
		plain := report.NewPlain(stdout, report.PlainOptions{Console: o.console})
		sinks = append(sinks, verbosity(plain, o.verbose))
		closers = append(closers, plain.Flush)
	}
	if o.json != "" {
		w := stdout
		if o.json != "-" {
			f, err := os.Create(o.json)
			if err != nil {
				return nil, nil, fmt.Errorf("failed to create --json file: %w", err)
			}
			w = f
			closers = append(closers, f.Close)
		}
		sinks = append(sinks, report.NewJSON(w))
	}
	if o.junit != "" {
		// Fail now rather than after a long build when the report cannot
		// be written there.
		f, err := os.OpenFile(o.junit, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot write the --junit report: %w", err)
		}
		f.Close()
		j := report.NewJUnit("bake")
		sinks = append(sinks, j)
		closers = append(closers, func() error { return j.WriteFile(o.junit) })
	}
	finish := func() error {
		var first error
		for _, c := range closers {
			if err := c(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	return sinks, finish, nil
}

// verbosity drops debug events unless verbose output was asked for.
func verbosity(s event.Sink, verbose bool) event.Sink {
	if verbose {
		return s
	}
	return event.SinkFunc(func(e event.Event) {
		if e.Kind != event.Debug {
			s.Emit(e)
		}
	})
}

// runBuilds runs the recipes with bounded parallelism and returns how many
// failed.
// tally counts finished builds that did not succeed.
type tally struct {
	mu          sync.Mutex
	failed      int  // failed on their own
	interrupted int  // stopped by a signal, the dashboard or --fail-fast
	quit        bool // the user quit the dashboard while builds ran
}

func (t *tally) add(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var stopped *pipeline.InterruptedError
	if errors.As(err, &stopped) {
		t.interrupted++
	} else {
		t.failed++
	}
}

// exitCode returns exitInterrupted when any build was stopped, which the
// caller turns into 130 or 143 for the signal that stopped it.
func (t *tally) exitCode() int {
	switch {
	case t.quit:
		return exitSIGINT
	case t.interrupted > 0:
		return exitInterrupted
	case t.failed > 0:
		return exitBuildFailed
	}
	return exitOK
}

func runBuilds(ctx context.Context, o *options, list []*recipes.Recipe, sink event.Sink, reg *registry) *tally {
	limit, why := o.parallel, "set by --parallel"
	if limit == 0 {
		limit, why = defaultParallel(list)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	home := o.home
	if home == "" {
		home = pipeline.DefaultHome()
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	results := &tally{}
	for _, r := range list {
		wg.Add(1)
		go func(r *recipes.Recipe) {
			defer wg.Done()
			emitter := event.NewEmitter(r.Name, sink)
			if len(list) > 1 {
				emitter.Infof("%d builds, running up to %d at once (%s)", len(list), limit, why)
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				err := &pipeline.InterruptedError{Step: "start", Cause: ctx.Err()}
				emitter.Emit(event.Event{Kind: event.BuildFinished, Err: err.Error(), Interrupted: true})
				results.add(err)
				return
			}
			defer func() { <-sem }()
			b := pipeline.New(r, pipeline.Options{
				Home:         home,
				Force:        o.force,
				Accelerator:  o.accel,
				Version:      bakeVersion(),
				KeepWorkDir:  o.keepWork,
				PauseOnError: o.onError == "abort",
				OnError:      o.onErrorFunc(),
			}, emitter)
			reg.add(b)
			res := b.Run(ctx)
			if res.Err != nil {
				results.add(res.Err)
				if o.failFast {
					cancel()
				}
			}
		}(r)
	}
	wg.Wait()
	return results
}

// defaultParallel allows one build per two cores and per 2 GiB of the
// guests' memory, and at least one.
func defaultParallel(list []*recipes.Recipe) (int, string) {
	cores := runtime.NumCPU()
	n := max(cores/2, 1)
	why := fmt.Sprintf("one per two of %d cores", cores)
	if mem := availableMemory(); mem > 0 && len(list) > 0 {
		per := int64(list[0].VM.Memory) + 512<<20
		if byMemory := max(int(mem/per), 1); byMemory < n {
			n = byMemory
			why = fmt.Sprintf("%d MiB available, %d MiB per VM with QEMU's overhead", mem>>20, per>>20)
		}
	}
	return min(n, len(list)), why
}

func availableMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "MemAvailable: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

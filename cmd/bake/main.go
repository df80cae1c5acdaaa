// Command bake turns TOML recipes into machine images with QEMU.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/bakeimg/bake/pipeline"
)

// Exit codes, documented in docs/cli.md.
const (
	exitOK          = 0
	exitBuildFailed = 1
	exitUsage       = 2
	exitSIGINT      = 130
	exitSIGTERM     = 143

	// exitInterrupted is returned by commands when a build was stopped
	// rather than failed; run maps it to the signal's code.
	exitInterrupted = -1
)

var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, rest, err := parseFlags(globalFlagSet, args)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "bake: %v\n%s", err, usageHint)
		return exitUsage
	}
	if opts.version {
		fmt.Fprintln(stdout, "bake", bakeVersion())
		return exitOK
	}
	if len(rest) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}

	if rest[0] == "build" || rest[0] == "validate" {
		if _, _, err := pipeline.KeyIntervalFromEnv(); err != nil {
			fmt.Fprintf(stderr, "bake: %v\n", err)
			return exitUsage
		}
	}

	ctx, signals := withSignals(context.Background())
	defer signals.stop()

	var code int
	switch rest[0] {
	case "build":
		code = cmdBuild(ctx, opts, rest[1:], stdout, stderr)
	case "validate":
		code = cmdValidate(opts, rest[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "bake", bakeVersion())
		return exitOK
	case "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(stderr, "bake: unknown command %q\n%s", rest[0], usageHint)
		return exitUsage
	}
	if code != exitInterrupted {
		return code
	}
	switch signals.received() {
	case syscall.SIGTERM:
		return exitSIGTERM
	case nil:
		// Stopped by --fail-fast after another build failed.
		return exitBuildFailed
	}
	return exitSIGINT
}

func bakeVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
		if info.Main.Version != "" && info.Main.Version != "(devel)" {
			return info.Main.Version
		}
	}
	return "dev"
}

// signalWatch cancels a context on the first SIGINT or SIGTERM and records
// which signal arrived, so the exit code can tell them apart. A second
// signal exits at once.
type signalWatch struct {
	ch     chan os.Signal
	cancel context.CancelFunc
	sig    chan os.Signal
}

func withSignals(parent context.Context) (context.Context, *signalWatch) {
	ctx, cancel := context.WithCancel(parent)
	w := &signalWatch{ch: make(chan os.Signal, 2), cancel: cancel, sig: make(chan os.Signal, 1)}
	signal.Notify(w.ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		first, ok := <-w.ch
		if !ok {
			return
		}
		w.sig <- first
		cancel()
		if second, ok := <-w.ch; ok {
			fmt.Fprintf(os.Stderr, "bake: second %v, exiting without cleanup\n", second)
			if second == syscall.SIGTERM {
				os.Exit(exitSIGTERM)
			}
			os.Exit(exitSIGINT)
		}
	}()
	return ctx, w
}

func (w *signalWatch) received() os.Signal {
	select {
	case s := <-w.sig:
		w.sig <- s
		return s
	default:
		return nil
	}
}

func (w *signalWatch) stop() {
	signal.Stop(w.ch)
	w.cancel()
}

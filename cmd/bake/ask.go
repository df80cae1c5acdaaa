package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/bakeimg/bake/pipeline"
)

// asker prompts on the terminal when a step fails with --on-error=ask. One
// prompt is shown at a time, even with several builds running.
type asker struct {
	mu  sync.Mutex
	in  *bufio.Reader
	out io.Writer
}

func newAsker(in io.Reader, out io.Writer) *asker {
	return &asker{in: bufio.NewReader(in), out: out}
}

func (a *asker) ask(ctx context.Context, f pipeline.Failure) pipeline.Decision {
	a.mu.Lock()
	defer a.mu.Unlock()

	fmt.Fprintf(a.out, "\n%s: step %s failed: %v\n", f.Build, f.Step, f.Err)
	if f.ConsoleLog != "" {
		fmt.Fprintf(a.out, "  console log: %s\n", f.ConsoleLog)
	}
	if f.SeedURL != "" {
		fmt.Fprintf(a.out, "  seed server: %s\n", f.SeedURL)
	}
	if f.SSHArgs != nil {
		fmt.Fprintf(a.out, "  ssh: %s\n", strings.Join(f.SSHArgs, " "))
	}
	for {
		fmt.Fprint(a.out, "[r]etry the step, open a [s]hell over SSH, [k]eep everything until Ctrl-C, or [c]lean up (a letter, then Enter)? ")
		line, err := a.readLine(ctx)
		if err != nil {
			fmt.Fprintln(a.out)
			return pipeline.DecideCleanup
		}
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "r", "retry":
			return pipeline.DecideRetry
		case "k", "keep":
			return pipeline.DecideKeep
		case "c", "clean", "cleanup", "":
			return pipeline.DecideCleanup
		case "s", "shell":
			a.shell(f)
		default:
			fmt.Fprintf(a.out, "unknown answer %q\n", strings.TrimSpace(line))
		}
	}
}

// readLine reads one line, giving up when ctx ends.
func (a *asker) readLine(ctx context.Context) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := a.in.ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil && r.line == "" {
			return "", r.err
		}
		return r.line, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (a *asker) shell(f pipeline.Failure) {
	if f.SSHArgs == nil {
		fmt.Fprintln(a.out, "no VM with SSH is running for this build")
		return
	}
	cmd := exec.Command(f.SSHArgs[0], f.SSHArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(a.out, "ssh: %v\n", err)
	}
}

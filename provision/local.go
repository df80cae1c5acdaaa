package provision

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"

	"github.com/bakeimg/bake/event"
)

// KindLocal is a provisioner that runs commands on the host.
const KindLocal = "local"

// local runs the lines on the host with "sh -e" in the recipe's directory,
// with the provisioner's environment added to bake's own.
func (r *run) local(ctx context.Context) error {
	lines := r.opts.Local
	r.opts.Emitter.Infof("%s: running %s on the host", r.label, describeLines(lines))
	cmd := exec.CommandContext(ctx, "sh", "-ec", strings.Join(normalizeLineEnds(lines), "\n"))
	cmd.Dir = r.opts.Dir
	cmd.Env = os.Environ()
	names := make([]string, 0, len(r.opts.Environment))
	for name := range r.opts.Environment {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		cmd.Env = append(cmd.Env, name+"="+r.opts.Environment[name])
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start sh on the host: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go r.emitLines(&wg, stdout, false)
	go r.emitLines(&wg, stderr, true)
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		if exit, ok := err.(*exec.ExitError); ok && exit.ExitCode() >= 0 {
			return fmt.Errorf("host command %q exited with status %d", firstLine(lines), exit.ExitCode())
		}
		return fmt.Errorf("host command %q failed: %w", firstLine(lines), err)
	}
	return nil
}

func (r *run) emitLines(wg *sync.WaitGroup, rd io.Reader, isStderr bool) {
	defer wg.Done()
	scanner := bufio.NewScanner(rd)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		r.opts.Emitter.Emit(event.Event{Kind: event.Output, Message: scanner.Text(), Stderr: isStderr})
	}
}

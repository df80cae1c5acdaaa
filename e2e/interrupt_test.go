package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/report"
)

// TestE2EInterruptDuringProvision sends SIGINT to a real bake while its
// provisioner runs, and checks that bake exits 130, stops QEMU, writes no
// output directory and keeps the logs.
func TestE2EInterruptDuringProvision(t *testing.T) {
	requireFullRun(t)
	requireBinaries(t, "qemu-system-x86_64", "qemu-img", "pgrep")
	vars, _ := debianVars(t)
	recipe := filepath.Join(repoRoot, "recipes", "debian-12-cloud.toml")
	const name = "debian-12-cloud"

	work := t.TempDir()
	// A home of its own gives the build a work directory whose path no
	// other process on the machine has in its command line.
	home := t.TempDir()
	workRoot := filepath.Join(home, "work")
	stderrPath := filepath.Join(work, "stderr.log")
	stderr, err := os.Create(stderrPath)
	if err != nil {
		t.Fatalf("failed to create %s: %v", stderrPath, err)
	}
	defer stderr.Close()

	args := append([]string{"build", recipe, "--ci", "--force", "--accel", accelerator(),
		"--home", home, "--json", "-"}, vars...)
	cmd := exec.Command(bakeBin, args...)
	cmd.Dir = work
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("failed to open a pipe for bake's events: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start bake: %v", err)
	}
	waited := make(chan error, 1)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
		killLeftovers(t, workRoot)
	})

	// Watch the event stream and interrupt once the provisioner has
	// printed its first line, so the signal lands while a command runs in
	// the guest.
	var events []event.Event
	interruptedAt := time.Time{}
	sawQEMU := false
	watchdog := time.AfterFunc(20*time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	scanner := bufio.NewScanner(stdout)
	scanner.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for scanner.Scan() {
		var j report.JSONEvent
		if err := json.Unmarshal(scanner.Bytes(), &j); err != nil {
			t.Errorf("invalid JSON event %q: %v", scanner.Text(), err)
			continue
		}
		ev := j.ToEvent()
		events = append(events, ev)
		if interruptedAt.IsZero() && ev.Kind == event.Output && ev.Step == "provision" {
			// QEMU must be found by the same pgrep that later must not
			// find it, or that later check proves nothing.
			sawQEMU = pgrep(t, workRoot) != ""
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatalf("failed to send SIGINT to bake: %v", err)
			}
			interruptedAt = time.Now()
			t.Logf("sent SIGINT during provision after %q", ev.Message)
		}
	}
	if err := scanner.Err(); err != nil {
		t.Errorf("failed to read bake's events: %v", err)
	}
	go func() { waited <- cmd.Wait() }()
	err = <-waited
	if interruptedAt.IsZero() {
		t.Fatalf("bake ended (%v) before the provisioner printed anything; stderr:\n%s", err, tail(stderrPath, 40))
	}
	t.Logf("bake exited %s after SIGINT", time.Since(interruptedAt).Round(time.Second))

	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 130 {
		t.Errorf("bake exited with %v, expected exit status 130; stderr:\n%s", err, tail(stderrPath, 40))
	}
	if !sawQEMU {
		t.Errorf("pgrep -f %s found no process while the build ran: the check for a leftover QEMU cannot work", workRoot)
	}
	if left := pgrep(t, workRoot); left != "" {
		t.Errorf("processes still running with %s in their command line after bake exited:\n%s", workRoot, left)
	}
	if entries, err := os.ReadDir(workRoot); err != nil || len(entries) != 0 {
		t.Errorf("work directory %s: %d entries left (%v), expected it empty", workRoot, len(entries), err)
	}
	if _, err := os.Stat(filepath.Join(work, "output")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output directory exists after an interrupted build (stat: %v), expected none", err)
	}

	logs, _ := filepath.Glob(filepath.Join(home, "logs", name, "*", "console.log"))
	if len(logs) != 1 {
		t.Fatalf("found %d console logs under %s, expected 1", len(logs), filepath.Join(home, "logs", name))
	}
	if info, err := os.Stat(logs[0]); err != nil || info.Size() == 0 {
		t.Errorf("console log %s is missing or empty after the interrupt (stat: %v)", logs[0], err)
	}

	if len(events) == 0 {
		t.Fatal("bake wrote no events")
	}
	last := events[len(events)-1]
	if last.Kind != event.BuildFinished || last.Err == "" {
		t.Errorf("last event = %s with error %q, expected a failed %s", last.Kind, last.Err, event.BuildFinished)
	}
	if last.Message != filepath.Dir(logs[0]) {
		t.Errorf("the failed %s names %q, expected the log directory %q", event.BuildFinished, last.Message, filepath.Dir(logs[0]))
	}
}

// pgrep returns the processes whose command line contains pattern, one
// "PID COMMAND" per line, or "" when there are none.
func pgrep(t *testing.T, pattern string) string {
	t.Helper()
	out, err := exec.Command("pgrep", "-a", "-f", pattern).Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 1 {
		return ""
	}
	if err != nil {
		t.Fatalf("pgrep -f %s failed: %v", pattern, err)
	}
	return strings.TrimSpace(string(out))
}

// killLeftovers kills, by process id, each process that pgrep finds with
// pattern in its command line, such as a QEMU that a failed build left.
func killLeftovers(t *testing.T, pattern string) {
	t.Helper()
	for _, line := range strings.Split(pgrep(t, pattern), "\n") {
		pid, _, _ := strings.Cut(line, " ")
		n, err := strconv.Atoi(pid)
		if err != nil {
			continue
		}
		if p, err := os.FindProcess(n); err == nil {
			t.Logf("killing leftover process %s", line)
			p.Kill()
		}
	}
}

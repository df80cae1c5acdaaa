package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/report"
)

// Size of the tmux window the dashboard draws in. At least 115 columns puts
// the build list beside the console and log panes.
const (
	dashColumns = 160
	dashRows    = 48
)

// TestE2EDashboardTwoBuilds runs bake with its dashboard in a tmux pane on
// two Debian builds at once, watches each build's console pane change, and
// checks that both builds finish.
func TestE2EDashboardTwoBuilds(t *testing.T) {
	requireFullRun(t)
	requireBinaries(t, "qemu-system-x86_64", "qemu-img", "tmux")
	vars, _ := debianVars(t)
	builds := []string{"dash-a", "dash-b"}

	work := t.TempDir()
	home := t.TempDir()
	jsonPath := filepath.Join(work, "events.json")
	exitPath := filepath.Join(work, "exit-code")
	args := []string{bakeBin, "build", "--accel", accelerator(), "--home", home,
		"--parallel", "2", "--json", jsonPath}
	for _, b := range builds {
		args = append(args, filepath.Join(repoRoot, "e2e", "testdata", b+".toml"))
	}
	args = append(args, vars...)
	// CI is unset because bake prints plain lines instead of the dashboard
	// when it is set, as on most CI runners.
	script := fmt.Sprintf("cd %s && env -u CI %s; echo $? > %s",
		shellQuote(work), shellJoin(args), shellQuote(exitPath))

	tm := newTmux(t)
	tm.run(t, "new-session", "-d", "-s", "bake", "-x", strconv.Itoa(dashColumns), "-y", strconv.Itoa(dashRows), script)

	// Select each build in turn and record its console pane, until the
	// footer reports that every build finished.
	consoles := map[string][]string{}
	var screen string
	deadline := time.Now().Add(25 * time.Minute)
	for finished := false; !finished; {
		if time.Now().After(deadline) {
			t.Fatalf("the builds did not finish within 25 minutes; last screen:\n%s", screen)
		}
		if _, err := os.Stat(exitPath); err == nil {
			t.Fatalf("bake exited (status %s) before the dashboard showed both builds finished; last screen:\n%s",
				readTrimmed(exitPath), screen)
		}
		for i, b := range builds {
			tm.run(t, "send-keys", "-t", "bake", strconv.Itoa(i+1))
			time.Sleep(500 * time.Millisecond)
			screen = tm.capture(t)
			if text, ok := consolePane(screen, b); ok {
				if n := len(consoles[b]); n == 0 || consoles[b][n-1] != text {
					consoles[b] = append(consoles[b], text)
				}
			}
			if strings.Contains(screen, "all builds finished") {
				finished = true
			}
		}
		time.Sleep(3 * time.Second)
	}

	if !strings.Contains(screen, "2 done, 0 failed") {
		t.Errorf("final footer does not report 2 done, 0 failed:\n%s", screen)
	}
	for _, b := range builds {
		if len(consoles[b]) < 2 {
			t.Errorf("console pane of %s showed %d distinct contents, expected it to update while the VM ran", b, len(consoles[b]))
			continue
		}
		if last := consoles[b][len(consoles[b])-1]; strings.TrimSpace(last) == "" {
			t.Errorf("console pane of %s is empty at the end, expected the guest's serial output", b)
		}
	}

	// The dashboard stays until q is pressed once every build is done.
	tm.run(t, "send-keys", "-t", "bake", "q")
	waitForFile(t, exitPath, time.Minute)
	if code := readTrimmed(exitPath); code != "0" {
		t.Errorf("bake exited with status %s after q, expected 0", code)
	}
	for _, b := range builds {
		image := filepath.Join(work, "output", b, b+".qcow2")
		if _, err := os.Stat(image); err != nil {
			t.Errorf("build %s wrote no image: %v", b, err)
		}
	}
	checkBothFinished(t, jsonPath, builds)
}

// consolePane returns the text of the console pane when it shows build, from
// a capture of the wide layout: the lines between the "console · NAME"
// title and the "log ·" title, right of the build list's separator.
func consolePane(screen, build string) (string, bool) {
	lines := strings.Split(screen, "\n")
	start := -1
	for i, line := range lines {
		if strings.Contains(line, "console · "+build) {
			start = i + 1
			break
		}
	}
	if start < 0 {
		return "", false
	}
	var pane []string
	for _, line := range lines[start:] {
		_, right, ok := strings.Cut(line, "│")
		if !ok {
			break
		}
		if strings.HasPrefix(strings.TrimSpace(right), "log · ") {
			break
		}
		pane = append(pane, strings.TrimRight(right, " "))
	}
	return strings.Join(pane, "\n"), true
}

func checkBothFinished(t *testing.T, jsonPath string, builds []string) {
	t.Helper()
	f, err := os.Open(jsonPath)
	if err != nil {
		t.Fatalf("failed to open the --json file: %v", err)
	}
	defer f.Close()
	events, err := report.ReadJSON(f)
	if err != nil {
		t.Fatalf("the --json file does not parse: %v", err)
	}
	finished := map[string]string{}
	consoleBytes := map[string]int{}
	for _, ev := range events {
		switch ev.Kind {
		case event.BuildFinished:
			finished[ev.Build] = ev.Err
		case event.Console:
			consoleBytes[ev.Build] += len(ev.Data)
		}
	}
	for _, b := range builds {
		errText, ok := finished[b]
		if !ok {
			t.Errorf("no %s event for %s", event.BuildFinished, b)
		} else if errText != "" {
			t.Errorf("build %s failed: %s", b, errText)
		}
		if consoleBytes[b] == 0 {
			t.Errorf("no console output in the events of %s", b)
		}
	}
}

// tmux drives a tmux server on a socket of its own, so the test does not
// touch any other tmux session on the machine.
type tmux struct {
	socket string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	// The socket lives in a test directory, so it goes with the test.
	tm := &tmux{socket: filepath.Join(t.TempDir(), "tmux.sock")}
	t.Cleanup(func() {
		// Quitting the dashboard lets bake clean up its VMs; killing the
		// server then ends the pane if bake is still there.
		exec.Command("tmux", "-S", tm.socket, "send-keys", "-t", "bake", "q").Run()
		exec.Command("tmux", "-S", tm.socket, "kill-server").Run()
	})
	return tm
}

func (tm *tmux) run(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("tmux", append([]string{"-S", tm.socket}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux %s failed: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (tm *tmux) capture(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("tmux", "-S", tm.socket, "capture-pane", "-p", "-t", "bake").Output()
	if err != nil {
		t.Fatalf("tmux capture-pane failed: %v", err)
	}
	return string(out)
}

func waitForFile(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within %s", path, timeout)
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err)
	}
	return strings.TrimSpace(string(b))
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

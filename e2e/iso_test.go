package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/report"
)

// TestE2ETinyInstaller runs the whole ISO flow on the project's tiny
// installer: the boot command typed at its isolinux prompt, the seed served
// over HTTP, the install to the blank disk, the reboot into it, SSH and
// provisioning, shutdown and export.
func TestE2ETinyInstaller(t *testing.T) {
	requireBinaries(t, "qemu-system-x86_64", "qemu-img")
	iso := fixture(t, "tiny-iso")
	work := t.TempDir()
	home := t.TempDir()
	jsonPath := filepath.Join(work, "events.jsonl")
	logPath := filepath.Join(work, "bake.log")

	code := runBake(t, work, logPath, "build", filepath.Join(repoRoot, "recipes", "tiny-installer.toml"),
		"--ci", "--accel", accelerator(), "--home", home, "--json", jsonPath, "--var", "iso="+iso)
	if code != 0 {
		t.Fatalf("bake exited %d, want 0; last lines of its output:\n%s", code, tail(logPath, 40))
	}

	image := filepath.Join(work, "output", "tiny-installer", "tiny-installer.qcow2")
	if out, err := exec.Command("qemu-img", "check", image).CombinedOutput(); err != nil {
		t.Errorf("qemu-img check %s: %v\n%s", image, err, out)
	}
	checkSums(t, filepath.Dir(image), []string{"tiny-installer.qcow2"})

	events := readEvents(t, jsonPath)
	if !hasEvent(events, func(e event.Event) bool {
		return e.Kind == event.HTTPRequest && e.HTTP.Path == "/seed.sh" && e.HTTP.Status == 200
	}) {
		t.Error("no http.request event for a successful GET /seed.sh: the installer never fetched its seed")
	}
	// The seed's post_install writes /etc/installed-by into the installed
	// system, and the provisioner prints it over SSH: seeing it proves the
	// build provisioned the installed disk, not the installer.
	if !hasEvent(events, func(e event.Event) bool {
		return e.Kind == event.Output && e.Message == "installed by tiny-installer"
	}) {
		t.Error(`no provisioner output "installed by tiny-installer": SSH did not reach the installed system`)
	}
	if !hasEvent(events, func(e event.Event) bool {
		return e.Kind == event.KeysTyped && strings.Contains(e.Message, "install seed=http://10.0.2.2:")
	}) {
		t.Error("no boot.keys event with the typed install line")
	}
}

// TestE2ENetinstFetchesPreseed boots the real Debian 12 installer (the
// netboot package made into an ISO), lets bake type the shipped recipe's
// boot command into its isolinux menu, and waits until the installer GETs
// the preseed from bake's seed server. The mirror here lacks installer
// components, so the install itself is not attempted: bake is interrupted
// after the GET and must clean up.
func TestE2ENetinstFetchesPreseed(t *testing.T) {
	requireBinaries(t, "qemu-system-x86_64", "qemu-img", "pgrep")
	iso := fixture(t, "netboot-iso")
	work := t.TempDir()
	home := t.TempDir()
	workRoot := filepath.Join(home, "work")
	stderrPath := filepath.Join(work, "stderr.log")
	stderr, err := os.Create(stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()

	cmd := exec.Command(bakeBin, "build", filepath.Join(repoRoot, "recipes", "debian-12-netinst.toml"),
		"--ci", "--accel", accelerator(), "--home", home, "--json", "-",
		"--var", "iso="+iso, "--var", "iso_checksum=none")
	cmd.Dir = work
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start bake: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
		killLeftovers(t, workRoot)
	})
	watchdog := time.AfterFunc(20*time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()

	var typed, fetched *event.Event
	var last event.Event
	scanner := bufio.NewScanner(stdout)
	scanner.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for scanner.Scan() {
		var j report.JSONEvent
		if err := json.Unmarshal(scanner.Bytes(), &j); err != nil {
			t.Errorf("invalid JSON event %q: %v", scanner.Text(), err)
			continue
		}
		ev := j.ToEvent()
		last = ev
		if ev.Kind == event.KeysTyped && strings.Contains(ev.Message, "url=http://10.0.2.2:") {
			typed = &ev
		}
		if ev.Kind == event.HTTPRequest && ev.HTTP.Path == "/preseed.cfg" && fetched == nil {
			fetched = &ev
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	err = cmd.Wait()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	}

	if typed == nil {
		t.Fatalf("the boot command was never typed; last event: %+v; stderr:\n%s", last, tail(stderrPath, 20))
	}
	if strings.Contains(typed.Message, "bake-netinst") {
		t.Errorf("the sensitive root password appears in the typed-keys event: %q", typed.Message)
	}
	if fetched == nil {
		t.Fatalf("the installer never requested /preseed.cfg; last event: %+v", last)
	}
	if fetched.HTTP.Status != 200 || fetched.HTTP.Bytes == 0 {
		t.Errorf("GET /preseed.cfg answered %d with %d bytes, want 200 with the file", fetched.HTTP.Status, fetched.HTTP.Bytes)
	}
	t.Logf("installer fetched the preseed %s after the boot command was typed", fetched.Time.Sub(typed.Time).Round(time.Second))
	if code != 130 {
		t.Errorf("bake exited %d after SIGINT, want 130", code)
	}
	if left := pgrep(t, workRoot); left != "" {
		t.Errorf("processes left running after the interrupt:\n%s", left)
	}
	if _, err := os.Stat(filepath.Join(work, "output", "debian-12-netinst")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted build left its output directory (stat: %v)", err)
	}
}

func readEvents(t *testing.T, path string) []event.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := report.ReadJSON(f)
	if err != nil {
		t.Fatalf("invalid JSON events in %s: %v", path, err)
	}
	return events
}

func hasEvent(events []event.Event, match func(event.Event) bool) bool {
	for _, e := range events {
		if match(e) {
			return true
		}
	}
	return false
}

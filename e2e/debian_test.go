package e2e

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/pipeline"
	"github.com/bakeimg/bake/report"
)

// TestE2EDebianCloud bakes the shipped Debian recipe from the debian-disk
// fixture, checks the artifacts and reports, then boots the image and checks
// what the provisioners left in it.
func TestE2EDebianCloud(t *testing.T) {
	requireBinaries(t, "qemu-system-x86_64", "qemu-img", "sha256sum")
	vars, digest := debianVars(t)
	recipe := filepath.Join(repoRoot, "recipes", "debian-12-cloud.toml")
	const name = "debian-12-cloud"

	// output.directory resolves against the working directory, so the
	// build writes into work/output/NAME.
	work := t.TempDir()
	home := t.TempDir()
	jsonPath := filepath.Join(work, "events.json")
	junitPath := filepath.Join(work, "junit.xml")
	stdoutPath := filepath.Join(work, "stdout.log")

	args := []string{"build", recipe, "--ci", "--force", "--accel", accelerator(), "--home", home,
		"--json", jsonPath, "--junit", junitPath}
	args = append(args, vars...)
	started := time.Now()
	code := runBake(t, work, stdoutPath, args...)
	t.Logf("bake build took %s", time.Since(started).Round(time.Second))
	if code != 0 {
		t.Fatalf("bake build exited %d, expected 0; last output lines:\n%s", code, tail(stdoutPath, 60))
	}

	out := filepath.Join(work, "output", name)
	qcow2 := filepath.Join(out, name+".qcow2")
	t.Run("qemu-img check", func(t *testing.T) {
		cmd := exec.Command("qemu-img", "check", qcow2)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("qemu-img check %s failed: %v\n%s", qcow2, err, b)
		}
	})
	t.Run("SHA256SUMS", func(t *testing.T) {
		checkSums(t, out, []string{name + ".qcow2", name + ".raw"})
	})
	t.Run("manifest", func(t *testing.T) {
		checkManifest(t, out, name, digest)
	})
	t.Run("JSON events", func(t *testing.T) {
		checkEvents(t, jsonPath, name)
	})
	t.Run("JUnit", func(t *testing.T) {
		checkJUnit(t, junitPath, name)
	})
	t.Run("boot", func(t *testing.T) {
		started := time.Now()
		checkBootedImage(t, qcow2, name)
		t.Logf("boot check took %s", time.Since(started).Round(time.Second))
	})
}

// runBake runs the bake binary in dir with args, writing its standard output
// and error to logPath, and returns its exit code.
func runBake(t *testing.T, dir, logPath string, args ...string) int {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("failed to create %s: %v", logPath, err)
	}
	defer logFile.Close()
	cmd := exec.Command(bakeBin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	err = cmd.Run()
	if exitErr, ok := err.(*exec.ExitError); ok {
		return exitErr.ExitCode()
	}
	if err != nil {
		t.Fatalf("failed to run %s: %v", bakeBin, err)
	}
	return 0
}

func requireBinaries(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s not found on PATH: run `just deps` to install it", name)
		}
	}
}

func checkSums(t *testing.T, dir string, want []string) {
	t.Helper()
	listed := readSums(t, filepath.Join(dir, "SHA256SUMS"))
	for _, name := range want {
		if _, ok := listed[name]; !ok {
			t.Errorf("SHA256SUMS does not list %s; it lists %v", name, listed)
		}
	}
	cmd := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check SHA256SUMS failed: %v\n%s", err, out)
	}
}

// readSums returns the digests a SHA256SUMS file lists, by file name.
func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("failed to read SHA256SUMS: %v", err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			t.Errorf("SHA256SUMS line %q: expected \"HEX  NAME\"", line)
			continue
		}
		sums[strings.TrimPrefix(fields[1], "*")] = fields[0]
	}
	return sums
}

func checkManifest(t *testing.T, dir, name, digest string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, pipeline.ManifestFile))
	if err != nil {
		t.Fatalf("failed to read the manifest: %v", err)
	}
	var m pipeline.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest.json is not valid JSON: %v", err)
	}
	// The raw form catches fields that the struct would fill with zero
	// values when they are missing from the file.
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("manifest.json is not a JSON object: %v", err)
	}
	for _, key := range []string{"name", "recipe_path", "recipe_sha256", "variables", "source",
		"bake_version", "go_version", "qemu_version", "qemu_img_version", "accelerator",
		"created", "steps", "artifacts", "guest_host_key", "guest_host_key_fingerprint",
		"stop_method", "forced_stop"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("manifest.json has no %q field", key)
		}
	}

	if m.Name != name {
		t.Errorf("manifest name = %q, expected %q", m.Name, name)
	}
	if len(m.RecipeHash) != 64 {
		t.Errorf("manifest recipe_sha256 = %q, expected 64 hex digits", m.RecipeHash)
	}
	if m.Source.Digest != digest {
		t.Errorf("manifest source digest = %q, expected %q", m.Source.Digest, digest)
	}
	if m.Accelerator != accelerator() {
		t.Errorf("manifest accelerator = %q, expected %q", m.Accelerator, accelerator())
	}
	if m.QEMUVersion == "" || m.QEMUImg == "" {
		t.Errorf("manifest qemu_version = %q, qemu_img_version = %q: expected both set", m.QEMUVersion, m.QEMUImg)
	}
	if m.Created.IsZero() || time.Since(m.Created) > 2*time.Hour {
		t.Errorf("manifest created = %v, expected the time of this build", m.Created)
	}
	if !strings.HasPrefix(m.HostKey, "ssh-") || !strings.HasPrefix(m.HostKeySHA, "SHA256:") {
		t.Errorf("manifest guest host key = %q, fingerprint %q: expected an SSH key and a SHA256 fingerprint", m.HostKey, m.HostKeySHA)
	}
	if m.ForcedStop {
		t.Errorf("manifest forced_stop = true (stop method %q): expected the guest to power off by itself", m.StopMethod)
	}

	steps := map[string]bool{}
	for _, s := range m.Steps {
		steps[s.Step] = true
	}
	for _, step := range []string{"prepare", "source", "disk", "seed", "vm", "ssh", "provision", "shutdown"} {
		if !steps[step] {
			t.Errorf("manifest steps have no %q step: %+v", step, m.Steps)
		}
	}

	sums := readSums(t, filepath.Join(dir, "SHA256SUMS"))
	formats := map[string]event.ArtifactInfo{}
	for _, a := range m.Artifacts {
		formats[a.Format] = a
	}
	for _, format := range []string{"qcow2", "raw"} {
		a, ok := formats[format]
		if !ok {
			t.Errorf("manifest has no %s artifact: %+v", format, m.Artifacts)
			continue
		}
		// sha256sum --check has already tied SHA256SUMS to the files, so
		// comparing against it avoids hashing the 4 GiB raw image again.
		if sum := sums[a.Path]; a.SHA256 != sum {
			t.Errorf("manifest sha256 of %s = %s, SHA256SUMS lists %s", a.Path, a.SHA256, sum)
		}
		info, err := os.Stat(filepath.Join(dir, a.Path))
		if err == nil && info.Size() != a.Size {
			t.Errorf("manifest size of %s = %d, file is %d bytes", a.Path, a.Size, info.Size())
		}
	}
}

func checkEvents(t *testing.T, path, name string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("failed to open the --json file: %v", err)
	}
	defer f.Close()

	events, err := report.ReadJSON(f)
	if err != nil {
		t.Fatalf("the --json file does not parse: %v", err)
	}
	if len(events) == 0 {
		t.Fatal("the --json file contains no events")
	}

	if first := events[0]; first.Kind != event.BuildStarted || first.Build != name {
		t.Errorf("first event = %s for %q, expected %s for %q", first.Kind, first.Build, event.BuildStarted, name)
	}
	last := events[len(events)-1]
	if last.Kind != event.BuildFinished || last.Err != "" {
		t.Errorf("last event = %s (error %q), expected a successful %s", last.Kind, last.Err, event.BuildFinished)
	}

	kinds := map[event.Kind]int{}
	sawTree := false
	for _, ev := range events {
		kinds[ev.Kind]++
		if ev.Time.IsZero() {
			t.Errorf("event %s has no time", ev.Kind)
		}
		if ev.Kind == event.Output && strings.Contains(ev.Message, "tree") {
			sawTree = true
		}
	}

	for _, kind := range []event.Kind{event.StepStarted, event.StepFinished, event.Console, event.Output} {
		if kinds[kind] == 0 {
			t.Errorf("no %s events in the --json file (counts: %v)", kind, kinds)
		}
	}
	if kinds[event.Artifact] != 2 {
		t.Errorf("%d artifact events, expected 2 (qcow2 and raw)", kinds[event.Artifact])
	}
	if !sawTree {
		t.Error("no provisioner output line mentions tree, the package the recipe installs")
	}
}

// junitSuites is the part of the JUnit schema the test reads.
type junitSuites struct {
	XMLName xml.Name `xml:"testsuites"`
	Suites  []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Cases    []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
			Error   *struct{} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func checkJUnit(t *testing.T, path, name string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("failed to read the --junit file: %v", err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the --junit file does not parse as JUnit XML: %v\n%s", err, b)
	}
	if len(doc.Suites) == 0 {
		t.Fatalf("the --junit file has no testsuite:\n%s", b)
	}
	found := false
	for _, s := range doc.Suites {
		if s.Failures != 0 || s.Errors != 0 {
			t.Errorf("suite %q reports %d failures and %d errors, expected none", s.Name, s.Failures, s.Errors)
		}
		if s.Tests != len(s.Cases) {
			t.Errorf("suite %q has tests=%d but %d test cases", s.Name, s.Tests, len(s.Cases))
		}
		for _, c := range s.Cases {
			if c.Name == name {
				found = true
			}
			if c.Failure != nil || c.Error != nil {
				t.Errorf("test case %q failed in the JUnit report", c.Name)
			}
		}
	}
	if !found {
		t.Errorf("no JUnit test case is named after the build %q:\n%s", name, b)
	}
}

package pipeline_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/pipeline"
)

func TestBuildWithFakeQEMU(t *testing.T) {
	fx := newFixture(t, "normal")
	r := fx.recipe(t, recipeOptions{})
	rec := &recorder{}
	res := fx.run(context.Background(), r, rec)
	if res.Err != nil {
		t.Fatalf("build failed: %v", res.Err)
	}
	fx.assertNoLeftovers(t, res)

	if res.OutputDir != fx.out {
		t.Errorf("output dir = %q, want %q", res.OutputDir, fx.out)
	}
	entries, err := os.ReadDir(fx.out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	wantNames := []string{"SHA256SUMS", "fake.qcow2", "fake.raw", "manifest.json"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("output files = %v, want %v", names, wantNames)
	}

	sums := map[string]string{}
	var wantSums strings.Builder
	for _, name := range []string{"fake.qcow2", "fake.raw"} {
		sums[name] = sha256File(t, filepath.Join(fx.out, name))
		fmt.Fprintf(&wantSums, "%s  %s\n", sums[name], name)
	}
	gotSums, err := os.ReadFile(filepath.Join(fx.out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if string(gotSums) != wantSums.String() {
		t.Errorf("SHA256SUMS =\n%s\nwant\n%s", gotSums, wantSums.String())
	}

	m := readManifest(t, fx.out)
	recipeBytes, err := os.ReadFile(r.Path)
	if err != nil {
		t.Fatal(err)
	}
	recipeSum := sha256.Sum256(recipeBytes)
	if m.RecipeHash != hex.EncodeToString(recipeSum[:]) {
		t.Errorf("manifest recipe_sha256 = %q, want the recipe file's sha256", m.RecipeHash)
	}
	if m.Source.Digest != "sha256:"+fx.baseSHA {
		t.Errorf("manifest source digest = %q, want sha256:%s", m.Source.Digest, fx.baseSHA)
	}
	if m.Accelerator != "tcg" {
		t.Errorf("manifest accelerator = %q, want tcg", m.Accelerator)
	}
	if m.QEMUVersion != "8.2.2 (fakeqemu)" {
		t.Errorf("manifest qemu_version = %q, want the fake's 8.2.2 (fakeqemu)", m.QEMUVersion)
	}
	var steps []string
	for _, s := range m.Steps {
		steps = append(steps, s.Step)
	}
	wantSteps := []string{"prepare", "source", "disk", "http", "seed", "vm", "boot", "ssh", "provision", "shutdown"}
	if !slices.Equal(steps, wantSteps) {
		t.Errorf("manifest steps = %v, want %v", steps, wantSteps)
	}
	if len(m.Artifacts) != 2 {
		t.Fatalf("manifest has %d artifacts, want 2: %+v", len(m.Artifacts), m.Artifacts)
	}
	for _, a := range m.Artifacts {
		if a.SHA256 != sums[a.Path] {
			t.Errorf("manifest artifact %s sha256 = %q, want %q", a.Path, a.SHA256, sums[a.Path])
		}
	}
	if !strings.HasPrefix(m.HostKey, "ssh-ed25519 ") {
		t.Errorf("manifest guest_host_key = %q, want an ssh-ed25519 key", m.HostKey)
	}
	if !strings.HasPrefix(m.HostKeySHA, "SHA256:") {
		t.Errorf("manifest guest_host_key_fingerprint = %q, want SHA256:...", m.HostKeySHA)
	}
	if m.StopMethod != "guest" {
		t.Errorf("manifest stop_method = %q, want guest", m.StopMethod)
	}
	if m.ForcedStop {
		t.Error("manifest forced_stop = true, want false")
	}

	console, err := os.ReadFile(filepath.Join(res.LogDir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(console), "fake login:") {
		t.Errorf("console.log lacks the fake's boot log:\n%s", console)
	}
	marker, err := os.ReadFile(filepath.Join(fx.fake.GuestDir(), "marker"))
	if err != nil || string(marker) != "provisioned\n" {
		t.Errorf("shell provisioner marker = %q, %v; want \"provisioned\\n\"", marker, err)
	}
	motd, err := os.ReadFile(fx.dest)
	if err != nil || string(motd) != "baked by a fake\n" {
		t.Errorf("file provisioner destination = %q, %v; want the source's content", motd, err)
	}
	if out := rec.messages(event.Output); !slices.Contains(out, "line on stdout") {
		t.Errorf("output events %q lack the provisioner's \"line on stdout\"", out)
	}

	starts := fx.fake.Starts()
	if len(starts) != 1 {
		t.Fatalf("fake started %d times, want 1", len(starts))
	}
	if !strings.Contains(starts[0], "seed.iso,id=seed0,format=raw,readonly=on,if=virtio") {
		t.Errorf("qemu argv lacks the read-only cloud-init seed disk: %s", starts[0])
	}
	qmp := fx.fake.QMPCommandNames()
	for _, want := range []string{"qmp_capabilities", "query-version", "input-send-event"} {
		if !slices.Contains(qmp, want) {
			t.Errorf("QMP commands %v lack %s", qmp, want)
		}
	}
	typedEnter := slices.ContainsFunc(fx.fake.QMPCommands(), func(c string) bool {
		return strings.HasPrefix(c, "input-send-event ") && strings.Contains(c, `"data":"ret"`)
	})
	if !typedEnter {
		t.Errorf("QMP commands %q lack the <enter> of the boot command", fx.fake.QMPCommands())
	}
	if slices.Contains(qmp, "system_powerdown") || slices.Contains(qmp, "quit") {
		t.Errorf("QMP commands %v include a forced stop after a clean poweroff", qmp)
	}
	commands := fx.fake.Commands()
	trimmed := slices.ContainsFunc(commands, func(c string) bool { return strings.HasPrefix(c, "fstrim ") })
	if !trimmed {
		t.Errorf("SSH commands %q lack fstrim", commands)
	}
	if !slices.Contains(commands, "poweroff") {
		t.Errorf("SSH commands %q lack poweroff", commands)
	}
}

func TestBuildStopFallbacks(t *testing.T) {
	tests := []struct {
		name       string
		mode       string
		wantQMP    []string
		wantMethod string
		wantWarn   string
	}{
		{
			name:       "ignored poweroff uses ACPI",
			mode:       "ignore-poweroff",
			wantQMP:    []string{"system_powerdown"},
			wantMethod: "acpi",
			wantWarn:   `guest still running 500ms after "poweroff"; sending ACPI powerdown`,
		},
		{
			name:       "ignored ACPI quits QEMU",
			mode:       "ignore-acpi",
			wantQMP:    []string{"system_powerdown", "quit"},
			wantMethod: "quit",
			wantWarn:   "guest ignored ACPI powerdown for 1s; quitting QEMU (the image may be inconsistent)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, tt.mode)
			r := fx.recipe(t, recipeOptions{shutdownTimeout: "500ms", formats: `"qcow2"`})
			rec := &recorder{}
			res := fx.run(context.Background(), r, rec)
			if res.Err != nil {
				t.Fatalf("build failed: %v", res.Err)
			}
			fx.assertNoLeftovers(t, res)

			m := readManifest(t, fx.out)
			if m.StopMethod != tt.wantMethod {
				t.Errorf("manifest stop_method = %q, want %q", m.StopMethod, tt.wantMethod)
			}
			if !m.ForcedStop {
				t.Error("manifest forced_stop = false, want true")
			}
			qmp := fx.fake.QMPCommandNames()
			for _, want := range tt.wantQMP {
				if !slices.Contains(qmp, want) {
					t.Errorf("QMP commands %v lack %s", qmp, want)
				}
			}
			if warnings := rec.messages(event.Warning); !slices.Contains(warnings, tt.wantWarn) {
				t.Errorf("warnings %q lack %q", warnings, tt.wantWarn)
			}
		})
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func readManifest(t *testing.T, dir string) pipeline.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, pipeline.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m pipeline.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest.json is not valid JSON: %v", err)
	}
	return m
}

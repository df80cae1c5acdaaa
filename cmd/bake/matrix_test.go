package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bakeimg/bake/internal/fakeqemu"
)

// matrixBuildRecipe has three builds that differ by a variable the
// provisioner writes into the guest.
const matrixBuildRecipe = `name = "m"

[variables.flavour]
default = "plain"

[source]
disk_image = "base.qcow2"
checksum = "none"

[vm]
cpus = 1
memory = "256MiB"
accelerator = "tcg"

[ssh]
timeout = "20s"

[[provision]]
shell = ["echo {{ .Vars.flavour }} >> flavours"]

[output]
directory = "out/{{ .Name }}"

[[matrix]]
name = "{{ .Name }}-{{ .Vars.flavour }}"

[[matrix]]
name = "{{ .Name }}-salt"
vars = { flavour = "salt" }

[[matrix]]
name = "{{ .Name }}-pepper"
vars = { flavour = "pepper" }
`

func TestBuildMatrix(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed (Debian package qemu-utils)")
	}
	tests := []struct {
		name      string
		args      []string
		wantBuilt []string
		wantSkip  []string
	}{
		{
			name:      "every build",
			args:      []string{"--parallel", "3"},
			wantBuilt: []string{"m-plain", "m-salt", "m-pepper"},
		},
		{
			name:      "only one build",
			args:      []string{"--only", "m-salt"},
			wantBuilt: []string{"m-salt"},
			wantSkip:  []string{"m-plain", "m-pepper"},
		},
		{
			name:      "except one build",
			args:      []string{"--except", "m-salt"},
			wantBuilt: []string{"m-plain", "m-pepper"},
			wantSkip:  []string{"m-salt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := fakeqemu.Install(t, "normal")
			dir := t.TempDir()
			writeTestFile(t, filepath.Join(dir, "m.toml"), matrixBuildRecipe)
			runCommand(t, dir, "qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "16M")

			stdout := runBake(t, dir, append(append([]string{"--ci"}, tt.args...), "build", "m.toml")...)

			for _, name := range tt.wantBuilt {
				image := filepath.Join(dir, "out", name, name+".qcow2")
				if _, err := os.Stat(image); err != nil {
					t.Errorf("build %s wrote no image: %v", name, err)
				}
				finished := regexp.MustCompile(`(?m)^\S+ ` + regexp.QuoteMeta(name) + ` +\| build finished`)
				if !finished.MatchString(stdout) {
					t.Errorf("plain output has no line matching %q:\n%s", finished, stdout)
				}
			}
			for _, name := range tt.wantSkip {
				if _, err := os.Stat(filepath.Join(dir, "out", name)); err == nil {
					t.Errorf("build %s ran, want it left out", name)
				}
			}

			// Each build provisions its own flavour into the shared fake guest.
			flavours := strings.Fields(readFile(t, filepath.Join(fake.GuestDir(), "flavours")))
			if len(flavours) != len(tt.wantBuilt) {
				t.Errorf("guest provisioned flavours %q, want one per build of %q", flavours, tt.wantBuilt)
			}
			for _, name := range tt.wantBuilt {
				flavour := strings.TrimPrefix(name, "m-")
				if !strings.Contains(" "+strings.Join(flavours, " ")+" ", " "+flavour+" ") {
					t.Errorf("guest provisioned flavours %q, want %q among them", flavours, flavour)
				}
			}
		})
	}
}

// runBake runs the bake command in dir with a private BAKE_HOME, fails the
// test unless it exits with status 0, and returns its standard output.
func runBake(t *testing.T, dir string, args ...string) string {
	t.Helper()
	bake, err := exec.LookPath("bake")
	if err != nil {
		t.Fatalf("bake is not on PATH, although TestMain installs it: %v", err)
	}
	cmd := exec.Command(bake, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BAKE_HOME="+filepath.Join(dir, "home"), "CI=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bake %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestValidateDuplicateAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	recipe := "name = \"same\"\n\n" + corpusSource
	writeTestFile(t, filepath.Join(dir, "a.toml"), recipe)
	writeTestFile(t, filepath.Join(dir, "b.toml"), recipe)

	bake, err := exec.LookPath("bake")
	if err != nil {
		t.Fatalf("bake is not on PATH, although TestMain installs it: %v", err)
	}
	cmd := exec.Command(bake, "validate", "a.toml", "b.toml")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()

	if code := cmd.ProcessState.ExitCode(); code != exitUsage {
		t.Errorf("bake validate exited with status %d, want %d", code, exitUsage)
	}
	want := "b.toml:1:1: name: duplicate build name \"same\": a.toml:1:1 already uses it, give each build a distinct name\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
	if !strings.HasSuffix(stdout.String(), "a.toml: ok (same)\n") {
		t.Errorf("stdout:\n%s\nwant a.toml reported ok", stdout.String())
	}
	if strings.Contains(stdout.String(), "b.toml") {
		t.Errorf("stdout:\n%s\nwant b.toml left out", stdout.String())
	}
}

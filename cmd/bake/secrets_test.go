package main

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bakeimg/bake/internal/fakeqemu"
)

// Planted secrets. They are random strings, so eight consecutive characters
// of one in an output mean a leak rather than chance.
const (
	plantedToken    = "Zq7vK2pL9xW4mT8rHc3N"
	plantedPassword = "pw-Jf6sD1yQ5bV0gX2u"
)

// secretRecipe uses a sensitive variable in the boot command, the
// cloud-init user data, a shell provisioner's commands and environment,
// and sets ssh.password, so every path a value takes through a build
// carries a secret.
const secretRecipe = `name = "secret"

[variables.token]
description = "set with --var"
sensitive = true

[source]
disk_image = "base.qcow2"
checksum = "none"

[vm]
cpus = 1
memory = "256MiB"
accelerator = "tcg"

[boot]
command = ["token={{ .Vars.token }}<enter>"]
key_interval = "1ms"

[cloud_init]
user_data = """#cloud-config
chpasswd: { list: "root:{{ .Vars.token }}" }
"""

[ssh]
password = "` + plantedPassword + `"
timeout = "20s"

[[provision]]
name = "use the token"
shell = [
  "echo token={{ .Vars.token }}",
  "echo env=$TOKEN",
  "echo $TOKEN > token.txt",
  "echo password=` + plantedPassword + `",
  LAST
]
environment = { TOKEN = "{{ .Vars.token }}" }

[output]
directory = "out/secret"
formats = ["qcow2"]
`

func TestBuildMasksSecrets(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed (Debian package qemu-utils)")
	}
	tests := []struct {
		name string
		// last is the provisioner's last command.
		last     string
		wantExit int
		// wantOutput is a masked line the plain output must contain.
		wantOutput string
	}{
		{name: "successful build", last: `"true"`, wantExit: exitOK, wantOutput: "token=********"},
		{
			name:       "failed provisioner",
			last:       `"echo failing with {{ .Vars.token }} >&2; exit 3"`,
			wantExit:   exitBuildFailed,
			wantOutput: "failing with ********",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recipe := strings.Replace(secretRecipe, "LAST", tt.last, 1)
			stdout := checkBuildSecrets(t, recipe, tt.wantExit)
			assertContains(t, "plain output", stdout, tt.wantOutput)
		})
	}
}

// checkBuildSecrets builds recipe against the fake QEMU and checks that
// no output of bake contains a planted secret. It returns the plain output.
func checkBuildSecrets(t *testing.T, recipe string, wantExit int) string {
	bake, err := exec.LookPath("bake")
	if err != nil {
		t.Fatalf("bake is not on PATH, although TestMain installs it: %v", err)
	}
	fake := fakeqemu.Install(t, "normal")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	writeTestFile(t, filepath.Join(dir, "recipe.toml"), recipe)
	runCommand(t, dir, "qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "16M")

	cmd := exec.Command(bake, "--ci", "--json", "events.jsonl", "--junit", "report.xml",
		"--var", "token="+plantedToken, "build", "recipe.toml")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BAKE_HOME="+home, "CI=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != wantExit {
		t.Fatalf("bake build exited with status %d (%v), want %d\nstdout:\n%s\nstderr:\n%s",
			code, err, wantExit, stdout.String(), stderr.String())
	}

	// The secrets must have reached the guest, or the checks below prove
	// nothing.
	assertContains(t, "the fake's SSH exec log", readFile(t, filepath.Join(fake.Dir, fakeqemu.ExecLog)), plantedToken)
	assertContains(t, "the guest's token.txt", readFile(t, filepath.Join(fake.GuestDir(), "token.txt")), plantedToken)
	assertContains(t, "plain output", stdout.String(), "token=********")
	assertContains(t, "plain output", stdout.String(), "password=********")

	outputs := map[string]string{
		"plain output":   stdout.String(),
		"standard error": stderr.String(),
		"--json file":    readFile(t, filepath.Join(dir, "events.jsonl")),
		"--junit file":   readFile(t, filepath.Join(dir, "report.xml")),
	}
	if wantExit == exitOK {
		outputs["manifest.json"] = readFile(t, filepath.Join(dir, "out", "secret", "manifest.json"))
		maps.Copy(outputs, readTree(t, filepath.Join(dir, "out")))
	}
	maps.Copy(outputs, readTree(t, filepath.Join(home, "logs")))
	for name, text := range outputs {
		for _, secret := range []string{plantedToken, plantedPassword} {
			if fragment := secretFragment(text, secret); fragment != "" {
				t.Errorf("%s contains %q, part of a secret", name, fragment)
			}
		}
	}
	return stdout.String()
}

// secretFragment returns the first eight-character substring of secret
// found in text, or "".
func secretFragment(text, secret string) string {
	const n = 8
	for i := 0; i+n <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+n]) {
			return secret[i : i+n]
		}
	}
	return ""
}

// readTree returns the contents of every regular file below root, keyed by
// path.
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		files[path] = readFile(t, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Errorf("no files below %s", root)
	}
	return files
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runCommand(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func assertContains(t *testing.T, name, text, want string) {
	t.Helper()
	if !strings.Contains(text, want) {
		t.Errorf("%s does not contain %q:\n%s", name, want, text)
	}
}

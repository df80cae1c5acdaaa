// Package e2e runs the bake binary on real recipes with real QEMU and checks
// the images it writes. The Debian case runs in `just test`; the slower
// cases run only with BAKE_E2E_FULL=1 (`just e2e`).
package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// bakeBin is the bake binary TestMain builds from this checkout.
var bakeBin string

// repoRoot is the root of this checkout.
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))

	dir, err := os.MkdirTemp("", "bake-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: failed to create a directory for the bake binary: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bakeBin = filepath.Join(dir, "bake")
	build := exec.Command("go", "build", "-o", bakeBin, "./cmd/bake")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/bake failed: %v\n", err)
		return 1
	}
	return m.Run()
}

// fullRun reports whether the slow cases are enabled (BAKE_E2E_FULL=1, as
// `just e2e` sets it).
func fullRun() bool {
	return os.Getenv("BAKE_E2E_FULL") == "1"
}

func requireFullRun(t *testing.T) {
	t.Helper()
	if !fullRun() {
		t.Skip("slow end-to-end case: set BAKE_E2E_FULL=1 or run `just e2e`")
	}
}

// accelerator returns the accelerator the builds and boot checks use:
// $BAKE_E2E_ACCEL, or tcg. KVM is not the default because nested KVM hangs on
// the machines these tests were written on, and probing for it costs about
// 15 s per build.
func accelerator() string {
	if a := os.Getenv("BAKE_E2E_ACCEL"); a != "" {
		return a
	}
	return "tcg"
}

// fixture returns the path of a fixture built by scripts/fixtures.sh and
// fails the test when the file is missing.
func fixture(t *testing.T, name string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot, "scripts", "fixtures.sh"), "path", name)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/fixtures.sh path %s failed: %v", name, err)
	}
	path := strings.TrimSpace(string(out))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("fixture %s not found at %s: run `just fixtures` (or scripts/fixtures.sh %s) first", name, path, name)
	}
	return path
}

// debianVars returns the --var flags that point a Debian recipe at the
// locally built base disk, and that disk's digest as "sha256:HEX".
func debianVars(t *testing.T) (vars []string, digest string) {
	t.Helper()
	base := fixture(t, "debian-disk")
	sum, err := sha256File(base)
	if err != nil {
		t.Fatalf("failed to hash the debian-disk fixture: %v", err)
	}
	digest = "sha256:" + sum
	return []string{"--var", "base_image=" + base, "--var", "base_checksum=" + digest}, digest
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tail returns the last n lines of the file at path, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(failed to read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bakeimg/bake/internal/fakeqemu"
)

const signalRecipe = `name = "fake"

[source]
disk_image = "base.qcow2"
checksum = "none"

[vm]
cpus = 1
memory = "256MiB"
accelerator = "tcg"

[ssh]
timeout = "60s"

[output]
directory = "out/fake"
formats = ["qcow2"]
`

// TestBuildSignals runs the real bake binary against the fake QEMU, whose
// SSH handshake never completes, and signals bake while it waits for SSH.
func TestBuildSignals(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed (Debian package qemu-utils)")
	}
	bin := filepath.Join(t.TempDir(), "bake")
	if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	tests := []struct {
		name     string
		signal   syscall.Signal
		wantCode int
	}{
		{name: "SIGINT", signal: syscall.SIGINT, wantCode: 130},
		{name: "SIGTERM", signal: syscall.SIGTERM, wantCode: 143},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := fakeqemu.Install(t, "ssh-never")
			dir, home := t.TempDir(), t.TempDir()
			if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "base.qcow2"), "16M").CombinedOutput(); err != nil {
				t.Fatalf("qemu-img create: %v: %s", err, out)
			}
			if err := os.WriteFile(filepath.Join(dir, "fake.toml"), []byte(signalRecipe), 0o644); err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command(bin, "--json", "-", "--home", home, "build", "fake.toml")
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			kill := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
			defer kill.Stop()

			signalled := false
			var finished struct {
				Err         string `json:"error"`
				Interrupted bool   `json:"interrupted"`
			}
			scanner := bufio.NewScanner(stdout)
			scanner.Buffer(nil, 1<<20)
			for scanner.Scan() {
				var ev struct {
					Kind        string `json:"kind"`
					Step        string `json:"step"`
					Err         string `json:"error"`
					Interrupted bool   `json:"interrupted"`
				}
				if err := json.Unmarshal(scanner.Bytes(), &ev); err != nil {
					t.Errorf("stdout line is not JSON: %v: %s", err, scanner.Text())
					continue
				}
				if ev.Kind == "step.started" && ev.Step == "ssh" && !signalled {
					signalled = true
					if err := cmd.Process.Signal(tt.signal); err != nil {
						t.Fatal(err)
					}
				}
				if ev.Kind == "build.finished" {
					finished.Err, finished.Interrupted = ev.Err, ev.Interrupted
				}
			}
			err = cmd.Wait()
			if !signalled {
				t.Fatalf("bake never reached the ssh step (wait: %v)\nstderr:\n%s", err, stderr.String())
			}
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != tt.wantCode {
				t.Errorf("bake ended with %v, want exit status %d\nstderr:\n%s", err, tt.wantCode, stderr.String())
			}
			if finished.Err != "interrupted during ssh (the VM was stopped and temporary files removed)" {
				t.Errorf("build.finished error = %q, want the interruption", finished.Err)
			}
			if !finished.Interrupted {
				t.Error("build.finished does not say the build was interrupted")
			}

			if pids := fake.WaitGone(3 * time.Second); len(pids) > 0 {
				t.Errorf("fake QEMU processes still running: %v", pids)
			}
			out := filepath.Join(dir, "out", "fake")
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output directory exists after the interrupted build (stat: %v)", err)
			}
			if partial, _ := filepath.Glob(filepath.Join(dir, "out", ".fake.partial-*")); len(partial) > 0 {
				t.Errorf("temporary output directories left behind: %v", partial)
			}
			if logs, _ := filepath.Glob(filepath.Join(home, "logs", "fake", "*", "console.log")); len(logs) != 1 {
				t.Errorf("console logs = %v, want one", logs)
			}
			if work, _ := os.ReadDir(filepath.Join(home, "work")); len(work) > 0 {
				t.Errorf("work directory left behind: %s", work[0].Name())
			}
		})
	}
}

package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/internal/fakeqemu"
)

func TestBuildSSHNeverReady(t *testing.T) {
	fx := newFixture(t, "ssh-never")
	r := fx.recipe(t, recipeOptions{sshTimeout: "3s"})
	res := fx.run(context.Background(), r, nil)
	if res.Err == nil {
		t.Fatal("build succeeded without SSH")
	}
	fx.assertNoLeftovers(t, res)
	fx.assertNoOutput(t)

	msg := res.Err.Error()
	if !strings.HasPrefix(msg, "ssh: timed out after 3s waiting for root@127.0.0.1:") {
		t.Errorf("error does not name the SSH timeout: %s", msg)
	}
	if !strings.Contains(msg, "last failure: handshake timeout") {
		t.Errorf("error does not name the last failure class: %s", msg)
	}
	if want := "; console log: " + filepath.Join(res.LogDir, "console.log"); !strings.HasSuffix(msg, want) {
		t.Errorf("error does not end with %q: %s", want, msg)
	}
}

func TestBuildProvisionerFails(t *testing.T) {
	fx := newFixture(t, "normal")
	r := fx.recipe(t, recipeOptions{provision: "[[provision]]\nshell = [\"echo before\", \"exit 3\", \"echo after\"]\n"})
	res := fx.run(context.Background(), r, nil)
	if res.Err == nil {
		t.Fatal("build succeeded although a provisioner exited 3")
	}
	fx.assertNoLeftovers(t, res)
	fx.assertNoOutput(t)

	want := `provision: provisioner 1 (shell): command "exit 3" (line 2) exited with status 3`
	if res.Err.Error() != want {
		t.Errorf("error = %q, want %q", res.Err, want)
	}
}

func TestBuildQEMUCrashDuringProvision(t *testing.T) {
	fx := newFixture(t, "crash-after=1500ms")
	r := fx.recipe(t, recipeOptions{provision: "[[provision]]\nshell = [\"sleep 60\"]\n"})
	rec := &recorder{}
	start := time.Now()
	res := fx.run(context.Background(), r, rec)
	took := time.Since(start)
	if res.Err == nil {
		t.Fatal("build succeeded although QEMU crashed")
	}
	fx.assertNoLeftovers(t, res)
	fx.assertNoOutput(t)

	if steps := rec.stepsStarted(); steps[len(steps)-1] != "provision" {
		t.Errorf("build stopped in step %q, want provision (steps %v)", steps[len(steps)-1], steps)
	}
	if took > 10*time.Second {
		t.Errorf("build took %s to notice the crash", took)
	}
	want := "provision: qemu exited unexpectedly (exit status 134): " + fakeqemu.CrashMsg +
		"; console log: " + filepath.Join(res.LogDir, "console.log")
	if res.Err.Error() != want {
		t.Errorf("error = %q\nwant    %q", res.Err, want)
	}
}

func TestBuildOutputExists(t *testing.T) {
	fx := newFixture(t, "normal")
	r := fx.recipe(t, recipeOptions{})
	if err := os.MkdirAll(fx.out, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(fx.out, "keep")
	if err := os.WriteFile(keep, []byte("old image"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	res := fx.run(context.Background(), r, rec)

	want := fmt.Sprintf("prepare: output directory %q already exists: remove it, choose another output.directory, or pass --force", fx.out)
	if res.Err == nil || res.Err.Error() != want {
		t.Errorf("error = %v, want %q", res.Err, want)
	}
	if steps := rec.stepsStarted(); !slices.Equal(steps, []string{"prepare"}) {
		t.Errorf("steps started = %v, want only prepare", steps)
	}
	if starts := fx.fake.Starts(); len(starts) != 0 {
		t.Errorf("QEMU started %d times, want none", len(starts))
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "old image" {
		t.Errorf("existing output changed: %q, %v", b, err)
	}
}

func TestBuildSameOutputTwice(t *testing.T) {
	fx := newFixture(t, "normal")
	r := fx.recipe(t, recipeOptions{provision: "[[provision]]\nshell = [\"sleep 60\"]\n"})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	provisioning := make(chan struct{})
	first := &recorder{onEvent: func(e event.Event) {
		if e.Kind == event.StepStarted && e.Step == "provision" {
			close(provisioning)
		}
	}}
	done := make(chan error, 1)
	go func() { done <- fx.run(ctx, r, first).Err }()
	select {
	case <-provisioning:
	case err := <-done:
		t.Fatalf("first build ended before provisioning: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("first build did not reach provisioning in 20s")
	}

	second := &recorder{}
	res := fx.run(context.Background(), r, second)
	want := fmt.Sprintf("prepare: another bake process is building into %q: wait for it or choose another output.directory", fx.out)
	if res.Err == nil || res.Err.Error() != want {
		t.Errorf("second build error = %v, want %q", res.Err, want)
	}
	if starts := fx.fake.Starts(); len(starts) != 1 {
		t.Errorf("QEMU started %d times, want once for the first build", len(starts))
	}

	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("cancelled first build succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("first build did not end within 20s of cancellation")
	}
	fx.assertNoOutput(t)
}

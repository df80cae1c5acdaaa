package pipeline_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/internal/porttest"
)

func TestCommunicatorNone(t *testing.T) {
	tests := []struct {
		name            string
		mode            string
		shutdownTimeout string
		wantErr         string // empty when the build succeeds; CONSOLE is replaced by the console log path
		wantSteps       []string
	}{
		{
			// The power-off comes late enough that the boot command has
			// been typed, as an installer powers off only when done.
			name:            "guest powers off",
			mode:            "fetch-seed,echo-keys,poweroff-after=1500ms",
			shutdownTimeout: "10s",
			wantSteps:       []string{"prepare", "source", "disk", "http", "seed", "vm", "boot", "wait-poweroff", "export"},
		},
		{
			name:            "guest keeps running",
			mode:            "fetch-seed,echo-keys",
			shutdownTimeout: "2s",
			wantErr:         "wait-poweroff: guest did not power off within shutdown.timeout 2s; console log: CONSOLE",
			wantSteps:       []string{"prepare", "source", "disk", "http", "seed", "vm", "boot", "wait-poweroff"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, tt.mode)
			r := fx.isoRecipe(t, isoOptions{communicator: "none", shutdownTimeout: tt.shutdownTimeout})
			rec := &recorder{}
			start := time.Now()
			res := fx.run(context.Background(), r, rec)
			took := time.Since(start)
			fx.assertNoLeftovers(t, res)

			if steps := rec.stepsStarted(); !slices.Equal(steps, tt.wantSteps) {
				t.Errorf("steps started = %v, want %v", steps, tt.wantSteps)
			}
			starts := fx.fake.Starts()
			if len(starts) != 1 {
				t.Fatalf("fake started %d times, want 1", len(starts))
			}
			if strings.Contains(starts[0], "hostfwd=") {
				t.Errorf("qemu argv forwards a port to the guest without a communicator: %s", starts[0])
			}
			if commands := fx.fake.Commands(); len(commands) != 0 {
				t.Errorf("SSH commands %q were run without a communicator", commands)
			}
			if took > 10*time.Second {
				t.Errorf("build took %s, want it to end within seconds of the guest powering off or the timeout", took)
			}

			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "CONSOLE", filepath.Join(res.LogDir, "console.log"))
				if res.Err == nil || res.Err.Error() != want {
					t.Errorf("error = %v\nwant    %s", res.Err, want)
				}
				if took < 2*time.Second {
					t.Errorf("build failed after %s, before the 2s shutdown.timeout", took)
				}
				fx.assertNoOutput(t)
				return
			}
			if res.Err != nil {
				t.Fatalf("build failed: %v", res.Err)
			}
			m := readManifest(t, fx.out)
			if m.StopMethod != "guest" {
				t.Errorf("manifest stop_method = %q, want guest", m.StopMethod)
			}
			if m.ForcedStop {
				t.Error("manifest forced_stop = true, want false")
			}
			if m.HostKey != "" {
				t.Errorf("manifest guest_host_key = %q, want none without SSH", m.HostKey)
			}
			qmp := fx.fake.QMPCommandNames()
			if slices.Contains(qmp, "system_powerdown") || slices.Contains(qmp, "quit") {
				t.Errorf("QMP commands %v include a forced stop although the guest powered off", qmp)
			}
		})
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory for the
// rest of the test.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10))
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("mounting a tmpfs needs CAP_SYS_ADMIN: %v", err)
	}
	if err != nil {
		t.Fatalf("mount -t tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("umount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// useRandomBase replaces the fixture's base image by a raw image of size
// bytes of random data, which no compression can shrink.
func (fx *fixture) useRandomBase(t *testing.T, size int64) {
	t.Helper()
	fx.base = filepath.Join(fx.dir, "base.raw")
	f, err := os.Create(fx.base)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fx.baseSHA = hex.EncodeToString(h.Sum(nil))
}

func TestExportDiskFull(t *testing.T) {
	fx := newFixture(t, "normal")
	full := mountTmpfs(t, 8<<20)
	fx.out = filepath.Join(full, "fake")
	fx.useRandomBase(t, 32<<20)
	r := fx.recipe(t, recipeOptions{})
	rec := &recorder{}
	res := fx.run(context.Background(), r, rec)
	if res.Err == nil {
		t.Fatal("build succeeded although the output file system is 8 MiB and the image 32 MiB")
	}
	fx.assertNoLeftovers(t, res)
	fx.assertNoOutput(t)

	msg := res.Err.Error()
	if !strings.HasPrefix(msg, "export: failed to convert ") {
		t.Errorf("error does not say the conversion failed: %s", msg)
	}
	if !strings.Contains(msg, "No space left on device") {
		t.Errorf("error does not name the full disk: %s", msg)
	}
	if want := fmt.Sprintf("No space left on device: exit status 1 (the file system of %q is full: "+
		"free space there or set output.directory to another file system)", full); !strings.HasSuffix(msg, want) {
		t.Errorf("error does not end with %q: %s", want, msg)
	}
	if steps := rec.stepsStarted(); steps[len(steps)-1] != "export" {
		t.Errorf("build stopped in step %q, want export (steps %v)", steps[len(steps)-1], steps)
	}
	entries, err := os.ReadDir(full)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left on the full file system: %s", e.Name())
	}
}

func TestHTTPPortsAllInUse(t *testing.T) {
	fx := newFixture(t, "normal")
	first := porttest.Occupy(t, 3)
	last := first + 2
	r := fx.recipe(t, recipeOptions{})
	r.HTTP.PortMin, r.HTTP.PortMax = first, last
	rec := &recorder{}
	res := fx.run(context.Background(), r, rec)
	if res.Err == nil {
		t.Fatal("build succeeded although every port of http.port_min..port_max is taken")
	}
	fx.assertNoLeftovers(t, res)
	fx.assertNoOutput(t)

	msg := res.Err.Error()
	wantPrefix := fmt.Sprintf("http: no free TCP port on 127.0.0.1 in %d-%d (3 tried; last error: listen tcp4 127.0.0.1:", first, last)
	if !strings.HasPrefix(msg, wantPrefix) {
		t.Errorf("error = %q, want prefix %q", msg, wantPrefix)
	}
	if !strings.Contains(msg, "bind: address already in use") {
		t.Errorf("error does not give the bind failure: %s", msg)
	}
	if want := "widen the range with http.port_min and http.port_max, for example 8000-9000"; !strings.HasSuffix(msg, want) {
		t.Errorf("error does not end with the fix %q: %s", want, msg)
	}
	if steps := rec.stepsStarted(); steps[len(steps)-1] != "http" {
		t.Errorf("build stopped in step %q, want http (steps %v)", steps[len(steps)-1], steps)
	}
	if starts := fx.fake.Starts(); len(starts) != 0 {
		t.Errorf("QEMU started %d times, want none", len(starts))
	}
}

// TestStaleFilesOfKilledBuild leaves what a build killed with SIGKILL
// leaves behind (its lock file, its work directory with a dead QMP socket
// and key) and checks that the next build into the same output succeeds.
func TestStaleFilesOfKilledBuild(t *testing.T) {
	fx := newFixture(t, "normal")
	r := fx.recipe(t, recipeOptions{formats: `"qcow2"`})

	lock := filepath.Join(filepath.Dir(fx.out), "."+filepath.Base(fx.out)+".lock")
	stale := filepath.Join(fx.home, "work", "fake-1234567890")
	if err := os.MkdirAll(filepath.Dir(lock), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"id_ed25519", "disk.qcow2"} {
		if err := os.WriteFile(filepath.Join(stale, name), []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A listener closed without unlinking leaves the socket file with no
	// process accepting on it, as a killed QEMU does.
	socket, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(stale, "qmp.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	socket.SetUnlinkOnClose(false)
	socket.Close()

	res := fx.run(context.Background(), r, nil)
	if res.Err != nil {
		t.Fatalf("build after a killed one failed: %v", res.Err)
	}
	if pids := fx.fake.WaitGone(3 * time.Second); len(pids) > 0 {
		t.Errorf("fake QEMU processes still running: %v", pids)
	}
	if _, err := os.Stat(filepath.Join(fx.out, "fake.qcow2")); err != nil {
		t.Errorf("no image written: %v", err)
	}
	work, err := os.ReadDir(filepath.Join(fx.home, "work"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range work {
		if e.Name() != filepath.Base(stale) {
			t.Errorf("work directory left behind: %s", e.Name())
		}
	}
	if starts := fx.fake.Starts(); len(starts) != 1 || strings.Contains(starts[0], stale) {
		t.Errorf("QEMU starts = %q, want one start that does not use the stale work directory", starts)
	}
}

func TestGuestPowersOffDuringProvision(t *testing.T) {
	fx := newFixture(t, "poweroff-during-provision")
	r := fx.recipe(t, recipeOptions{provision: "[[provision]]\nshell = [\"sleep 30\"]\n", sshTimeout: "1m"})
	rec := &recorder{}
	start := time.Now()
	res := fx.run(context.Background(), r, rec)
	took := time.Since(start)
	if res.Err == nil {
		t.Fatal("build succeeded although the guest powered off while provisioning")
	}
	fx.assertNoLeftovers(t, res)
	fx.assertNoOutput(t)

	if took > 5*time.Second {
		t.Errorf("build took %s to notice the guest powered off", took)
	}
	want := "provision: the guest powered off unexpectedly (QMP SHUTDOWN event, then qemu exited with status 0); " +
		"console log: " + filepath.Join(res.LogDir, "console.log")
	if res.Err.Error() != want {
		t.Errorf("error = %q\nwant    %q", res.Err, want)
	}
	if steps := rec.stepsStarted(); steps[len(steps)-1] != "provision" {
		t.Errorf("build stopped in step %q, want provision (steps %v)", steps[len(steps)-1], steps)
	}
	var errs []string
	for _, e := range rec.all() {
		if e.Kind == event.StepFinished && e.Err != "" {
			errs = append(errs, e.Step+": "+e.Err)
		}
	}
	if len(errs) != 1 {
		t.Errorf("failed steps = %q, want only provision", errs)
	}
}

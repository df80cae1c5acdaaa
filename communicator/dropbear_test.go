package communicator

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// startDropbear runs a real dropbear sshd on a free loopback port that lets
// root in with key. It bind-mounts a temporary home over /root inside a
// private mount namespace, so the host's /root/.ssh is neither read nor
// changed.
func startDropbear(t *testing.T, key *Key) string {
	t.Helper()
	var bins []string
	for _, name := range []string{"dropbear", "dropbearkey", "unshare"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s is not installed", name)
		}
		bins = append(bins, p)
	}
	if os.Geteuid() != 0 {
		t.Skip("dropbear test needs root to bind-mount a home directory in a private mount namespace")
	}

	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "authorized_keys"), []byte(key.AuthorizedKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(dir, "host_key")
	if out, err := exec.Command(bins[1], "-t", "ed25519", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("dropbearkey failed: %v\n%s", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	script := "mount --make-rprivate / && mount --bind \"$1\" /root && exec \"$2\" -F -E -s -p \"$3\" -r \"$4\" -P \"$5\""
	cmd := exec.Command(bins[2], "-m", "sh", "-c", script, "sh",
		home, bins[0], addr, hostKey, filepath.Join(dir, "dropbear.pid"))
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start dropbear: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("dropbear log:\n%s", log.String())
		}
	})
	return addr
}

func TestDropbearSession(t *testing.T) {
	key := newTestKey(t)
	addr := startDropbear(t, key)
	rec := &recorder{}
	client, err := Connect(context.Background(), Config{
		Addr: addr, User: "root", Signer: key.Signer, Timeout: 20 * time.Second,
		Emitter: newRecordingEmitter(rec),
	})
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	defer client.Close()
	if !strings.HasPrefix(client.HostKeyFingerprint(), "SHA256:") {
		t.Errorf("HostKeyFingerprint() = %q, want the SHA256 form", client.HostKeyFingerprint())
	}

	var stdout, stderr lines
	code, err := client.Run(context.Background(), `echo "$GREETING"; echo oops >&2; exit 3`,
		map[string]string{"GREETING": "it's dropbear"}, stdout.add, stderr.add)
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	if got := stdout.all(); !slices.Equal(got, []string{"it's dropbear"}) {
		t.Errorf("stdout = %q", got)
	}
	if got := stderr.all(); !slices.Equal(got, []string{"oops"}) {
		t.Errorf("stderr = %q", got)
	}

	local := t.TempDir()
	writeTree(t, local, map[string]os.FileMode{"bin/run.sh": 0o750, "etc/conf": 0o600})
	remote := filepath.Join(t.TempDir(), "upload")
	if err := client.Upload(context.Background(), local, remote); err != nil {
		t.Fatalf("Upload() = %v", err)
	}
	checkTree(t, remote, map[string]os.FileMode{"bin/run.sh": 0o750, "etc/conf": 0o600})

	msgs := rec.messages()
	if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, "uploading over exec instead of SFTP") }) {
		t.Errorf("events = %q, want the exec upload announced for dropbear", msgs)
	}
}

// TestDropbearRepeatedUploads guards the dropbear exec fallback: with SFTP
// attempted first, about one connection in ten failed here.
func TestDropbearRepeatedUploads(t *testing.T) {
	key := newTestKey(t)
	addr := startDropbear(t, key)
	local := t.TempDir()
	writeTree(t, local, map[string]os.FileMode{"bin/run.sh": 0o750, "etc/conf": 0o600})
	for i := range 30 {
		client, err := Connect(context.Background(), Config{Addr: addr, User: "root", Signer: key.Signer, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatalf("connection %d: Connect() = %v", i, err)
		}
		if _, err := client.Run(context.Background(), "true", nil, nil, nil); err != nil {
			t.Errorf("connection %d: Run() = %v", i, err)
		}
		if err := client.Upload(context.Background(), local, filepath.Join(t.TempDir(), "up")); err != nil {
			t.Errorf("connection %d: Upload() = %v", i, err)
		}
		client.Close()
	}
}

func TestDropbearDisconnect(t *testing.T) {
	key := newTestKey(t)
	addr := startDropbear(t, key)
	client, err := Connect(context.Background(), Config{Addr: addr, User: "root", Signer: key.Signer, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	defer client.Close()

	// The shell's parent is dropbear's process for this connection, so
	// killing it drops the connection before any exit status is sent.
	code, err := client.Run(context.Background(), "echo going; kill -9 $PPID; sleep 5", nil, nil, nil)
	if !errors.Is(err, ErrDisconnected) {
		t.Errorf("Run() = %d, %v, want ErrDisconnected", code, err)
	}
}

func TestDropbearCancelStopsCommand(t *testing.T) {
	key := newTestKey(t)
	addr := startDropbear(t, key)
	client, err := Connect(context.Background(), Config{Addr: addr, User: "root", Signer: key.Signer, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	defer client.Close()

	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	_, err = client.Run(ctx, "echo $$ > "+Quote(pidFile)+"; exec sleep 60", nil, nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run() error = %v, want context.Canceled", err)
	}

	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	proc := "/proc/" + strings.TrimSpace(string(data))
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, err := os.Stat(proc); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote command %s still runs 3s after the cancel", proc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

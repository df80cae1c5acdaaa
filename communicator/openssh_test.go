package communicator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// findSFTPServer returns OpenSSH's sftp-server from the lib or libexec
// directory beside sshd's sbin directory, where Linux distributions put it.
func findSFTPServer(sshd string) (string, bool) {
	prefix := filepath.Dir(filepath.Dir(sshd)) // /usr/sbin/sshd -> /usr
	for _, p := range []string{
		filepath.Join(prefix, "lib", "openssh", "sftp-server"),
		filepath.Join(prefix, "libexec", "openssh", "sftp-server"),
		filepath.Join(prefix, "libexec", "sftp-server"),
	} {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// startOpenSSH runs a real OpenSSH sshd on a free loopback port that lets
// root in with key. sshd needs its privilege separation directory
// /run/sshd, so it runs in a private mount namespace with a fresh /run,
// which leaves the host's /run alone.
func startOpenSSH(t *testing.T, key *Key) string {
	t.Helper()
	var bins []string
	for _, name := range []string{"sshd", "unshare"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s is not installed", name)
		}
		bins = append(bins, p)
	}
	sftpServer, ok := findSFTPServer(bins[0])
	if !ok {
		t.Skip("OpenSSH's sftp-server is not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("OpenSSH test needs root to mount a private /run for sshd")
	}

	dir := t.TempDir()
	hostKey, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	hostKeyPath := filepath.Join(dir, "host_key")
	if err := hostKey.WritePrivate(hostKeyPath); err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, []byte(key.AuthorizedKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	config := fmt.Sprintf(`ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
Subsystem sftp %s
LogLevel VERBOSE
`, addr, hostKeyPath, authorized, sftpServer)
	configPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	// sshd also needs its privilege separation user. Where openssh-server
	// is unpacked rather than installed, the user comes from a copy of
	// /etc/passwd mounted in the same namespace.
	script := `mount --make-rprivate / && mount -t tmpfs tmpfs /run && mkdir -m 0755 /run/sshd`
	if _, err := user.Lookup("sshd"); err != nil {
		passwd, err := os.ReadFile("/etc/passwd")
		if err != nil {
			t.Fatal(err)
		}
		passwd = append(passwd, "sshd:x:65533:65534::/run/sshd:/usr/sbin/nologin\n"...)
		if err := os.WriteFile(filepath.Join(dir, "passwd"), passwd, 0o644); err != nil {
			t.Fatal(err)
		}
		script += ` && mount --bind "$3" /etc/passwd`
	}
	script += ` && exec "$1" -D -e -f "$2"`
	cmd := exec.Command(bins[1], "-m", "sh", "-c", script, "sh", bins[0], configPath, filepath.Join(dir, "passwd"))
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start sshd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	return addr
}

func connectOpenSSH(t *testing.T) (*Client, *recorder) {
	t.Helper()
	key := newTestKey(t)
	addr := startOpenSSH(t, key)
	rec := &recorder{}
	client, err := Connect(context.Background(), Config{
		Addr: addr, User: "root", Signer: key.Signer, Timeout: 20 * time.Second,
		Emitter: newRecordingEmitter(rec),
	})
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client, rec
}

func TestOpenSSHRunAndUpload(t *testing.T) {
	client, rec := connectOpenSSH(t)

	var stdout, stderr lines
	code, err := client.Run(context.Background(), `echo "$GREETING"; echo oops >&2; exit 3`,
		map[string]string{"GREETING": "it's openssh"}, stdout.add, stderr.add)
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	if got := stdout.all(); !slices.Equal(got, []string{"it's openssh"}) {
		t.Errorf("stdout = %q", got)
	}
	if got := stderr.all(); !slices.Equal(got, []string{"oops"}) {
		t.Errorf("stderr = %q", got)
	}

	local := t.TempDir()
	writeTree(t, local, tree)
	remote := filepath.Join(t.TempDir(), "upload")
	if err := client.Upload(context.Background(), local, remote); err != nil {
		t.Fatalf("Upload() = %v", err)
	}
	checkTree(t, remote, tree)
	for _, m := range rec.messages() {
		if strings.Contains(m, "instead") {
			t.Errorf("event %q: upload did not use SFTP", m)
		}
	}
}

func TestOpenSSHDisconnect(t *testing.T) {
	client, _ := connectOpenSSH(t)
	// The shell's parent is sshd's process for this session, so killing it
	// drops the connection before any exit status is sent.
	code, err := client.Run(context.Background(), "echo going; kill -9 $PPID; sleep 5", nil, nil, nil)
	if !errors.Is(err, ErrDisconnected) {
		t.Errorf("Run() = %d, %v, want ErrDisconnected", code, err)
	}
}

// TestOpenSSHCancelReturnsPromptly checks that Run returns soon after a
// cancel. OpenSSH 9.2 rejects the SIGTERM request in a root session
// ("session signalling requires privilege separation"), so the remote
// command outlives the session here and the test kills it.
func TestOpenSSHCancelReturnsPromptly(t *testing.T) {
	client, _ := connectOpenSSH(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	_, err := client.Run(ctx, "echo $$ > "+Quote(pidFile)+"; exec sleep 60", nil, nil, nil)
	elapsed := time.Since(start)

	if data, readErr := os.ReadFile(pidFile); readErr == nil {
		if pid, convErr := strconv.Atoi(strings.TrimSpace(string(data))); convErr == nil {
			if proc, findErr := os.FindProcess(pid); findErr == nil {
				proc.Kill()
			}
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run() error = %v, want context.Canceled", err)
	}
	if elapsed > cancelGrace+2*time.Second {
		t.Errorf("Run() returned after %s, want at most about %s after the cancel", elapsed, cancelGrace)
	}
}

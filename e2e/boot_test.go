package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bakeimg/bake/disk"
)

const (
	// sshDeadline bounds the wait for the guest's sshd. Under TCG on two
	// cores shared with four other QEMU guests (load average 7 to 14), the
	// baked Debian image reached SSH after 5m55s.
	sshDeadline = 15 * time.Minute
	// sshAttempt bounds one connection attempt. QEMU's user-mode network
	// accepts a forwarded connection before the guest listens, so the
	// handshake of an early attempt hangs: short attempts, retried, find
	// sshd sooner than one long one.
	sshAttempt = 10 * time.Second
	// poweroffDeadline bounds the wait for QEMU to exit after poweroff.
	poweroffDeadline = 2 * time.Minute
)

// guest is a QEMU VM started by a test on a throwaway overlay.
type guest struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	console string
	port    int
	signer  ssh.Signer
}

// checkBootedImage boots image on a fresh overlay with a cloud-init seed
// that authorizes a new key for root, and checks over SSH what the
// debian-12-cloud recipe's provisioners put into the image.
func checkBootedImage(t *testing.T, image, recipeName string) {
	t.Helper()
	requireBinaries(t, "qemu-system-x86_64", "qemu-img")
	before, err := sha256File(image)
	if err != nil {
		t.Fatalf("failed to hash %s: %v", image, err)
	}

	g := startGuest(t, image)
	client := g.dial(t)
	defer client.Close()

	t.Run("tree", func(t *testing.T) {
		out, err := run(client, "tree --version")
		if err != nil {
			t.Errorf("tree --version failed: %v\n%s", err, out)
		}
		if !strings.HasPrefix(out, "tree v") {
			t.Errorf("tree --version printed %q, expected \"tree v...\"", out)
		}
	})
	t.Run("release file", func(t *testing.T) {
		out, err := run(client, "cat /etc/bake-release")
		if err != nil {
			t.Fatalf("cat /etc/bake-release failed: %v\n%s", err, out)
		}
		if want := "recipe=" + recipeName + "\n"; !strings.Contains(out, want) {
			t.Errorf("/etc/bake-release = %q, expected it to contain %q", out, want)
		}
		if want := "release=1\n"; !strings.Contains(out, want) {
			t.Errorf("/etc/bake-release = %q, expected it to contain %q", out, want)
		}
	})
	t.Run("user baker", func(t *testing.T) {
		out, err := run(client, "getent passwd baker")
		if err != nil {
			t.Fatalf("getent passwd baker failed (no such user?): %v\n%s", err, out)
		}
		fields := strings.Split(strings.TrimSpace(out), ":")
		if len(fields) != 7 || fields[5] != "/home/baker" || fields[6] != "/bin/bash" {
			t.Errorf("passwd entry of baker = %q, expected home /home/baker and shell /bin/bash", out)
		}
		if out, err := run(client, "test -d /home/baker"); err != nil {
			t.Errorf("/home/baker is not a directory: %v\n%s", err, out)
		}
	})
	t.Run("motd", func(t *testing.T) {
		want, err := os.ReadFile(filepath.Join(repoRoot, "recipes", "files", "motd"))
		if err != nil {
			t.Fatalf("failed to read recipes/files/motd: %v", err)
		}
		out, err := run(client, "cat /etc/motd")
		if err != nil {
			t.Fatalf("cat /etc/motd failed: %v\n%s", err, out)
		}
		if out != string(want) {
			t.Errorf("/etc/motd = %q, expected the contents of recipes/files/motd, %q", out, want)
		}
	})

	g.powerOff(t, client)
	after, err := sha256File(image)
	if err != nil {
		t.Fatalf("failed to hash %s: %v", image, err)
	}
	if after != before {
		t.Errorf("%s changed while the boot check ran (sha256 %s, then %s): the overlay must take every write", image, before, after)
	}
}

// startGuest boots image under QEMU on a new qcow2 overlay, with a NoCloud
// seed CD and SSH forwarded from a free loopback port. The VM is killed when
// the test ends if it is still running.
func startGuest(t *testing.T, image string) *guest {
	t.Helper()
	dir := t.TempDir()
	overlay := filepath.Join(dir, "overlay.qcow2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := disk.CreateOverlay(ctx, image, overlay, 0); err != nil {
		t.Fatalf("failed to create an overlay on %s: %v", image, err)
	}

	_, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("failed to generate an SSH key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(private)
	if err != nil {
		t.Fatalf("failed to make an SSH signer: %v", err)
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))

	// A new instance-id makes cloud-init treat the boot as a new instance,
	// so it installs this key although the image already ran cloud-init
	// during the bake.
	instance := fmt.Sprintf("e2e-check-%d", time.Now().UnixNano())
	seed := filepath.Join(dir, "seed.iso")
	err = disk.WriteSeedISO(seed, "cidata", map[string][]byte{
		"meta-data": []byte("instance-id: " + instance + "\nlocal-hostname: e2e-check\n"),
		"user-data": []byte("#cloud-config\ndisable_root: false\nssh_pwauth: false\nssh_authorized_keys:\n  - " + authorized + "\n"),
	})
	if err != nil {
		t.Fatalf("failed to write the seed ISO: %v", err)
	}

	port := freePort(t)
	console := filepath.Join(dir, "console.log")
	accel := accelerator()
	if accel == "tcg" {
		accel = "tcg,thread=multi"
	}
	args := []string{
		"-name", "bake-e2e-check",
		"-machine", "pc",
		"-accel", accel,
		"-smp", "2",
		"-m", "1024M",
		"-display", "none",
		"-vga", "std",
		"-monitor", "none",
		"-serial", "file:" + console,
		"-drive", "file=" + overlay + ",format=qcow2,if=virtio,cache=unsafe",
		"-drive", "file=" + seed + ",format=raw,if=ide,media=cdrom,readonly=on",
		"-netdev", fmt.Sprintf("user,id=net0,hostfwd=tcp:127.0.0.1:%d-:22", port),
		"-device", "virtio-net-pci,netdev=net0",
	}
	g := &guest{
		cmd:     exec.Command("qemu-system-x86_64", args...),
		exited:  make(chan struct{}),
		console: console,
		port:    port,
		signer:  signer,
	}
	var stderr bytes.Buffer
	g.cmd.Stderr = &stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("failed to start qemu-system-x86_64: %v", err)
	}
	go func() {
		g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			g.cmd.Process.Kill()
			<-g.exited
		}
		if stderr.Len() > 0 {
			t.Logf("qemu standard error:\n%s", stderr.String())
		}
	})
	return g
}

// dial connects to the guest's sshd as root, retrying short attempts until
// sshDeadline.
func (g *guest) dial(t *testing.T) *ssh.Client {
	t.Helper()
	config := &ssh.ClientConfig{
		User: "root",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(g.signer)},
		// cloud-init makes new host keys for the new instance, so there is
		// no known key to pin.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         sshAttempt,
	}
	addr := fmt.Sprintf("127.0.0.1:%d", g.port)
	started := time.Now()
	deadline := started.Add(sshDeadline)
	var lastErr error
	for attempt := 1; time.Now().Before(deadline); attempt++ {
		select {
		case <-g.exited:
			t.Fatalf("qemu exited before SSH answered (%v); console tail:\n%s", g.cmd.ProcessState, tail(g.console, 40))
		default:
		}
		client, err := dialOnce(addr, config)
		if err == nil {
			t.Logf("SSH answered after %s (%d attempts)", time.Since(started).Round(time.Second), attempt)
			return client
		}
		lastErr = err
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("no SSH connection to the guest within %s (last error: %v); console tail:\n%s", sshDeadline, lastErr, tail(g.console, 40))
	return nil
}

// dialOnce makes one SSH connection whose TCP connect and handshake together
// take at most sshAttempt.
func dialOnce(addr string, config *ssh.ClientConfig) (*ssh.Client, error) {
	conn, err := net.DialTimeout("tcp", addr, sshAttempt)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(sshAttempt))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, config)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// powerOff runs systemctl poweroff in the guest and waits for QEMU to exit.
func (g *guest) powerOff(t *testing.T, client *ssh.Client) {
	t.Helper()
	// The session usually ends with the connection dropping, so its error
	// does not show whether the poweroff started.
	run(client, "systemctl poweroff")
	select {
	case <-g.exited:
		if !g.cmd.ProcessState.Success() {
			t.Errorf("qemu exited with %v after poweroff, expected status 0", g.cmd.ProcessState)
		}
	case <-time.After(poweroffDeadline):
		t.Errorf("qemu still running %s after systemctl poweroff; console tail:\n%s", poweroffDeadline, tail(g.console, 40))
	}
}

// run runs command in a new session and returns its combined output.
func run(client *ssh.Client, command string) (string, error) {
	session, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer session.Close()
	out, err := session.CombinedOutput(command)
	return string(out), err
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

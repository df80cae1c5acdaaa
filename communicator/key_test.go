package communicator

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestNewKeyAuthorizedKey(t *testing.T) {
	key := newTestKey(t)
	if strings.Contains(key.AuthorizedKey, "\n") {
		t.Errorf("AuthorizedKey %q spans several lines", key.AuthorizedKey)
	}
	pub, comment, _, rest, err := ssh.ParseAuthorizedKey([]byte(key.AuthorizedKey))
	if err != nil {
		t.Fatalf("AuthorizedKey does not parse: %v", err)
	}
	if len(rest) != 0 {
		t.Errorf("AuthorizedKey has trailing data %q", rest)
	}
	if comment != "bake" {
		t.Errorf("comment = %q, want bake", comment)
	}
	if !bytes.Equal(pub.Marshal(), key.Signer.PublicKey().Marshal()) {
		t.Error("AuthorizedKey differs from the signer's public key")
	}
	if pub.Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type = %s, want %s", pub.Type(), ssh.KeyAlgoED25519)
	}
}

func TestWritePrivate(t *testing.T) {
	key := newTestKey(t)
	path := filepath.Join(t.TempDir(), "id_ed25519")
	// An existing file with a wider mode must end up 0600 too.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := key.WritePrivate(path); err != nil {
		t.Fatalf("WritePrivate() = %v", err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
		t.Errorf("file does not start with an OpenSSH PEM header: %q", data[:min(len(data), 40)])
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		t.Fatalf("written key does not parse: %v", err)
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), key.Signer.PublicKey().Marshal()) {
		t.Error("written key differs from the generated key")
	}
}

func TestWritePrivateReadBySSHKeygen(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen is not installed")
	}
	key := newTestKey(t)
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := key.WritePrivate(path); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(keygen, "-y", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -y failed: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	want := strings.Fields(key.AuthorizedKey)
	if len(got) < 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ssh-keygen -y printed %q, want %q", out, key.AuthorizedKey)
	}
}

func TestWritePrivateMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "key")
	err := newTestKey(t).WritePrivate(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WritePrivate() error = %v, want it to name %q", err, path)
	}
}

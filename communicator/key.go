// Package communicator connects to a build's guest over SSH, runs commands
// with streamed output and uploads files.
package communicator

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Key is an ephemeral ed25519 key pair for one build. The pipeline puts
// AuthorizedKey into the guest's seed files and authenticates with Signer.
type Key struct {
	Signer ssh.Signer
	// AuthorizedKey is the public key in authorized_keys format, one line
	// without a trailing newline.
	AuthorizedKey string

	private ed25519.PrivateKey
}

// keyComment names the key in authorized_keys and in the private key file.
const keyComment = "bake"

// NewKey generates a new ed25519 key pair.
func NewKey() (*Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate ed25519 key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("failed to create SSH signer: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("failed to encode SSH public key: %w", err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + keyComment
	return &Key{Signer: signer, AuthorizedKey: line, private: priv}, nil
}

// WritePrivate writes the private key to path in OpenSSH format with mode
// 0600, so a user can reach the guest with "ssh -i path".
func (k *Key) WritePrivate(path string) error {
	block, err := ssh.MarshalPrivateKey(k.private, keyComment)
	if err != nil {
		return fmt.Errorf("failed to encode private key: %w", err)
	}
	data := pem.EncodeToMemory(block)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("failed to write private key %q: %w", path, err)
	}
	// WriteFile keeps the mode of an existing file, and the key must not be
	// readable by others or ssh ignores it.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("failed to restrict private key %q to mode 0600: %w", path, err)
	}
	return nil
}

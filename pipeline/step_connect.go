package pipeline

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/bakeimg/bake/communicator"
	"golang.org/x/crypto/ssh"
)

// stepConnect waits for the guest's SSH server and logs in.
type stepConnect struct{}

func (*stepConnect) Name() string { return "ssh" }

func (*stepConnect) Run(ctx context.Context, s *State) error {
	r := s.Recipe
	var signer ssh.Signer
	if s.Key != nil {
		signer = s.Key.Signer
	}
	if r.SSH.PrivateKeyFile != "" {
		b, err := os.ReadFile(r.SSH.PrivateKeyFile)
		if err != nil {
			return fmt.Errorf("ssh.private_key_file: %w", err)
		}
		parsed, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return fmt.Errorf("ssh.private_key_file %q: %w", r.SSH.PrivateKeyFile, err)
		}
		signer = parsed
	}
	cfg := communicator.Config{
		Addr:     "127.0.0.1:" + strconv.Itoa(s.Machine.SSHPort()),
		User:     r.SSH.Username,
		Password: r.SSH.Password,
		Signer:   signer,
		Timeout:  r.SSH.Timeout.D(),
		Emitter:  s.Emitter,
	}
	client, err := communicator.Connect(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w; console log: %s", err, s.console.path)
	}
	s.SSH = client
	s.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(client.HostKey())))
	s.HostKeySHA = client.HostKeyFingerprint()
	s.Emitter.Infof("reach the guest with: ssh -i %s/id_ed25519 -p %d -o StrictHostKeyChecking=no %s@127.0.0.1",
		s.WorkDir, s.Machine.SSHPort(), r.SSH.Username)
	return nil
}

func (*stepConnect) Cleanup(s *State) error {
	if s.SSH != nil {
		s.SSH.Close()
	}
	return nil
}

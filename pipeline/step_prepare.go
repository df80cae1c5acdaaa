package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bakeimg/bake/communicator"
)

// stepPrepare creates the work and log directories, checks and locks the
// output directory, and makes the build's SSH key.
type stepPrepare struct {
	lock *os.File
}

func (*stepPrepare) Name() string { return "prepare" }

func (p *stepPrepare) Run(ctx context.Context, s *State) error {
	r := s.Recipe
	out, err := filepath.Abs(r.Output.Directory)
	if err != nil {
		return err
	}
	s.OutputDir = out
	if err := p.lockOutput(s); err != nil {
		return err
	}
	if _, err := os.Stat(out); err == nil && !s.Options.Force {
		return fmt.Errorf("output directory %q already exists: remove it, choose another output.directory, or pass --force", out)
	}

	stamp := time.Now().Format("20060102-150405")
	s.LogDir = filepath.Join(s.Options.Home, "logs", r.Name, stamp)
	if err := os.MkdirAll(s.LogDir, 0o700); err != nil {
		return fmt.Errorf("failed to create log directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(s.Options.Home, "work"), 0o700); err != nil {
		return fmt.Errorf("failed to create work directory: %w", err)
	}
	s.WorkDir, err = os.MkdirTemp(filepath.Join(s.Options.Home, "work"), r.Name+"-")
	if err != nil {
		return fmt.Errorf("failed to create work directory: %w", err)
	}
	s.console, err = openConsole(filepath.Join(s.LogDir, "console.log"), s.Emitter, s.Recipe.Secrets)
	if err != nil {
		return err
	}
	s.console.onPanic = func(line string) {
		s.fail(fmt.Errorf("the guest kernel panicked: %q; console log: %s", line, s.console.path))
	}
	s.Emitter.Infof("logs in %s", s.LogDir)

	// An ephemeral key is made even when the recipe names its own key or a
	// password, because seed templates may refer to {{ .SSHPublicKey }}.
	s.Key, err = communicator.NewKey()
	if err != nil {
		return err
	}
	s.data.SSHPublicKey = s.Key.AuthorizedKey
	return s.Key.WritePrivate(filepath.Join(s.WorkDir, "id_ed25519"))
}

// lockOutput takes an exclusive lock for the output directory, so a second
// bake building into the same place is rejected instead of racing.
func (p *stepPrepare) lockOutput(s *State) error {
	dir := filepath.Join(s.Options.Home, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("failed to create lock directory: %w", err)
	}
	sum := sha256.Sum256([]byte(s.OutputDir))
	f, err := os.OpenFile(filepath.Join(dir, hex.EncodeToString(sum[:8])+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("another bake process is building into %q: wait for it or choose another output.directory", s.OutputDir)
		}
		return fmt.Errorf("failed to lock output directory %q: %w", s.OutputDir, err)
	}
	p.lock = f
	return nil
}

func (p *stepPrepare) Cleanup(s *State) error {
	if s.Key != nil && s.WorkDir != "" {
		os.Remove(filepath.Join(s.WorkDir, "id_ed25519"))
	}
	if p.lock != nil {
		p.lock.Close() // closing the descriptor releases the flock
	}
	return nil
}

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/bakeimg/bake/communicator"
)

// stepPrepare creates the work and log directories, checks and locks the
// output directory, and makes the build's SSH key.
type stepPrepare struct {
	lock     *os.File
	lockPath string
	// created lists the directories lockOutput made for the lock file,
	// deepest first, so Cleanup can remove them when they stay empty.
	created []string
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
// bake building into the same place is rejected instead of racing, whatever
// BAKE_HOME each uses. The lock file sits beside the output directory.
func (p *stepPrepare) lockOutput(s *State) error {
	parent := filepath.Dir(s.OutputDir)
	path := filepath.Join(parent, "."+filepath.Base(s.OutputDir)+".lock")
	// The holder removes the lock file when it finishes, so a process that
	// opened the file just before then may hold a lock on a removed file:
	// it checks the path still names the file it locked, and retries. The
	// holder also removes the directories it created when they are empty,
	// so the parent may vanish between creating it and opening the file.
	for {
		if err := p.makeParents(parent); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
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
		held, err1 := f.Stat()
		named, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			p.lock, p.lockPath = f, path
			return nil
		}
		f.Close()
	}
}

// makeParents creates dir and its missing parents and records the ones
// it created.
func (p *stepPrepare) makeParents(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create %q: %w", dir, err)
	}
	for _, d := range missing {
		if !slices.Contains(p.created, d) {
			p.created = append(p.created, d)
		}
	}
	return nil
}

func (p *stepPrepare) Cleanup(s *State) error {
	if s.Key != nil && s.WorkDir != "" {
		os.Remove(filepath.Join(s.WorkDir, "id_ed25519"))
	}
	if p.lock != nil {
		os.Remove(p.lockPath)
		p.lock.Close() // closing the descriptor releases the flock
	}
	// A build that wrote no output leaves no empty directory behind. Remove
	// fails on a directory that is not empty, such as one containing the
	// output or another build's lock.
	for _, d := range p.created {
		os.Remove(d)
	}
	return nil
}

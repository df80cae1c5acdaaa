package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bakeimg/bake/disk"
	"github.com/bakeimg/bake/event"
)

// stepExport converts the work disk to each output format, checks and
// checksums the results, writes the manifest, and renames the finished
// directory into place. Until that rename nothing exists at the output path.
type stepExport struct {
	tmpDir string
}

func (*stepExport) Name() string { return "export" }

func (e *stepExport) Run(ctx context.Context, s *State) error {
	r := s.Recipe
	parent := filepath.Dir(s.OutputDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("failed to create %q: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(s.OutputDir)+".partial-")
	if err != nil {
		return fmt.Errorf("failed to create a temporary output directory in %q: %w", parent, err)
	}
	e.tmpDir = tmp

	var names []string
	for _, format := range r.Output.Formats {
		name := r.Output.Filename + "." + format
		if err := convertOne(ctx, s, filepath.Join(tmp, name), format); err != nil {
			return withNoSpaceHint(err, parent)
		}
		names = append(names, name)
	}
	if s.EFIVars != "" {
		// An EFI image boots only with the variable store its boot entries
		// were written to, so it ships beside the disk.
		name := r.Output.Filename + ".efivars.fd"
		if err := copyFile(s.EFIVars, filepath.Join(tmp, name)); err != nil {
			return withNoSpaceHint(fmt.Errorf("failed to copy the EFI variable store: %w", err), parent)
		}
		os.Chmod(filepath.Join(tmp, name), 0o644)
		names = append(names, name)
	}
	if err := disk.WriteChecksums(tmp, names); err != nil {
		return err
	}
	if err := writeManifest(ctx, s, tmp, names); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := replaceDir(tmp, s.OutputDir, s.Options.Force); err != nil {
		return err
	}
	e.tmpDir = ""
	for i := range s.Artifacts {
		s.Artifacts[i].Path = filepath.Join(s.OutputDir, filepath.Base(s.Artifacts[i].Path))
		s.Emitter.Emit(event.Event{Kind: event.Artifact, Artifact: &s.Artifacts[i]})
	}
	s.Emitter.Infof("image written to %s", s.OutputDir)
	return nil
}

func convertOne(ctx context.Context, s *State, dst, format string) error {
	compression := s.Recipe.Output.Compression
	if format == "raw" {
		compression = "none"
	}
	start := time.Now()
	lastPct := -1.0
	err := disk.Convert(ctx, s.DiskPath, dst, disk.ConvertOptions{
		Format:      format,
		Compression: compression,
		Progress: func(pct float64) {
			if pct-lastPct >= 1 || pct == 100 {
				lastPct = pct
				s.Emitter.Progressf(int64(pct*10), 1000, "converting to %s", format)
			}
		},
	})
	if err != nil {
		return err
	}
	if err := disk.Check(ctx, dst); err != nil {
		return err
	}
	sum, err := disk.SHA256File(dst)
	if err != nil {
		return err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return err
	}
	s.Artifacts = append(s.Artifacts, event.ArtifactInfo{Path: dst, Format: format, Size: st.Size(), SHA256: sum})
	s.Emitter.Infof("%s: %d MiB in %s", filepath.Base(dst), st.Size()>>20, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// withNoSpaceHint adds what to do to err when the file system holding dir
// is full. qemu-img reports that only as text on standard error, so the
// message is matched as well as the errno.
func withNoSpaceHint(err error, dir string) error {
	if !errors.Is(err, syscall.ENOSPC) && !strings.Contains(err.Error(), "No space left on device") {
		return err
	}
	return fmt.Errorf("%w (the file system of %q is full: free space there or set output.directory to another file system)", err, dir)
}

// replaceDir renames tmp to dst. With force an existing dst is moved aside
// first and removed only after the new directory is in place.
func replaceDir(tmp, dst string, force bool) error {
	if _, err := os.Stat(dst); err == nil {
		if !force {
			return fmt.Errorf("output directory %q appeared during the build: remove it or pass --force", dst)
		}
		old := tmp + ".old"
		if err := os.Rename(dst, old); err != nil {
			return fmt.Errorf("failed to move the old output directory aside: %w", err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.Rename(old, dst)
			return fmt.Errorf("failed to move the output into place: %w", err)
		}
		return os.RemoveAll(old)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("failed to move the output into place: %w", err)
	}
	return nil
}

// Cleanup removes a half-written output directory.
func (e *stepExport) Cleanup(*State) error {
	if e.tmpDir != "" {
		return os.RemoveAll(e.tmpDir)
	}
	return nil
}

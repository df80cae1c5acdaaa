package pipeline

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/bakeimg/bake/disk"
)

// stepCreateDisk creates the work disk: a qcow2 overlay on the cached base
// image, which is never written, or a blank disk for an installer.
type stepCreateDisk struct{}

func (*stepCreateDisk) Name() string { return "disk" }

func (*stepCreateDisk) Run(ctx context.Context, s *State) error {
	s.DiskPath = filepath.Join(s.WorkDir, "disk.qcow2")
	size := int64(s.Recipe.VM.DiskSize)
	if s.Recipe.Source.DiskImage != "" {
		if err := disk.CreateOverlay(ctx, s.Source.Path, s.DiskPath, size); err != nil {
			return err
		}
	} else {
		if size == 0 {
			return fmt.Errorf("vm.disk_size is required for an ISO install")
		}
		if err := disk.CreateBlank(ctx, s.DiskPath, size); err != nil {
			return err
		}
	}
	info, err := disk.Info(ctx, s.DiskPath)
	if err == nil {
		s.Emitter.Infof("work disk %s (%d MiB virtual)", s.DiskPath, info.VirtualSize>>20)
	}
	return nil
}

// Cleanup leaves the disk to the work directory's removal.
func (*stepCreateDisk) Cleanup(*State) error { return nil }

package disk

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CreateOverlay creates a qcow2 image at dst whose backing file is base, so
// the guest writes only to dst and base is never written. The backing file is
// recorded as an absolute path with the format qemu-img detects. A size
// larger than the base's virtual size grows the overlay, and zero or the
// same size keeps it. A smaller size is an error because shrinking would
// cut off the base's data.
func CreateOverlay(ctx context.Context, base, dst string, size int64) error {
	absBase, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("failed to resolve base image path %q: %w", base, err)
	}
	if _, err := os.Stat(absBase); err != nil {
		return fmt.Errorf("base image %q not found: check the source disk image path: %w", absBase, err)
	}
	info, err := Info(ctx, absBase)
	if err != nil {
		return fmt.Errorf("failed to inspect base image %q: %w", absBase, err)
	}
	if size < 0 || (size > 0 && size < info.VirtualSize) {
		return fmt.Errorf("overlay size %d bytes is smaller than the virtual size %d bytes of base image %q: "+
			"set a disk size of at least %d bytes or leave it unset", size, info.VirtualSize, absBase, info.VirtualSize)
	}

	args := []string{"create", "-q", "-f", "qcow2", "-b", absBase, "-F", info.Format, dst}
	if size > info.VirtualSize {
		args = append(args, strconv.FormatInt(size, 10))
	}
	if _, err := runQemuImg(ctx, args...); err != nil {
		return fmt.Errorf("failed to create overlay %q on %q: %w", dst, absBase, err)
	}
	return nil
}

// CreateBlank creates an empty qcow2 image of size bytes at dst.
func CreateBlank(ctx context.Context, dst string, size int64) error {
	if size <= 0 {
		return fmt.Errorf("invalid size %d bytes for blank image %q: set a positive disk size", size, dst)
	}
	if _, err := runQemuImg(ctx, "create", "-q", "-f", "qcow2", dst, strconv.FormatInt(size, 10)); err != nil {
		return fmt.Errorf("failed to create blank image %q: %w", dst, err)
	}
	return nil
}

// checkJSON is the subset of `qemu-img check --output=json` that Check reads.
type checkJSON struct {
	CheckErrors int `json:"check-errors"`
	Corruptions int `json:"corruptions"`
	Leaks       int `json:"leaks"`
}

// Check runs qemu-img check on the image at path and returns an error when it
// reports corruptions, leaked clusters or an incomplete check. Raw images have
// no metadata to check, so Check returns nil for them.
func Check(ctx context.Context, path string) error {
	info, err := Info(ctx, path)
	if err != nil {
		return err
	}
	if info.Format == "raw" {
		return nil
	}

	out, runErr := runQemuImg(ctx, "check", "--output=json", "-f", info.Format, path)
	var result checkJSON
	if err := json.Unmarshal(out, &result); err != nil {
		if runErr != nil {
			return fmt.Errorf("failed to check image %q: %w", path, runErr)
		}
		return fmt.Errorf("failed to parse qemu-img check output for %q: %w", path, err)
	}

	var problems []string
	if result.Corruptions > 0 {
		problems = append(problems, fmt.Sprintf("%d corruptions", result.Corruptions))
	}
	if result.Leaks > 0 {
		problems = append(problems, fmt.Sprintf("%d leaked clusters (repair with qemu-img check -r leaks)", result.Leaks))
	}
	if result.CheckErrors > 0 {
		problems = append(problems, fmt.Sprintf("%d errors during the check", result.CheckErrors))
	}
	if len(problems) > 0 {
		return fmt.Errorf("image %q failed qemu-img check: %s", path, strings.Join(problems, ", "))
	}
	if runErr != nil {
		return fmt.Errorf("failed to check image %q: %w", path, runErr)
	}
	return nil
}

// Resize grows the image at path to size bytes. Shrinking is rejected
// because it would cut off data at the end of the disk.
func Resize(ctx context.Context, path string, size int64) error {
	info, err := Info(ctx, path)
	if err != nil {
		return err
	}
	if size < info.VirtualSize {
		return fmt.Errorf("new size %d bytes is smaller than the virtual size %d bytes of %q: shrinking is not supported",
			size, info.VirtualSize, path)
	}
	if size == info.VirtualSize {
		return nil
	}
	if _, err := runQemuImg(ctx, "resize", "-q", "-f", info.Format, path, strconv.FormatInt(size, 10)); err != nil {
		return fmt.Errorf("failed to resize %q to %d bytes: %w", path, size, err)
	}
	return nil
}

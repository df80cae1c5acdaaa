// Package disk creates, converts and checks disk images with qemu-img, and
// writes seed media (ISO9660 and FAT12 floppy images) and checksum files.
package disk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// qemuImgPackage is the Debian package that ships qemu-img.
const qemuImgPackage = "qemu-utils"

// ErrQemuImgNotFound is wrapped by every error caused by qemu-img missing
// from PATH.
var ErrQemuImgNotFound = errors.New("qemu-img not found in PATH")

// ImageInfo describes one image as reported by qemu-img info.
type ImageInfo struct {
	Format        string // qcow2, raw, ...
	VirtualSize   int64  // disk size presented to the guest, in bytes
	ActualSize    int64  // bytes allocated on the host file system
	BackingFile   string // backing file as recorded in the image, empty if none
	BackingFormat string // format recorded for the backing file, empty if none
}

// imageInfoJSON is the subset of `qemu-img info --output=json` that Info reads.
type imageInfoJSON struct {
	Format              string `json:"format"`
	VirtualSize         int64  `json:"virtual-size"`
	ActualSize          int64  `json:"actual-size"`
	BackingFilename     string `json:"backing-filename"`
	FullBackingFilename string `json:"full-backing-filename"`
	BackingFormat       string `json:"backing-filename-format"`
}

// qemuImgPath returns the path of qemu-img, or an error that names the
// package to install.
func qemuImgPath() (string, error) {
	path, err := exec.LookPath("qemu-img")
	if err != nil {
		return "", fmt.Errorf("%w: install the Debian package %s (apt-get install %s): %w",
			ErrQemuImgNotFound, qemuImgPackage, qemuImgPackage, err)
	}
	return path, nil
}

// runQemuImg runs qemu-img with args and returns its standard output. A
// failure includes the argv and qemu-img's standard error.
func runQemuImg(ctx context.Context, args ...string) ([]byte, error) {
	path, err := qemuImgPath()
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), commandError(args, &stderr, err)
	}
	return stdout.Bytes(), nil
}

// commandError describes a failed qemu-img run with its argv and standard
// error.
func commandError(args []string, stderr *bytes.Buffer, err error) error {
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		return fmt.Errorf("qemu-img %s failed: %w", strings.Join(args, " "), err)
	}
	return fmt.Errorf("qemu-img %s failed: %s: %w", strings.Join(args, " "), msg, err)
}

// Version returns the version line of qemu-img without its program name,
// for example "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)".
func Version(ctx context.Context) (string, error) {
	out, err := runQemuImg(ctx, "--version")
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(string(out), "\n")
	version, ok := strings.CutPrefix(strings.TrimSpace(first), "qemu-img version ")
	if !ok {
		return "", fmt.Errorf("unexpected qemu-img --version output %q: expected a line starting with \"qemu-img version\"", first)
	}
	return version, nil
}

// Info returns the format, sizes and backing file of the image at path. It
// passes --force-share so that it also works on an image a running QEMU holds
// open, in which case the sizes can be stale.
func Info(ctx context.Context, path string) (ImageInfo, error) {
	out, err := runQemuImg(ctx, "info", "--force-share", "--output=json", path)
	if err != nil {
		return ImageInfo{}, err
	}
	var raw imageInfoJSON
	if err := json.Unmarshal(out, &raw); err != nil {
		return ImageInfo{}, fmt.Errorf("failed to parse qemu-img info output for %q: %w", path, err)
	}
	backing := raw.FullBackingFilename
	if backing == "" {
		backing = raw.BackingFilename
	}
	return ImageInfo{
		Format:        raw.Format,
		VirtualSize:   raw.VirtualSize,
		ActualSize:    raw.ActualSize,
		BackingFile:   backing,
		BackingFormat: raw.BackingFormat,
	}, nil
}

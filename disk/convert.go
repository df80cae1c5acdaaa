package disk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
)

// ConvertOptions selects the output of Convert. The zero value writes a
// zstd-compressed qcow2 image.
type ConvertOptions struct {
	Format      string            // qcow2 (default) or raw
	Compression string            // zstd (default for qcow2), zlib or none; raw accepts only none or empty
	Progress    func(pct float64) // called with 0 to 100 as qemu-img reports progress; may be nil
}

// convertArgs returns the qemu-img convert arguments that select the output
// format and compression, without the source and destination.
func convertArgs(opts ConvertOptions) ([]string, error) {
	switch opts.Format {
	case "", "qcow2":
		switch opts.Compression {
		case "", "zstd":
			return []string{"-O", "qcow2", "-c", "-o", "compression_type=zstd"}, nil
		case "zlib":
			return []string{"-O", "qcow2", "-c"}, nil
		case "none":
			return []string{"-O", "qcow2"}, nil
		}
		return nil, fmt.Errorf("invalid compression %q for qcow2: use zstd, zlib or none", opts.Compression)
	case "raw":
		if opts.Compression != "" && opts.Compression != "none" {
			return nil, fmt.Errorf("invalid compression %q for raw: raw images cannot be compressed, use none", opts.Compression)
		}
		// qemu-img writes raw output sparse: zero runs of 4 KiB or more become holes (-S 4k default).
		return []string{"-O", "raw"}, nil
	}
	return nil, fmt.Errorf("invalid output format %q: use qcow2 or raw", opts.Format)
}

// Convert writes src to dst in the format and compression opts selects. The
// output goes to a temporary file next to dst that is renamed into place on
// success, so dst never holds a partial image. On failure (including a full
// disk) both the temporary file and any older file at dst are removed, so a
// failed export leaves no image behind, and the error includes qemu-img's
// standard error.
func Convert(ctx context.Context, src, dst string, opts ConvertOptions) error {
	outArgs, err := convertArgs(opts)
	if err != nil {
		return err
	}
	path, err := qemuImgPath()
	if err != nil {
		return err
	}
	srcInfo, err := Info(ctx, src)
	if err != nil {
		return fmt.Errorf("failed to inspect source image %q: %w", src, err)
	}

	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".converting")
	// The source format is passed explicitly because qemu-img refuses to
	// write to raw images it had to probe, and probing raw is unsafe.
	args := append([]string{"convert", "-p", "-f", srcInfo.Format}, outArgs...)
	args = append(args, src, tmp)
	if err := runConvert(ctx, path, args, opts.Progress); err != nil {
		return errors.Join(
			fmt.Errorf("failed to convert %q to %q: %w", src, dst, err),
			removeIfExists(tmp),
			removeIfExists(dst),
		)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return errors.Join(fmt.Errorf("failed to move converted image into place at %q: %w", dst, err), removeIfExists(tmp))
	}
	return nil
}

// runConvert runs qemu-img with args, feeding the progress it prints on
// standard output to progress.
func runConvert(ctx context.Context, path string, args []string, progress func(float64)) error {
	cmd := exec.CommandContext(ctx, path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return commandError(args, &stderr, err)
	}
	readProgress(stdout, progress)
	if err := cmd.Wait(); err != nil {
		return commandError(args, &stderr, err)
	}
	return nil
}

// progressPattern matches one progress report of `qemu-img convert -p`,
// which prints "    (12.34/100%)" followed by a carriage return.
var progressPattern = regexp.MustCompile(`\((\d+(?:\.\d+)?)/100%\)`)

// readProgress reads r to the end and calls progress for every progress
// report it contains.
func readProgress(r io.Reader, progress func(float64)) {
	scanner := bufio.NewScanner(r)
	scanner.Split(splitCROrLF)
	for scanner.Scan() {
		m := progressPattern.FindSubmatch(scanner.Bytes())
		if m == nil || progress == nil {
			continue
		}
		if pct, err := strconv.ParseFloat(string(m[1]), 64); err == nil {
			progress(pct)
		}
	}
	// If the scanner stopped early on an over-long line, read the rest so
	// that qemu-img does not block writing to a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

// splitCROrLF is a bufio.SplitFunc that ends a token at '\r' or '\n'.
func splitCROrLF(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// removeIfExists removes path and ignores that it does not exist.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove partial output %q: %w", path, err)
	}
	return nil
}

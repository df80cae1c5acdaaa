package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

const (
	isoBlockSize      = 2048
	isoMaxLabelLength = 32 // bytes of the volume identifier field in the primary volume descriptor

	// FloppySize is the size of a 3.5" high-density floppy image: 80 tracks,
	// 2 heads, 18 sectors of 512 bytes.
	FloppySize        = 1474560
	floppySectorSize  = 512
	fatMaxLabelLength = 11
)

// WriteSeedISO writes an ISO9660 image to path with the volume label exactly
// as given and one file per entry of files, keyed by slash-separated path.
// Rock Ridge and Joliet records carry the exact, case-preserved names, which
// is how cloud-init's NoCloud data source finds "user-data" and "meta-data" on
// a volume labelled "cidata". The plain ISO9660 names are upper-case 8.3
// forms that only readers without either extension see. The image is built
// under a temporary name next to path and renamed into place.
func WriteSeedISO(path, label string, files map[string][]byte) error {
	if label == "" || len(label) > isoMaxLabelLength {
		return fmt.Errorf("invalid ISO volume label %q: use 1 to %d characters, for example \"cidata\"", label, isoMaxLabelLength)
	}
	names, err := sortedNames(files)
	if err != nil {
		return err
	}
	return writeAtomically(path, func(f *os.File) error {
		// go-diskfs keeps the files in a staging directory until Finalize
		// and copies its mode to the root directory's Rock Ridge record, so
		// the directory is made world-readable like a mkisofs root.
		staging, err := os.MkdirTemp("", "bake-seed-iso-")
		if err != nil {
			return fmt.Errorf("failed to create staging directory: %w", err)
		}
		defer os.RemoveAll(staging)
		if err := os.Chmod(staging, 0o755); err != nil {
			return fmt.Errorf("failed to set permissions on staging directory %q: %w", staging, err)
		}

		iso, err := iso9660.Create(file.New(f, false), 0, 0, isoBlockSize, staging)
		if err != nil {
			return fmt.Errorf("failed to create ISO9660 file system: %w", err)
		}

		if err := copyFiles(iso, names, files); err != nil {
			return err
		}
		err = iso.Finalize(iso9660.FinalizeOptions{
			RockRidge:        true,
			Joliet:           true,
			VolumeIdentifier: label,
		})
		if err != nil {
			return fmt.Errorf("failed to write ISO9660 file system: %w", err)
		}
		return fixISOHeader(f, label)
	})
}

// fixISOHeader pads the volume identifiers in the volume descriptors of the
// ISO image in f with spaces, and cuts the file to the volume size that the
// primary volume descriptor records. go-diskfs v1.9.4 pads the identifiers
// with NUL bytes, which ECMA-119 does not allow, and can leave a partial
// block after the last one.
func fixISOHeader(f *os.File, label string) error {
	const (
		firstDescriptor = 16 * isoBlockSize
		labelOffset     = 40 // volume identifier within a volume descriptor
		sizeOffset      = 80 // volume space size, both-endian uint32, within the primary volume descriptor
	)
	var volumeBlocks uint32
	for offset := int64(firstDescriptor); ; offset += isoBlockSize {
		descriptor := make([]byte, isoBlockSize)
		if _, err := f.ReadAt(descriptor, offset); err != nil {
			return fmt.Errorf("failed to read ISO volume descriptor at byte %d: %w", offset, err)
		}
		if string(descriptor[1:6]) != "CD001" {
			return fmt.Errorf("invalid ISO volume descriptor at byte %d: missing CD001 signature", offset)
		}
		var field []byte
		switch descriptor[0] {
		case 1: // primary
			volumeBlocks = binary.LittleEndian.Uint32(descriptor[sizeOffset:])
			field = padASCII(label, isoMaxLabelLength)
		case 2: // supplementary, which go-diskfs writes only for Joliet
			field = padUCS2(label, isoMaxLabelLength)
		case 255: // set terminator
			if volumeBlocks == 0 {
				return errors.New("invalid ISO image: no primary volume descriptor")
			}
			return f.Truncate(int64(volumeBlocks) * isoBlockSize)
		}
		if field != nil {
			if _, err := f.WriteAt(field, offset+labelOffset); err != nil {
				return fmt.Errorf("failed to write ISO volume label: %w", err)
			}
		}
	}
}

// padASCII returns s padded with spaces to n bytes.
func padASCII(s string, n int) []byte {
	return []byte(fmt.Sprintf("%-*s", n, s))[:n]
}

// padUCS2 returns s as big-endian UCS-2 padded with spaces to n bytes. Joliet
// stores the volume identifier this way, so at most n/2 characters fit.
func padUCS2(s string, n int) []byte {
	out := make([]byte, 0, n)
	for _, r := range s {
		if len(out)+2 > n {
			break
		}
		out = binary.BigEndian.AppendUint16(out, uint16(r))
	}
	for len(out) < n {
		out = append(out, 0, ' ')
	}
	return out
}

// WriteFloppy writes a 1.44 MB FAT12 floppy image to path with the volume
// label as given and one file per entry of files, keyed by slash-separated
// path. Long names are stored as VFAT long file names. The image is built
// under a temporary name next to path and renamed into place.
func WriteFloppy(path, label string, files map[string][]byte) error {
	if len(label) > fatMaxLabelLength {
		return fmt.Errorf("invalid floppy volume label %q: use at most %d characters", label, fatMaxLabelLength)
	}
	names, err := sortedNames(files)
	if err != nil {
		return err
	}
	return writeAtomically(path, func(f *os.File) error {
		if err := f.Truncate(FloppySize); err != nil {
			return fmt.Errorf("failed to size floppy image: %w", err)
		}
		fat, err := fat12.Create(file.New(f, false), FloppySize, 0, floppySectorSize, label, false)
		if err != nil {
			return fmt.Errorf("failed to create FAT12 file system: %w", err)
		}
		return copyFiles(fat, names, files)
	})
}

// sortedNames validates the keys of files and returns them sorted, so that
// images are laid out the same way on every run.
func sortedNames(files map[string][]byte) ([]string, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		clean := path.Clean(name)
		if name == "" || path.IsAbs(name) || clean != name || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." {
			return nil, fmt.Errorf("invalid seed file name %q: use a relative slash-separated path such as \"user-data\"", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// copyFiles writes each named entry of files into fsys, creating parent
// directories as needed.
func copyFiles(fsys filesystem.FileSystem, names []string, files map[string][]byte) error {
	for _, name := range names {
		if dir := path.Dir(name); dir != "." {
			if err := fsys.Mkdir(dir); err != nil {
				return fmt.Errorf("failed to create directory %q in seed image: %w", dir, err)
			}
		}
		f, err := fsys.OpenFile(name, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("failed to create %q in seed image: %w", name, err)
		}
		_, err = f.Write(files[name])
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
		if err != nil {
			return fmt.Errorf("failed to write %q (%d bytes) into seed image: %w", name, len(files[name]), err)
		}
	}
	return nil
}

// writeAtomically calls write with a new temporary file in the directory of
// dst and renames the file to dst when write succeeds. On any failure the
// temporary file is removed and dst is left as it was.
func writeAtomically(dst string, write func(f *os.File) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return fmt.Errorf("failed to create temporary file for %q: %w", dst, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			err = errors.Join(err, removeIfExists(tmp))
		}
	}()

	if err := write(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("failed to write %q: %w", dst, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("failed to flush %q: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to close %q: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("failed to set permissions on %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("failed to move %q into place: %w", dst, err)
	}
	return nil
}

package disk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ChecksumsFile is the name of the file WriteChecksums writes.
const ChecksumsFile = "SHA256SUMS"

// SHA256File returns the lower-case hex SHA-256 digest of the file at path.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("failed to open %q for hashing: %w", path, err)
	}
	defer f.Close()

	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("failed to read %q for hashing: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteChecksums hashes each named file in dir and writes dir/SHA256SUMS in
// the GNU coreutils format ("HEX  name" per line, binary mode not marked),
// which `sha256sum -c SHA256SUMS` verifies from within dir. Names must be
// plain file names without a directory part.
func WriteChecksums(dir string, names []string) error {
	var b strings.Builder
	for _, name := range names {
		if name == "" || filepath.Base(name) != name || strings.ContainsAny(name, "\n\\") {
			return fmt.Errorf("invalid file name %q for %s: use a plain file name in %q without newlines or backslashes",
				name, ChecksumsFile, dir)
		}
		sum, err := SHA256File(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, name)
	}
	return writeAtomically(filepath.Join(dir, ChecksumsFile), func(f *os.File) error {
		_, err := f.WriteString(b.String())
		return err
	})
}

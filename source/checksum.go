package source

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Digest is an expected or computed content hash.
type Digest struct {
	Algorithm string // sha256 or sha512
	Hex       string // lower-case hex
}

// String returns the digest as "ALGORITHM:HEX".
func (d Digest) String() string { return d.Algorithm + ":" + d.Hex }

// hexLengths maps each supported algorithm to the length of its hex digest.
var hexLengths = map[string]int{"sha256": 64, "sha512": 128}

// newHash returns a new hash for a supported algorithm.
func newHash(algorithm string) hash.Hash {
	if algorithm == "sha512" {
		return sha512.New()
	}
	return sha256.New()
}

// parseDigest parses "sha256:HEX" or "sha512:HEX".
func parseDigest(s string) (Digest, error) {
	algorithm, value, ok := strings.Cut(s, ":")
	algorithm = strings.ToLower(algorithm)
	want, known := hexLengths[algorithm]
	if !ok || !known {
		return Digest{}, fmt.Errorf("invalid checksum %q: use sha256:HEX, sha512:HEX, file:URL-or-path or none", s)
	}
	value = strings.ToLower(strings.TrimSpace(value))
	if len(value) != want || !isHex(value) {
		return Digest{}, fmt.Errorf("invalid %s checksum %q: expected %d hex digits", algorithm, value, want)
	}
	return Digest{Algorithm: algorithm, Hex: value}, nil
}

// digestFromHex infers the algorithm of a bare hex digest from its length.
func digestFromHex(value string) (Digest, bool) {
	value = strings.ToLower(value)
	if !isHex(value) {
		return Digest{}, false
	}
	for algorithm, n := range hexLengths {
		if len(value) == n {
			return Digest{Algorithm: algorithm, Hex: value}, true
		}
	}
	return Digest{}, false
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && s != ""
}

// checksumEntry is one line of a checksum file.
type checksumEntry struct {
	name   string
	digest Digest
}

var (
	// bsdLine matches the BSD tagged format written by `sha256sum --tag`
	// and used by Fedora: "SHA256 (name) = HEX".
	bsdLine = regexp.MustCompile(`^(SHA256|SHA512|SHA2-256|SHA2-512) ?\((.+)\) ?= ?([0-9a-fA-F]+)$`)
	// gnuLine matches the GNU coreutils format: "HEX  name" for text mode
	// and "HEX *name" for binary mode.
	gnuLine = regexp.MustCompile(`^([0-9a-fA-F]+) [ *](.+)$`)
)

// parseChecksumFile returns the entries of a checksum file in the GNU or BSD
// format. It accepts comment lines starting with '#', CRLF line ends, a
// missing final newline, "./" before names and an OpenPGP clear-signed
// wrapper, whose signature it does not verify. Lines in neither format and
// digests of unsupported algorithms (MD5, SHA-1) are skipped.
func parseChecksumFile(data []byte) []checksumEntry {
	var entries []checksumEntry
	scanner := bufio.NewScanner(bytes.NewReader(stripClearSign(data)))
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if entry, ok := parseChecksumLine(line); ok {
			entries = append(entries, entry)
		}
	}
	return entries
}

// parseChecksumLine parses one non-empty line in the BSD or GNU format.
func parseChecksumLine(line string) (checksumEntry, bool) {
	var name, value string
	if m := bsdLine.FindStringSubmatch(line); m != nil {
		name, value = m[2], m[3]
	} else if m := gnuLine.FindStringSubmatch(strings.TrimPrefix(line, `\`)); m != nil {
		name, value = m[2], m[1]
		// GNU tools start a line with a backslash when the name contains
		// a backslash or newline and escape those characters.
		if strings.HasPrefix(line, `\`) {
			name = strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(name)
		}
	} else {
		return checksumEntry{}, false
	}
	digest, ok := digestFromHex(value)
	if !ok {
		return checksumEntry{}, false
	}
	return checksumEntry{name: strings.TrimPrefix(name, "./"), digest: digest}, true
}

// stripClearSign returns the signed text of an OpenPGP clear-signed message
// (RFC 4880 section 7), or data unchanged when it is not one.
func stripClearSign(data []byte) []byte {
	const (
		begin     = "-----BEGIN PGP SIGNED MESSAGE-----"
		signature = "-----BEGIN PGP SIGNATURE-----"
	)
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	start := strings.Index(text, begin)
	if start < 0 {
		return data
	}
	// Armor headers such as "Hash: SHA256" end at the first empty line.
	_, body, ok := strings.Cut(text[start:], "\n\n")
	if !ok {
		return nil
	}
	if end := strings.Index(body, signature); end >= 0 {
		body = body[:end]
	}
	var out strings.Builder
	for _, line := range strings.Split(body, "\n") {
		// The signer escapes lines starting with a dash as "- -".
		out.WriteString(strings.TrimPrefix(line, "- "))
		out.WriteByte('\n')
	}
	return []byte(out.String())
}

// lookupChecksum returns the digest recorded for fileName in a checksum
// file. Entries match by their full name or by their last path element. A
// name listed with two different digests of one algorithm is ambiguous. A
// name listed with both a SHA-256 and a SHA-512 digest yields the SHA-256
// one.
func lookupChecksum(data []byte, fileName, checksumFile string) (Digest, error) {
	byAlgorithm := map[string][]Digest{}
	for _, entry := range parseChecksumFile(data) {
		if entry.name != fileName && path.Base(entry.name) != fileName {
			continue
		}
		known := byAlgorithm[entry.digest.Algorithm]
		if !slices.Contains(known, entry.digest) {
			byAlgorithm[entry.digest.Algorithm] = append(known, entry.digest)
		}
	}
	for _, found := range byAlgorithm {
		if len(found) > 1 {
			var listed []string
			for _, d := range found {
				listed = append(listed, d.String())
			}
			return Digest{}, fmt.Errorf("ambiguous checksum for %q in checksum file %q: it lists %s; set the checksum directly as %s:HEX",
				fileName, checksumFile, strings.Join(listed, " and "), found[0].Algorithm)
		}
	}
	for _, algorithm := range []string{"sha256", "sha512"} {
		if found := byAlgorithm[algorithm]; len(found) == 1 {
			return found[0], nil
		}
	}
	return Digest{}, fmt.Errorf("no checksum for %q in checksum file %q: check that the file lists this image name", fileName, checksumFile)
}

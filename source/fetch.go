// Package source fetches the disk image or ISO a build starts from into a
// local cache, verifying it against a checksum given directly, read from a
// checksum file, or waived with "none".
package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bakeimg/bake/event"
)

// Fetcher fetches source images into a cache under CacheDir. Its zero value
// is not usable: CacheDir must be set.
type Fetcher struct {
	CacheDir string         // root of the cache; created when missing
	Emitter  *event.Emitter // receives progress and warning events; may be nil
	Client   *http.Client   // used for http(s) locations; nil means http.DefaultClient
}

// Result describes a fetched source.
type Result struct {
	// Path is the verified cache entry, or the local file itself when the
	// location is a local path and the checksum is "none".
	Path string
	// Digest is the SHA-256 of the content as "sha256:HEX".
	Digest string
	// Location is the entry of the locations list that the content came from.
	Location string
}

// checksumSpec is a parsed checksum setting.
type checksumSpec struct {
	none   bool   // "none": content is not verified
	digest Digest // set for sha256:HEX and sha512:HEX
	file   string // URL or path of a checksum file, for file:...
}

// parseChecksumSpec parses sha256:HEX, sha512:HEX, file:URL-or-path or none.
func parseChecksumSpec(s string) (checksumSpec, error) {
	switch {
	case s == "":
		return checksumSpec{}, errors.New("missing checksum: set source.checksum to sha256:HEX, sha512:HEX, file:URL-or-path or none")
	case strings.EqualFold(s, "none"):
		return checksumSpec{none: true}, nil
	case strings.HasPrefix(s, "file:"):
		file := strings.TrimPrefix(s, "file:")
		if file == "" {
			return checksumSpec{}, fmt.Errorf("invalid checksum %q: name a checksum file after file:, for example file:https://example.org/SHA256SUMS", s)
		}
		return checksumSpec{file: file}, nil
	}
	digest, err := parseDigest(s)
	if err != nil {
		return checksumSpec{}, err
	}
	return checksumSpec{digest: digest}, nil
}

// location is one parsed entry of the locations list.
type location struct {
	raw     string
	display string   // raw with any URL password masked, for messages
	url     *url.URL // set for http and https locations
	path    string   // set for local files
	name    string   // file name that a checksum file lists the content under
}

// parseLocation parses an http(s) URL, a file:// URL or a local path.
func parseLocation(raw string) (location, error) {
	if raw == "" {
		return location{}, errors.New("empty source location: set source.disk_image or source.iso, or the variable that sets it")
	}
	u, err := url.Parse(raw)
	if err == nil {
		switch strings.ToLower(u.Scheme) {
		case "http", "https":
			// url.URL.Path is already unescaped, so "my%20disk.img" is
			// matched as "my disk.img".
			return location{raw: raw, display: u.Redacted(), url: u, name: path.Base(u.Path)}, nil
		case "file":
			return location{raw: raw, display: raw, path: u.Path, name: path.Base(u.Path)}, nil
		case "":
		default:
			if len(u.Scheme) > 1 {
				return location{}, fmt.Errorf("unsupported source location %q: use an http(s) URL or a local path", raw)
			}
		}
	}
	return location{raw: raw, display: raw, path: raw, name: filepath.Base(raw)}, nil
}

// Fetch returns a verified local copy of the content at the first of
// locations that works. Locations are http(s) URLs, file:// URLs or local
// paths. Later ones are mirrors, tried in turn after a failure, and the
// error returned when all fail lists each failure. The checksum is
// sha256:HEX, sha512:HEX, file:URL-or-path (a checksum file that lists the
// location's file name) or none.
func (f *Fetcher) Fetch(ctx context.Context, locations []string, checksum string) (Result, error) {
	if f.CacheDir == "" {
		return Result{}, errors.New("missing cache directory: set Fetcher.CacheDir")
	}
	cacheDir, err := filepath.Abs(f.CacheDir)
	if err != nil {
		return Result{}, fmt.Errorf("failed to resolve cache directory %q: %w", f.CacheDir, err)
	}
	resolved := *f
	resolved.CacheDir = cacheDir
	f = &resolved

	if len(locations) == 0 {
		return Result{}, errors.New("missing source location: set source.disk_image or source.iso")
	}
	spec, err := parseChecksumSpec(checksum)
	if err != nil {
		return Result{}, err
	}

	checksums := &checksumFileCache{fetcher: f}
	var failures []error
	for i, raw := range locations {
		res, err := f.fetchFrom(ctx, raw, spec, checksums)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return Result{}, err
		}
		failures = append(failures, err)
		if i < len(locations)-1 {
			f.warnf("failed to fetch from location %d of %d, trying the next one: %v", i+1, len(locations), err)
		}
	}
	if len(failures) == 1 {
		return Result{}, failures[0]
	}
	return Result{}, fmt.Errorf("failed to fetch the source from all %d locations:\n%w", len(failures), errors.Join(failures...))
}

// fetchFrom fetches from one location.
func (f *Fetcher) fetchFrom(ctx context.Context, raw string, spec checksumSpec, checksums *checksumFileCache) (Result, error) {
	loc, err := parseLocation(raw)
	if err != nil {
		return Result{}, err
	}
	if loc.url == nil {
		if _, err := os.Stat(loc.path); err != nil {
			return Result{}, fmt.Errorf("source file %q not found: check source.disk_image or source.iso in the recipe, or the variable that sets it: %w",
				loc.path, err)
		}
	}

	if spec.none {
		f.warnf("checksum for %s is none, so its content is not verified: set source.checksum to sha256:HEX or file:URL", loc.display)
		if loc.url == nil {
			return f.useLocalFile(ctx, loc)
		}
		return f.fetchCached(ctx, loc, urlKey(loc.url), nil)
	}

	expected := spec.digest
	if spec.file != "" {
		data, err := checksums.get(ctx, spec.file)
		if err != nil {
			return Result{}, err
		}
		if expected, err = lookupChecksum(data, loc.name, spec.file); err != nil {
			return Result{}, err
		}
	}
	return f.fetchCached(ctx, loc, digestKey(expected), &expected)
}

// useLocalFile returns a local file as is, with its SHA-256.
func (f *Fetcher) useLocalFile(ctx context.Context, loc location) (Result, error) {
	abs, err := filepath.Abs(loc.path)
	if err != nil {
		return Result{}, fmt.Errorf("failed to resolve source path %q: %w", loc.path, err)
	}
	sums, err := hashFile(ctx, abs, "sha256")
	if err != nil {
		return Result{}, err
	}
	return Result{Path: abs, Digest: "sha256:" + sums.sha256, Location: loc.raw}, nil
}

// checksumFileCache reads each checksum file once per Fetch call, so that
// mirrors share one download of it.
type checksumFileCache struct {
	fetcher *Fetcher
	data    map[string][]byte
}

// maxChecksumFileSize bounds the memory a checksum file can take. Published
// SHA256SUMS files are a few kilobytes.
const maxChecksumFileSize = 16 << 20

func (c *checksumFileCache) get(ctx context.Context, raw string) ([]byte, error) {
	if data, ok := c.data[raw]; ok {
		return data, nil
	}
	data, err := c.fetcher.readChecksumFile(ctx, raw)
	if err != nil {
		return nil, err
	}
	if c.data == nil {
		c.data = map[string][]byte{}
	}
	c.data[raw] = data
	return data, nil
}

// readChecksumFile reads a checksum file from a local path or an http(s) URL.
func (f *Fetcher) readChecksumFile(ctx context.Context, raw string) ([]byte, error) {
	loc, err := parseLocation(raw)
	if err != nil {
		return nil, err
	}
	if loc.url == nil {
		data, err := os.ReadFile(loc.path)
		if err != nil {
			return nil, fmt.Errorf("failed to read checksum file %q: check the file: path in source.checksum: %w", loc.path, err)
		}
		return data, nil
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.url.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("invalid checksum file URL %q: %w", loc.display, err)
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to download checksum file %q: %w", loc.display, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to download checksum file %q: server returned %s", loc.display, resp.Status)
	}
	data, err := readLimited(resp.Body, maxChecksumFileSize)
	if err != nil {
		return nil, fmt.Errorf("failed to download checksum file %q: %w", loc.display, err)
	}
	return data, nil
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return http.DefaultClient
}

func (f *Fetcher) warnf(format string, args ...any) {
	if f.Emitter != nil {
		f.Emitter.Warnf(format, args...)
	}
}

func (f *Fetcher) infof(format string, args ...any) {
	if f.Emitter != nil {
		f.Emitter.Infof(format, args...)
	}
}

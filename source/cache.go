package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// cacheKey names one cache entry. Entries verified by a published digest
// live at CacheDir/<algorithm>/<hex>; content fetched with checksum none
// lives at CacheDir/url/<sha256 of the URL>, next to a .sha256 file that
// records its digest at download time so that later reuse can detect
// corruption.
type cacheKey struct {
	kind string // sha256, sha512 or url
	id   string // lower-case hex
}

func digestKey(d Digest) cacheKey { return cacheKey{kind: d.Algorithm, id: d.Hex} }

func urlKey(u *url.URL) cacheKey {
	sum := sha256.Sum256([]byte(u.String()))
	return cacheKey{kind: "url", id: hex.EncodeToString(sum[:])}
}

func (k cacheKey) entry(cacheDir string) string { return filepath.Join(cacheDir, k.kind, k.id) }

// recordedDigest is the file that stores the SHA-256 of a url-keyed entry.
func (k cacheKey) recordedDigest(cacheDir string) string { return k.entry(cacheDir) + ".sha256" }

func (k cacheKey) downloads(cacheDir string) string { return filepath.Join(cacheDir, "downloads") }

func (k cacheKey) part(cacheDir string) string {
	return filepath.Join(k.downloads(cacheDir), k.kind+"-"+k.id+".part")
}

func (k cacheKey) lock(cacheDir string) string {
	return filepath.Join(k.downloads(cacheDir), k.kind+"-"+k.id+".lock")
}

// fetchCached returns the cache entry for key, downloading or copying it
// from loc first when it is missing or fails verification. With expected
// nil the content is not verified against a published digest.
func (f *Fetcher) fetchCached(ctx context.Context, loc location, key cacheKey, expected *Digest) (Result, error) {
	if err := os.MkdirAll(key.downloads(f.CacheDir), 0o755); err != nil {
		return Result{}, fmt.Errorf("failed to create cache directory %q: %w", key.downloads(f.CacheDir), err)
	}
	if err := os.MkdirAll(filepath.Dir(key.entry(f.CacheDir)), 0o755); err != nil {
		return Result{}, fmt.Errorf("failed to create cache directory %q: %w", filepath.Dir(key.entry(f.CacheDir)), err)
	}
	unlock, err := f.lockKey(ctx, key, loc)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	if res, ok, err := f.reuse(ctx, loc, key, expected); err != nil || ok {
		return res, err
	}

	sums, err := f.transfer(ctx, loc, key, expected)
	if err != nil {
		return Result{}, err
	}
	part := key.part(f.CacheDir)
	if expected != nil {
		if got := sums.get(expected.Algorithm); got != expected.Hex {
			return Result{}, errors.Join(
				fmt.Errorf("checksum mismatch for %s: expected %s, got %s:%s; the download was deleted: check source.checksum or try another mirror",
					loc.display, expected, expected.Algorithm, got),
				removeIfExists(part), removeIfExists(part+validatorSuffix),
			)
		}
	} else if err := writeFileAtomically(key.recordedDigest(f.CacheDir), []byte(sums.sha256+"\n")); err != nil {
		return Result{}, err
	}

	entry := key.entry(f.CacheDir)
	if err := os.Rename(part, entry); err != nil {
		return Result{}, fmt.Errorf("failed to move download %q into the cache at %q: %w", part, entry, err)
	}
	_ = removeIfExists(part + validatorSuffix)
	return Result{Path: entry, Digest: "sha256:" + sums.sha256, Location: loc.raw}, nil
}

// reuse returns the cache entry for key when it exists and still matches
// its digest. A corrupt entry is deleted with a warning, and ok is false so
// that the caller fetches it again.
func (f *Fetcher) reuse(ctx context.Context, loc location, key cacheKey, expected *Digest) (res Result, ok bool, err error) {
	entry := key.entry(f.CacheDir)
	if _, err := os.Stat(entry); err != nil {
		return Result{}, false, nil
	}
	want := expected
	if want == nil {
		recorded, err := os.ReadFile(key.recordedDigest(f.CacheDir))
		if err == nil {
			want = &Digest{Algorithm: "sha256", Hex: strings.TrimSpace(string(recorded))}
		}
	}

	algorithm := "sha256"
	if want != nil {
		algorithm = want.Algorithm
	}
	sums, err := hashFile(ctx, entry, algorithm)
	if err != nil {
		return Result{}, false, err
	}
	if want != nil && sums.get(want.Algorithm) == want.Hex {
		f.infof("using cached %s for %s", entry, loc.display)
		return Result{Path: entry, Digest: "sha256:" + sums.sha256, Location: loc.raw}, true, nil
	}

	if want == nil {
		f.warnf("cached %s has no recorded digest, fetching %s again", entry, loc.display)
	} else {
		f.warnf("cached %s is corrupt (expected %s, got %s:%s), deleting it and fetching %s again",
			entry, want, want.Algorithm, sums.get(want.Algorithm), loc.display)
	}
	if err := errors.Join(removeIfExists(entry), removeIfExists(key.recordedDigest(f.CacheDir))); err != nil {
		return Result{}, false, err
	}
	return Result{}, false, nil
}

// lockPollInterval is how often lockKey retries a lock another process holds.
const lockPollInterval = 100 * time.Millisecond

// lockKey takes an exclusive flock(2) on the key's lock file, so that only
// one process or goroutine downloads an entry at a time, and returns the
// function that releases it. It polls instead of blocking so that ctx can
// cancel the wait.
func (f *Fetcher) lockKey(ctx context.Context, key cacheKey, loc location) (unlock func(), err error) {
	path := key.lock(f.CacheDir)
	file, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open cache lock %q: %w", path, err)
	}
	unlock = func() {
		_ = syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
		_ = file.Close()
	}

	waiting := false
	for {
		err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return unlock, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = file.Close()
			return nil, fmt.Errorf("failed to lock cache entry %q: %w", path, err)
		}
		if !waiting {
			waiting = true
			f.infof("waiting for another fetch of %s to finish (lock %s)", loc.display, path)
		}
		select {
		case <-ctx.Done():
			_ = file.Close()
			return nil, fmt.Errorf("gave up waiting for cache lock %q: %w", path, ctx.Err())
		case <-time.After(lockPollInterval):
		}
	}
}

// digests holds the SHA-256 of some content and, when requested, its
// SHA-512.
type digests struct {
	sha256 string
	sha512 string
}

func (d digests) get(algorithm string) string {
	if algorithm == "sha512" {
		return d.sha512
	}
	return d.sha256
}

// hasher computes SHA-256 and, for algorithm sha512, also SHA-512 in one pass.
type hasher struct {
	sha256 hash.Hash
	extra  hash.Hash // nil unless a second algorithm is needed
	w      io.Writer
}

func newHasher(algorithm string) *hasher {
	h := &hasher{sha256: newHash("sha256")}
	h.w = h.sha256
	if algorithm != "sha256" && algorithm != "" {
		h.extra = newHash(algorithm)
		h.w = io.MultiWriter(h.sha256, h.extra)
	}
	return h
}

func (h *hasher) Write(p []byte) (int, error) { return h.w.Write(p) }

func (h *hasher) sums() digests {
	d := digests{sha256: hex.EncodeToString(h.sha256.Sum(nil))}
	if h.extra != nil {
		d.sha512 = hex.EncodeToString(h.extra.Sum(nil))
	}
	return d
}

// hashFile returns the digests of the file at path.
func hashFile(ctx context.Context, path, algorithm string) (digests, error) {
	file, err := os.Open(path)
	if err != nil {
		return digests{}, fmt.Errorf("failed to open %q for hashing: %w", path, err)
	}
	defer file.Close()
	h := newHasher(algorithm)
	if _, err := io.Copy(h, contextReader{ctx: ctx, r: file}); err != nil {
		return digests{}, fmt.Errorf("failed to hash %q: %w", path, err)
	}
	return h.sums(), nil
}

// contextReader stops reading once ctx is done, so that hashing or copying
// a large file can be cancelled.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// removeIfExists removes path and ignores that it does not exist.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove %q: %w", path, err)
	}
	return nil
}

// writeFileAtomically writes data to a temporary file next to path and
// renames it into place.
func writeFileAtomically(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("failed to create temporary file for %q: %w", path, err)
	}
	_, err = tmp.Write(data)
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("failed to write %q: %w", path, err)
	}
	return nil
}

// readLimited reads r to the end and fails when it holds more than limit
// bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than the limit of %d bytes", limit)
	}
	return data, nil
}

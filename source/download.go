package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bakeimg/bake/event"
)

// validatorSuffix names the file next to a .part download that stores the
// ETag or Last-Modified value it was started with, for If-Range on resume.
const validatorSuffix = ".validator"

// transfer fills the key's .part file from loc and returns the digests of
// its whole content. An http(s) download resumes an existing .part with a
// Range request; a failed one leaves the .part in place for the next run.
func (f *Fetcher) transfer(ctx context.Context, loc location, key cacheKey, expected *Digest) (digests, error) {
	algorithm := "sha256"
	if expected != nil {
		algorithm = expected.Algorithm
	}
	part := key.part(f.CacheDir)
	if loc.url == nil {
		return f.copyLocal(ctx, loc, part, algorithm)
	}
	// Without a published digest only a validator proves that the .part
	// comes from the same content, so a resume needs one.
	requireValidator := expected == nil
	return f.download(ctx, loc, part, algorithm, requireValidator)
}

// copyLocal copies a local file to part while hashing it.
func (f *Fetcher) copyLocal(ctx context.Context, loc location, part, algorithm string) (digests, error) {
	src, err := os.Open(loc.path)
	if err != nil {
		return digests{}, fmt.Errorf("failed to open source file %q: %w", loc.path, err)
	}
	defer src.Close()
	var total int64
	if info, err := src.Stat(); err == nil {
		total = info.Size()
	}

	dst, err := os.Create(part)
	if err != nil {
		return digests{}, fmt.Errorf("failed to create %q: %w", part, err)
	}
	h := newHasher(algorithm)
	progress := f.newProgress(loc, 0, total)
	_, err = io.Copy(io.MultiWriter(dst, h, progress), contextReader{ctx: ctx, r: src})
	progress.finish()
	if closeErr := dst.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return digests{}, errors.Join(fmt.Errorf("failed to copy %q into the cache: %w", loc.path, err), removeIfExists(part))
	}
	return h.sums(), nil
}

// download fetches loc.url into part, resuming after the bytes part already
// contains. When the server responds to the Range request with 200, the
// download restarts from byte 0. When it responds with 416, download sends
// one more request without Range.
func (f *Fetcher) download(ctx context.Context, loc location, part, algorithm string, requireValidator bool) (digests, error) {
	file, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return digests{}, fmt.Errorf("failed to open %q: %w", part, err)
	}
	defer file.Close()

	partSize, err := file.Seek(0, io.SeekEnd)
	if err != nil {
		return digests{}, fmt.Errorf("failed to read %q: %w", part, err)
	}
	offset := partSize
	validator, _ := os.ReadFile(part + validatorSuffix)
	if offset > 0 && requireValidator && len(validator) == 0 {
		offset = 0
	}

	resp, offset, err := f.get(ctx, loc, offset, strings.TrimSpace(string(validator)))
	if err != nil {
		if partSize == 0 {
			// Nothing was downloaded, so an empty .part would only clutter the cache.
			err = errors.Join(err, removeIfExists(part))
		}
		return digests{}, err
	}
	defer resp.Body.Close()

	h := newHasher(algorithm)
	if err := f.prepareResume(file, part, offset, h); err != nil {
		return digests{}, err
	}
	if err := saveValidator(part, resp); err != nil {
		return digests{}, err
	}
	switch {
	case offset > 0:
		f.infof("resuming download of %s at byte %d", loc.display, offset)
	case partSize > 0:
		f.infof("restarting download of %s from the beginning: the partial download could not be resumed", loc.display)
	}

	progress := f.newProgress(loc, offset, totalSize(resp, offset))
	written, err := io.Copy(io.MultiWriter(file, h, progress), resp.Body)
	progress.finish()
	if err == nil {
		err = file.Sync()
	}
	if err != nil {
		return digests{}, fmt.Errorf("download of %s interrupted after %d bytes, kept %q to resume: run the build again: %w",
			loc.display, offset+written, part, err)
	}
	return h.sums(), nil
}

// get sends the GET request for loc, with a Range header when offset is
// positive, and returns the response and the offset its body starts at.
func (f *Fetcher) get(ctx context.Context, loc location, offset int64, validator string) (*http.Response, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.url.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("invalid source URL %q: %w", loc.display, err)
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if validator != "" {
			req.Header.Set("If-Range", validator)
		}
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to download %s: %w", loc.display, err)
	}

	switch resp.StatusCode {
	case http.StatusOK:
		return resp, 0, nil
	case http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if offset > 0 && ok && start == offset {
			return resp, offset, nil
		}
		resp.Body.Close()
		return nil, 0, fmt.Errorf("failed to download %s: server returned range %q for a request from byte %d",
			loc.display, resp.Header.Get("Content-Range"), offset)
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		if offset > 0 {
			// The .part is as long as the content or longer, so it cannot
			// be resumed: fetch the whole content again.
			return f.get(ctx, loc, 0, "")
		}
	default:
		resp.Body.Close()
	}
	return nil, 0, fmt.Errorf("failed to download %s: server returned %s", loc.display, resp.Status)
}

// prepareResume hashes the first offset bytes of part into h and positions
// file after them; offset zero empties the file.
func (f *Fetcher) prepareResume(file *os.File, part string, offset int64, h *hasher) error {
	if offset == 0 {
		if err := file.Truncate(0); err != nil {
			return fmt.Errorf("failed to truncate %q: %w", part, err)
		}
		_, err := file.Seek(0, io.SeekStart)
		return err
	}
	if err := file.Truncate(offset); err != nil {
		return fmt.Errorf("failed to truncate %q: %w", part, err)
	}
	if _, err := io.Copy(h, io.NewSectionReader(file, 0, offset)); err != nil {
		return fmt.Errorf("failed to hash partial download %q: %w", part, err)
	}
	_, err := file.Seek(offset, io.SeekStart)
	return err
}

// saveValidator stores the strong validator of resp for a later If-Range,
// or removes a stored one when resp has none. Weak ETags cannot be used in
// If-Range (RFC 9110 section 13.1.5), so Last-Modified is used instead.
func saveValidator(part string, resp *http.Response) error {
	validator := resp.Header.Get("ETag")
	if validator == "" || strings.HasPrefix(validator, "W/") {
		validator = resp.Header.Get("Last-Modified")
	}
	if validator == "" {
		return removeIfExists(part + validatorSuffix)
	}
	return writeFileAtomically(part+validatorSuffix, []byte(validator+"\n"))
}

// contentRangeStart returns the first byte position of a Content-Range
// header value such as "bytes 100-999/1000".
func contentRangeStart(value string) (int64, bool) {
	spec, ok := strings.CutPrefix(value, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

// totalSize returns the full content length for a response whose body
// starts at offset, or 0 when the server did not send it.
func totalSize(resp *http.Response, offset int64) int64 {
	if resp.StatusCode == http.StatusPartialContent {
		if _, total, ok := strings.Cut(resp.Header.Get("Content-Range"), "/"); ok {
			if n, err := strconv.ParseInt(total, 10, 64); err == nil {
				return n
			}
		}
	}
	if resp.ContentLength >= 0 {
		return offset + resp.ContentLength
	}
	return 0
}

// progressInterval is the minimum time between two progress events of one
// transfer.
const progressInterval = 250 * time.Millisecond

// progressWriter counts bytes written through it and emits throttled
// Progress events.
type progressWriter struct {
	emitter *event.Emitter
	message string
	current int64
	total   int64
	last    time.Time
}

func (f *Fetcher) newProgress(loc location, offset, total int64) *progressWriter {
	return &progressWriter{emitter: f.Emitter, message: "fetching " + loc.display, current: offset, total: total}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.current += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= progressInterval {
		p.last = now
		p.emit()
	}
	return len(b), nil
}

// finish emits the final count, so that the last event shows where the
// transfer ended even when it was throttled.
func (p *progressWriter) finish() { p.emit() }

func (p *progressWriter) emit() {
	if p.emitter != nil {
		p.emitter.Emit(event.Event{Kind: event.Progress, Current: p.current, Total: p.total, Message: p.message})
	}
}

package source

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
)

// assertCached checks that res points at a cache file holding content.
func assertCached(t *testing.T, f *Fetcher, res Result, content []byte) {
	t.Helper()
	if !strings.HasPrefix(res.Path, f.CacheDir+string(filepath.Separator)) {
		t.Errorf("result path %q is not inside the cache %q", res.Path, f.CacheDir)
	}
	got, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatalf("read result: %v", err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("result content differs from the served content (%d bytes, want %d)", len(got), len(content))
	}
	if want := "sha256:" + sha256Hex(content); res.Digest != want {
		t.Errorf("result digest = %s, want %s", res.Digest, want)
	}
}

func TestFetchChecksumFileForms(t *testing.T) {
	content := testContent(10_000)
	sum, sum512 := sha256Hex(content), sha512Hex(content)
	other := sha256Hex([]byte("other"))

	tests := []struct {
		name string
		file string
	}{
		{name: "gnu text mode", file: other + "  debian-11.iso\n" + sum + "  debian-12.iso\n"},
		{name: "gnu binary mode", file: sum + " *debian-12.iso\n"},
		{name: "gnu sha512", file: sum512 + "  debian-12.iso\n"},
		{name: "gnu upper-case hex", file: strings.ToUpper(sum) + "  debian-12.iso\n"},
		{name: "bsd sha256", file: "SHA256 (debian-11.iso) = " + other + "\nSHA256 (debian-12.iso) = " + sum + "\n"},
		{name: "bsd sha512", file: "SHA512 (debian-12.iso) = " + sum512 + "\n"},
		{name: "dot slash name", file: sum + "  ./debian-12.iso\n"},
		{name: "directory name", file: sum + "  cd/amd64/debian-12.iso\n"},
		{name: "comments", file: "# Debian 12 images\n\n# sha256\n" + sum + "  debian-12.iso\n"},
		{name: "crlf", file: other + "  a.iso\r\n" + sum + "  debian-12.iso\r\n"},
		{name: "no final newline", file: other + "  a.iso\n" + sum + "  debian-12.iso"},
		{name: "md5 lines skipped", file: "d41d8cd98f00b204e9800998ecf8427e  debian-12.iso\n" + sum + "  debian-12.iso\n"},
		{name: "same hash twice", file: sum + "  debian-12.iso\n" + sum + " *./debian-12.iso\n"},
		{name: "sha256 and sha512", file: sum512 + "  debian-12.iso\n" + sum + "  debian-12.iso\n"},
		{
			name: "pgp signed",
			file: "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" +
				sum + "  debian-12.iso\n" + other + "  debian-11.iso\n" +
				"-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n",
		},
		{
			name: "pgp signed crlf with dash escape",
			file: "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA512\r\n\r\n- -- comment\r\n" +
				sum + "  debian-12.iso\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nxyz\r\n-----END PGP SIGNATURE-----",
		},
		{
			name: "signature lines ignored",
			file: "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + sum + "  debian-12.iso\n" +
				"-----BEGIN PGP SIGNATURE-----\n\n" + other + "  debian-12.iso\n-----END PGP SIGNATURE-----\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newImageServer(t, content)
			srv.files["/SHA256SUMS"] = []byte(tt.file)
			f, _ := newFetcher(t)

			res, err := fetch(t, f, []string{srv.imageURL()}, "file:"+srv.URL+"/SHA256SUMS")
			if err != nil {
				t.Fatalf("Fetch = %v", err)
			}
			assertCached(t, f, res, content)
			if res.Location != srv.imageURL() {
				t.Errorf("location = %q, want %q", res.Location, srv.imageURL())
			}
		})
	}
}

func TestFetchChecksumFileLocalPath(t *testing.T) {
	content := testContent(1000)
	srv := newImageServer(t, content)
	sums := filepath.Join(t.TempDir(), "SHA256SUMS")
	if err := os.WriteFile(sums, []byte(sha256Hex(content)+"  debian-12.iso\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := newFetcher(t)
	res, err := fetch(t, f, []string{srv.imageURL()}, "file:"+sums)
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	assertCached(t, f, res, content)
}

func TestFetchEscapedFileName(t *testing.T) {
	content := testContent(1000)
	srv := newImageServer(t, content)
	srv.files["/my%20disk.img"] = content
	srv.files["/my disk.img"] = content
	srv.files["/SUMS"] = []byte(sha256Hex(content) + "  my disk.img\n")
	f, _ := newFetcher(t)

	res, err := fetch(t, f, []string{srv.URL + "/my%20disk.img"}, "file:"+srv.URL+"/SUMS")
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	assertCached(t, f, res, content)
}

func TestFetchChecksumFileErrors(t *testing.T) {
	content := testContent(1000)
	sum := sha256Hex(content)
	other := sha256Hex([]byte("other"))

	tests := []struct {
		name    string
		file    string
		wantErr []string
	}{
		{name: "ambiguous", file: sum + "  debian-12.iso\n" + other + "  ./debian-12.iso\n", wantErr: []string{"ambiguous", "debian-12.iso", "/SUMS"}},
		{name: "ambiguous bsd", file: "SHA256 (debian-12.iso) = " + sum + "\nSHA256 (debian-12.iso) = " + other + "\n", wantErr: []string{"ambiguous"}},
		{name: "no entry", file: sum + "  debian-11.iso\n", wantErr: []string{`no checksum for "debian-12.iso"`, "/SUMS"}},
		{name: "prefix is no match", file: sum + "  debian-12.iso.zsync\n", wantErr: []string{`no checksum for "debian-12.iso"`}},
		{name: "empty file", file: "", wantErr: []string{"no checksum"}},
		{name: "only md5", file: "d41d8cd98f00b204e9800998ecf8427e  debian-12.iso\n", wantErr: []string{"no checksum"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newImageServer(t, content)
			srv.files["/SUMS"] = []byte(tt.file)
			f, _ := newFetcher(t)

			_, err := fetch(t, f, []string{srv.imageURL()}, "file:"+srv.URL+"/SUMS")
			if err == nil {
				t.Fatal("Fetch = nil, want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if gets, _, _ := srv.stats(); gets != 0 {
				t.Errorf("image requested %d times, want 0 without a checksum", gets)
			}
		})
	}
}

func TestFetchChecksumFileMissing(t *testing.T) {
	srv := newImageServer(t, testContent(100))
	f, _ := newFetcher(t)
	_, err := fetch(t, f, []string{srv.imageURL()}, "file:"+srv.URL+"/missing-SUMS")
	if err == nil {
		t.Fatal("Fetch = nil, want an error")
	}
	if !strings.Contains(err.Error(), "404") {
		t.Errorf("error %q does not show the 404 status", err)
	}
	if !strings.Contains(err.Error(), "missing-SUMS") {
		t.Errorf("error %q does not name the checksum file", err)
	}
}

func TestFetchDigestForms(t *testing.T) {
	content := testContent(5000)
	tests := []struct {
		name     string
		checksum string
		wantErr  string
	}{
		{name: "sha256", checksum: "sha256:" + sha256Hex(content)},
		{name: "sha512", checksum: "sha512:" + sha512Hex(content)},
		{name: "upper case", checksum: "SHA256:" + strings.ToUpper(sha256Hex(content))},
		{name: "empty", checksum: "", wantErr: "missing checksum"},
		{name: "unknown algorithm", checksum: "md5:d41d8cd98f00b204e9800998ecf8427e", wantErr: `invalid checksum "md5:`},
		{name: "short hex", checksum: "sha256:abcd", wantErr: "expected 64 hex digits"},
		{name: "not hex", checksum: "sha256:" + strings.Repeat("z", 64), wantErr: "expected 64 hex digits"},
		{name: "sha512 length for sha256", checksum: "sha256:" + sha512Hex(content), wantErr: "expected 64 hex digits"},
		{name: "empty file", checksum: "file:", wantErr: "name a checksum file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newImageServer(t, content)
			f, _ := newFetcher(t)
			res, err := fetch(t, f, []string{srv.imageURL()}, tt.checksum)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Fetch = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch = %v", err)
			}
			assertCached(t, f, res, content)
		})
	}
}

func TestFetchMismatch(t *testing.T) {
	content := testContent(20_000)
	srv := newImageServer(t, content)
	f, _ := newFetcher(t)
	wrong := sha256Hex([]byte("something else"))

	_, err := fetch(t, f, []string{srv.imageURL()}, "sha256:"+wrong)
	if err == nil {
		t.Fatal("Fetch with a wrong checksum = nil, want an error")
	}
	for _, want := range []string{"checksum mismatch", "expected sha256:" + wrong, "got sha256:" + sha256Hex(content)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	key := cacheKey{kind: "sha256", id: wrong}
	if _, err := os.Stat(key.entry(f.CacheDir)); err == nil {
		t.Errorf("cache entry %q exists after a mismatch", key.entry(f.CacheDir))
	}
	if _, err := os.Stat(key.part(f.CacheDir)); err == nil {
		t.Errorf("download %q kept after a mismatch", key.part(f.CacheDir))
	}

	// The failed download must not satisfy the same wrong checksum later.
	if _, err := fetch(t, f, []string{srv.imageURL()}, "sha256:"+wrong); err == nil {
		t.Error("second Fetch with the wrong checksum = nil, want an error")
	}
	if gets, _, _ := srv.stats(); gets != 2 {
		t.Errorf("image requested %d times, want 2", gets)
	}
}

func TestFetchResumesPart(t *testing.T) {
	content := testContent(100_000)
	srv := newImageServer(t, content)
	f, _ := newFetcher(t)
	key := cacheKey{kind: "sha256", id: sha256Hex(content)}
	writePart(t, f, key, content[:40_000])

	res, err := fetch(t, f, []string{srv.imageURL()}, "sha256:"+key.id)
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	assertCached(t, f, res, content)

	gets, ranges, served := srv.stats()
	if gets != 1 {
		t.Errorf("image requested %d times, want 1", gets)
	}
	if len(ranges) == 0 || ranges[0] != "bytes=40000-" {
		t.Errorf("Range headers = %q, want [bytes=40000-]", ranges)
	}
	if served != len(content)-40_000 {
		t.Errorf("server sent %d bytes, want %d", served, len(content)-40_000)
	}
	if _, err := os.Stat(key.part(f.CacheDir)); err == nil {
		t.Error(".part file left after a finished download")
	}
}

func TestFetchRangeIgnored(t *testing.T) {
	content := testContent(50_000)
	srv := newImageServer(t, content)
	srv.set(func(s *imageServer) { s.noRange = true })
	f, _ := newFetcher(t)
	key := cacheKey{kind: "sha256", id: sha256Hex(content)}
	// Content that differs from the start of the image: appending to it
	// would fail verification, so a pass shows the download restarted.
	writePart(t, f, key, bytes.Repeat([]byte("x"), 20_000))

	res, err := fetch(t, f, []string{srv.imageURL()}, "sha256:"+key.id)
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	assertCached(t, f, res, content)
	_, ranges, served := srv.stats()
	if len(ranges) != 1 || ranges[0] != "bytes=20000-" {
		t.Errorf("Range headers = %q, want [bytes=20000-]", ranges)
	}
	if served != len(content) {
		t.Errorf("server sent %d bytes, want all %d", served, len(content))
	}
}

func TestFetchRangeNotSatisfiable(t *testing.T) {
	content := testContent(10_000)
	srv := newImageServer(t, content)
	f, _ := newFetcher(t)
	key := cacheKey{kind: "sha256", id: sha256Hex(content)}
	writePart(t, f, key, testContent(12_000))

	res, err := fetch(t, f, []string{srv.imageURL()}, "sha256:"+key.id)
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	assertCached(t, f, res, content)
	if _, ranges, _ := srv.stats(); len(ranges) != 2 || ranges[0] != "bytes=12000-" || ranges[1] != "" {
		t.Errorf("Range headers = %q, want a range request then a full request", ranges)
	}
}

func TestFetchInterrupted(t *testing.T) {
	content := testContent(100_000)
	srv := newImageServer(t, content)
	srv.set(func(s *imageServer) { s.dropAfter = 30_000 })
	f, _ := newFetcher(t)
	key := cacheKey{kind: "sha256", id: sha256Hex(content)}

	_, err := fetch(t, f, []string{srv.imageURL()}, "sha256:"+key.id)
	if err == nil {
		t.Fatal("Fetch from a server that drops the connection = nil, want an error")
	}
	if !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("error %q does not say the download was interrupted", err)
	}
	if _, err := os.Stat(key.entry(f.CacheDir)); err == nil {
		t.Error("interrupted download became a cache entry")
	}
	part, err := os.Stat(key.part(f.CacheDir))
	if err != nil {
		t.Fatalf(".part file missing after an interrupted download: %v", err)
	}
	if part.Size() != 30_000 {
		t.Errorf(".part size = %d, want 30000", part.Size())
	}

	srv.set(func(s *imageServer) { s.dropAfter = 0 })
	res, err := fetch(t, f, []string{srv.imageURL()}, "sha256:"+key.id)
	if err != nil {
		t.Fatalf("Fetch after the interruption = %v", err)
	}
	assertCached(t, f, res, content)
	if _, ranges, _ := srv.stats(); len(ranges) != 2 || ranges[1] != "bytes=30000-" {
		t.Errorf("Range headers = %q, want the second request to resume at 30000", ranges)
	}
	srv.mu.Lock()
	ifRange := srv.ifRanges[1]
	srv.mu.Unlock()
	if ifRange != `"v1"` {
		t.Errorf("If-Range on resume = %q, want the ETag \"v1\"", ifRange)
	}
}

func TestFetchCancelStopsMirrors(t *testing.T) {
	content := testContent(10_000)
	srv := newImageServer(t, content)
	srv.set(func(s *imageServer) { s.delay = 5 * time.Second })
	f, _ := newFetcher(t)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := f.Fetch(ctx, []string{srv.imageURL(), srv.imageURL()}, "sha256:"+sha256Hex(content))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Fetch = %v, want context.DeadlineExceeded", err)
	}
	if gets, _, _ := srv.stats(); gets != 1 {
		t.Errorf("image requested %d times, want 1: a cancelled fetch must not try the next mirror", gets)
	}
}

func TestFetchMirrorFallback(t *testing.T) {
	content := testContent(5000)
	good := newImageServer(t, content)
	broken := newImageServer(t, []byte("corrupt mirror"))
	closed := closedURL(t)
	f, log := newFetcher(t)

	locations := []string{closed, good.URL + "/missing.iso", broken.imageURL(), good.imageURL()}
	res, err := fetch(t, f, locations, "sha256:"+sha256Hex(content))
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	assertCached(t, f, res, content)
	if res.Location != good.imageURL() {
		t.Errorf("location = %q, want %q", res.Location, good.imageURL())
	}
	if warnings := log.ofKind(event.Warning); len(warnings) != 3 {
		t.Errorf("got %d warnings, want one per failed location: %v", len(warnings), warnings)
	}
}

func TestFetchAllMirrorsFail(t *testing.T) {
	content := testContent(5000)
	srv := newImageServer(t, []byte("wrong content"))
	closed := closedURL(t)
	missing := filepath.Join(t.TempDir(), "missing.iso")
	f, _ := newFetcher(t)

	locations := []string{closed, srv.URL + "/missing.iso", srv.imageURL(), missing}
	_, err := fetch(t, f, locations, "sha256:"+sha256Hex(content))
	if err == nil {
		t.Fatal("Fetch = nil, want an error")
	}
	for _, want := range []string{"all 4 locations", closed, "404", "checksum mismatch", missing} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	parts, _ := filepath.Glob(filepath.Join(f.CacheDir, "downloads", "*.part"))
	if len(parts) != 0 {
		t.Errorf("partial downloads left after failures that downloaded nothing: %v", parts)
	}
}

// closedURL returns the URL of a loopback port that nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/debian-12.iso"
}

func TestFetchReverifiesCache(t *testing.T) {
	content := testContent(30_000)
	srv := newImageServer(t, content)
	f, log := newFetcher(t)
	checksum := "sha256:" + sha256Hex(content)

	first, err := fetch(t, f, []string{srv.imageURL()}, checksum)
	if err != nil {
		t.Fatalf("first Fetch = %v", err)
	}
	second, err := fetch(t, f, []string{srv.imageURL()}, checksum)
	if err != nil {
		t.Fatalf("second Fetch = %v", err)
	}
	if second.Path != first.Path {
		t.Errorf("second path = %q, want the cached %q", second.Path, first.Path)
	}
	if gets, _, _ := srv.stats(); gets != 1 {
		t.Errorf("image requested %d times after a cache hit, want 1", gets)
	}

	if err := os.WriteFile(first.Path, []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := fetch(t, f, []string{srv.imageURL()}, checksum)
	if err != nil {
		t.Fatalf("Fetch after corrupting the cache = %v", err)
	}
	assertCached(t, f, third, content)
	if gets, _, _ := srv.stats(); gets != 2 {
		t.Errorf("image requested %d times, want 2 after corruption", gets)
	}
	if !hasMessage(log.ofKind(event.Warning), "corrupt") {
		t.Errorf("no warning about the corrupt cache entry in %v", log.ofKind(event.Warning))
	}
}

func TestFetchConcurrent(t *testing.T) {
	content := testContent(200_000)
	srv := newImageServer(t, content)
	srv.set(func(s *imageServer) { s.delay = 300 * time.Millisecond })
	cacheDir := t.TempDir()
	checksum := "sha256:" + sha256Hex(content)

	var wg sync.WaitGroup
	results := make([]Result, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate Fetchers share only the cache directory, like two
			// bake processes.
			f := &Fetcher{CacheDir: cacheDir}
			results[i], errs[i] = f.Fetch(context.Background(), []string{srv.imageURL()}, checksum)
		}()
	}
	wg.Wait()

	for i := range results {
		if errs[i] != nil {
			t.Fatalf("Fetch %d = %v", i, errs[i])
		}
		assertCached(t, &Fetcher{CacheDir: cacheDir}, results[i], content)
	}
	if results[0].Path != results[1].Path {
		t.Errorf("paths differ: %q and %q", results[0].Path, results[1].Path)
	}
	if gets, _, _ := srv.stats(); gets != 1 {
		t.Errorf("image requested %d times by two concurrent fetches, want 1", gets)
	}
}

func TestFetchNoneURL(t *testing.T) {
	content := testContent(8000)
	srv := newImageServer(t, content)
	f, log := newFetcher(t)

	res, err := fetch(t, f, []string{srv.imageURL()}, "none")
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	assertCached(t, f, res, content)
	if want := filepath.Join(f.CacheDir, "url") + string(filepath.Separator); !strings.HasPrefix(res.Path, want) {
		t.Errorf("path = %q, want an entry under %q", res.Path, want)
	}
	if !hasMessage(log.ofKind(event.Warning), "not verified") {
		t.Errorf("no warning that the content is not verified: %v", log.ofKind(event.Warning))
	}

	if _, err := fetch(t, f, []string{srv.imageURL()}, "none"); err != nil {
		t.Fatalf("second Fetch = %v", err)
	}
	if gets, _, _ := srv.stats(); gets != 1 {
		t.Errorf("image requested %d times, want 1 after a cache hit", gets)
	}

	if err := os.WriteFile(res.Path, []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := fetch(t, f, []string{srv.imageURL()}, "none")
	if err != nil {
		t.Fatalf("Fetch after corrupting the cache = %v", err)
	}
	assertCached(t, f, again, content)
	if gets, _, _ := srv.stats(); gets != 2 {
		t.Errorf("image requested %d times, want 2 after corruption", gets)
	}
}

func TestFetchNoneDoesNotResumeWithoutValidator(t *testing.T) {
	content := testContent(8000)
	srv := newImageServer(t, content)
	f, _ := newFetcher(t)
	u, err := parseLocation(srv.imageURL())
	if err != nil {
		t.Fatal(err)
	}
	writePart(t, f, urlKey(u.url), []byte("stale partial content"))

	res, err := fetch(t, f, []string{srv.imageURL()}, "none")
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	assertCached(t, f, res, content)
	if _, ranges, _ := srv.stats(); len(ranges) != 1 || ranges[0] != "" {
		t.Errorf("Range headers = %q, want one request without Range", ranges)
	}
}

func TestFetchLocalPath(t *testing.T) {
	content := testContent(4000)
	dir := t.TempDir()
	local := filepath.Join(dir, "base.qcow2")
	if err := os.WriteFile(local, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sums := filepath.Join(dir, "SHA256SUMS")
	if err := os.WriteFile(sums, []byte(sha256Hex(content)+"  base.qcow2\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("none uses the file", func(t *testing.T) {
		f, _ := newFetcher(t)
		res, err := fetch(t, f, []string{local}, "none")
		if err != nil {
			t.Fatalf("Fetch = %v", err)
		}
		if res.Path != local {
			t.Errorf("path = %q, want the local file %q", res.Path, local)
		}
		if want := "sha256:" + sha256Hex(content); res.Digest != want {
			t.Errorf("digest = %s, want %s", res.Digest, want)
		}
	})
	t.Run("file url", func(t *testing.T) {
		f, _ := newFetcher(t)
		res, err := fetch(t, f, []string{"file://" + local}, "none")
		if err != nil {
			t.Fatalf("Fetch = %v", err)
		}
		if res.Path != local {
			t.Errorf("path = %q, want %q", res.Path, local)
		}
	})
	t.Run("digest copies into cache", func(t *testing.T) {
		f, _ := newFetcher(t)
		res, err := fetch(t, f, []string{local}, "sha256:"+sha256Hex(content))
		if err != nil {
			t.Fatalf("Fetch = %v", err)
		}
		assertCached(t, f, res, content)
	})
	t.Run("checksum file", func(t *testing.T) {
		f, _ := newFetcher(t)
		res, err := fetch(t, f, []string{local}, "file:"+sums)
		if err != nil {
			t.Fatalf("Fetch = %v", err)
		}
		assertCached(t, f, res, content)
	})
	t.Run("mismatch", func(t *testing.T) {
		f, _ := newFetcher(t)
		_, err := fetch(t, f, []string{local}, "sha256:"+sha256Hex([]byte("x")))
		if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Errorf("Fetch = %v, want a checksum mismatch", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		f, _ := newFetcher(t)
		missing := filepath.Join(dir, "missing.qcow2")
		_, err := fetch(t, f, []string{missing}, "none")
		if err == nil {
			t.Fatal("Fetch = nil, want an error")
		}
		for _, want := range []string{missing, "source.disk_image", "source.iso", "variable"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	})
}

func TestFetchRelativeCacheDir(t *testing.T) {
	content := testContent(100)
	srv := newImageServer(t, content)
	t.Chdir(t.TempDir())
	f := &Fetcher{CacheDir: "cache"}

	res, err := fetch(t, f, []string{srv.imageURL()}, "sha256:"+sha256Hex(content))
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	if !filepath.IsAbs(res.Path) {
		t.Errorf("path = %q, want an absolute path", res.Path)
	}
}

func TestFetchInvalidLocations(t *testing.T) {
	tests := []struct {
		name      string
		locations []string
		wantErr   string
	}{
		{name: "none", locations: nil, wantErr: "missing source location"},
		{name: "empty string", locations: []string{""}, wantErr: "empty source location"},
		{name: "ftp", locations: []string{"ftp://example.org/a.iso"}, wantErr: "unsupported source location"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := newFetcher(t)
			_, err := fetch(t, f, tt.locations, "none")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Fetch = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestFetchProgressEvents(t *testing.T) {
	content := testContent(2 << 20)
	srv := newImageServer(t, content)
	// 32 chunks 20 ms apart take about 640 ms: unthrottled, the 32 KiB
	// copy buffer would give at least 64 events.
	srv.set(func(s *imageServer) { s.chunkDelay = 20 * time.Millisecond })
	f, log := newFetcher(t)

	start := time.Now()
	if _, err := fetch(t, f, []string{srv.imageURL()}, "sha256:"+sha256Hex(content)); err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	elapsed := time.Since(start)

	progress := log.ofKind(event.Progress)
	if len(progress) == 0 {
		t.Fatal("no progress events")
	}
	last := progress[len(progress)-1]
	if last.Current != int64(len(content)) || last.Total != int64(len(content)) {
		t.Errorf("last progress = %d/%d, want %d/%d", last.Current, last.Total, len(content), len(content))
	}
	// One event per interval, one at the start and one at the end.
	if len(progress) < 2 {
		t.Errorf("%d progress events in %v, want at least 2", len(progress), elapsed)
	}
	if limit := int(elapsed/progressInterval) + 2; len(progress) > limit {
		t.Errorf("%d progress events in %v, want at most %d", len(progress), elapsed, limit)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Current < progress[i-1].Current {
			t.Errorf("progress went backwards: %d after %d", progress[i].Current, progress[i-1].Current)
		}
	}
}

func TestFetchMasksURLPassword(t *testing.T) {
	content := testContent(100)
	srv := newImageServer(t, content)
	f, log := newFetcher(t)
	withPassword := strings.Replace(srv.imageURL(), "http://", "http://user:hunter2@", 1)

	if _, err := fetch(t, f, []string{withPassword}, "none"); err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, e := range log.events {
		if strings.Contains(e.Message, "hunter2") {
			t.Errorf("event %q shows the URL password", e.Message)
		}
	}
}

func writePart(t *testing.T, f *Fetcher, key cacheKey, data []byte) {
	t.Helper()
	if err := os.MkdirAll(key.downloads(f.CacheDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key.part(f.CacheDir), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func hasMessage(events []event.Event, substring string) bool {
	for _, e := range events {
		if strings.Contains(e.Message, substring) {
			return true
		}
	}
	return false
}

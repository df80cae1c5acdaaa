package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
)

// imageServer serves one image at imagePath and any extra files, and
// records the image requests it receives.
type imageServer struct {
	*httptest.Server
	content []byte
	files   map[string][]byte

	mu          sync.Mutex
	noRange     bool          // ignore Range headers and always send 200
	dropAfter   int           // abort the connection after this many body bytes; 0 sends all
	delay       time.Duration // sleep before responding to an image request
	chunkDelay  time.Duration // sleep between 64 KiB chunks of the body
	imageGets   int
	ranges      []string
	ifRanges    []string
	bytesServed int
}

const imagePath = "/images/debian-12.iso"

func newImageServer(t *testing.T, content []byte) *imageServer {
	t.Helper()
	s := &imageServer{content: content, files: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *imageServer) imageURL() string { return s.URL + imagePath }

func (s *imageServer) serve(w http.ResponseWriter, r *http.Request) {
	if data, ok := s.files[r.URL.Path]; ok {
		_, _ = w.Write(data)
		return
	}
	if r.URL.Path != imagePath {
		http.NotFound(w, r)
		return
	}

	s.mu.Lock()
	s.imageGets++
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.ifRanges = append(s.ifRanges, r.Header.Get("If-Range"))
	noRange, dropAfter, delay, chunkDelay := s.noRange, s.dropAfter, s.delay, s.chunkDelay
	s.mu.Unlock()
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		return
	}

	body := s.content
	w.Header().Set("ETag", `"v1"`)
	w.Header().Set("Accept-Ranges", "bytes")
	if start, ok := parseRange(r.Header.Get("Range")); ok && !noRange {
		if start >= len(s.content) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(s.content)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		body = s.content[start:]
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(s.content)-1, len(s.content)))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}

	if dropAfter > 0 && dropAfter < len(body) {
		n, _ := w.Write(body[:dropAfter])
		s.served(n)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	for len(body) > 0 {
		chunk := body[:min(len(body), 64<<10)]
		n, err := w.Write(chunk)
		s.served(n)
		if err != nil {
			return
		}
		body = body[len(chunk):]
		if chunkDelay > 0 {
			w.(http.Flusher).Flush()
			time.Sleep(chunkDelay)
		}
	}
}

func (s *imageServer) served(n int) {
	s.mu.Lock()
	s.bytesServed += n
	s.mu.Unlock()
}

func (s *imageServer) set(change func(s *imageServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(s)
}

// stats returns the number of image requests, their Range headers and the
// image bytes sent.
func (s *imageServer) stats() (gets int, ranges []string, served int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.imageGets, append([]string(nil), s.ranges...), s.bytesServed
}

// parseRange parses a "bytes=N-" header value.
func parseRange(value string) (int, bool) {
	spec, ok := strings.CutPrefix(value, "bytes=")
	if !ok || !strings.HasSuffix(spec, "-") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(spec, "-"))
	return n, err == nil
}

// eventLog collects events.
type eventLog struct {
	mu     sync.Mutex
	events []event.Event
}

func (l *eventLog) Emit(e event.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) ofKind(kind event.Kind) []event.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event.Event
	for _, e := range l.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// newFetcher returns a Fetcher with a fresh cache and an event log.
func newFetcher(t *testing.T) (*Fetcher, *eventLog) {
	t.Helper()
	log := &eventLog{}
	return &Fetcher{CacheDir: t.TempDir(), Emitter: event.NewEmitter("test", log)}, log
}

// testContent returns n bytes of deterministic, non-repeating content.
func testContent(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "block %d of the test image\n", i)
	}
	return b.Bytes()[:n]
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func sha512Hex(data []byte) string {
	sum := sha512.Sum512(data)
	return hex.EncodeToString(sum[:])
}

func fetch(t *testing.T, f *Fetcher, locations []string, checksum string) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.Fetch(ctx, locations, checksum)
}

package httpserve

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bakeimg/bake/event"
)

// rejection is a request the server does not serve, with the status code
// to return and the reason, which goes into a warning event.
type rejection struct {
	status int
	reason string
}

// ServeHTTP serves one request and records it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	reject := s.serve(rec, r)
	if reject != nil {
		http.Error(rec, http.StatusText(reject.status), reject.status)
	}
	// A missing file is routine, as when cloud-init probes optional
	// files, so only the other rejections warn.
	if reject != nil && reject.status != http.StatusNotFound {
		s.warnf("rejected %s %s from %s: %s", r.Method, r.RequestURI, r.RemoteAddr, reject.reason)
	}
	s.record(r, rec)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) *rejection {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return &rejection{http.StatusMethodNotAllowed, "only GET and HEAD are served"}
	}
	path, reject := requestPath(r)
	if reject != nil {
		return reject
	}
	w.Header().Set("Cache-Control", "no-store")

	s.mu.Lock()
	body, ok := s.content[path]
	s.mu.Unlock()
	if ok {
		http.ServeContent(w, r, path, time.Time{}, bytes.NewReader(body))
		return nil
	}
	return s.serveFile(w, r, path)
}

// requestPath returns the request's URL path cleaned to the form
// "/a/b", or a rejection for a path that tries to leave the served tree or
// that no file can have.
func requestPath(r *http.Request) (string, *rejection) {
	raw := strings.ToLower(r.URL.EscapedPath())
	if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		return "", &rejection{http.StatusBadRequest, "encoded slash or backslash in the path"}
	}
	path := r.URL.Path
	switch {
	case strings.IndexByte(path, 0) >= 0:
		return "", &rejection{http.StatusBadRequest, "NUL byte in the path"}
	case strings.IndexByte(path, '\\') >= 0:
		return "", &rejection{http.StatusBadRequest, "backslash in the path"}
	case !strings.HasPrefix(path, "/"):
		return "", &rejection{http.StatusBadRequest, "path does not start with '/'"}
	}
	clean, err := cleanSegments(path)
	if err != nil {
		return "", &rejection{http.StatusForbidden, err.Error()}
	}
	return clean, nil
}

// cleanSegments drops empty and "." segments of a '/'-separated path and
// rejects "..", so that the result never names anything above the root.
func cleanSegments(path string) (string, error) {
	var kept []string
	for _, segment := range strings.Split(path, "/") {
		switch segment {
		case "", ".":
		case "..":
			return "", errors.New("'..' in the path")
		default:
			kept = append(kept, segment)
		}
	}
	return "/" + strings.Join(kept, "/"), nil
}

// cleanContentPath checks and cleans a Content key.
func cleanContentPath(path string) (string, error) {
	if strings.IndexByte(path, 0) >= 0 || strings.IndexByte(path, '\\') >= 0 {
		return "", fmt.Errorf("invalid HTTP content path %q: use '/'-separated names without NUL or '\\'", path)
	}
	clean, err := cleanSegments("/" + path)
	if err != nil {
		return "", fmt.Errorf("invalid HTTP content path %q: %w is not allowed", path, err)
	}
	if clean == "/" {
		return "", fmt.Errorf("invalid HTTP content path %q: give a file name such as /preseed.cfg", path)
	}
	return clean, nil
}

// serveFile serves the file at the cleaned URL path from the directory.
// The path is resolved with its symlinks and must stay inside the
// directory. os.Root then opens it, so a symlink swapped in after the
// check cannot lead outside either.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, path string) *rejection {
	if s.rootFS == nil || path == "/" {
		return &rejection{http.StatusNotFound, "not found"}
	}
	resolved, err := filepath.EvalSymlinks(filepath.Join(s.root, filepath.FromSlash(path[1:])))
	if err != nil {
		return fileError(err)
	}
	rel, err := filepath.Rel(s.root, resolved)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return &rejection{http.StatusForbidden, fmt.Sprintf("resolves to %s, outside the HTTP directory", resolved)}
	}

	f, err := s.rootFS.Open(rel)
	if err != nil {
		return fileError(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fileError(err)
	}
	if info.IsDir() {
		return &rejection{http.StatusNotFound, "is a directory, and directory listings are off"}
	}
	if !info.Mode().IsRegular() {
		return &rejection{http.StatusForbidden, "not a regular file"}
	}
	http.ServeContent(w, r, info.Name(), info.ModTime(), f)
	return nil
}

func fileError(err error) *rejection {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &rejection{http.StatusNotFound, "not found"}
	case errors.Is(err, fs.ErrPermission):
		return &rejection{http.StatusForbidden, "permission denied"}
	case errors.Is(err, syscall.ENOTDIR):
		return &rejection{http.StatusNotFound, "not found"}
	}
	// os.Root reports a path that escapes the directory with an error of
	// its own, which lands here.
	return &rejection{http.StatusForbidden, err.Error()}
}

// record stores the request and emits it as an event.
func (s *Server) record(r *http.Request, rec *recorder) {
	request := event.HTTP{
		Method: r.Method,
		Path:   r.RequestURI,
		Status: rec.statusCode(),
		Bytes:  rec.bytes,
		Remote: r.RemoteAddr,
	}
	s.mu.Lock()
	s.requests = append(s.requests, request)
	s.mu.Unlock()
	s.firstRequestOnce.Do(func() { close(s.firstRequest) })

	if s.emitter != nil {
		s.emitter.Emit(event.Event{
			Kind:    event.HTTPRequest,
			Message: fmt.Sprintf("%s %s %d %d bytes", request.Method, request.Path, request.Status, request.Bytes),
			HTTP:    &request,
		})
	}
}

func (s *Server) warnf(format string, args ...any) {
	if s.emitter != nil {
		s.emitter.Warnf(format, args...)
	}
}

// recorder notes the status and the body size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

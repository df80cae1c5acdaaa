// Package httpserve serves seed files (preseed, kickstart, autoinstall,
// cloud-init) to a guest over HTTP. The server binds to 127.0.0.1 only;
// QEMU user-mode networking makes it reachable from the guest as
// 10.0.2.2. Every request becomes an event.HTTPRequest event.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/bakeimg/bake/event"
)

// Defaults for Config fields left zero. The port range is the one Packer
// uses for its HTTP server.
const (
	DefaultPortMin   = 8000
	DefaultPortMax   = 9000
	DefaultGuestHost = "10.0.2.2"
)

// shutdownTimeout bounds how long Close waits for requests in flight.
const shutdownTimeout = 2 * time.Second

// Config describes what a Server serves and where it listens.
type Config struct {
	// Directory is served byte for byte. Empty serves only Content.
	Directory string
	// Content maps URL paths, such as "/preseed.cfg", to bodies that the
	// caller has already rendered. An entry wins over a file at the same
	// path.
	Content map[string][]byte
	// PortMin and PortMax bound the TCP port, inclusive. Zero means
	// DefaultPortMin and DefaultPortMax.
	PortMin, PortMax int
	// GuestHost is the host name or address the guest uses to reach the
	// host, for URL. Empty means DefaultGuestHost.
	GuestHost string
	// Emitter receives one event per request. It may be nil.
	Emitter *event.Emitter
}

// Server is a seed HTTP server. Its listening socket is bound by New, so
// the port is reserved from then on, and requests are served after Start.
type Server struct {
	emitter   *event.Emitter
	guestHost string
	root      string   // Directory with symlinks resolved, or "" for none
	rootFS    *os.Root // root opened for reading, nil without a directory
	listener  net.Listener
	port      int
	http      *http.Server

	mu       sync.Mutex
	content  map[string][]byte
	requests []event.HTTP
	started  bool
	closed   bool
	serveErr error

	firstRequest     chan struct{}
	firstRequestOnce sync.Once
	closeOnce        sync.Once
	closeErr         error
}

// New checks cfg and binds a port in the configured range, so that Port
// and URL are known before Start, for rendering templates that need them.
// Call Close to release the port.
func New(cfg Config) (*Server, error) {
	portMin, portMax, err := portRange(cfg.PortMin, cfg.PortMax)
	if err != nil {
		return nil, err
	}
	s := &Server{
		emitter:      cfg.Emitter,
		guestHost:    cfg.GuestHost,
		content:      make(map[string][]byte),
		firstRequest: make(chan struct{}),
	}
	if s.guestHost == "" {
		s.guestHost = DefaultGuestHost
	}
	for path, body := range cfg.Content {
		if err := s.SetContent(path, body); err != nil {
			return nil, err
		}
	}
	if err := s.openRoot(cfg.Directory); err != nil {
		return nil, err
	}

	listener, err := listen(portMin, portMax)
	if err != nil {
		s.closeRoot()
		return nil, err
	}
	s.listener = listener
	s.port = listener.Addr().(*net.TCPAddr).Port
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		// A library does not log: request problems become events instead.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return s, nil
}

func portRange(portMin, portMax int) (int, int, error) {
	if portMin == 0 {
		portMin = DefaultPortMin
	}
	if portMax == 0 {
		portMax = DefaultPortMax
	}
	if portMin < 1 || portMax > 65535 || portMin > portMax {
		return 0, 0, fmt.Errorf("invalid HTTP port range %d-%d: give 1 <= port_min <= port_max <= 65535", portMin, portMax)
	}
	return portMin, portMax, nil
}

func (s *Server) openRoot(dir string) error {
	if dir == "" {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("failed to resolve HTTP directory %q: %w", dir, err)
	}
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("HTTP directory %q not found: %w; create it or fix http.directory", dir, err)
	}
	info, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("failed to read HTTP directory %q: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("HTTP directory %q is not a directory: point http.directory at a directory", dir)
	}
	rootFS, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("failed to open HTTP directory %q: %w", dir, err)
	}
	s.root, s.rootFS = root, rootFS
	return nil
}

func (s *Server) closeRoot() error {
	if s.rootFS == nil {
		return nil
	}
	return s.rootFS.Close()
}

// listen binds 127.0.0.1 on a free port in [portMin, portMax]. It starts at
// a random port and tries each in turn. The bound socket is the
// reservation, so concurrent builds in one or several processes never get
// the same port.
func listen(portMin, portMax int) (net.Listener, error) {
	count := portMax - portMin + 1
	offset := rand.IntN(count)
	var lastErr error
	for i := range count {
		port := portMin + (offset+i)%count
		listener, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			return listener, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free TCP port on 127.0.0.1 in %d-%d (%d tried; last error: %w): "+
		"widen the range with http.port_min and http.port_max, for example 8000-9000",
		portMin, portMax, count, lastErr)
}

// SetContent serves body at path, replacing any earlier entry. It may be
// called before or after Start. The path is a URL path; a missing leading
// '/' is added.
func (s *Server) SetContent(path string, body []byte) error {
	clean, err := cleanContentPath(path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.content[clean] = body
	s.mu.Unlock()
	return nil
}

// Start serves requests in the background until Close.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("HTTP server is closed: create a new one with New")
	}
	if s.started {
		return errors.New("HTTP server already started")
	}
	s.started = true
	go func() {
		err := s.http.Serve(s.listener)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.mu.Lock()
			s.serveErr = err
			s.mu.Unlock()
		}
	}()
	return nil
}

// Port returns the bound TCP port.
func (s *Server) Port() int { return s.port }

// URL returns the base URL that the guest uses to reach the server, such
// as "http://10.0.2.2:8123/".
func (s *Server) URL() string {
	return "http://" + net.JoinHostPort(s.guestHost, strconv.Itoa(s.port)) + "/"
}

// LocalURL returns the server's base URL on the host, such as
// "http://127.0.0.1:8123/".
func (s *Server) LocalURL() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) + "/"
}

// Requests returns every request served so far, oldest first.
func (s *Server) Requests() []event.HTTP {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.HTTP(nil), s.requests...)
}

// NoRequestError is returned by WaitRequest when the guest made no request
// in time.
type NoRequestError struct {
	URL     string
	Timeout time.Duration
}

// Error returns the message with hints on what to check.
func (e *NoRequestError) Error() string {
	return fmt.Sprintf("the guest never requested anything from %s within %s: "+
		"check that the boot command types this URL with the right port, "+
		"that the guest network is up (user-mode networking reaches the host as 10.0.2.2), "+
		"and the serial console log for installer errors", e.URL, e.Timeout)
}

// WaitRequest returns nil once any request has arrived, including one
// that arrived before the call. It returns a *NoRequestError when timeout
// passes first, or ctx.Err() when ctx is done. A timeout of zero or less
// waits for ctx alone.
func (s *Server) WaitRequest(ctx context.Context, timeout time.Duration) error {
	var expired <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case <-s.firstRequest:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-expired:
		return &NoRequestError{URL: s.URL(), Timeout: timeout}
	}
}

// Close stops the server, waiting briefly for requests in flight, and
// releases the port. Later calls return the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.stop(), s.closeRoot())
	})
	return s.closeErr
}

func (s *Server) stop() error {
	s.mu.Lock()
	started := s.started
	s.closed = true
	s.mu.Unlock()
	if !started {
		return s.listener.Close()
	}

	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.http.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(err, s.serveErr)
}

package httpserve

import (
	"bufio"
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/internal/porttest"
)

const secretText = "top secret outside the served directory"

// eventRecorder collects events emitted to it.
type eventRecorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *eventRecorder) Emit(e event.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *eventRecorder) ofKind(kind event.Kind) []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.Event
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// fixture is a served directory "www" with a secret file beside it.
type fixture struct {
	dir    string // parent of www
	www    string
	binary []byte // contents of www/disk.bin
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{dir: dir, www: filepath.Join(dir, "www"), binary: make([]byte, 100_000)}
	if _, err := cryptorand.Read(f.binary); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"secret":             []byte(secretText),
		"www/preseed.cfg":    []byte("d-i from the file\n"),
		"www/disk.bin":       f.binary,
		"www/sub/ks.cfg":     []byte("kickstart\n"),
		"www/sub/deeper/x":   []byte("x\n"),
		"www/name with %20":  []byte("odd name\n"),
		"www/sub/..hidden":   []byte("dots in a name\n"),
		"www/dir/meta-data":  []byte("instance-id: test\n"),
		"www/dir/user-data":  []byte("#cloud-config\n"),
		"www/dir/.gitignore": []byte("*\n"),
	}
	for name, body := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"www/link-out":      "../secret",
		"www/link-abs":      filepath.Join(dir, "secret"),
		"www/link-dir-out":  "..",
		"www/link-in":       "preseed.cfg",
		"www/sub/link-up":   "../preseed.cfg",
		"www/link-dangling": "missing",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New failed: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Start(); err != nil {
		t.Fatalf("Start failed: %v", err)
	}
	return s
}

// rawRequest sends request-target exactly as given, which an HTTP client
// would clean or escape, and returns the status and body.
func rawRequest(t *testing.T, s *Server, method, target string) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port())))
	if err != nil {
		t.Fatalf("dial failed: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: 10.0.2.2\r\nConnection: close\r\n\r\n", method, target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: reading the response failed: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body failed: %v", method, target, err)
	}
	return resp.StatusCode, body
}

func TestServeFiles(t *testing.T) {
	f := newFixture(t)
	s := startServer(t, Config{Directory: f.www})
	tests := []struct {
		target string
		want   []byte
	}{
		{target: "/preseed.cfg", want: []byte("d-i from the file\n")},
		{target: "/disk.bin", want: f.binary},
		{target: "/sub/ks.cfg", want: []byte("kickstart\n")},
		{target: "/sub/deeper/x", want: []byte("x\n")},
		{target: "//sub//ks.cfg", want: []byte("kickstart\n")},
		{target: "/./sub/./ks.cfg", want: []byte("kickstart\n")},
		{target: "/name%20with%20%2520", want: []byte("odd name\n")},
		{target: "/sub/..hidden", want: []byte("dots in a name\n")},
		{target: "/link-in", want: []byte("d-i from the file\n")},
		{target: "/sub/link-up", want: []byte("d-i from the file\n")},
		{target: "/dir/meta-data?instance=1", want: []byte("instance-id: test\n")},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			status, body := rawRequest(t, s, "GET", tt.target)
			if status != http.StatusOK {
				t.Fatalf("status = %d, want 200 (body %q)", status, body)
			}
			if !bytes.Equal(body, tt.want) {
				t.Errorf("body differs: got %d bytes, want %d", len(body), len(tt.want))
			}
		})
	}
}

func TestServeHead(t *testing.T) {
	f := newFixture(t)
	s := startServer(t, Config{Directory: f.www})
	resp, err := http.Head(s.LocalURL() + "disk.bin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.StatusCode)
	}
	if resp.ContentLength != int64(len(f.binary)) {
		t.Errorf("Content-Length = %d, want %d", resp.ContentLength, len(f.binary))
	}
}

func TestRejectedRequests(t *testing.T) {
	f := newFixture(t)
	sink := &eventRecorder{}
	s := startServer(t, Config{Directory: f.www, Emitter: event.NewEmitter("test", sink)})
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
	}{
		{name: "dot dot", target: "/../secret", wantStatus: http.StatusForbidden},
		{name: "dot dot deeper", target: "/sub/../../secret", wantStatus: http.StatusForbidden},
		{name: "dot dot inside the tree", target: "/sub/../preseed.cfg", wantStatus: http.StatusForbidden},
		{name: "encoded dot dot", target: "/%2e%2e/secret", wantStatus: http.StatusForbidden},
		{name: "upper-case encoded dot dot", target: "/%2E%2E/secret", wantStatus: http.StatusForbidden},
		{name: "mixed encoded dot dot", target: "/.%2e/secret", wantStatus: http.StatusForbidden},
		{name: "encoded slash", target: "/..%2fsecret", wantStatus: http.StatusBadRequest},
		{name: "encoded absolute path", target: "/%2F" + strings.TrimPrefix(f.dir, "/") + "/secret", wantStatus: http.StatusBadRequest},
		{name: "encoded backslash", target: "/..%5csecret", wantStatus: http.StatusBadRequest},
		{name: "backslash", target: `/..\secret`, wantStatus: http.StatusBadRequest},
		{name: "NUL byte", target: "/preseed.cfg%00.txt", wantStatus: http.StatusBadRequest},
		{name: "absolute form with dot dot", target: "http://10.0.2.2/../secret", wantStatus: http.StatusForbidden},
		{name: "asterisk form", target: "*", wantStatus: http.StatusBadRequest},
		{name: "symlink to a file outside", target: "/link-out", wantStatus: http.StatusForbidden},
		{name: "absolute symlink outside", target: "/link-abs", wantStatus: http.StatusForbidden},
		{name: "symlink to a directory outside", target: "/link-dir-out/secret", wantStatus: http.StatusForbidden},
		{name: "dangling symlink", target: "/link-dangling", wantStatus: http.StatusNotFound},
		{name: "host path is not the host file", target: f.dir + "/secret", wantStatus: http.StatusNotFound},
		{name: "root listing", target: "/", wantStatus: http.StatusNotFound},
		{name: "directory listing", target: "/sub/", wantStatus: http.StatusNotFound},
		{name: "directory without slash", target: "/sub", wantStatus: http.StatusNotFound},
		{name: "file as directory", target: "/preseed.cfg/x", wantStatus: http.StatusNotFound},
		{name: "missing file", target: "/nope.cfg", wantStatus: http.StatusNotFound},
		{name: "POST", method: "POST", target: "/preseed.cfg", wantStatus: http.StatusMethodNotAllowed},
		{name: "PUT", method: "PUT", target: "/new", wantStatus: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			status, body := rawRequest(t, s, method, tt.target)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", status, tt.wantStatus, body)
			}
			if bytes.Contains(body, []byte(secretText)) {
				t.Errorf("response leaked the secret file: %q", body)
			}
			if bytes.Contains(body, []byte("preseed.cfg")) || bytes.Contains(body, []byte("ks.cfg")) {
				t.Errorf("response lists directory entries: %q", body)
			}
		})
	}

	warnings := sink.ofKind(event.Warning)
	wantWarnings := 0
	for _, tt := range tests {
		if tt.wantStatus != http.StatusNotFound {
			wantWarnings++
		}
	}
	if len(warnings) != wantWarnings {
		t.Errorf("got %d warning events, want one per rejection other than 404 (%d)", len(warnings), wantWarnings)
	}
}

func TestContentWinsOverFiles(t *testing.T) {
	f := newFixture(t)
	s := startServer(t, Config{
		Directory: f.www,
		Content: map[string][]byte{
			"/preseed.cfg": []byte("d-i from content\n"),
			"sub/ks.cfg":   []byte("kickstart from content\n"),
			"only-content": []byte("no file has this\n"),
		},
	})
	if err := s.SetContent("/late.cfg", []byte("set after Start\n")); err != nil {
		t.Fatalf("SetContent failed: %v", err)
	}
	tests := []struct {
		target string
		want   string
	}{
		{target: "/preseed.cfg", want: "d-i from content\n"},
		{target: "/sub/ks.cfg", want: "kickstart from content\n"},
		{target: "//sub/./ks.cfg", want: "kickstart from content\n"},
		{target: "/only-content", want: "no file has this\n"},
		{target: "/late.cfg", want: "set after Start\n"},
		{target: "/sub/deeper/x", want: "x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			status, body := rawRequest(t, s, "GET", tt.target)
			if status != http.StatusOK {
				t.Fatalf("status = %d, want 200", status)
			}
			if string(body) != tt.want {
				t.Errorf("body = %q, want %q", body, tt.want)
			}
		})
	}
}

func TestContentWithoutDirectory(t *testing.T) {
	s := startServer(t, Config{Content: map[string][]byte{"user-data": []byte("#cloud-config\n")}})
	status, body := rawRequest(t, s, "GET", "/user-data")
	if status != http.StatusOK || string(body) != "#cloud-config\n" {
		t.Errorf("GET /user-data = %d %q, want 200 with the content", status, body)
	}
	if status, _ := rawRequest(t, s, "GET", "/meta-data"); status != http.StatusNotFound {
		t.Errorf("GET /meta-data = %d, want 404", status)
	}
}

func TestRequestEvents(t *testing.T) {
	f := newFixture(t)
	sink := &eventRecorder{}
	s := startServer(t, Config{Directory: f.www, Emitter: event.NewEmitter("debian", sink)})
	rawRequest(t, s, "GET", "/preseed.cfg")
	rawRequest(t, s, "GET", "/missing")
	rawRequest(t, s, "GET", "/../secret")

	want := []event.HTTP{
		{Method: "GET", Path: "/preseed.cfg", Status: 200, Bytes: int64(len("d-i from the file\n"))},
		{Method: "GET", Path: "/missing", Status: 404, Bytes: int64(len("Not Found\n"))},
		{Method: "GET", Path: "/../secret", Status: 403, Bytes: int64(len("Forbidden\n"))},
	}
	events := sink.ofKind(event.HTTPRequest)
	if len(events) != len(want) {
		t.Fatalf("got %d request events, want %d", len(events), len(want))
	}
	for i, e := range events {
		got := *e.HTTP
		if !strings.HasPrefix(got.Remote, "127.0.0.1:") {
			t.Errorf("event %d remote = %q, want 127.0.0.1:PORT", i, got.Remote)
		}
		got.Remote = ""
		if got != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got, want[i])
		}
		if e.Build != "debian" {
			t.Errorf("event %d build = %q, want %q", i, e.Build, "debian")
		}
		if !strings.Contains(e.Message, want[i].Path) {
			t.Errorf("event %d message = %q, want it to name the path", i, e.Message)
		}
	}

	requests := s.Requests()
	if len(requests) != len(want) {
		t.Fatalf("Requests() has %d entries, want %d", len(requests), len(want))
	}
	for i, r := range requests {
		if r.Path != want[i].Path || r.Status != want[i].Status {
			t.Errorf("request %d = %s %d, want %s %d", i, r.Path, r.Status, want[i].Path, want[i].Status)
		}
	}
}

func TestWaitRequest(t *testing.T) {
	s := startServer(t, Config{Content: map[string][]byte{"/a": []byte("a")}})
	err := s.WaitRequest(context.Background(), 50*time.Millisecond)
	var noRequest *NoRequestError
	if !errors.As(err, &noRequest) {
		t.Fatalf("WaitRequest error = %v, want a *NoRequestError", err)
	}
	wantStart := fmt.Sprintf("the guest never requested anything from http://10.0.2.2:%d/ within 50ms: ", s.Port())
	if !strings.HasPrefix(err.Error(), wantStart) {
		t.Errorf("error = %q, want it to start with %q", err, wantStart)
	}
	for _, hint := range []string{"boot command", "guest network", "serial console log"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("error = %q, want a hint about the %s", err, hint)
		}
	}

	done := make(chan error, 1)
	go func() { done <- s.WaitRequest(context.Background(), time.Minute) }()
	rawRequest(t, s, "GET", "/missing")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WaitRequest after a request = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitRequest did not return after a request")
	}
	if err := s.WaitRequest(context.Background(), time.Millisecond); err != nil {
		t.Errorf("WaitRequest after an earlier request = %v, want nil", err)
	}
}

func TestWaitRequestCancel(t *testing.T) {
	s := startServer(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.WaitRequest(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitRequest error = %v, want context.Canceled", err)
	}
}

func TestURLs(t *testing.T) {
	tests := []struct {
		name      string
		guestHost string
		wantHost  string
	}{
		{name: "default", wantHost: "10.0.2.2"},
		{name: "custom", guestHost: "192.168.122.1", wantHost: "192.168.122.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{GuestHost: tt.guestHost})
			port := strconv.Itoa(s.Port())
			if got, want := s.URL(), "http://"+tt.wantHost+":"+port+"/"; got != want {
				t.Errorf("URL() = %q, want %q", got, want)
			}
			if got, want := s.LocalURL(), "http://127.0.0.1:"+port+"/"; got != want {
				t.Errorf("LocalURL() = %q, want %q", got, want)
			}
		})
	}
}

func TestBindsLoopbackOnly(t *testing.T) {
	s := startServer(t, Config{})
	addr := s.listener.Addr().(*net.TCPAddr)
	if !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("listening on %s, want 127.0.0.1", addr.IP)
	}
	if s.Port() < DefaultPortMin || s.Port() > DefaultPortMax {
		t.Errorf("port %d is outside the default range %d-%d", s.Port(), DefaultPortMin, DefaultPortMax)
	}
}

func TestPortRangeExhausted(t *testing.T) {
	first := porttest.Occupy(t, 3)
	_, err := New(Config{PortMin: first, PortMax: first + 2})
	if err == nil {
		t.Fatal("New succeeded on a fully occupied range, want an error")
	}
	wantRange := fmt.Sprintf("%d-%d", first, first+2)
	for _, want := range []string{wantRange, "3 tried", "widen the range"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error = %q, want it to contain %q", err, want)
		}
	}
}

func TestOnePortRangeTwoServers(t *testing.T) {
	port := onePortFree(t)
	first, err := New(Config{PortMin: port, PortMax: port})
	if err != nil {
		t.Fatalf("first New failed: %v", err)
	}
	defer first.Close()
	if first.Port() != port {
		t.Errorf("first server port = %d, want %d", first.Port(), port)
	}

	second, err := New(Config{PortMin: port, PortMax: port})
	if err == nil {
		second.Close()
		t.Fatal("second New on the same one-port range succeeded, want an error")
	}
	if want := fmt.Sprintf("%d-%d", port, port); !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to name the range %s", err, want)
	}

	if err := first.Close(); err != nil {
		t.Fatalf("Close failed: %v", err)
	}
	third, err := New(Config{PortMin: port, PortMax: port})
	if err != nil {
		t.Fatalf("New after Close failed, so Close did not release the port: %v", err)
	}
	third.Close()
}

// onePortFree returns a loopback port that was free a moment ago.
func onePortFree(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestParallelServersGetDistinctPorts(t *testing.T) {
	const servers = 6
	first := onePortFree(t)
	if first > 65535-2*servers {
		first -= 2 * servers
	}

	var wg sync.WaitGroup
	ports := make(chan int, servers)
	errs := make(chan error, servers)
	for range servers {
		wg.Go(func() {
			s, err := New(Config{PortMin: first, PortMax: first + 2*servers})
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { s.Close() })
			ports <- s.Port()
		})
	}
	wg.Wait()
	close(ports)
	close(errs)

	for err := range errs {
		t.Errorf("New failed: %v", err)
	}
	seen := map[int]bool{}
	for port := range ports {
		if seen[port] {
			t.Errorf("port %d given to two servers", port)
		}
		seen[port] = true
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "missing directory", cfg: Config{Directory: filepath.Join(dir, "nope")}, want: "not found"},
		{name: "file as directory", cfg: Config{Directory: file}, want: "is not a directory"},
		{name: "reversed range", cfg: Config{PortMin: 9000, PortMax: 8000}, want: "invalid HTTP port range 9000-8000"},
		{name: "port too high", cfg: Config{PortMin: 65000, PortMax: 70000}, want: "invalid HTTP port range"},
		{name: "negative port", cfg: Config{PortMin: -1, PortMax: 10}, want: "invalid HTTP port range"},
		{name: "dot dot content", cfg: Config{Content: map[string][]byte{"../x": nil}}, want: `invalid HTTP content path "../x"`},
		{name: "NUL in content", cfg: Config{Content: map[string][]byte{"a\x00b": nil}}, want: "invalid HTTP content path"},
		{name: "root content", cfg: Config{Content: map[string][]byte{"/": nil}}, want: "give a file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("New succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestStartAndClose(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start failed: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded, want an error")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close failed: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want the first result", err)
	}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Start after Close = %v, want an error saying it is closed", err)
	}
	if _, err := http.Get(s.LocalURL()); err == nil {
		t.Error("GET after Close succeeded, want a connection error")
	}
}

func TestCloseWithoutStart(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	port := s.Port()
	if err := s.Close(); err != nil {
		t.Fatalf("Close failed: %v", err)
	}
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port %d still bound after Close: %v", port, err)
	}
	l.Close()
}

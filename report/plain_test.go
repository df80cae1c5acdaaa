package report

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
)

var t0 = time.Date(2026, 12, 4, 16, 40, 0, 0, time.UTC)

// at returns t0 plus the given number of milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// script is a build that boots, connects over SSH and fails in the
// provision step, with a second, shorter-named build interleaved.
func script() []event.Event {
	const b = "debian-12-cloud"
	return []event.Event{
		{Time: at(0), Build: b, Kind: event.BuildStarted},
		{Time: at(0), Build: "alpine", Kind: event.BuildStarted, Message: "recipe alpine.toml"},
		{Time: at(100), Build: b, Kind: event.StepStarted, Step: "fetch"},
		{Time: at(200), Build: b, Kind: event.Progress, Step: "fetch", Message: "debian.iso", Current: 0, Total: 1000},
		{Time: at(300), Build: b, Kind: event.Progress, Step: "fetch", Message: "debian.iso", Current: 50, Total: 1000},
		{Time: at(400), Build: b, Kind: event.Progress, Step: "fetch", Message: "debian.iso", Current: 120, Total: 1000},
		{Time: at(500), Build: b, Kind: event.Progress, Step: "fetch", Message: "debian.iso", Current: 190, Total: 1000},
		{Time: at(11000), Build: b, Kind: event.Progress, Step: "fetch", Message: "debian.iso", Current: 195, Total: 1000},
		{Time: at(12000), Build: b, Kind: event.Progress, Step: "fetch", Message: "debian.iso", Current: 1000, Total: 1000},
		{Time: at(12100), Build: b, Kind: event.StepFinished, Step: "fetch", Duration: 12 * time.Second},
		{Time: at(13000), Build: b, Kind: event.Console, Step: "boot", Data: []byte("\x1b[2J\x1b[1;1HSeaBIOS (version 1.16)\r\nBooting from ")},
		{Time: at(13100), Build: b, Kind: event.Console, Step: "boot", Data: []byte("DVD/CD...\r\n 10%\r 50%\r100%\r\n\x1b]0;title\x07boot: ")},
		{Time: at(13200), Build: b, Kind: event.KeysTyped, Step: "boot", Message: "install auto=true\n"},
		{Time: at(14000), Build: b, Kind: event.HTTPRequest, Step: "boot", HTTP: &event.HTTP{Method: "GET", Path: "/preseed.cfg", Status: 200, Bytes: 1536, Remote: "127.0.0.1:40222"}},
		{Time: at(15000), Build: b, Kind: event.Warning, Step: "qemu", Message: "kvm is not usable, falling back to tcg"},
		{Time: at(17100), Build: b, Kind: event.Info, Step: "ssh", Message: "connected as root (2.1s)"},
		{Time: at(18000), Build: b, Kind: event.Output, Step: "provision", Message: "Reading package lists..."},
		{Time: at(18100), Build: b, Kind: event.Output, Step: "provision", Message: "E: Unable to locate package foo", Stderr: true},
		{Time: at(18200), Build: b, Kind: event.Error, Step: "provision", Message: "provisioner 1 (shell)", Err: "exit status 100\nsecond line"},
		{Time: at(18300), Build: b, Kind: event.StepFinished, Step: "provision", Duration: 1300 * time.Millisecond, Err: "provisioner 1 (shell) failed"},
		{Time: at(18400), Build: "alpine", Kind: event.Artifact, Step: "export", Artifact: &event.ArtifactInfo{Path: "out/alpine.qcow2", Format: "qcow2", Size: 3 << 20, SHA256: "ab12"}},
		{Time: at(18500), Build: "alpine", Kind: event.BuildFinished, Duration: 18500 * time.Millisecond},
		{Time: at(19000), Build: b, Kind: event.BuildFinished, Duration: 19 * time.Second, Err: "provisioner 1 (shell) failed"},
	}
}

func TestPlainScriptedBuild(t *testing.T) {
	tests := []struct {
		name    string
		console bool
		want    string
	}{
		{
			name:    "with console",
			console: true,
			want: `16:40:00 debian-12-cloud | build started
16:40:00 alpine          | build started: recipe alpine.toml
16:40:00 debian-12-cloud | fetch: started
16:40:00 debian-12-cloud | fetch: debian.iso 0%
16:40:00 debian-12-cloud | fetch: debian.iso 12%
16:40:11 debian-12-cloud | fetch: debian.iso 19%
16:40:12 debian-12-cloud | fetch: debian.iso 100%
16:40:12 debian-12-cloud | fetch: finished in 12s
16:40:13 debian-12-cloud | console: SeaBIOS (version 1.16)
16:40:13 debian-12-cloud | console: Booting from DVD/CD...
16:40:13 debian-12-cloud | console: 100%
16:40:13 debian-12-cloud | boot: typed "install auto=true\n"
16:40:14 debian-12-cloud | http: GET /preseed.cfg 200 1.5 KiB from 127.0.0.1:40222
16:40:15 debian-12-cloud | WARNING: qemu: kvm is not usable, falling back to tcg
16:40:17 debian-12-cloud | ssh: connected as root (2.1s)
16:40:18 debian-12-cloud | provision: Reading package lists...
16:40:18 debian-12-cloud | provision: [stderr] E: Unable to locate package foo
16:40:18 debian-12-cloud | ERROR: provision: provisioner 1 (shell): exit status 100
16:40:18 debian-12-cloud | second line
16:40:18 debian-12-cloud | ERROR: provision: failed after 1.3s: provisioner 1 (shell) failed
16:40:18 alpine          | export: artifact out/alpine.qcow2 (qcow2, 3.0 MiB, sha256 ab12)
16:40:18 alpine          | build finished in 18.5s
16:40:19 debian-12-cloud | console: boot: 
16:40:19 debian-12-cloud | ERROR: build failed after 19s: provisioner 1 (shell) failed
`,
		},
		{
			name:    "without console",
			console: false,
			want: `16:40:00 debian-12-cloud | build started
16:40:00 alpine          | build started: recipe alpine.toml
16:40:00 debian-12-cloud | fetch: started
16:40:00 debian-12-cloud | fetch: debian.iso 0%
16:40:00 debian-12-cloud | fetch: debian.iso 12%
16:40:11 debian-12-cloud | fetch: debian.iso 19%
16:40:12 debian-12-cloud | fetch: debian.iso 100%
16:40:12 debian-12-cloud | fetch: finished in 12s
16:40:13 debian-12-cloud | boot: typed "install auto=true\n"
16:40:14 debian-12-cloud | http: GET /preseed.cfg 200 1.5 KiB from 127.0.0.1:40222
16:40:15 debian-12-cloud | WARNING: qemu: kvm is not usable, falling back to tcg
16:40:17 debian-12-cloud | ssh: connected as root (2.1s)
16:40:18 debian-12-cloud | provision: Reading package lists...
16:40:18 debian-12-cloud | provision: [stderr] E: Unable to locate package foo
16:40:18 debian-12-cloud | ERROR: provision: provisioner 1 (shell): exit status 100
16:40:18 debian-12-cloud | second line
16:40:18 debian-12-cloud | ERROR: provision: failed after 1.3s: provisioner 1 (shell) failed
16:40:18 alpine          | export: artifact out/alpine.qcow2 (qcow2, 3.0 MiB, sha256 ab12)
16:40:18 alpine          | build finished in 18.5s
16:40:19 debian-12-cloud | ERROR: build failed after 19s: provisioner 1 (shell) failed
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := NewPlain(&out, PlainOptions{Console: tt.console, Location: time.UTC})
			for _, ev := range script() {
				p.Emit(ev)
			}
			if err := p.Flush(); err != nil {
				t.Fatalf("Flush() = %v", err)
			}
			if got := out.String(); got != tt.want {
				t.Errorf("output mismatch\n got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestPlainDebugLine(t *testing.T) {
	var out bytes.Buffer
	p := NewPlain(&out, PlainOptions{Location: time.UTC})
	p.Emit(event.Event{Time: at(0), Build: "b", Kind: event.Debug, Step: "qemu", Message: "argv qemu-system-x86_64 -m 1024"})
	want := "16:40:00 b | DEBUG: qemu: argv qemu-system-x86_64 -m 1024\n"
	if got := out.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestPlainProgressWithoutTotal(t *testing.T) {
	var out bytes.Buffer
	p := NewPlain(&out, PlainOptions{Location: time.UTC})
	for i := range 25 {
		p.Emit(event.Event{Time: at(i * 1000), Build: "b", Kind: event.Progress, Step: "convert", Current: int64(i)})
	}
	want := "16:40:00 b | convert: 0\n16:40:10 b | convert: 10\n16:40:20 b | convert: 20\n"
	if got := out.String(); got != want {
		t.Errorf("output mismatch\n got:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlainFlushPartialLine(t *testing.T) {
	var out bytes.Buffer
	p := NewPlain(&out, PlainOptions{Console: true, Location: time.UTC})
	p.Emit(event.Event{Time: at(0), Build: "b", Kind: event.Console, Data: []byte("login: ")})
	if out.Len() != 0 {
		t.Fatalf("partial line printed before Flush: %q", out.String())
	}
	if err := p.Flush(); err != nil {
		t.Fatalf("Flush() = %v", err)
	}
	if !strings.HasSuffix(out.String(), " b | console: login: \n") {
		t.Errorf("Flush() printed %q, want the login prompt", out.String())
	}
}

func TestPlainLongConsoleLineIsCut(t *testing.T) {
	var out bytes.Buffer
	p := NewPlain(&out, PlainOptions{Console: true, Location: time.UTC})
	p.Emit(event.Event{Time: at(0), Build: "b", Kind: event.Console, Data: bytes.Repeat([]byte("x"), maxLineBytes+10)})
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("printed %d lines, want 1 before the rest arrives", len(lines))
	}
	if want := maxLineBytes + len("16:40:00 b | console: "); len(lines[0]) != want {
		t.Errorf("line length = %d, want %d", len(lines[0]), want)
	}
}

type failingWriter struct{ calls int }

func (w *failingWriter) Write([]byte) (int, error) {
	w.calls++
	return 0, errors.New("disk full")
}

func TestPlainWriteError(t *testing.T) {
	w := &failingWriter{}
	p := NewPlain(w, PlainOptions{})
	p.Emit(event.Event{Time: at(0), Build: "b", Kind: event.Info, Message: "one"})
	p.Emit(event.Event{Time: at(0), Build: "b", Kind: event.Info, Message: "two"})
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Err() = %v, want the write error", err)
	}
	if w.calls != 1 {
		t.Errorf("writer called %d times, want 1 after the first failure", w.calls)
	}
}

// lineCheckingWriter records whether any Write call ended mid-line.
type lineCheckingWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	split bool
}

func (w *lineCheckingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(b) == 0 || b[len(b)-1] != '\n' {
		w.split = true
	}
	return w.buf.Write(b)
}

func TestPlainConcurrentBuilds(t *testing.T) {
	w := &lineCheckingWriter{}
	p := NewPlain(w, PlainOptions{Console: true, Location: time.UTC})
	const builds, events = 4, 200
	var wg sync.WaitGroup
	for i := range builds {
		wg.Go(func() {
			name := fmt.Sprintf("build-%d", i)
			for n := range events {
				p.Emit(event.Event{Time: at(n), Build: name, Kind: event.Console, Data: []byte("half ")})
				p.Emit(event.Event{Time: at(n), Build: name, Kind: event.Console, Data: []byte(name + "\n")})
			}
		})
	}
	wg.Wait()
	if w.split {
		t.Error("a Write call did not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	if len(lines) != builds*events {
		t.Fatalf("printed %d lines, want %d", len(lines), builds*events)
	}
	for _, l := range lines {
		name := strings.Fields(l)[1]
		if !strings.HasSuffix(l, "| console: half "+name) {
			t.Fatalf("line %q mixes builds", l)
		}
	}
}

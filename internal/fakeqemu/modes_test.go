package fakeqemu_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakeimg/bake/boot"
	"github.com/bakeimg/bake/communicator"
	"github.com/bakeimg/bake/qemu"
)

// machineKeyboard sends the boot typer's key events to a machine, as the
// pipeline does.
type machineKeyboard struct{ m *qemu.Machine }

func (k machineKeyboard) SendKeys(ctx context.Context, events []boot.KeyEvent) error {
	out := make([]qemu.KeyEvent, len(events))
	for i, e := range events {
		out[i] = qemu.KeyEvent{QCode: e.QCode, Down: e.Down}
	}
	return k.m.SendKeys(ctx, out)
}

func typeCommand(t *testing.T, m *qemu.Machine, command string) {
	t.Helper()
	prog, _, err := boot.Parse(command)
	if err != nil {
		t.Fatal(err)
	}
	typer := boot.Typer{Keyboard: machineKeyboard{m}, Interval: -1, Burst: 8}
	if err := typer.Run(context.Background(), prog); err != nil {
		t.Fatalf("typing %q: %v", command, err)
	}
}

// seedServer is a loopback HTTP server that records request paths.
type seedServer struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newSeedServer(t *testing.T) *seedServer {
	s := &seedServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		s.mu.Unlock()
		if r.URL.Path != "/preseed.cfg" {
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *seedServer) requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.paths)
}

func (s *seedServer) port(t *testing.T) string {
	_, port, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestFakeTypedLines(t *testing.T) {
	fake, m, _ := start(t, "normal")
	typeCommand(t, m, `<esc>Install A=b_c "q" {x}|~<leftShiftOn>ab<leftShiftOff>cd<bs>!<enter>second line<enter>`)
	want := []string{`Install A=b_c "q" {x}|~ABc!`, "second line"}
	if got := fake.Typed(); !slices.Equal(got, want) {
		t.Errorf("Typed() = %q, want %q", got, want)
	}
}

func TestFakeEchoKeys(t *testing.T) {
	tests := []struct {
		mode     string
		wantEcho bool
	}{
		{mode: "echo-keys", wantEcho: true},
		{mode: "normal", wantEcho: false},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			_, m, console := start(t, tt.mode)
			typeCommand(t, m, "<esc>abd<bs>c!<enter>")
			const echo = "abd\b \bc!\r\n"
			// The console reaches the buffer through a pipe, a moment
			// after the QMP command returned.
			deadline := time.Now().Add(2 * time.Second)
			for !strings.Contains(console.String(), echo) && time.Now().Before(deadline) && tt.wantEcho {
				time.Sleep(10 * time.Millisecond)
			}
			if !tt.wantEcho {
				time.Sleep(100 * time.Millisecond)
			}
			if got := strings.Contains(console.String(), echo); got != tt.wantEcho {
				t.Errorf("console contains the echo %q: %v, want %v; console:\n%q", echo, got, tt.wantEcho, console.String())
			}
		})
	}
}

func TestFakeFetchSeed(t *testing.T) {
	tests := []struct {
		name        string
		mode        string
		wantPaths   []string
		wantFetched []string
	}{
		{
			name:        "fetches typed URLs",
			mode:        "fetch-seed",
			wantPaths:   []string{"/preseed.cfg", "/missing"},
			wantFetched: []string{"http://10.0.2.2:PORT/preseed.cfg 200", "http://10.0.2.2:PORT/missing 404"},
		},
		{name: "normal mode fetches nothing", mode: "normal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed := newSeedServer(t)
			port := seed.port(t)
			fake, m, console := start(t, tt.mode)
			typeCommand(t, m, "install url=http://10.0.2.2:"+port+"/preseed.cfg other=http://10.0.2.2:"+port+"/missing<enter>")

			deadline := time.Now().Add(5 * time.Second)
			for len(fake.Fetched()) < len(tt.wantFetched) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // room for a fetch that should not happen
			if got := seed.requested(); !slices.Equal(got, tt.wantPaths) {
				t.Errorf("seed server saw %q, want %q", got, tt.wantPaths)
			}
			var wantFetched []string
			for _, f := range tt.wantFetched {
				wantFetched = append(wantFetched, strings.ReplaceAll(f, "PORT", port))
			}
			if got := fake.Fetched(); !slices.Equal(got, wantFetched) {
				t.Errorf("Fetched() = %q, want %q", got, wantFetched)
			}
			if len(wantFetched) > 0 {
				want := "fake installer: fetched http://10.0.2.2:" + port + "/preseed.cfg: 200 OK"
				if !strings.Contains(console.String(), want) {
					t.Errorf("console lacks %q:\n%s", want, console.String())
				}
			}
		})
	}
}

func TestFakePoweroffAfter(t *testing.T) {
	started := time.Now()
	_, m, console := start(t, "poweroff-after=300ms")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.WaitShutdown(ctx); err != nil {
		t.Fatalf("no shutdown: %v", err)
	}
	if took := time.Since(started); took < 300*time.Millisecond {
		t.Errorf("guest powered off after %s, before the 300ms of the mode", took)
	}
	select {
	case <-m.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("fake still running 5s after its SHUTDOWN")
	}
	if err := m.ExitErr(); err != nil {
		t.Errorf("exit = %v, want status 0", err)
	}
	if n := m.Monitor().Seen("SHUTDOWN"); n != 1 {
		t.Errorf("SHUTDOWN events = %d, want 1", n)
	}
	if !strings.Contains(console.String(), "reboot: Power down") {
		t.Errorf("console lacks the power-down line:\n%s", console.String())
	}
}

func TestFakePoweroffDuringProvision(t *testing.T) {
	fake, m, _ := start(t, "poweroff-during-provision")
	client, err := connect(t, m, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	code, err := client.Run(context.Background(), "fstrim -av", nil, nil, nil)
	if err != nil || code != 0 {
		t.Errorf("fstrim before the first ordinary command = %d, %v; want 0", code, err)
	}
	_, err = client.Run(context.Background(), "echo first > first", nil, nil, nil)
	if !errors.Is(err, communicator.ErrDisconnected) {
		t.Errorf("first command error = %v, want ErrDisconnected", err)
	}
	select {
	case <-m.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("fake still running 5s after powering off")
	}
	if err := m.ExitErr(); err != nil {
		t.Errorf("exit = %v, want status 0", err)
	}
	if n := m.Monitor().Seen("SHUTDOWN"); n != 1 {
		t.Errorf("SHUTDOWN events = %d, want 1", n)
	}
	if want := []string{"fstrim -av", "echo first > first"}; !slices.Equal(fake.Commands(), want) {
		t.Errorf("Commands() = %q, want %q", fake.Commands(), want)
	}
	if _, err := os.Stat(filepath.Join(fake.GuestDir(), "first")); !os.IsNotExist(err) {
		t.Errorf("the interrupted command ran (stat: %v)", err)
	}
}

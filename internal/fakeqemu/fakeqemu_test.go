package fakeqemu_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakeimg/bake/communicator"
	"github.com/bakeimg/bake/internal/fakeqemu"
	"github.com/bakeimg/bake/qemu"
)

func TestMain(m *testing.M) {
	fakeqemu.RunIfInvoked()
	os.Exit(m.Run())
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    fakeqemu.Mode
		wantErr string
	}{
		{in: "", want: fakeqemu.Mode{}},
		{in: "normal", want: fakeqemu.Mode{}},
		{in: "ssh-never", want: fakeqemu.Mode{SSHNever: true}},
		{in: "ignore-poweroff", want: fakeqemu.Mode{IgnorePoweroff: true}},
		{in: "ignore-acpi", want: fakeqemu.Mode{IgnorePoweroff: true, IgnoreACPI: true}},
		{in: "reboot-during-provision", want: fakeqemu.Mode{RebootDuringProvision: true}},
		{in: "crash-after=2s, slow-boot=500ms", want: fakeqemu.Mode{CrashAfter: 2 * time.Second, SlowBoot: 500 * time.Millisecond}},
		{in: "fetch-seed", want: fakeqemu.Mode{FetchSeed: true}},
		{in: "echo-keys", want: fakeqemu.Mode{EchoKeys: true}},
		{in: "poweroff-after=1s", want: fakeqemu.Mode{PoweroffAfter: time.Second}},
		{in: "poweroff-during-provision", want: fakeqemu.Mode{PoweroffDuringProvision: true}},
		{in: "poweroff-after", wantErr: "fake QEMU mode poweroff-after needs a duration, as in poweroff-after=2s"},
		{in: "bogus", wantErr: `unknown fake QEMU mode "bogus" in BAKE_FAKE_QEMU="bogus"`},
		{in: "crash-after", wantErr: "fake QEMU mode crash-after needs a duration, as in crash-after=2s"},
		{in: "slow-boot=soon", wantErr: `invalid duration in fake QEMU mode slow-boot: time: invalid duration "soon"`},
	}
	for _, tt := range tests {
		got, err := fakeqemu.ParseMode(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseMode(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseMode(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseArgsOfBakeConfig(t *testing.T) {
	cfg := qemu.Config{
		Name:         "fake",
		Accel:        "tcg",
		QMPSocket:    "/work/qmp.sock",
		SSHHostPort:  2222,
		SSHGuestPort: 22,
		Drives: []qemu.Drive{
			{ID: "disk0", Path: "/work/disk,1.qcow2", Format: "qcow2"},
			{ID: "seed0", Path: "/work/seed.iso", Format: "raw", CDROM: true},
		},
		ExtraArgs: [][]string{{"-no-reboot"}},
	}
	got, err := fakeqemu.ParseArgs(cfg.Args())
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "fake" {
		t.Errorf("Name = %q, want fake", got.Name)
	}
	if got.QMPSocket != "/work/qmp.sock" {
		t.Errorf("QMPSocket = %q, want /work/qmp.sock", got.QMPSocket)
	}
	if got.SSHPort != 2222 || got.SSHGuestPort != 22 {
		t.Errorf("hostfwd ports = %d -> %d, want 2222 -> 22", got.SSHPort, got.SSHGuestPort)
	}
	if !got.SerialStdio {
		t.Error("SerialStdio = false, want true for -serial stdio")
	}
	if want := []string{"/work/disk,1.qcow2", "/work/seed.iso"}; !slices.Equal(got.Drives, want) {
		t.Errorf("Drives = %q, want %q", got.Drives, want)
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no qmp", args: []string{"-m", "64M"}, wantErr: "no -qmp unix:PATH option: the fake needs a QMP socket"},
		{name: "tcp qmp", args: []string{"-qmp", "tcp:127.0.0.1:4444"}, wantErr: "-qmp tcp:127.0.0.1:4444: only unix:PATH QMP sockets are supported"},
		{name: "missing value", args: []string{"-qmp"}, wantErr: "-qmp: requires an argument"},
		{name: "udp hostfwd", args: []string{"-netdev", "user,id=n,hostfwd=udp:127.0.0.1:1-:2"}, wantErr: `-netdev user,id=n,hostfwd=udp:127.0.0.1:1-:2: invalid hostfwd "udp:127.0.0.1:1-:2": only tcp rules are supported`},
		{name: "positional", args: []string{"disk.img"}, wantErr: "disk.img: invalid argument: options start with '-'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fakeqemu.ParseArgs(tt.args)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// syncBuffer is a console sink that tests read while QEMU writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs the fake through the qemu package, as the pipeline does.
func start(t *testing.T, mode string) (*fakeqemu.Fake, *qemu.Machine, *syncBuffer) {
	t.Helper()
	fake := fakeqemu.Install(t, mode)
	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := qemu.Config{
		Name:      "fake",
		Accel:     "tcg",
		QMPSocket: filepath.Join(t.TempDir(), "qmp.sock"),
		Drives:    []qemu.Drive{{ID: "disk0", Path: disk, Format: "qcow2"}},
	}
	console := &syncBuffer{}
	m, err := qemu.Start(context.Background(), cfg, true, console)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Kill)
	return fake, m, console
}

func connect(t *testing.T, m *qemu.Machine, timeout time.Duration) (*communicator.Client, error) {
	t.Helper()
	key, err := communicator.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return communicator.Connect(context.Background(), communicator.Config{
		Addr:    "127.0.0.1:" + strconv.Itoa(m.SSHPort()),
		User:    "root",
		Signer:  key.Signer,
		Timeout: timeout,
		// Several short attempts make the class of the last failure
		// independent of where the overall timeout cuts an attempt.
		AttemptTimeout: 200 * time.Millisecond,
	})
}

func TestFakeBootRunPoweroff(t *testing.T) {
	fake, m, console := start(t, "normal")
	if v, err := m.Version(context.Background()); err != nil || v != "8.2.2 (fakeqemu)" {
		t.Errorf("Version() = %q, %v; want 8.2.2 (fakeqemu)", v, err)
	}
	client, err := connect(t, m, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	var lines []string
	code, err := client.Run(context.Background(), "echo hello > greeting; pwd; exit 7", nil, func(l string) { lines = append(lines, l) }, nil)
	if err != nil || code != 7 {
		t.Errorf("Run exit = %d, %v; want 7", code, err)
	}
	if !slices.Equal(lines, []string{fake.GuestDir()}) {
		t.Errorf("command ran in %q, want the guest directory %s", lines, fake.GuestDir())
	}
	if b, err := os.ReadFile(filepath.Join(fake.GuestDir(), "greeting")); err != nil || string(b) != "hello\n" {
		t.Errorf("greeting = %q, %v; want hello", b, err)
	}

	if _, err := client.Run(context.Background(), "poweroff", nil, nil, nil); err != nil {
		t.Errorf("poweroff: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.WaitShutdown(ctx); err != nil {
		t.Fatalf("no shutdown after poweroff: %v", err)
	}
	select {
	case <-m.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("fake still running 5s after poweroff")
	}
	if err := m.ExitErr(); err != nil {
		t.Errorf("exit after poweroff = %v, want status 0", err)
	}
	if !strings.Contains(console.String(), "reboot: Power down") {
		t.Errorf("console lacks the power-down line:\n%s", console.String())
	}
	if want := []string{"echo hello > greeting; pwd; exit 7", "poweroff"}; !slices.Equal(fake.Commands(), want) {
		t.Errorf("Commands() = %q, want %q", fake.Commands(), want)
	}
}

func TestFakeCrashAfter(t *testing.T) {
	_, m, _ := start(t, "crash-after=200ms")
	select {
	case <-m.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("fake did not crash within 5s")
	}
	if err := m.ExitErr(); err == nil || err.Error() != "exit status 134" {
		t.Errorf("exit = %v, want exit status 134", err)
	}
	if m.Stderr() != fakeqemu.CrashMsg {
		t.Errorf("stderr = %q, want %q", m.Stderr(), fakeqemu.CrashMsg)
	}
}

func TestFakeIgnoreACPI(t *testing.T) {
	fake, m, _ := start(t, "ignore-acpi")
	ctx := context.Background()
	if err := m.Powerdown(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := m.WaitShutdown(wctx); err == nil {
		t.Fatal("guest shut down after ACPI powerdown in ignore-acpi mode")
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.Quit(qctx); err != nil {
		t.Fatalf("quit: %v", err)
	}
	if names := fake.QMPCommandNames(); !slices.Contains(names, "system_powerdown") || !slices.Contains(names, "quit") {
		t.Errorf("QMP commands = %v, want system_powerdown and quit", names)
	}
}

func TestFakeRebootDuringProvision(t *testing.T) {
	_, m, console := start(t, "reboot-during-provision")
	client, err := connect(t, m, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, err = client.Run(context.Background(), "echo first", nil, nil, nil)
	if !errors.Is(err, communicator.ErrDisconnected) {
		t.Errorf("first command error = %v, want ErrDisconnected", err)
	}

	again, err := connect(t, m, 5*time.Second)
	if err != nil {
		t.Fatalf("no SSH after the reboot: %v", err)
	}
	defer again.Close()
	if code, err := again.Run(context.Background(), "echo second", nil, nil, nil); err != nil || code != 0 {
		t.Errorf("command after the reboot = %d, %v; want 0", code, err)
	}
	if n := m.Monitor().Seen("RESET"); n != 1 {
		t.Errorf("RESET events = %d, want 1", n)
	}
	if n := strings.Count(console.String(), "Booting from Hard Disk"); n != 2 {
		t.Errorf("boot log printed %d times, want 2", n)
	}
}

func TestFakeSlowBoot(t *testing.T) {
	_, m, _ := start(t, "slow-boot=1500ms")
	_, err := connect(t, m, 500*time.Millisecond)
	var connectErr *communicator.ConnectError
	if !errors.As(err, &connectErr) || connectErr.Class != communicator.ConnectionReset {
		t.Fatalf("connect during boot = %v, want a connection reset", err)
	}
	client, err := connect(t, m, 5*time.Second)
	if err != nil {
		t.Fatalf("no SSH after the slow boot: %v", err)
	}
	client.Close()
}

func TestFakeSSHNever(t *testing.T) {
	_, m, _ := start(t, "ssh-never")
	_, err := connect(t, m, time.Second)
	var connectErr *communicator.ConnectError
	if !errors.As(err, &connectErr) || connectErr.Class != communicator.HandshakeTimeout {
		t.Fatalf("connect = %v, want a handshake timeout", err)
	}
}

func TestFakeMissingDrive(t *testing.T) {
	fakeqemu.Install(t, "normal")
	cfg := qemu.Config{
		QMPSocket: filepath.Join(t.TempDir(), "qmp.sock"),
		Drives:    []qemu.Drive{{ID: "disk0", Path: "/nonexistent/disk.qcow2", Format: "qcow2"}},
	}
	_, err := qemu.Start(context.Background(), cfg, false, &syncBuffer{})
	want := "qemu exited at start (exit status 1): qemu-system-x86_64: -drive file=/nonexistent/disk.qcow2: Could not open '/nonexistent/disk.qcow2': No such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

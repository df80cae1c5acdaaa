package qemu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConfigArgs(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		want    []string // substrings of the joined argv that must appear
		wantNot []string
	}{
		{
			name: "base disk with ssh forward",
			cfg: Config{Name: "deb", Accel: "tcg", CPUs: 2, MemoryMiB: 2048, QMPSocket: "/w/qmp.sock", SSHHostPort: 2222,
				Drives: []Drive{{ID: "disk0", Path: "/w/disk.qcow2", Format: "qcow2"}}},
			want: []string{"-accel tcg,thread=multi", "-smp 2", "-m 2048M", "-serial stdio", "-monitor none",
				"-qmp unix:/w/qmp.sock,server=on,wait=off", "-machine pc",
				"file=/w/disk.qcow2,id=disk0,format=qcow2,cache=unsafe,discard=unmap,detect-zeroes=unmap,if=virtio",
				"user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22", "-device virtio-net-pci,netdev=net0"},
			wantNot: []string{"pflash", "-kernel", "-boot"},
		},
		{
			name: "installer iso with efi",
			cfg: Config{Accel: "kvm", QMPSocket: "/q", Firmware: &EFI{Code: "/c.fd", Vars: "/w/vars.fd"}, BootOrder: "cd",
				Drives: []Drive{{Path: "/w/d.qcow2", Format: "qcow2", Interface: "ide"}, {ID: "cd0", Path: "/i,x.iso", CDROM: true}}},
			want: []string{"-machine q35", "-accel kvm", "if=pflash,format=raw,unit=0,readonly=on,file=/c.fd",
				"if=pflash,format=raw,unit=1,file=/w/vars.fd", "-boot order=cd", ",if=ide",
				"file=/i,,x.iso,id=cd0,if=ide,media=cdrom,readonly=on,format=raw"},
			wantNot: []string{"hostfwd"},
		},
		{
			name: "direct kernel boot, scsi, extra args",
			cfg: Config{QMPSocket: "/q", Kernel: "/k", Initrd: "/i", Append: "root=LABEL=r console=ttyS0",
				SSHHostPort: 1, SSHGuestPort: 2022, NetDevice: "e1000",
				Drives:    []Drive{{ID: "d", Path: "/d", Interface: "scsi"}},
				ExtraArgs: [][]string{{"-device", "virtio-rng-pci"}}},
			want: []string{"-kernel /k -initrd /i -append root=LABEL=r console=ttyS0", "virtio-scsi-pci,id=scsi0",
				",if=none -device scsi-hd,bus=scsi0.0,drive=d", "hostfwd=tcp:127.0.0.1:1-:2022", "-device e1000,netdev=net0",
				"-device virtio-rng-pci"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			joined := strings.Join(tt.cfg.Args(), " ")
			for _, w := range tt.want {
				if !strings.Contains(joined, w) {
					t.Errorf("argv lacks %q:\n%s", w, joined)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(joined, w) {
					t.Errorf("argv contains %q:\n%s", w, joined)
				}
			}
		})
	}
}

func TestExtraArgsComeLast(t *testing.T) {
	args := Config{QMPSocket: "/q", ExtraArgs: [][]string{{"-smp", "4"}}}.Args()
	if got := args[len(args)-2:]; got[0] != "-smp" || got[1] != "4" {
		t.Fatalf("extra args not appended after the defaults: %v", args)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startFake(t *testing.T, mode string) (*Machine, string, *syncBuffer) {
	t.Helper()
	log := installFakeQEMU(t, mode)
	console := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Start(ctx, Config{Name: "t", QMPSocket: filepath.Join(t.TempDir(), "qmp.sock")}, true, console)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(m.Kill)
	return m, log, console
}

func TestStartStreamsConsoleAndVersion(t *testing.T) {
	m, _, console := startFake(t, "normal")
	v, err := m.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v != "7.2.22 (fake)" {
		t.Errorf("version = %q", v)
	}
	if m.SSHPort() == 0 {
		t.Error("no SSH port was chosen")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(console.String(), "login:") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(console.String(), "SeaBIOS (fake)") {
		t.Errorf("console = %q", console.String())
	}
}

func TestSendKeysUsesInputSendEvent(t *testing.T) {
	m, log, _ := startFake(t, "normal")
	err := m.SendKeys(context.Background(), []KeyEvent{{QCode: "shift", Down: true}, {QCode: "a", Down: true}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	want := `input-send-event {"events":[{"type":"key","data":{"down":true,"key":{"type":"qcode","data":"shift"}}},{"type":"key","data":{"down":true,"key":{"type":"qcode","data":"a"}}}]}`
	if !strings.Contains(string(b), want) {
		t.Errorf("QMP log lacks %s:\n%s", want, b)
	}
}

func TestPowerdownEmitsShutdown(t *testing.T) {
	m, _, _ := startFake(t, "normal")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Powerdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitShutdown(ctx); err != nil {
		t.Fatalf("WaitShutdown: %v", err)
	}
	select {
	case <-m.Exited():
	case <-ctx.Done():
		t.Fatal("qemu did not exit after SHUTDOWN")
	}
}

func TestWaitShutdownHonoursDeadline(t *testing.T) {
	m, _, _ := startFake(t, "ignore-acpi")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	m.Powerdown(ctx)
	if err := m.WaitShutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitShutdown = %v, want deadline exceeded", err)
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer qcancel()
	if err := m.Quit(qctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
}

func TestCrashClosesMonitor(t *testing.T) {
	m, _, _ := startFake(t, "crash")
	select {
	case <-m.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("crash not detected")
	}
	if !strings.Contains(m.Stderr(), "simulated crash") {
		t.Errorf("stderr = %q", m.Stderr())
	}
	err := m.Powerdown(context.Background())
	if !errors.Is(err, ErrMonitorClosed) {
		t.Errorf("command after crash = %v, want ErrMonitorClosed", err)
	}
}

func TestQMPErrorIsReturned(t *testing.T) {
	m, _, _ := startFake(t, "normal")
	err := m.Monitor().Execute(context.Background(), "no-such-command", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "has not been found") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		name string
		mode string
		want string
	}{
		{"exit at start", "exit-at-start", "Could not open 'missing.qcow2'"},
		{"port always busy", "hostfwd-busy", "host forwarding rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			installFakeQEMU(t, tt.mode)
			_, err := Start(context.Background(), Config{QMPSocket: filepath.Join(t.TempDir(), "q.sock")}, true, &syncBuffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestMissingBinaryNamesPackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Start(context.Background(), Config{QMPSocket: "/nonexistent"}, false, &syncBuffer{})
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "qemu-system-x86") {
		t.Fatalf("err = %v", err)
	}
}

func TestKVMProbeFallsBackOnHang(t *testing.T) {
	// The fake binary never exits, as QEMU does under nested KVM that hangs
	// once the guest kernel runs.
	installFakeQEMU(t, "hang")
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	os.WriteFile(kernel, []byte("not really a kernel"), 0o644)
	t.Setenv("BAKE_PROBE_KERNEL", kernel)
	if err := kvmDeviceUsable(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	start := time.Now()
	r := ProbeKVM(context.Background(), ProbeOptions{Timeout: 500 * time.Millisecond, CacheDir: t.TempDir()})
	if r.KVM {
		t.Fatal("a hanging guest was reported as working KVM")
	}
	if !strings.Contains(r.Reason, "did not finish within 500ms") {
		t.Errorf("reason = %q", r.Reason)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("probe took %s, not bounded by its timeout", time.Since(start))
	}
}

func TestFindEFI(t *testing.T) {
	code, vars, err := FindEFI()
	if err != nil {
		if !strings.Contains(err.Error(), "ovmf") {
			t.Fatalf("error does not name the package: %v", err)
		}
		return
	}
	if !strings.Contains(code, "OVMF_CODE") || !strings.Contains(vars, "OVMF_VARS") {
		t.Fatalf("code=%q vars=%q", code, vars)
	}
	if strings.Contains(code, "secboot") || strings.Contains(code, ".ms.") {
		t.Errorf("picked Secure Boot firmware %q over plain OVMF", code)
	}
}

package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// Machine is a running QEMU process with its QMP monitor.
type Machine struct {
	cfg     Config
	cmd     *exec.Cmd
	mon     *Monitor
	stdin   io.WriteCloser
	stderr  *tailBuffer
	exited  chan struct{}
	waitErr error
	sshPort int
}

// ErrNotInstalled reports that the QEMU binary is not on PATH.
var ErrNotInstalled = errors.New("qemu is not installed")

// LookBinary resolves the QEMU binary, returning an error that names the
// Debian package to install when it is missing.
func LookBinary(name string) (string, error) {
	if name == "" {
		name = DefaultBinary
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %q not found in PATH: install the Debian package qemu-system-x86 (apt-get install qemu-system-x86)", ErrNotInstalled, name)
	}
	return path, nil
}

// Start launches QEMU for cfg, streams its serial console to console, and
// connects to its QMP socket. When cfg.SSHHostPort is 0 and forwardSSH is
// true, Start chooses a free loopback port. If another process takes it
// before QEMU binds it, Start retries with a new port.
func Start(ctx context.Context, cfg Config, forwardSSH bool, console io.Writer) (*Machine, error) {
	bin, err := LookBinary(cfg.Binary)
	if err != nil {
		return nil, err
	}
	const attempts = 5
	for attempt := 1; ; attempt++ {
		if forwardSSH && (cfg.SSHHostPort == 0 || attempt > 1) {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			cfg.SSHHostPort = port
		}
		m, err := start(ctx, bin, cfg, console)
		if err == nil {
			m.sshPort = cfg.SSHHostPort
			return m, nil
		}
		if !forwardSSH || attempt == attempts || !strings.Contains(err.Error(), "host forwarding rule") {
			return nil, err
		}
	}
}

func start(ctx context.Context, bin string, cfg Config, console io.Writer) (*Machine, error) {
	os.Remove(cfg.QMPSocket)
	cmd := exec.Command(bin, cfg.Args()...)
	// Its own process group keeps a terminal's Ctrl-C away from QEMU, so
	// bake decides how the guest stops; Pdeathsig kills QEMU if bake dies
	// without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	m := &Machine{cfg: cfg, cmd: cmd, stdin: stdin, stderr: newTailBuffer(64 << 10), exited: make(chan struct{})}
	cmd.Stderr = m.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", bin, err)
	}

	copied := make(chan struct{})
	go func() {
		io.Copy(console, stdout)
		close(copied)
	}()
	go func() {
		<-copied
		m.waitErr = cmd.Wait()
		close(m.exited)
	}()

	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	monCh := make(chan error, 1)
	go func() {
		mon, err := DialMonitor(dialCtx, cfg.QMPSocket)
		m.mon = mon
		monCh <- err
	}()
	select {
	case err := <-monCh:
		if err != nil {
			m.Kill()
			return nil, fmt.Errorf("qemu started but its QMP socket did not respond: %w; stderr: %s", err, m.Stderr())
		}
		return m, nil
	case <-m.exited:
		cancel()
		<-monCh
		return nil, fmt.Errorf("qemu exited at start (%v): %s", m.waitErr, m.Stderr())
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// SSHPort returns the host port forwarded to the guest's SSH port.
func (m *Machine) SSHPort() int { return m.sshPort }

// PID returns the QEMU process id.
func (m *Machine) PID() int { return m.cmd.Process.Pid }

// Monitor returns the QMP connection.
func (m *Machine) Monitor() *Monitor { return m.mon }

// Exited is closed once the QEMU process has exited and its console output
// has been copied.
func (m *Machine) Exited() <-chan struct{} { return m.exited }

// ExitErr returns the process's exit error after Exited is closed.
func (m *Machine) ExitErr() error {
	<-m.exited
	return m.waitErr
}

// Stderr returns the last 64 KiB QEMU wrote to standard error.
func (m *Machine) Stderr() string { return strings.TrimSpace(m.stderr.String()) }

// WriteConsole sends bytes to the guest's serial console.
func (m *Machine) WriteConsole(b []byte) error {
	_, err := m.stdin.Write(b)
	return err
}

// Events subscribes to QMP events.
func (m *Machine) Events() <-chan qmp.Event { return m.mon.Subscribe() }

// WaitShutdown waits until the guest shuts down: the QMP SHUTDOWN event, or
// the process exiting, whichever comes first. A SHUTDOWN event that arrived
// before the call counts too.
func (m *Machine) WaitShutdown(ctx context.Context) error {
	events := m.mon.Subscribe()
	if m.mon.Seen("SHUTDOWN") > 0 {
		return nil
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return nil // the connection closed because QEMU exited
			}
			if ev.Event == "SHUTDOWN" {
				return nil
			}
		case <-m.exited:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Powerdown sends an ACPI power button press.
func (m *Machine) Powerdown(ctx context.Context) error {
	return m.mon.Execute(ctx, "system_powerdown", nil, nil)
}

// Quit sends QMP quit and waits for the process to end.
func (m *Machine) Quit(ctx context.Context) error {
	err := m.mon.Execute(ctx, "quit", nil, nil)
	if err != nil && !errors.Is(err, ErrMonitorClosed) {
		return err
	}
	select {
	case <-m.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("qemu did not exit after quit: %w", ctx.Err())
	}
}

// Kill ends QEMU with SIGKILL and waits for it to be reaped. It is safe to
// call on a machine that has already exited.
func (m *Machine) Kill() {
	select {
	case <-m.exited:
	default:
		m.cmd.Process.Kill()
		<-m.exited
	}
	if m.mon != nil {
		m.mon.Close()
	}
	os.Remove(m.cfg.QMPSocket)
}

// Stop shuts QEMU down for cleanup: quit over QMP with a short deadline,
// then SIGKILL.
func (m *Machine) Stop() {
	select {
	case <-m.exited:
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		m.Quit(ctx)
		cancel()
	}
	m.Kill()
}

// KeyEvent is one key press or release, named by QEMU qcode.
type KeyEvent struct {
	QCode string
	Down  bool
}

// SendKeys sends key events with QMP input-send-event, all in one command,
// so a key and its modifiers arrive together.
func (m *Machine) SendKeys(ctx context.Context, events []KeyEvent) error {
	type keyData struct {
		Down bool `json:"down"`
		Key  struct {
			Type string `json:"type"`
			Data string `json:"data"`
		} `json:"key"`
	}
	type inputEvent struct {
		Type string  `json:"type"`
		Data keyData `json:"data"`
	}
	list := make([]inputEvent, len(events))
	for i, e := range events {
		list[i].Type = "key"
		list[i].Data.Down = e.Down
		list[i].Data.Key.Type = "qcode"
		list[i].Data.Key.Data = e.QCode
	}
	return m.mon.Execute(ctx, "input-send-event", map[string]any{"events": list}, nil)
}

// Eject removes the medium from a CD drive.
func (m *Machine) Eject(ctx context.Context, id string) error {
	return m.mon.Execute(ctx, "eject", map[string]any{"id": id, "force": true}, nil)
}

// Version returns QEMU's version as reported over QMP.
func (m *Machine) Version(ctx context.Context) (string, error) {
	var v struct {
		QEMU struct {
			Major, Minor, Micro int
		} `json:"qemu"`
		Package string `json:"package"`
	}
	if err := m.mon.Execute(ctx, "query-version", nil, &v); err != nil {
		return "", err
	}
	version := fmt.Sprintf("%d.%d.%d", v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro)
	if pkg := strings.TrimSpace(v.Package); pkg != "" {
		version += " (" + strings.Trim(pkg, "()") + ")"
	}
	return version, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/qemu"
)

// stepStartVM picks the accelerator, assembles the QEMU configuration and
// starts the machine with its serial console going to the console log.
type stepStartVM struct{}

func (*stepStartVM) Name() string { return "vm" }

func (*stepStartVM) Run(ctx context.Context, s *State) error {
	if err := resolveAccelerator(ctx, s); err != nil {
		return err
	}
	cfg, err := machineConfig(s)
	if err != nil {
		return err
	}
	s.Emitter.Emit(debugArgv(cfg))

	m, err := qemu.Start(ctx, cfg, s.Recipe.Communicator != "none", s.console)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.Machine = m
	s.mu.Unlock()
	if v, err := m.Version(ctx); err == nil {
		s.QEMUVersion = v
	}
	go watchMachine(s, m)
	s.Emitter.Infof("qemu %s started (pid %d, %s); console log %s", s.QEMUVersion, m.PID(), s.Accelerator, s.console.path)
	return nil
}

// watchMachine fails the build when QEMU exits before the shutdown step
// expects it to, so no step waits out its own deadline on a dead VM.
func watchMachine(s *State, m *qemu.Machine) {
	<-m.Exited()
	s.mu.Lock()
	expected := s.expectingVM
	s.mu.Unlock()
	if expected {
		return
	}
	s.fail(errors.New(unexpectedExit(m) + "; console log: " + s.console.path))
}

// monitorDrainTimeout bounds the wait for the QMP events QEMU sent just
// before it exited.
const monitorDrainTimeout = time.Second

// unexpectedExit describes why QEMU exited: a guest that powered off exits
// with status 0 after a QMP SHUTDOWN event, which a plain exit status would
// not tell apart from a quit.
func unexpectedExit(m *qemu.Machine) string {
	select {
	case <-m.Monitor().Closed():
	case <-time.After(monitorDrainTimeout):
	}
	if m.ExitErr() == nil && m.Monitor().Seen("SHUTDOWN") > 0 {
		return "the guest powered off unexpectedly (QMP SHUTDOWN event, then qemu exited with status 0)"
	}
	msg := "qemu exited unexpectedly (exit status 0)"
	if err := m.ExitErr(); err != nil {
		msg = fmt.Sprintf("qemu exited unexpectedly (%v)", err)
	}
	if stderr := m.Stderr(); stderr != "" {
		msg += ": " + stderr
	}
	return msg
}

func (*stepStartVM) Cleanup(s *State) error {
	if s.Machine == nil {
		return nil
	}
	s.expectVMExit()
	s.Machine.Stop()
	if stderr := s.Machine.Stderr(); stderr != "" && s.LogDir != "" {
		os.WriteFile(filepath.Join(s.LogDir, "qemu-stderr.log"), []byte(stderr+"\n"), 0o600)
	}
	return nil
}

func (s *State) expectVMExit() {
	s.mu.Lock()
	s.expectingVM = true
	s.mu.Unlock()
}

func resolveAccelerator(ctx context.Context, s *State) error {
	accel := s.Recipe.VM.Accelerator
	if s.Options.Accelerator != "" {
		accel = s.Options.Accelerator
	}
	if accel == "tcg" {
		s.Accelerator = "tcg"
		return nil
	}
	probe := qemu.ProbeKVM(ctx, qemu.ProbeOptions{
		Timeout:  10 * time.Second,
		Binary:   s.Recipe.VM.QEMUBinary,
		Kernels:  probeKernels(s),
		CacheDir: s.Options.Home,
	})
	if probe.KVM {
		s.Accelerator = "kvm"
		return nil
	}
	if accel == "kvm" {
		return fmt.Errorf("vm.accelerator is \"kvm\" but KVM does not work here: %s; use \"auto\" or \"tcg\"", probe.Reason)
	}
	s.Accelerator = "tcg"
	s.AcceleratorReason = probe.Reason
	s.Emitter.Warnf("KVM unavailable, using TCG software emulation (much slower): %s", probe.Reason)
	return nil
}

func probeKernels(s *State) []string {
	if s.Recipe.VM.Kernel != "" {
		return []string{s.Recipe.VM.Kernel}
	}
	return nil
}

func machineConfig(s *State) (qemu.Config, error) {
	r := s.Recipe
	cfg := qemu.Config{
		Binary:       r.VM.QEMUBinary,
		Name:         r.Name,
		Accel:        s.Accelerator,
		CPUs:         r.VM.CPUs,
		MemoryMiB:    r.VM.Memory.MiB(),
		Machine:      r.VM.Machine,
		NetDevice:    r.VM.NetDevice,
		SSHGuestPort: r.SSH.Port,
		QMPSocket:    filepath.Join(s.WorkDir, "qmp.sock"),
		Kernel:       r.VM.Kernel,
		Initrd:       r.VM.Initrd,
		ExtraArgs:    r.VM.QEMUArgs,
	}
	if r.VM.Append != "" {
		appendLine, err := s.render(r.VM.Append)
		if err != nil {
			return cfg, fmt.Errorf("vm.append: %w", err)
		}
		cfg.Append = appendLine
	}
	cfg.Drives = append(cfg.Drives, qemu.Drive{ID: "disk0", Path: s.DiskPath, Format: "qcow2", Interface: r.VM.DiskInterface})
	if len(r.Source.ISO) > 0 {
		cfg.Drives = append(cfg.Drives, qemu.Drive{ID: "cd0", Path: s.Source.Path, Format: "raw", CDROM: true})
		cfg.BootOrder = "cd"
	}
	if s.SeedISO != "" {
		// The seed goes in as a read-only virtio disk, not a CD: cloud-init
		// finds it by its label either way, and Debian's cloud kernel has no
		// AHCI driver, so on a q35 machine it would not see a CD.
		cfg.Drives = append(cfg.Drives, qemu.Drive{ID: "seed0", Path: s.SeedISO, Format: "raw", Interface: "virtio", ReadOnly: true})
	}
	if r.VM.Firmware == "efi" {
		code, vars, err := qemu.FindEFI()
		if err != nil {
			return cfg, err
		}
		s.EFIVars = filepath.Join(s.WorkDir, "efivars.fd")
		if err := copyFile(vars, s.EFIVars); err != nil {
			return cfg, fmt.Errorf("failed to copy EFI variable store: %w", err)
		}
		cfg.Firmware = &qemu.EFI{Code: code, Vars: s.EFIVars}
	}
	return cfg, nil
}

func debugArgv(cfg qemu.Config) event.Event {
	bin := cfg.Binary
	if bin == "" {
		bin = qemu.DefaultBinary
	}
	return event.Event{Kind: event.Debug, Message: "qemu argv: " + bin + " " + strings.Join(cfg.Args(), " ")}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Deadlines for the fallbacks after the shutdown command. ACPI gets long
// enough for a systemd guest to stop its services; quit only has to stop
// the QEMU process.
const (
	DefaultPowerdownTimeout = 60 * time.Second
	quitTimeout             = 10 * time.Second
)

// stepShutdown trims the guest's file systems, runs the shutdown command and
// waits for the QMP SHUTDOWN event. If the guest is still up at the
// deadline, it tries ACPI powerdown and finally quits QEMU, and it flags the
// image as coming from a forced stop.
type stepShutdown struct{}

func (*stepShutdown) Name() string { return "shutdown" }

func (*stepShutdown) Run(ctx context.Context, s *State) error {
	r := s.Recipe
	// fstrim hands unused blocks back to the qcow2 overlay (discard=unmap),
	// which keeps the exported image small.
	trim := func(line string) { s.Emitter.Emit(outputEvent(line)) }
	// util-linux fstrim takes -a; busybox's only takes a mount point.
	const fstrim = "fstrim -av 2>/dev/null || fstrim -v / 2>/dev/null || echo 'fstrim: not supported here'"
	if code, err := s.SSH.Run(ctx, fstrim, nil, trim, trim); err != nil || code != 0 {
		s.Emitter.Warnf("fstrim in the guest failed (exit %d, %v); the image may be larger than needed", code, err)
	}

	s.expectVMExit()
	command := r.Shutdown.Command
	s.Emitter.Infof("running shutdown command %q", command)
	_, err := s.SSH.Run(ctx, command, nil, trim, trim)
	if err != nil && ctx.Err() != nil {
		return err
	}
	s.SSH.Close()
	s.SSH = nil

	if err := waitShutdown(ctx, s, r.Shutdown.Timeout.D()); err == nil {
		s.StopMethod = "guest"
		return waitExit(ctx, s)
	} else if ctx.Err() != nil {
		return err
	}

	s.Emitter.Warnf("guest still running %s after %q; sending ACPI powerdown", r.Shutdown.Timeout.D(), command)
	s.ForcedStop = true
	if err := s.Machine.Powerdown(ctx); err != nil {
		s.Emitter.Warnf("ACPI powerdown failed: %v", err)
	}
	powerdownTimeout := s.Options.PowerdownTimeout
	if powerdownTimeout <= 0 {
		powerdownTimeout = DefaultPowerdownTimeout
	}
	if err := waitShutdown(ctx, s, powerdownTimeout); err == nil {
		s.StopMethod = "acpi"
		return waitExit(ctx, s)
	} else if ctx.Err() != nil {
		return err
	}

	s.Emitter.Warnf("guest ignored ACPI powerdown for %s; quitting QEMU (the image may be inconsistent)", powerdownTimeout)
	s.StopMethod = "quit"
	qctx, cancel := context.WithTimeout(ctx, quitTimeout)
	defer cancel()
	if err := s.Machine.Quit(qctx); err != nil {
		s.Machine.Kill()
		return fmt.Errorf("qemu did not quit: %w", err)
	}
	return nil
}

func waitShutdown(ctx context.Context, s *State, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.Machine.WaitShutdown(wctx)
}

// waitExit waits for QEMU to exit after the guest shut down, so the disk
// image is closed before it is converted.
func waitExit(ctx context.Context, s *State) error {
	select {
	case <-s.Machine.Exited():
		return nil
	case <-time.After(quitTimeout):
		qctx, cancel := context.WithTimeout(ctx, quitTimeout)
		defer cancel()
		if err := s.Machine.Quit(qctx); err != nil {
			return errors.New("qemu did not exit after the guest shut down")
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (*stepShutdown) Cleanup(*State) error { return nil }

// stepWaitPoweroff is the shutdown step for communicator "none": the guest
// is expected to power itself off within shutdown.timeout.
type stepWaitPoweroff struct{}

func (*stepWaitPoweroff) Name() string { return "wait-poweroff" }

func (*stepWaitPoweroff) Run(ctx context.Context, s *State) error {
	s.expectVMExit()
	timeout := s.Recipe.Shutdown.Timeout.D()
	if err := waitShutdown(ctx, s, timeout); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("guest did not power off within shutdown.timeout %s; console log: %s", timeout, s.console.path)
	}
	s.StopMethod = "guest"
	return waitExit(ctx, s)
}

func (*stepWaitPoweroff) Cleanup(*State) error { return nil }

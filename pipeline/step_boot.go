package pipeline

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bakeimg/bake/boot"
	"github.com/bakeimg/bake/qemu"
)

// stepBoot waits boot.wait, then types the boot command. When the recipe
// serves seed files and sets http.request_timeout, it also starts a watch
// that fails the build if the guest never requests anything.
type stepBoot struct{}

func (*stepBoot) Name() string { return "boot" }

func (*stepBoot) Run(ctx context.Context, s *State) error {
	b := s.Recipe.Boot
	if len(b.Command) == 0 {
		return nil
	}
	text, err := s.render(strings.Join(b.Command, ""))
	if err != nil {
		return fmt.Errorf("boot.command: %w", err)
	}
	prog, warnings, err := boot.Parse(text)
	if err != nil {
		return fmt.Errorf("boot.command: %w", err)
	}
	for _, w := range warnings {
		s.Emitter.Warnf("boot.command: %s", w)
	}
	if err := sleep(ctx, b.Wait.D()); err != nil {
		return err
	}
	interval := b.KeyInterval.D()
	if d, set, err := KeyIntervalFromEnv(); err != nil {
		return err
	} else if set {
		interval = d
	}
	typer := boot.Typer{
		Keyboard: keyboard{s.Machine},
		Console:  s.console,
		Echo:     &s.console.echo,
		Interval: interval,
		Hold:     b.KeyHold.D(),
		Emitter:  s.Emitter,
	}
	if err := typer.Run(ctx, prog); err != nil {
		return err
	}
	if s.HTTP != nil && s.Recipe.HTTP.RequestTimeout > 0 {
		go func() {
			if err := s.HTTP.WaitRequest(ctx, s.Recipe.HTTP.RequestTimeout.D()); err != nil && ctx.Err() == nil {
				s.fail(fmt.Errorf("%w; console log: %s", err, s.console.path))
			}
		}()
	}
	return nil
}

func (*stepBoot) Cleanup(*State) error { return nil }

// KeyIntervalFromEnv returns the pause between typed keys that
// BAKE_KEY_INTERVAL sets, which overrides boot.key_interval, and whether it
// is set.
func KeyIntervalFromEnv() (time.Duration, bool, error) {
	env := os.Getenv("BAKE_KEY_INTERVAL")
	if env == "" {
		return 0, false, nil
	}
	d, err := time.ParseDuration(env)
	if err != nil || d < 0 {
		return 0, false, fmt.Errorf("invalid BAKE_KEY_INTERVAL %q: use a Go duration such as \"20ms\", or unset it", env)
	}
	return d, true, nil
}

// keyboard adapts a QEMU machine to the boot typer.
type keyboard struct{ m keySender }

// keySender is the part of *qemu.Machine the keyboard uses.
type keySender interface {
	SendKeys(ctx context.Context, events []qemu.KeyEvent) error
}

func (k keyboard) SendKeys(ctx context.Context, events []boot.KeyEvent) error {
	out := make([]qemu.KeyEvent, len(events))
	for i, e := range events {
		out[i] = qemu.KeyEvent{QCode: e.QCode, Down: e.Down}
	}
	return k.m.SendKeys(ctx, out)
}

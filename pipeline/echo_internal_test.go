package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bakeimg/bake/boot"
	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/qemu"
)

// echoGuest records key batches and, while echoing, writes one byte to the
// console for each released key, after a delay, like a slow bootloader.
type echoGuest struct {
	console *console
	echo    bool
	delay   time.Duration
	batches int
}

func (g *echoGuest) SendKeys(_ context.Context, events []qemu.KeyEvent) error {
	g.batches++
	if g.echo && !events[len(events)-1].Down {
		go func() {
			time.Sleep(g.delay)
			g.console.Write([]byte("x"))
		}()
	}
	return nil
}

func newTestConsole(t *testing.T) *console {
	t.Helper()
	c, err := openConsole(filepath.Join(t.TempDir(), "console.log"), event.NewEmitter("t", event.Discard), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func typeText(t *testing.T, c *console, guest *echoGuest, text string) []string {
	t.Helper()
	prog, _, err := boot.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	var infos []string
	emitter := event.NewEmitter("t", event.SinkFunc(func(e event.Event) {
		if e.Kind == event.Info {
			infos = append(infos, e.Message)
		}
	}))
	typer := boot.Typer{Keyboard: keyboard{guest}, Echo: &c.echo, Interval: time.Millisecond, Emitter: emitter}
	if err := typer.Run(context.Background(), prog); err != nil {
		t.Fatal(err)
	}
	return infos
}

// The build's console paces typing by the guest's echo.
func TestConsolePacesTypingByEcho(t *testing.T) {
	c := newTestConsole(t)
	guest := &echoGuest{console: c, echo: true, delay: 50 * time.Millisecond}

	start := time.Now()
	infos := typeText(t, c, guest, "abcdef")
	took := time.Since(start)

	if len(infos) != 0 {
		t.Fatalf("info events %q, want none while the guest echoes every key", infos)
	}
	// Six keys each waiting for a 50 ms echo take at least 300 ms; without
	// waiting they take about 6 ms.
	if took < 300*time.Millisecond {
		t.Errorf("typing took %s, so it did not wait for each key's echo", took)
	}
	if c.echo.Received() != 6 {
		t.Errorf("console has %d echoed bytes, want 6", c.echo.Received())
	}
}

func TestConsoleEchoPacingStopsWithoutEcho(t *testing.T) {
	c := newTestConsole(t)
	guest := &echoGuest{console: c}

	infos := typeText(t, c, guest, "abcdefgh")

	if len(infos) != 1 || !strings.Contains(infos[0], "did not echo 4 typed characters") {
		t.Errorf("info events %q, want one saying echo pacing stopped after 4 characters", infos)
	}
	if guest.batches != 8 {
		t.Errorf("sent %d key batches, want 8", guest.batches)
	}
}

func TestConsoleMasksEchoedSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	var events []string
	emitter := event.NewEmitter("t", event.SinkFunc(func(e event.Event) { events = append(events, string(e.Data)) }))
	c, err := openConsole(path, emitter, []string{"hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	// A bootloader echoes a typed password one key at a time.
	for _, b := range []byte("boot: passwd=hunter2\n") {
		c.Write([]byte{b})
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "boot: passwd=" + event.Mask + "\n"
	if string(log) != want {
		t.Errorf("console log = %q, want %q", log, want)
	}
	if got := strings.Join(events, ""); got != want {
		t.Errorf("console events = %q, want %q", got, want)
	}
	if c.echo.Received() != int64(len("boot: passwd=hunter2\n")) {
		t.Errorf("Received() = %d, want the raw byte count", c.echo.Received())
	}
}

func TestConsoleWaitForSpansKeys(t *testing.T) {
	c := newTestConsole(t)
	ctx := context.Background()
	c.Write([]byte("boot: "))
	// A prompt printed before the wait started counts.
	if err := c.WaitFor(ctx, "boot:", time.Second); err != nil {
		t.Fatalf("prompt printed before the wait: %v", err)
	}
	// The echo of a typed line arrives key by key before the wait; the
	// whole line counts, although no single chunk contains it.
	for _, b := range []byte("install seed=/seed.sh") {
		c.Write([]byte{b})
	}
	if err := c.WaitFor(ctx, "/seed.sh", time.Second); err != nil {
		t.Fatalf("echo of the typed line: %v", err)
	}
	// Text before the previous match does not match again.
	err := c.WaitFor(ctx, "boot:", 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `timed out after 100ms waiting for "boot:"`) {
		t.Errorf("a second wait for an old prompt = %v, want a timeout", err)
	}
}

func TestConsoleReportsKernelPanic(t *testing.T) {
	c := newTestConsole(t)
	var lines []string
	c.onPanic = func(line string) { lines = append(lines, line) }
	c.Write([]byte("[    3.6] Kernel pan"))
	c.Write([]byte("ic - not syncing: IO-APIC + timer doesn't work!\r\n[    3.7] more\n"))
	c.Write([]byte("Kernel panic - not syncing: again\n"))
	want := "Kernel panic - not syncing: IO-APIC + timer doesn't work!"
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("panic callbacks = %q, want one with %q", lines, want)
	}
}

// QEMU's serial output is copied through one reused read buffer, so a
// console event must not share it.
func TestConsoleEventOwnsItsBytes(t *testing.T) {
	var events [][]byte
	emitter := event.NewEmitter("t", event.SinkFunc(func(e event.Event) {
		if e.Kind == event.Console {
			events = append(events, e.Data)
		}
	}))
	c, err := openConsole(filepath.Join(t.TempDir(), "console.log"), emitter, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := []byte("first line\n")
	c.Write(buf)
	copy(buf, "XXXXXXXXXX\n")
	c.Write(buf)
	if len(events) != 2 {
		t.Fatalf("got %d console events, want 2", len(events))
	}
	if string(events[0]) != "first line\n" {
		t.Errorf("first event's data = %q after the buffer was reused, want %q", events[0], "first line\n")
	}
}

package boot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bakeimg/bake/event"
)

// Default pacing: one key press per SendKeys call and a 15 ms pause after
// each, about 40 to 60 keys a second with the QMP round trip. A BIOS
// bootloader such as isolinux reads keys through the BIOS keyboard buffer,
// which has room for about 15 keys, and QEMU's PS/2 queue holds 16 bytes.
// Single keys leave the most room in that queue when the guest falls
// behind. TestTyperIsolinuxPrompt (QEMU 7.2, TCG, 2-core host) typed intact
// lines with 10 and 15 ms pauses and lost keys with 5 ms pauses.
//
// NOTE: while other TCG guests loaded the same host, keys were lost in a
// third or more of the runs at every pace tried, from 20 to about 70 keys a
// second, because the guest stalls while keys keep arriving.
const (
	DefaultBurst    = 1
	DefaultInterval = 15 * time.Millisecond
)

// maxBatchBytes bounds the PS/2 scancode bytes that one SendKeys call may
// produce. QEMU's PS/2 keyboard queue (PS2_QUEUE_SIZE in hw/input/ps2.c)
// has room for 16 bytes and drops the rest, and input-send-event queues
// every event of one command before the guest can read any of them.
const maxBatchBytes = 16

// releaseTimeout bounds the release of held keys after the run ends, which
// happens even when the run's context is already cancelled.
const releaseTimeout = 2 * time.Second

// KeyEvent is one key going down or up, named by its QEMU qcode.
type KeyEvent struct {
	QCode string
	Down  bool
}

// Keyboard sends key events to the guest. SendKeys sends the events in
// order and may send them in one QMP input-send-event command.
type Keyboard interface {
	SendKeys(ctx context.Context, events []KeyEvent) error
}

// Echo reports the guest's serial console output as a byte count, so the
// typer can wait for each typed character's echo. A bootloader prompt that
// mirrors itself to the serial port, such as isolinux's boot: prompt,
// echoes every key it reads.
type Echo interface {
	// Received returns the number of console bytes received so far.
	Received() int64
	// WaitBeyond waits until more than n bytes have been received or
	// timeout passes, and reports whether they were.
	WaitBeyond(ctx context.Context, n int64, timeout time.Duration) bool
}

// Echo pacing limits.
const (
	// DefaultEchoTimeout bounds the wait for one character's echo.
	DefaultEchoTimeout = time.Second
	// EchoMissLimit consecutive characters without an echo turn echo
	// pacing off for the rest of the run.
	EchoMissLimit = 4
)

// ConsoleWaiter waits for text on the guest's serial console. WaitFor
// returns nil once text has appeared, and an error when timeout passes
// first or ctx is done.
type ConsoleWaiter interface {
	WaitFor(ctx context.Context, text string, timeout time.Duration) error
}

// Typer types a Program into a guest.
//
// Keys are sent in batches of Burst key presses, one SendKeys call per
// batch, with a pause of Interval after each batch. A batch also ends
// early when one more key would make it produce over 16 PS/2 scancode
// bytes, so a batch of shifted characters is shorter. With Hold set, each
// key instead goes down in one call and up in another, Hold later.
type Typer struct {
	Keyboard Keyboard
	// Console serves <waitFor>; it may be nil when the program has none.
	Console ConsoleWaiter
	// Interval is the pause after each batch. Zero means DefaultInterval
	// and a negative value means no pause. With Burst 1 it is the pause
	// between keys, like Packer's boot_key_interval.
	Interval time.Duration
	// Hold is how long each key stays down. Zero sends each key's press
	// and release in the same batch.
	Hold time.Duration
	// Burst is the number of key presses per batch. Zero means
	// DefaultBurst.
	Burst int
	// Echo, when set, paces typed characters by their echo on the serial
	// console. An echoed character is followed by a pause only when
	// Interval is positive.
	Echo Echo
	// EchoTimeout bounds the wait for one character's echo. Zero means
	// DefaultEchoTimeout.
	EchoTimeout time.Duration
	// Emitter receives one event.KeysTyped event per typed line, sent when
	// <enter> or <return> is pressed, before each wait and at the end. It
	// may be nil.
	Emitter *event.Emitter
}

// Run types p. It returns when every action has run, an action fails or
// ctx is done, and it releases every key held by <...On> before
// returning, also after a failure or cancellation.
func (t *Typer) Run(ctx context.Context, p *Program) error {
	if t.Keyboard == nil {
		return errors.New("boot: typer has no keyboard: set Typer.Keyboard")
	}
	if p == nil {
		return errors.New("boot: program is nil: pass the program that Parse returns")
	}
	if err := t.checkConsole(p); err != nil {
		return err
	}

	r := &run{typer: t, held: make(map[string]bool), total: p.Keystrokes(), echo: t.Echo != nil}
	err := r.actions(ctx, p.Actions)
	if err == nil {
		err = r.flush(ctx)
	}
	r.emitLine()
	if releaseErr := r.releaseHeld(ctx); err == nil {
		err = releaseErr
	}
	return err
}

func (t *Typer) checkConsole(p *Program) error {
	if t.Console != nil {
		return nil
	}
	for _, a := range p.Actions {
		if a.Op == OpWaitFor {
			return fmt.Errorf("boot command uses <waitFor> at byte offset %d but no serial console is attached: "+
				"capture the serial console or replace <waitFor> with <wait>", a.Pos)
		}
	}
	return nil
}

func (t *Typer) burst() int {
	if t.Burst > 0 {
		return t.Burst
	}
	return DefaultBurst
}

func (t *Typer) interval() time.Duration {
	switch {
	case t.Interval > 0:
		return t.Interval
	case t.Interval < 0:
		return 0
	}
	return DefaultInterval
}

// run is the state of one Typer.Run call.
type run struct {
	typer   *Typer
	batch   []KeyEvent
	bytes   int             // estimated scancode bytes of batch
	strokes int             // key presses since the last pause
	held    map[string]bool // qcodes held down by <...On>
	line    strings.Builder // text typed since the last KeysTyped event
	typed   int             // key presses sent so far
	total   int
	echo    bool // pace characters by their echo
	misses  int  // characters in a row without an echo
}

func (r *run) actions(ctx context.Context, actions []Action) error {
	for _, a := range actions {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.action(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) action(ctx context.Context, a Action) error {
	switch a.Op {
	case OpType:
		return r.typeText(ctx, a.Text)
	case OpPress:
		return r.press(ctx, a)
	case OpHold:
		r.line.WriteString("<" + a.Key.Name + "On>")
		r.held[a.Key.QCode] = true
		return r.stroke(ctx, []KeyEvent{{QCode: a.Key.QCode, Down: true}}, nil)
	case OpRelease:
		r.line.WriteString("<" + a.Key.Name + "Off>")
		delete(r.held, a.Key.QCode)
		return r.stroke(ctx, nil, []KeyEvent{{QCode: a.Key.QCode}})
	case OpWait:
		return r.wait(ctx, a)
	case OpWaitFor:
		return r.waitFor(ctx, a)
	}
	return fmt.Errorf("boot: unknown action %v at byte offset %d", a.Op, a.Pos)
}

func (r *run) typeText(ctx context.Context, text string) error {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if !typeable(c) {
			return fmt.Errorf("boot: character %q has no key on a US keyboard: build programs with Parse", c)
		}
		r.line.WriteByte(c)
		down, up := r.charEvents(usLayout[c])
		if r.echo {
			if err := r.echoStroke(ctx, down, up); err != nil {
				return err
			}
			continue
		}
		if err := r.stroke(ctx, down, up); err != nil {
			return err
		}
	}
	return nil
}

// charEvents returns the press and release events for one character. A
// shifted character is wrapped in Shift unless a Shift key is already held.
// Holding Shift across a run of capitals instead sends fewer bytes, but in
// the isolinux test one dropped Shift event then turned the whole run into
// the wrong case, where per-character Shift limits the damage to one key.
func (r *run) charEvents(s stroke) (down, up []KeyEvent) {
	if s.shift && !r.shiftHeld() {
		down = []KeyEvent{{QCode: "shift", Down: true}, {QCode: s.qcode, Down: true}}
		up = []KeyEvent{{QCode: s.qcode}, {QCode: "shift"}}
		return down, up
	}
	return []KeyEvent{{QCode: s.qcode, Down: true}}, []KeyEvent{{QCode: s.qcode}}
}

func (r *run) shiftHeld() bool {
	return r.held[shiftQCodes[0]] || r.held[shiftQCodes[1]]
}

func (r *run) press(ctx context.Context, a Action) error {
	r.line.WriteString("<" + a.Key.Name + ">")
	err := r.stroke(ctx, []KeyEvent{{QCode: a.Key.QCode, Down: true}}, []KeyEvent{{QCode: a.Key.QCode}})
	if err != nil {
		return err
	}
	if a.Key.QCode == "ret" {
		if err := r.flush(ctx); err != nil {
			return err
		}
		r.emitLine()
	}
	return nil
}

// stroke sends or queues one key press and pauses after every Burst of
// them.
func (r *run) stroke(ctx context.Context, down, up []KeyEvent) error {
	var err error
	if r.typer.Hold > 0 {
		err = r.sendHeld(ctx, down, up)
	} else {
		err = r.queue(ctx, down, up)
	}
	if err != nil {
		return err
	}

	r.typed++
	r.strokes++
	if r.strokes < r.typer.burst() {
		return nil
	}
	return r.endBurst(ctx)
}

// echoStroke sends one character on its own and waits for its echo.
func (r *run) echoStroke(ctx context.Context, down, up []KeyEvent) error {
	if err := r.flush(ctx); err != nil {
		return err
	}
	before := r.typer.Echo.Received()
	var err error
	if r.typer.Hold > 0 {
		err = r.sendHeld(ctx, down, up)
	} else {
		err = r.send(ctx, append(append([]KeyEvent{}, down...), up...))
	}
	if err != nil {
		return err
	}
	r.typed++
	r.strokes = 0

	timeout := r.typer.EchoTimeout
	if timeout <= 0 {
		timeout = DefaultEchoTimeout
	}
	if r.typer.Echo.WaitBeyond(ctx, before, timeout) {
		r.misses = 0
		return sleep(ctx, r.typer.Interval)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.misses++
	if r.misses >= EchoMissLimit {
		r.echo = false
		if e := r.typer.Emitter; e != nil {
			e.Infof("the guest did not echo %d typed characters on the serial console; typing on at a fixed pace", r.misses)
		}
	}
	return sleep(ctx, r.typer.interval())
}

// sendHeld sends the press events, waits Hold and sends the release
// events.
func (r *run) sendHeld(ctx context.Context, down, up []KeyEvent) error {
	if err := r.flush(ctx); err != nil {
		return err
	}
	if err := r.send(ctx, down); err != nil {
		return err
	}
	if err := sleep(ctx, r.typer.Hold); err != nil {
		// Release the key anyway so that it does not stay down in the guest.
		releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		return errors.Join(err, r.send(releaseCtx, up))
	}
	return r.send(ctx, up)
}

// queue adds a key press to the batch, first ending the burst when the
// batch would exceed maxBatchBytes.
func (r *run) queue(ctx context.Context, down, up []KeyEvent) error {
	size := scancodeBytes(down) + scancodeBytes(up)
	if r.bytes+size > maxBatchBytes && len(r.batch) > 0 {
		if err := r.endBurst(ctx); err != nil {
			return err
		}
	}
	r.batch = append(r.batch, down...)
	r.batch = append(r.batch, up...)
	r.bytes += size
	return nil
}

// endBurst sends the queued batch and pauses for the guest to read it.
func (r *run) endBurst(ctx context.Context) error {
	r.strokes = 0
	if err := r.flush(ctx); err != nil {
		return err
	}
	return sleep(ctx, r.typer.interval())
}

// flush sends the queued batch.
func (r *run) flush(ctx context.Context) error {
	if len(r.batch) == 0 {
		return nil
	}
	events := r.batch
	r.batch = nil
	r.bytes = 0
	return r.send(ctx, events)
}

func (r *run) send(ctx context.Context, events []KeyEvent) error {
	if len(events) == 0 {
		return nil
	}
	if err := r.typer.Keyboard.SendKeys(ctx, events); err != nil {
		return fmt.Errorf("failed to send %d key events to the guest: %w", len(events), err)
	}
	return nil
}

func (r *run) wait(ctx context.Context, a Action) error {
	if err := r.flush(ctx); err != nil {
		return err
	}
	r.emitLine()
	r.strokes = 0
	return sleep(ctx, a.Duration)
}

func (r *run) waitFor(ctx context.Context, a Action) error {
	if err := r.flush(ctx); err != nil {
		return err
	}
	r.emitLine()
	r.strokes = 0
	if e := r.typer.Emitter; e != nil {
		e.Infof("waiting up to %s for %q on the serial console", a.Duration, a.Text)
	}
	if err := r.typer.Console.WaitFor(ctx, a.Text, a.Duration); err != nil {
		return fmt.Errorf("<waitFor> at byte offset %d of the boot command: %w", a.Pos, err)
	}
	return nil
}

// emitLine sends the text typed since the last event as one KeysTyped
// event, with a Progress event counting key presses. Whole lines are sent
// so that the emitter can mask a secret typed on one line.
func (r *run) emitLine() {
	if r.line.Len() == 0 {
		return
	}
	text := r.line.String()
	r.line.Reset()
	e := r.typer.Emitter
	if e == nil {
		return
	}
	e.Emit(event.Event{Kind: event.KeysTyped, Message: text})
	e.Progressf(int64(r.typed), int64(r.total), "typed %d of %d keys", r.typed, r.total)
}

// releaseHeld releases every key still held by <...On>. It runs after the
// program ends, so it uses its own short deadline in case ctx is done.
func (r *run) releaseHeld(ctx context.Context) error {
	if len(r.held) == 0 {
		return nil
	}
	var events []KeyEvent
	for _, k := range modifierKeys {
		if r.held[k.qcode] {
			events = append(events, KeyEvent{QCode: k.qcode})
		}
	}
	r.held = map[string]bool{}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := r.send(ctx, events); err != nil {
		return fmt.Errorf("failed to release held keys: %w", err)
	}
	return nil
}

// sleep pauses for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

package boot

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
)

// recordingKeyboard records every SendKeys call as one batch.
type recordingKeyboard struct {
	mu      sync.Mutex
	batches [][]KeyEvent
	err     error       // returned by every call when set
	onSend  func(n int) // called after batch n (from 1) is recorded
}

func (k *recordingKeyboard) SendKeys(ctx context.Context, events []KeyEvent) error {
	k.mu.Lock()
	k.batches = append(k.batches, append([]KeyEvent(nil), events...))
	n := len(k.batches)
	k.mu.Unlock()
	if k.onSend != nil {
		k.onSend(n)
	}
	return k.err
}

func (k *recordingKeyboard) all() []KeyEvent {
	k.mu.Lock()
	defer k.mu.Unlock()
	var events []KeyEvent
	for _, b := range k.batches {
		events = append(events, b...)
	}
	return events
}

func (k *recordingKeyboard) sizes() []int {
	k.mu.Lock()
	defer k.mu.Unlock()
	var sizes []int
	for _, b := range k.batches {
		sizes = append(sizes, len(b))
	}
	return sizes
}

var _ Keyboard = (*recordingKeyboard)(nil)

// fakeConsole records WaitFor calls and returns err.
type fakeConsole struct {
	texts    []string
	timeouts []time.Duration
	err      error
}

func (c *fakeConsole) WaitFor(ctx context.Context, text string, timeout time.Duration) error {
	c.texts = append(c.texts, text)
	c.timeouts = append(c.timeouts, timeout)
	return c.err
}

var _ ConsoleWaiter = (*fakeConsole)(nil)

func down(q string) KeyEvent { return KeyEvent{QCode: q, Down: true} }

func up(q string) KeyEvent { return KeyEvent{QCode: q} }

// tap returns the events for one unshifted key press.
func tap(q string) []KeyEvent { return []KeyEvent{down(q), up(q)} }

// shifted returns the events for one key press with Shift.
func shifted(q string) []KeyEvent {
	return []KeyEvent{down("shift"), down(q), up(q), up("shift")}
}

func concat(groups ...[]KeyEvent) []KeyEvent {
	var out []KeyEvent
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func runTyper(t *testing.T, typer *Typer, text string) error {
	t.Helper()
	p, _ := mustParse(t, text)
	return typer.Run(context.Background(), p)
}

func TestTyperKeyEvents(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []KeyEvent
	}{
		{name: "lower case", text: "ab", want: concat(tap("a"), tap("b"))},
		{name: "upper case", text: "A", want: shifted("a")},
		{name: "less than", text: "<", want: shifted("comma")},
		{name: "greater than", text: ">", want: shifted("dot")},
		{name: "pipe", text: "|", want: shifted("backslash")},
		{name: "colon", text: ":", want: shifted("semicolon")},
		{name: "double quote", text: `"`, want: shifted("apostrophe")},
		{name: "tilde", text: "~", want: shifted("grave_accent")},
		{name: "underscore", text: "_", want: shifted("minus")},
		{name: "plus", text: "+", want: shifted("equal")},
		{name: "braces", text: "{}", want: concat(shifted("bracket_left"), shifted("bracket_right"))},
		{name: "question mark", text: "?", want: shifted("slash")},
		{name: "digits row", text: "!@#$%^&*()", want: concat(
			shifted("1"), shifted("2"), shifted("3"), shifted("4"), shifted("5"),
			shifted("6"), shifted("7"), shifted("8"), shifted("9"), shifted("0"))},
		{name: "unshifted punctuation", text: "-=[]\\;',./` 9", want: concat(
			tap("minus"), tap("equal"), tap("bracket_left"), tap("bracket_right"),
			tap("backslash"), tap("semicolon"), tap("apostrophe"), tap("comma"),
			tap("dot"), tap("slash"), tap("grave_accent"), tap("spc"), tap("9"))},
		{name: "special keys", text: "<esc><enter><F12><spacebar><pageDown>", want: concat(
			tap("esc"), tap("ret"), tap("f12"), tap("spc"), tap("pgdn"))},
		{name: "escaped less than", text: "<lt>", want: shifted("comma")},
		{
			name: "ctrl hold",
			text: "<leftCtrlOn>c<leftCtrlOff>",
			want: []KeyEvent{down("ctrl"), down("c"), up("c"), up("ctrl")},
		},
		{
			name: "ctrl alt del",
			text: "<leftCtrlOn><leftAltOn><del><leftAltOff><leftCtrlOff>",
			want: []KeyEvent{down("ctrl"), down("alt"), down("delete"), up("delete"), up("alt"), up("ctrl")},
		},
		{
			name: "shift held types capitals without extra shift",
			text: "<leftShiftOn>Ab<leftShiftOff>C",
			want: concat([]KeyEvent{down("shift")}, tap("a"), tap("b"), []KeyEvent{up("shift")}, shifted("c")),
		},
		{
			name: "right shift held",
			text: "<rightShiftOn>|<rightShiftOff>",
			want: concat([]KeyEvent{down("shift_r")}, tap("backslash"), []KeyEvent{up("shift_r")}),
		},
		{
			name: "super tap",
			text: "<leftSuper>",
			want: tap("meta_l"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kb := &recordingKeyboard{}
			typer := &Typer{Keyboard: kb, Interval: -1, Burst: 1000}
			if err := runTyper(t, typer, tt.text); err != nil {
				t.Fatalf("Run failed: %v", err)
			}
			if got := kb.all(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events =\n %v\nwant\n %v", got, tt.want)
			}
		})
	}
}

func TestTyperBatches(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		burst int
		hold  time.Duration
		want  []int // events per SendKeys call
	}{
		{name: "one burst", text: "abc", burst: 8, want: []int{6}},
		{name: "exact burst", text: "abcdefgh", burst: 8, want: []int{16}},
		{name: "bursts of eight", text: strings.Repeat("a", 20), burst: 8, want: []int{16, 16, 8}},
		{name: "default burst", text: "abc", want: []int{2, 2, 2}},
		{name: "shifted keys fill 16 bytes", text: "AAAAAAAAA", burst: 8, want: []int{16, 16, 4}},
		{name: "mixed case fills 16 bytes", text: "abcdefGH", burst: 8, want: []int{16, 4}},
		{name: "extended keys take two bytes", text: "<up><up><up><up><up>", burst: 8, want: []int{8, 2}},
		{name: "byte limit restarts the burst", text: "AAAAaaaaaaaa", burst: 8, want: []int{16, 16}},
		{name: "burst of one", text: "abc", burst: 1, want: []int{2, 2, 2}},
		{name: "enter ends a batch", text: "ab<enter>cd", burst: 8, want: []int{6, 4}},
		{name: "enter keeps the burst count", text: "abcdef<enter>gh", burst: 4, want: []int{8, 6, 2, 2}},
		{name: "wait ends a batch", text: "ab<wait1ms>cd", burst: 8, want: []int{4, 4}},
		{name: "wait resets the burst count", text: "abcdef<wait1ms>abcd", burst: 4, want: []int{8, 4, 8}},
		{name: "hold splits press and release", text: "aB", burst: 8, hold: time.Microsecond, want: []int{1, 1, 2, 2}},
		{name: "modifier counts as a key", text: "<leftCtrlOn>c<leftCtrlOff>", burst: 2, want: []int{3, 1}},
		{name: "empty program", text: "", burst: 8, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kb := &recordingKeyboard{}
			typer := &Typer{Keyboard: kb, Interval: time.Microsecond, Burst: tt.burst, Hold: tt.hold}
			if err := runTyper(t, typer, tt.text); err != nil {
				t.Fatalf("Run failed: %v", err)
			}
			if got := kb.sizes(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("batch sizes = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTyperDefaults(t *testing.T) {
	tests := []struct {
		name         string
		typer        Typer
		wantBurst    int
		wantInterval time.Duration
	}{
		{name: "zero values", typer: Typer{}, wantBurst: DefaultBurst, wantInterval: DefaultInterval},
		{name: "set values", typer: Typer{Burst: 3, Interval: time.Second}, wantBurst: 3, wantInterval: time.Second},
		{name: "negative interval", typer: Typer{Interval: -1}, wantBurst: DefaultBurst, wantInterval: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.typer.burst(); got != tt.wantBurst {
				t.Errorf("burst = %d, want %d", got, tt.wantBurst)
			}
			if got := tt.typer.interval(); got != tt.wantInterval {
				t.Errorf("interval = %s, want %s", got, tt.wantInterval)
			}
		})
	}
}

func TestTyperWaitFor(t *testing.T) {
	kb := &recordingKeyboard{}
	console := &fakeConsole{}
	typer := &Typer{Keyboard: kb, Console: console, Interval: -1, Burst: 100}
	if err := runTyper(t, typer, `<esc><waitFor "boot:" 30s>install<enter>`); err != nil {
		t.Fatalf("Run failed: %v", err)
	}
	if want := []string{"boot:"}; !reflect.DeepEqual(console.texts, want) {
		t.Errorf("waited for %q, want %q", console.texts, want)
	}
	if want := []time.Duration{30 * time.Second}; !reflect.DeepEqual(console.timeouts, want) {
		t.Errorf("timeouts = %v, want %v", console.timeouts, want)
	}
	if got, want := kb.sizes(), []int{2, 16}; !reflect.DeepEqual(got, want) {
		t.Errorf("batch sizes = %v, want %v", got, want)
	}
}

func TestTyperWaitForFailure(t *testing.T) {
	kb := &recordingKeyboard{}
	timedOut := errors.New(`"boot:" did not appear within 30s`)
	typer := &Typer{Keyboard: kb, Console: &fakeConsole{err: timedOut}, Interval: -1}
	err := runTyper(t, typer, `<esc><waitFor "boot:" 30s>install<enter>`)
	if !errors.Is(err, timedOut) {
		t.Fatalf("Run error = %v, want it to wrap %v", err, timedOut)
	}
	if !strings.Contains(err.Error(), "<waitFor> at byte offset 5") {
		t.Errorf("error = %q, want the <waitFor> position", err)
	}
	if got, want := kb.sizes(), []int{2}; !reflect.DeepEqual(got, want) {
		t.Errorf("batch sizes = %v, want %v: nothing after the failed wait may be typed", got, want)
	}
}

func TestTyperWaitForWithoutConsole(t *testing.T) {
	kb := &recordingKeyboard{}
	typer := &Typer{Keyboard: kb, Interval: -1}
	err := runTyper(t, typer, `<esc><waitFor "boot:">`)
	if err == nil {
		t.Fatal("Run succeeded without a console, want an error")
	}
	if !strings.Contains(err.Error(), "no serial console is attached") {
		t.Errorf("error = %q, want it to name the missing console", err)
	}
	if sizes := kb.sizes(); len(sizes) != 0 {
		t.Errorf("sent %v before failing, want nothing", sizes)
	}
}

func TestTyperWithoutKeyboard(t *testing.T) {
	typer := &Typer{}
	if err := runTyper(t, typer, "a"); err == nil {
		t.Fatal("Run succeeded without a keyboard, want an error")
	}
}

func TestTyperSendError(t *testing.T) {
	qmpDown := errors.New("QMP socket closed")
	kb := &recordingKeyboard{err: qmpDown}
	typer := &Typer{Keyboard: kb, Interval: -1, Burst: 8}
	err := runTyper(t, typer, "abc")
	if !errors.Is(err, qmpDown) {
		t.Fatalf("Run error = %v, want it to wrap %v", err, qmpDown)
	}
	if !strings.Contains(err.Error(), "failed to send 6 key events") {
		t.Errorf("error = %q, want the event count", err)
	}
}

func TestTyperCancelDuringWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kb := &recordingKeyboard{onSend: func(n int) {
		if n == 1 {
			cancel()
		}
	}}
	typer := &Typer{Keyboard: kb, Interval: -1}
	p, _ := mustParse(t, "a<wait1h>b")

	done := make(chan error, 1)
	go func() { done <- typer.Run(ctx, p) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	if got, want := kb.all(), tap("a"); !reflect.DeepEqual(got, want) {
		t.Errorf("events = %v, want only %v", got, want)
	}
}

func TestTyperCancelDuringPause(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kb := &recordingKeyboard{onSend: func(n int) { cancel() }}
	typer := &Typer{Keyboard: kb, Interval: time.Hour, Burst: 2}
	p, _ := mustParse(t, "abcdef")

	done := make(chan error, 1)
	go func() { done <- typer.Run(ctx, p) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	if got, want := kb.sizes(), []int{4}; !reflect.DeepEqual(got, want) {
		t.Errorf("batch sizes = %v, want %v", got, want)
	}
}

func TestTyperReleasesHeldKeys(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		cancel bool
		want   []KeyEvent
	}{
		{
			name: "at the end",
			text: "<leftCtrlOn><rightAltOn>x",
			want: concat([]KeyEvent{down("ctrl"), down("alt_r")}, tap("x"), []KeyEvent{up("ctrl"), up("alt_r")}),
		},
		{
			name:   "after cancellation",
			text:   "<leftShiftOn><wait1h>x",
			cancel: true,
			want:   []KeyEvent{down("shift"), up("shift")},
		},
		{
			name: "not when released",
			text: "<leftCtrlOn>x<leftCtrlOff>",
			want: concat([]KeyEvent{down("ctrl")}, tap("x"), []KeyEvent{up("ctrl")}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			kb := &recordingKeyboard{}
			if tt.cancel {
				kb.onSend = func(n int) { cancel() }
			}
			typer := &Typer{Keyboard: kb, Interval: -1}
			p, _ := mustParse(t, tt.text)
			err := typer.Run(ctx, p)
			if tt.cancel != errors.Is(err, context.Canceled) {
				t.Errorf("Run error = %v, cancelled = %v", err, tt.cancel)
			}
			if got := kb.all(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events =\n %v\nwant\n %v", got, tt.want)
			}
		})
	}
}

func TestTyperCancelDuringHoldReleasesKey(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kb := &recordingKeyboard{onSend: func(n int) { cancel() }}
	typer := &Typer{Keyboard: kb, Interval: -1, Hold: time.Hour}
	p, _ := mustParse(t, "Ab")
	err := typer.Run(ctx, p)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
	want := [][]KeyEvent{{down("shift"), down("a")}, {up("a"), up("shift")}}
	if !reflect.DeepEqual(kb.batches, want) {
		t.Errorf("batches = %v, want %v", kb.batches, want)
	}
}

// eventRecorder collects events emitted to it.
type eventRecorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *eventRecorder) Emit(e event.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *eventRecorder) messages(kind event.Kind) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e.Message)
		}
	}
	return out
}

func TestTyperEvents(t *testing.T) {
	sink := &eventRecorder{}
	emitter := event.NewEmitter("test", sink)
	emitter.AddSecrets("hunter2")
	typer := &Typer{Keyboard: &recordingKeyboard{}, Console: &fakeConsole{}, Interval: -1, Burst: 2, Emitter: emitter}
	text := `<esc><wait1ms>install password=hunter2 a<lt>b<enter>` +
		`<waitFor "login:" 1s>root<enter><leftCtrlOn>d<leftCtrlOff>`
	if err := runTyper(t, typer, text); err != nil {
		t.Fatalf("Run failed: %v", err)
	}

	wantTyped := []string{
		"<esc>",
		"install password=******** a<b<enter>",
		"root<enter>",
		"<leftCtrlOn>d<leftCtrlOff>",
	}
	if got := sink.messages(event.KeysTyped); !reflect.DeepEqual(got, wantTyped) {
		t.Errorf("KeysTyped messages =\n %q\nwant\n %q", got, wantTyped)
	}
	wantInfo := []string{`waiting up to 1s for "login:" on the serial console`}
	if got := sink.messages(event.Info); !reflect.DeepEqual(got, wantInfo) {
		t.Errorf("Info messages = %q, want %q", got, wantInfo)
	}

	p, _ := mustParse(t, text)
	total := p.Keystrokes()
	wantProgress := fmt.Sprintf("typed %d of %d keys", total, total)
	progress := sink.messages(event.Progress)
	if len(progress) != len(wantTyped) {
		t.Fatalf("Progress messages = %q, want %d", progress, len(wantTyped))
	}
	if last := progress[len(progress)-1]; last != wantProgress {
		t.Errorf("last Progress message = %q, want %q", last, wantProgress)
	}
}

// echoingGuest is a keyboard and an Echo: for each batch that ends with a
// key release it echoes one byte after delay, unless the batch's number is
// in silent.
type echoingGuest struct {
	recordingKeyboard
	delay  time.Duration
	silent map[int]bool
	echo   EchoCounter

	mu    sync.Mutex
	waits int // WaitBeyond calls
}

func newEchoingGuest(delay time.Duration) *echoingGuest {
	g := &echoingGuest{delay: delay, silent: map[int]bool{}}
	g.onSend = func(n int) {
		g.recordingKeyboard.mu.Lock()
		last := g.batches[n-1]
		g.recordingKeyboard.mu.Unlock()
		if last[len(last)-1].Down || g.silent[n] {
			return
		}
		time.AfterFunc(g.delay, func() { g.echo.Add(1) })
	}
	return g
}

func (g *echoingGuest) Received() int64 { return g.echo.Received() }

func (g *echoingGuest) WaitBeyond(ctx context.Context, n int64, timeout time.Duration) bool {
	g.mu.Lock()
	g.waits++
	g.mu.Unlock()
	return g.echo.WaitBeyond(ctx, n, timeout)
}

var _ Echo = (*echoingGuest)(nil)

func TestTyperEchoPacing(t *testing.T) {
	tests := []struct {
		name     string
		command  string
		interval time.Duration
		hold     time.Duration
		burst    int
		// min is the least time the run can take when it waits for each
		// echo; the run must also end before one echo timeout more.
		min     time.Duration
		silent  []int // batches that bring no echo
		batches []int // events per SendKeys call
		waits   int   // echo waits
	}{
		{
			name:    "each character waits for its echo, no pause after it",
			command: "abcD",
			burst:   4,
			min:     4 * 40 * time.Millisecond,
			batches: []int{2, 2, 2, 4},
			waits:   4,
		},
		{
			name:     "a positive interval adds a pause after each echo",
			command:  "ab",
			interval: 100 * time.Millisecond,
			min:      2 * 140 * time.Millisecond,
			batches:  []int{2, 2},
			waits:    2,
		},
		{
			name:    "keys that print nothing keep the fixed pace",
			command: "a<enter><esc>b",
			silent:  []int{2, 3},
			min:     2*40*time.Millisecond + 2*DefaultInterval,
			batches: []int{2, 2, 2, 2},
			waits:   2,
		},
		{
			name:    "held keys go down and up separately",
			command: "ab",
			hold:    30 * time.Millisecond,
			min:     2 * (30 + 40) * time.Millisecond,
			batches: []int{1, 1, 1, 1},
			waits:   2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newEchoingGuest(40 * time.Millisecond)
			for _, n := range tt.silent {
				g.silent[n] = true
			}
			prog, _, err := Parse(tt.command)
			if err != nil {
				t.Fatal(err)
			}
			typer := &Typer{Keyboard: g, Echo: g, Interval: tt.interval, Hold: tt.hold, Burst: tt.burst}
			start := time.Now()
			if err := typer.Run(context.Background(), prog); err != nil {
				t.Fatalf("Run() = %v", err)
			}
			took := time.Since(start)
			if took < tt.min {
				t.Errorf("run took %s, want at least %s", took, tt.min)
			}
			// Waiting out an echo timeout instead of the echo would add a
			// whole second; the margin below leaves room for a busy host.
			if limit := tt.min + DefaultEchoTimeout - 100*time.Millisecond; took > limit {
				t.Errorf("run took %s, want under %s", took, limit)
			}
			if got := g.sizes(); !reflect.DeepEqual(got, tt.batches) {
				t.Errorf("batch sizes = %v, want %v", got, tt.batches)
			}
			if g.waits != tt.waits {
				t.Errorf("echo waits = %d, want %d", g.waits, tt.waits)
			}
		})
	}
}

func TestTyperEchoPacingGivesUp(t *testing.T) {
	tests := []struct {
		name      string
		silent    []int // batches that bring no echo
		waits     int
		wantInfos int
	}{
		{name: "a missed echo now and then keeps pacing on", silent: []int{2, 3, 4, 6, 7, 8}, waits: 10},
		{name: "four misses in a row turn it off", silent: []int{2, 3, 4, 5}, waits: 5, wantInfos: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newEchoingGuest(time.Millisecond)
			for _, n := range tt.silent {
				g.silent[n] = true
			}
			var infos []string
			emitter := event.NewEmitter("t", event.SinkFunc(func(e event.Event) {
				if e.Kind == event.Info {
					infos = append(infos, e.Message)
				}
			}))
			prog, _, err := Parse("abcdefghij")
			if err != nil {
				t.Fatal(err)
			}
			typer := &Typer{Keyboard: g, Echo: g, EchoTimeout: 50 * time.Millisecond, Interval: time.Millisecond, Emitter: emitter}
			if err := typer.Run(context.Background(), prog); err != nil {
				t.Fatalf("Run() = %v", err)
			}
			if g.waits != tt.waits {
				t.Errorf("echo waits = %d, want %d", g.waits, tt.waits)
			}
			if len(infos) != tt.wantInfos {
				t.Errorf("info events = %q, want %d", infos, tt.wantInfos)
			}
			if len(g.all()) != 20 {
				t.Errorf("sent %d key events, want 20", len(g.all()))
			}
		})
	}
}

func TestTyperEchoWaitCancelled(t *testing.T) {
	g := newEchoingGuest(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	prog, _, err := Parse("abc")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = (&Typer{Keyboard: g, Echo: g}).Run(ctx, prog)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run() = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("Run returned %s after the cancel, want at once", took)
	}
	if n := len(g.sizes()); n != 1 {
		t.Errorf("sent %d batches, want 1 before the cancel", n)
	}
}

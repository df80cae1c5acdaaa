package tui

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/bakeimg/bake/event"
)

func TestBuildStatesFromEvents(t *testing.T) {
	tests := []struct {
		name        string
		events      []event.Event
		wantStatus  status
		wantStep    string
		wantTotal   int64
		wantElapsed time.Duration
		wantGlyph   string
	}{
		{
			name:       "queued",
			wantStatus: statusQueued,
			wantGlyph:  "·",
		},
		{
			name:        "running with size",
			events:      []event.Event{started("a", 0), stepStarted("a", "fetch", 1), progressed("a", 2, 50, 200)},
			wantStatus:  statusRunning,
			wantStep:    "fetch",
			wantTotal:   200,
			wantElapsed: 90 * time.Second,
			wantGlyph:   "●",
		},
		{
			name:        "progress without build.started",
			events:      []event.Event{progressed("a", 10, 5, 0)},
			wantStatus:  statusRunning,
			wantElapsed: 80 * time.Second,
			wantGlyph:   "●",
		},
		{
			name:        "done",
			events:      []event.Event{started("a", 0), stepStarted("a", "export", 1), finished("a", 30, "")},
			wantStatus:  statusDone,
			wantElapsed: 30 * time.Second,
			wantGlyph:   "✓",
		},
		{
			name:        "failed keeps the failing step",
			events:      []event.Event{started("a", 0), stepStarted("a", "boot", 1), finished("a", 40, "boot: timed out")},
			wantStatus:  statusFailed,
			wantStep:    "boot",
			wantElapsed: 40 * time.Second,
			wantGlyph:   "✗",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
			m.send(tt.events...)
			b := m.byName["a"]

			if b.status != tt.wantStatus {
				t.Errorf("status = %d, want %d", b.status, tt.wantStatus)
			}
			if b.step != tt.wantStep {
				t.Errorf("step = %q, want %q", b.step, tt.wantStep)
			}
			if b.total != tt.wantTotal {
				t.Errorf("total = %d, want %d", b.total, tt.wantTotal)
			}
			if got := b.elapsed(m.now()); got != tt.wantElapsed {
				t.Errorf("elapsed = %s, want %s", got, tt.wantElapsed)
			}
			if got := ansi.Strip(m.glyph(b)); got != tt.wantGlyph {
				t.Errorf("glyph = %q, want %q", got, tt.wantGlyph)
			}
		})
	}
}

func TestUnknownBuildIsAppended(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
	m.send(started("b", 0))

	if len(m.builds) != 2 {
		t.Fatalf("builds = %d, want 2", len(m.builds))
	}
	if m.builds[1].name != "b" {
		t.Errorf("second build = %q, want %q", m.builds[1].name, "b")
	}
}

func TestProgressBarAndSpinner(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
	m.send(started("a", 0), stepStarted("a", "fetch", 1), progressed("a", 2, 150, 200))
	if got := ansi.Strip(m.stepInfo(m.builds[0], 30)); !strings.Contains(got, "█") || !strings.HasSuffix(got, " 75%") {
		t.Errorf("step info with size = %q, want a bar ending in 75%%", got)
	}

	m.send(progressed("a", 3, 150, 0))
	got := ansi.Strip(m.stepInfo(m.builds[0], 30))
	if strings.Contains(got, "█") || strings.Contains(got, "%") {
		t.Errorf("step info without size = %q, want no bar", got)
	}
	if !strings.ContainsAny(got, strings.Join(spinnerFrames, "")) {
		t.Errorf("step info without size = %q, want a spinner frame", got)
	}
}

func TestEventLogLines(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
	m.send(
		started("a", 0),
		stepStarted("a", "fetch", 1),
		stepFinished("a", "fetch", 5, 4200*time.Millisecond, ""),
		event.Event{Time: at(6), Build: "a", Kind: event.HTTPRequest,
			HTTP: &event.HTTP{Method: "GET", Path: "/preseed.cfg", Status: http.StatusOK, Bytes: 2048}},
		message("a", event.Output, 7, "\x1b[32mok\x1b[0m installed"),
		event.Event{Time: at(7), Build: "a", Kind: event.Output, Message: "E: no package", Stderr: true},
		message("a", event.Debug, 7, "argv: qemu-system-x86_64"),
		message("a", event.Warning, 8, "kvm unavailable"),
		event.Event{Time: at(9), Build: "a", Kind: event.Error, Message: "ssh", Err: "handshake failed"},
		stepFinished("a", "ssh", 70, 61*time.Second, "timed out"),
		consoleOut("a", "not in the log\r\n"),
	)

	want := []string{
		"build started",
		"▶ fetch",
		"✓ fetch 4.2s",
		"GET /preseed.cfg 200 2.0 KiB",
		"│ ok installed",
		"┃ E: no package",
		"⚠ kvm unavailable",
		"✗ ssh handshake failed",
		"✗ ssh failed after 1m01s: timed out",
	}
	b := m.builds[0]
	if b.log.len() != len(want) {
		t.Fatalf("log has %d entries, want %d", b.log.len(), len(want))
	}
	for i, w := range want {
		if got := b.log.at(i).text; got != w {
			t.Errorf("log[%d] = %q, want %q", i, got, w)
		}
	}
}

func TestSelectBuildKeys(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		want int
	}{
		{name: "tab", keys: []string{"tab"}, want: 1},
		{name: "tab wraps", keys: []string{"tab", "tab", "tab"}, want: 0},
		{name: "shift+tab wraps", keys: []string{"shift+tab"}, want: 2},
		{name: "digit", keys: []string{"3"}, want: 2},
		{name: "digit beyond list", keys: []string{"2", "9"}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t, Options{Builds: []string{"a", "b", "c"}}, 80, 24)
			m.press(tt.keys...)
			if m.selected != tt.want {
				t.Errorf("selected = %d, want %d", m.selected, tt.want)
			}
		})
	}
}

func TestConsoleScrollAndFollow(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
	m.send(started("a", 0), consoleOut("a", numberedLines("line", 200)))
	b := m.builds[0]

	m.press("k", "k", "k")
	if b.consoleFollow {
		t.Error("follow still on after scrolling up")
	}
	if b.consoleOffset != 3 {
		t.Errorf("offset = %d, want 3", b.consoleOffset)
	}
	top := firstConsoleLine(m)

	m.send(consoleOut("a", numberedLines("more", 5)))
	if got := firstConsoleLine(m); got != top {
		t.Errorf("scrolled view moved with new output: top line %q, want %q", got, top)
	}

	m.press("G")
	if !b.consoleFollow || b.consoleOffset != 0 {
		t.Errorf("after G: follow = %t, offset = %d; want true, 0", b.consoleFollow, b.consoleOffset)
	}
	if !strings.Contains(m.screen(), "more xxxx 4") {
		t.Error("following view does not show the newest line")
	}

	m.press("g")
	if !strings.Contains(m.screen(), "line  0") {
		t.Error("g does not show the oldest line")
	}
	m.press("f")
	if !b.consoleFollow {
		t.Error("f did not turn follow on")
	}
}

func firstConsoleLine(m *model) string {
	lines := strings.Split(m.screen(), "\n")
	return strings.TrimSpace(lines[4]) // header, tabs, status line, title
}

func TestConsoleScrollbackIsBounded(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}, Scrollback: 50}, 80, 24)
	m.send(consoleOut("a", numberedLines("line", 1000)))
	c := m.builds[0].console

	if got := c.ring.len(); got != 50 {
		t.Errorf("scrollback lines = %d, want 50", got)
	}
	if got := c.Len(); got > 50+consoleHeight {
		t.Errorf("console document = %d lines, want at most %d", got, 50+consoleHeight)
	}
	if got := c.emu.ScrollbackLen(); got != 0 {
		t.Errorf("emulator scrollback = %d lines, want 0 after draining", got)
	}
}

func TestConsoleFullScreenApplication(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 120, 40)
	// An installer dialog: alternate screen, cleared, text placed by
	// cursor addressing.
	m.send(consoleOut("a", "\x1b[?1049h\x1b[2J\x1b[10;20H[ Configure the network ]\x1b[12;25H<Continue>"))
	c := m.builds[0].console

	lines, _ := c.View(consoleHeight, 0)
	if len(lines) != consoleHeight {
		t.Fatalf("alternate screen shows %d rows, want %d", len(lines), consoleHeight)
	}
	if got := ansi.Strip(lines[9]); !strings.HasPrefix(got, strings.Repeat(" ", 19)+"[ Configure the network ]") {
		t.Errorf("row 10 = %q, want the dialog title at column 20", got)
	}
	if got := ansi.Strip(lines[11]); !strings.Contains(got, "<Continue>") {
		t.Errorf("row 12 = %q, want the button", got)
	}
}

func TestConsoleAnswersTerminalQueries(t *testing.T) {
	var mu sync.Mutex
	var replies []string
	attach := func(build string, data []byte) {
		mu.Lock()
		replies = append(replies, build+":"+string(data))
		mu.Unlock()
	}
	m := newTestModel(t, Options{Builds: []string{"a"}, Attach: attach}, 80, 24)
	m.send(consoleOut("a", "\x1b[5;7H\x1b[6n"))

	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(replies)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(replies) != 1 || replies[0] != "a:\x1b[5;7R" {
		t.Errorf("replies = %q, want one cursor position report \"a:\\x1b[5;7R\"", replies)
	}
}

func TestConsoleDropsOldestWhenBehind(t *testing.T) {
	c := newConsole(100, nil)
	t.Cleanup(c.Close)

	// A worker marked busy that never runs acts as an emulator that cannot
	// keep up.
	c.qmu.Lock()
	c.working = true
	c.qmu.Unlock()
	chunk := []byte(strings.Repeat("x", 256<<10))
	for range 20 {
		c.Write(chunk)
	}
	c.qmu.Lock()
	queued, dropped := c.queued, c.dropped
	c.queue, c.queued, c.working = nil, 0, false
	c.qmu.Unlock()

	if queued > maxPending {
		t.Errorf("queued = %d bytes, want at most %d", queued, maxPending)
	}
	if dropped == 0 {
		t.Error("dropped = 0, want the oldest chunks dropped")
	}
	if got := c.Dropped(); got != dropped {
		t.Errorf("Dropped() = %d, want %d", got, dropped)
	}
}

func TestConsoleCutsOneLargeWrite(t *testing.T) {
	c := newConsole(100, nil)
	t.Cleanup(c.Close)
	c.qmu.Lock()
	c.working = true
	c.qmu.Unlock()

	c.Write([]byte(strings.Repeat("x", maxPending+10) + "tail"))
	c.qmu.Lock()
	queued, dropped, kept := c.queued, c.dropped, string(c.queue[0])
	c.queue, c.queued, c.working = nil, 0, false
	c.qmu.Unlock()

	if queued != maxPending {
		t.Errorf("queued = %d bytes, want %d", queued, maxPending)
	}
	if dropped != 14 {
		t.Errorf("dropped = %d bytes, want 14", dropped)
	}
	if !strings.HasSuffix(kept, "tail") {
		t.Error("the newest bytes were dropped instead of the oldest")
	}
}

func TestZoomGivesConsoleWholeScreen(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
	m.send(started("a", 0), consoleOut("a", numberedLines("line", 100)))
	m.press("z")

	if !m.zoom {
		t.Fatal("zoom is off after z")
	}
	lines := strings.Split(m.screen(), "\n")
	if !strings.Contains(lines[0], "console · a") {
		t.Errorf("first line = %q, want the console title", lines[0])
	}
	if got := m.layout().consoleRows; got != 23 {
		t.Errorf("console rows = %d, want 23", got)
	}
	if got := strings.TrimSpace(lines[22]); got != "line x 99" {
		t.Errorf("line 22 = %q, want the console's last line", got)
	}
	if got := strings.TrimSpace(lines[23]); got != "" {
		t.Errorf("line 23 = %q, want the empty cursor row", got)
	}

	m.press("z")
	if m.zoom {
		t.Error("zoom is on after pressing z twice")
	}
}

func TestSearchLog(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
	var events []event.Event
	for i := range 60 {
		events = append(events, message("a", event.Output, i, "package "+string(rune('a'+i%26))))
	}
	m.send(events...)
	b := m.builds[0]

	m.press("/", "p", "a", "c", "k", "a", "g", "e", " ", "Q")
	if m.mode != modeSearch {
		t.Fatalf("mode = %d, want search", m.mode)
	}
	if len(m.matches) != 2 {
		t.Fatalf("matches for %q = %d, want 2", m.query, len(m.matches))
	}
	if m.focus != paneLog {
		t.Error("search did not focus the log")
	}
	if m.match != 1 {
		t.Errorf("current match = %d, want the newest (1)", m.match)
	}

	m.press("enter", "n")
	if m.mode != modeNormal {
		t.Errorf("mode after enter = %d, want normal", m.mode)
	}
	if m.match != 0 {
		t.Errorf("current match after n = %d, want 0 (wrapped)", m.match)
	}
	if b.logFollow {
		t.Error("log still follows after jumping to an old match")
	}
	screen := m.screen()
	if !strings.Contains(screen, "package q") {
		t.Errorf("screen does not show the match:\n%s", screen)
	}

	m.press("N")
	if m.match != 1 {
		t.Errorf("current match after N = %d, want 1", m.match)
	}

	m.press("esc")
	if m.query != "" || len(m.matches) != 0 {
		t.Errorf("after esc: query %q with %d matches, want none", m.query, len(m.matches))
	}
}

func TestSearchHighlightsMatches(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
	m.send(message("a", event.Info, 1, "fetch preseed.cfg from Preseed server"))
	m.press("/", "p", "r", "e", "s", "e", "e", "d")

	line := m.logLine(m.builds[0].log.at(0), 80, true)
	want := m.styles.current.Render("preseed")
	if strings.Count(line, want) != 1 {
		t.Errorf("line %q does not mark the first match as current", line)
	}
	if strings.Count(line, m.styles.current.Render("Preseed")) != 1 {
		t.Errorf("line %q does not mark the match that differs in case", line)
	}
}

func TestQuitAsksWhileRunning(t *testing.T) {
	stops := 0
	m := newTestModel(t, Options{Builds: []string{"a"}, Stop: func() { stops++ }}, 80, 24)
	m.send(started("a", 0))

	if cmd := m.press("q"); cmd != nil {
		t.Error("q returned a command while a build runs, want a confirmation first")
	}
	if m.mode != modeConfirm {
		t.Fatalf("mode = %d, want confirm", m.mode)
	}
	if !strings.Contains(m.screen(), "1 build still running. Stop and quit? y/n") {
		t.Errorf("screen lacks the confirmation:\n%s", m.screen())
	}

	m.press("n")
	if m.mode != modeNormal || stops != 0 {
		t.Errorf("after n: mode %d, %d stops; want normal and none", m.mode, stops)
	}

	m.press("q", "y")
	if stops != 1 {
		t.Errorf("Stop called %d times, want 1", stops)
	}
	if m.quitting {
		t.Error("quit before the build finished")
	}
	cmd := m.send(finished("a", 9, "context canceled"))
	if !isQuit(cmd) {
		t.Error("no quit after the stopped build finished")
	}
}

func TestQuitAtOnceWhenFinished(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
	m.Update(batchMsg{events: []event.Event{started("a", 0), finished("a", 5, "")}, closed: true})

	if !strings.Contains(m.screen(), "all builds finished: 1 done, 0 failed") {
		t.Errorf("screen lacks the final summary:\n%s", m.screen())
	}
	if cmd := m.press("q"); !isQuit(cmd) {
		t.Error("q did not quit after the channel closed")
	}
}

func TestCtrlCTwiceForces(t *testing.T) {
	stops := 0
	m := newTestModel(t, Options{Builds: []string{"a"}, Stop: func() { stops++ }}, 80, 24)
	m.send(started("a", 0))

	if cmd := m.press("ctrl+c"); cmd != nil {
		t.Error("first ctrl+c quit, want a confirmation")
	}
	if !strings.Contains(m.screen(), "ctrl+c again") {
		t.Errorf("screen lacks the ctrl+c hint:\n%s", m.screen())
	}
	if cmd := m.press("ctrl+c"); !isQuit(cmd) {
		t.Error("second ctrl+c did not quit")
	}
	if stops != 1 {
		t.Errorf("Stop called %d times, want 1", stops)
	}
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func TestAttachSendsKeys(t *testing.T) {
	var sent []string
	attach := func(build string, data []byte) { sent = append(sent, build+":"+string(data)) }
	m := newTestModel(t, Options{Builds: []string{"a", "b"}, Attach: attach}, 80, 24)
	m.send(started("b", 0))

	m.press("a")
	if m.mode == modeAttached {
		t.Fatal("attached to a build that is not running")
	}
	if !strings.Contains(m.screen(), "cannot attach: a is not running") {
		t.Errorf("screen lacks the reason:\n%s", m.screen())
	}

	m.press("2", "a")
	if m.mode != modeAttached {
		t.Fatalf("mode = %d, want attached", m.mode)
	}
	if !strings.Contains(m.screen(), "ATTACHED") {
		t.Error("screen lacks the ATTACHED badge")
	}
	m.press("l", "s", "enter", "up", "ctrl+c", "esc", "q")
	if m.mode != modeAttached {
		t.Errorf("mode after ctrl+c, esc and q = %d, want still attached", m.mode)
	}
	m.press("ctrl+]", "q")

	want := []string{"b:l", "b:s", "b:\r", "b:\x1b[A", "b:\x03", "b:\x1b", "b:q"}
	if strings.Join(sent, "|") != strings.Join(want, "|") {
		t.Errorf("sent %q, want %q", sent, want)
	}
	if m.mode != modeConfirm {
		t.Errorf("q after ctrl+] did not reach the dashboard: mode %d", m.mode)
	}
}

func TestAttachUnavailable(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
	m.send(started("a", 0))
	m.press("a")

	if m.mode == modeAttached {
		t.Error("attached without an Attach function")
	}
	if !strings.Contains(m.screen(), "attaching is not available") {
		t.Errorf("screen lacks the reason:\n%s", m.screen())
	}
}

func TestKeyBytes(t *testing.T) {
	tests := []struct {
		name string
		msg  tea.KeyPressMsg
		want string
	}{
		{name: "letter", msg: tea.KeyPressMsg{Code: 'x', Text: "x"}, want: "x"},
		{name: "ctrl letter", msg: tea.KeyPressMsg{Code: 'd', Mod: tea.ModCtrl}, want: "\x04"},
		{name: "alt letter", msg: tea.KeyPressMsg{Code: 'b', Text: "b", Mod: tea.ModAlt}, want: "\x1bb"},
		{name: "enter", msg: tea.KeyPressMsg{Code: tea.KeyEnter}, want: "\r"},
		{name: "backspace", msg: tea.KeyPressMsg{Code: tea.KeyBackspace}, want: "\x7f"},
		{name: "f2", msg: tea.KeyPressMsg{Code: tea.KeyF2}, want: "\x1bOQ"},
		{name: "no encoding", msg: tea.KeyPressMsg{Code: tea.KeyF30}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(keyBytes(tt.msg)); got != tt.want {
				t.Errorf("keyBytes = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScreenSizeIsExact(t *testing.T) {
	sizes := []struct {
		name          string
		width, height int
		wantWide      bool
	}{
		{name: "80x24", width: 80, height: 24, wantWide: false},
		{name: "100x30", width: 100, height: 30, wantWide: false},
		{name: "160x50", width: 160, height: 50, wantWide: true},
		{name: "120x14", width: 120, height: 14, wantWide: true},
		{name: "30x6", width: 30, height: 6, wantWide: false},
		{name: "1x1", width: 1, height: 1, wantWide: false},
	}
	for _, tt := range sizes {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t, Options{Builds: []string{"debian-12", "ubuntu-24-with-a-long-name"}}, tt.width, tt.height)
			m.send(started("debian-12", 0), stepStarted("debian-12", "fetch", 1), progressed("debian-12", 2, 10, 100),
				consoleOut("debian-12", strings.Repeat("wide ", 40)+"\r\n"+numberedLines("l", 30)),
				message("debian-12", event.Info, 3, strings.Repeat("long ", 50)))

			if got := m.layout().wide; got != tt.wantWide {
				t.Errorf("wide = %t, want %t", got, tt.wantWide)
			}
			for _, keys := range [][]string{nil, {"l"}, {"?"}, {"z"}} {
				m.press(keys...)
				lines := strings.Split(m.View().Content, "\n")
				if len(lines) != tt.height {
					t.Errorf("keys %v: %d lines, want %d", keys, len(lines), tt.height)
				}
				for i, line := range lines {
					if w := ansi.StringWidth(line); w != tt.width {
						t.Errorf("keys %v: line %d is %d cells wide, want %d: %q", keys, i, w, tt.width, ansi.Strip(line))
					}
				}
				m.press("esc")
			}
		})
	}
}

func TestNoColor(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}, NoColor: true}, 120, 40)
	m.send(started("a", 0), stepStarted("a", "fetch", 1), progressed("a", 2, 10, 100),
		message("a", event.Warning, 3, "careful"), finished("a", 4, "boom"))

	content := m.View().Content
	for _, part := range strings.Split(content, "\x1b")[1:] {
		if isColourSGR(part) {
			t.Errorf("colour sequence %q in a NoColor screen", part[:min(len(part), 16)])
		}
	}
}

// isColourSGR reports whether an escape sequence body sets a foreground
// or background colour.
func isColourSGR(body string) bool {
	if !strings.HasPrefix(body, "[") {
		return false
	}
	end := strings.IndexByte(body, 'm')
	if end < 0 {
		return false
	}
	for _, p := range strings.Split(body[1:end], ";") {
		if len(p) == 2 && (p[0] == '3' || p[0] == '4') && p[1] != '9' {
			return true
		}
		if p == "38" || p == "48" {
			return true
		}
	}
	return false
}

func TestLayoutPanes(t *testing.T) {
	tests := []struct {
		name        string
		width       int
		height      int
		keys        []string
		wantConsole int
		wantLog     int
	}{
		{name: "80x24 console", width: 80, height: 24, wantConsole: 19, wantLog: 0},
		{name: "80x24 log", width: 80, height: 24, keys: []string{"l"}, wantConsole: 0, wantLog: 19},
		{name: "80x50 stacked", width: 80, height: 50, wantConsole: 24, wantLog: 20},
		{name: "140x40 beside", width: 140, height: 40, wantConsole: 21, wantLog: 15},
		{name: "140x12 one pane", width: 140, height: 12, wantConsole: 9, wantLog: 0},
		{name: "zoomed", width: 140, height: 40, keys: []string{"z"}, wantConsole: 39, wantLog: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t, Options{Builds: []string{"a"}}, tt.width, tt.height)
			m.press(tt.keys...)
			l := m.layout()
			if l.consoleRows != tt.wantConsole {
				t.Errorf("console rows = %d, want %d", l.consoleRows, tt.wantConsole)
			}
			if l.logRows != tt.wantLog {
				t.Errorf("log rows = %d, want %d", l.logRows, tt.wantLog)
			}
		})
	}
}

func TestNoBuildsShowsPlaceholder(t *testing.T) {
	m := newTestModel(t, Options{}, 80, 24)
	screen := m.screen()

	if !strings.Contains(screen, "no console output yet") {
		t.Errorf("screen lacks the empty console:\n%s", screen)
	}
	if len(m.builds) != 0 {
		t.Errorf("drawing added %d builds, want none", len(m.builds))
	}
	m.send(started("late", 0))
	if got := m.selectedBuild().name; got != "late" {
		t.Errorf("selected build = %q, want %q", got, "late")
	}
}

func TestSearchLeavesZoom(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a"}}, 80, 24)
	m.send(message("a", event.Info, 1, "needle"))
	m.press("z", "/", "n", "e", "e", "d")

	if m.zoom {
		t.Error("still zoomed while searching the log")
	}
	if !strings.Contains(m.screen(), "needle") {
		t.Errorf("screen does not show the match:\n%s", m.screen())
	}
}

package tui

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
)

func TestHiddenConsoleShowsOutputWhenSelected(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a", "b"}}, 80, 24)
	m.send(started("a", 0), started("b", 0), consoleOut("b", numberedLines("early", 30)))
	m.send(consoleOut("b", numberedLines("late", 200)+"b$ "))
	b := m.byName["b"]

	b.console.qmu.Lock()
	heldBytes := len(b.console.held.data)
	b.console.qmu.Unlock()
	if heldBytes == 0 {
		t.Fatal("hidden console parsed its output instead of holding it")
	}
	if got := b.console.version.Load(); got != 0 {
		t.Errorf("hidden console parsed %d chunks, want 0", got)
	}

	m.press("2")
	m.send()
	if !strings.Contains(m.screen(), "late xxx 199") || !strings.Contains(m.screen(), "b$") {
		t.Errorf("selected console does not show its newest output:\n%s", m.screen())
	}

	// The document matches an emulator that parsed everything as it came.
	ref := vt.NewEmulator(consoleWidth, consoleHeight)
	ref.SetScrollbackSize(1000)
	_, _ = ref.Write([]byte(numberedLines("early", 30) + numberedLines("late", 200) + "b$ "))
	want := ref.Scrollback().Lines()
	lines, _ := b.console.View(len(want), 1<<30)
	if len(lines) != len(want) {
		t.Fatalf("scrollback shows %d lines, want %d", len(lines), len(want))
	}
	for i, line := range want {
		if got, w := strings.TrimRight(ansi.Strip(lines[i]), " "), strings.TrimRight(line.String(), " "); got != w {
			t.Fatalf("scrollback line %d = %q, want %q", i, got, w)
		}
	}

	m.press("g")
	if !strings.Contains(m.screen(), "early  0") {
		t.Errorf("g does not reach the oldest line of a console that was hidden:\n%s", m.screen())
	}
	m.press("z")
	if !strings.Contains(m.screen(), "early  0") || !strings.Contains(m.screen(), "z unzoom") {
		t.Errorf("zoom lost the scroll position:\n%s", m.screen())
	}
}

func TestHiddenConsoleKeepsScrollPosition(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a", "b"}}, 80, 24)
	m.send(started("a", 0), started("b", 0), consoleOut("b", numberedLines("line", 200)))
	m.press("2")
	m.send()
	m.press("k", "k", "k")
	top := firstConsoleLine(m)

	m.press("1")
	m.send(consoleOut("b", numberedLines("more", 40)))
	m.press("2")
	m.send()
	if got := firstConsoleLine(m); got != top {
		t.Errorf("scrolled view moved while hidden: top line %q, want %q", got, top)
	}

	m.press("f")
	if !strings.Contains(m.screen(), "more xxxx 39") {
		t.Errorf("follow does not show the newest line:\n%s", m.screen())
	}
}

// colouredLines returns n lines that each colour every character, about
// 900 bytes a line, so a byte bound is reached before a line bound.
func colouredLines(prefix string, n int) string {
	var sb strings.Builder
	for i := range n {
		sb.WriteString(prefix + " " + itoa(i) + " ")
		for j := range 70 {
			sb.WriteString("\x1b[3" + itoa(j%8) + "m#")
		}
		sb.WriteString("\x1b[0m\r\n")
	}
	return sb.String()
}

func TestHiddenConsoleIsBounded(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a", "b"}}, 80, 24)
	m.send(started("a", 0), started("b", 0))
	c := m.byName["b"].console
	keep := defaultScrollback + consoleHeight
	for i := range 30 {
		m.send(consoleOut("b", colouredLines("burst"+itoa(i), 100)))
		c.qmu.Lock()
		size, lines := len(c.held.data), c.held.lines
		c.qmu.Unlock()
		if size > maxHeldBytes || lines > 2*keep {
			t.Fatalf("after burst %d the console holds %d bytes in %d lines, want at most %d bytes and %d lines",
				i, size, lines, maxHeldBytes, 2*keep)
		}
	}
	m.send(consoleOut("b", "\x1b[1;33m"+numberedLines("last", 30)))

	m.press("2")
	m.send()
	if screen := m.screen(); !strings.Contains(screen, "last xxxx 25") {
		t.Errorf("console does not show the newest lines:\n%s", screen)
	}
	c.mu.Lock()
	cell := c.emu.CellAt(0, 0)
	c.mu.Unlock()
	if cell == nil || cell.Style.Fg == nil {
		t.Error("the pen set before the newest lines was lost")
	}

	m.press("g")
	if screen := m.screen(); !strings.Contains(screen, "skipped") || !strings.Contains(screen, "see the serial log") {
		t.Errorf("console does not say that output was skipped:\n%s", screen)
	}
	if got := c.ring.len(); got >= defaultScrollback {
		t.Errorf("scrollback = %d lines, want fewer than %d after the dropped bytes", got, defaultScrollback)
	}
}

func TestHiddenConsoleKeepsFullScrollback(t *testing.T) {
	m := newTestModel(t, Options{Builds: []string{"a", "b"}, Scrollback: 100}, 80, 24)
	m.send(started("a", 0), started("b", 0))
	for i := range 20 {
		m.send(consoleOut("b", numberedLines("burst"+itoa(i), 400)))
	}
	m.press("2")
	m.send()

	c := m.byName["b"].console
	if got := c.ring.len(); got != 100 {
		t.Errorf("scrollback = %d lines, want a full 100", got)
	}
	for i := range c.ring.len() {
		if line := ansi.Strip(c.ring.at(i)); !strings.HasPrefix(line, "burst19 ") {
			t.Fatalf("scrollback line %d = %q, want one of the newest lines", i, line)
		}
	}
}

func TestHiddenConsoleAnswersQueries(t *testing.T) {
	var mu sync.Mutex
	var replies []string
	attach := func(build string, data []byte) {
		mu.Lock()
		replies = append(replies, build+":"+string(data))
		mu.Unlock()
	}
	m := newTestModel(t, Options{Builds: []string{"a", "b"}, Attach: attach}, 80, 24)
	m.send(started("a", 0), started("b", 0), consoleOut("b", "hello\r\n/ # "))
	m.send(consoleOut("b", "\x1b[6n"))

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
	if len(replies) != 1 || replies[0] != "b:\x1b[2;5R" {
		t.Errorf("replies = %q, want one cursor position report \"b:\\x1b[2;5R\"", replies)
	}
}

func TestHeldModesAreRestored(t *testing.T) {
	var h heldOutput
	h.add([]byte("\x1b[?1049h\x1b[5;20r\x1b(0\x1b[1;31m"+numberedLines("old", 100)), 10)
	h.add([]byte(numberedLines("new", 30)), 10)
	out := string(h.take())

	for _, seq := range []string{"\x1b[?1049h", "\x1b[5;20r", "\x1b(0", "\x1b[1;31m"} {
		if !strings.Contains(out, seq) {
			t.Errorf("replayed output lacks %q", seq)
		}
	}
	if strings.Contains(out, "old") {
		t.Error("replayed output still holds dropped lines")
	}
	if !strings.Contains(out, "new xxxx 25") {
		t.Error("replayed output lost kept lines")
	}
}

func TestHasQuery(t *testing.T) {
	tests := []struct {
		name string
		data string
		want bool
	}{
		{name: "cursor position", data: "/ # \x1b[6n", want: true},
		{name: "device attributes", data: "\x1b[c", want: true},
		{name: "secondary attributes", data: "\x1b[>c", want: true},
		{name: "mode report", data: "\x1b[?2004$p", want: true},
		{name: "background colour", data: "\x1b]11;?\x07", want: true},
		{name: "colour and cursor moves", data: "\x1b[1;31mred\x1b[0m\x1b[10;3H\x1b[K", want: false},
		{name: "alternate screen", data: "\x1b[?1049h", want: false},
		{name: "title", data: "\x1b]0;installer\x07", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasQuery([]byte(tt.data)); got != tt.want {
				t.Errorf("hasQuery(%q) = %t, want %t", tt.data, got, tt.want)
			}
		})
	}
}

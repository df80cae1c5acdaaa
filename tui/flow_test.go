package tui

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/charmbracelet/x/vt"

	"github.com/bakeimg/bake/event"
)

const (
	flowWidth  = 120
	flowHeight = 36
)

// terminal replays the program's output through a VT emulator, so tests
// see the screen a user would see, however the renderer split its frames.
type terminal struct {
	t   *testing.T
	out io.Reader
	emu *vt.Emulator
}

func newTerminal(t *testing.T, out io.Reader, width, height int) *terminal {
	emu := vt.NewEmulator(width, height)
	// Replies to the renderer's terminal queries are discarded.
	go func() { _, _ = io.Copy(io.Discard, emu) }()
	t.Cleanup(func() { closeReplies(emu) })
	// A terminal device turns LF into CR LF on output (onlcr), and the
	// renderer relies on it. Line feed/new line mode does the same here.
	_, _ = emu.WriteString(ansi.SetMode(ansi.ModeLineFeedNewLine))
	return &terminal{t: t, out: out, emu: emu}
}

// waitFor reads output until the screen contains every text, and returns
// the screen.
func (term *terminal) waitFor(texts ...string) string {
	term.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 64<<10)
	for {
		for {
			n, _ := term.out.Read(buf)
			if n == 0 {
				break
			}
			_, _ = term.emu.Write(buf[:n])
		}
		screen := term.emu.String()
		missing := ""
		for _, text := range texts {
			if !strings.Contains(screen, text) {
				missing = text
				break
			}
		}
		if missing == "" {
			return screen
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("screen lacks %q after 5s:\n%s", missing, screen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startFlow(t *testing.T, opts Options) (*teatest.TestModel, *terminal) {
	t.Helper()
	m := newModel(opts)
	m.now = func() time.Time { return t0.Add(90 * time.Second) }
	m.loadavg = func() string { return "0.50 0.40 0.30" }
	t.Cleanup(m.close)

	tm := teatest.NewTestModel(t, m,
		teatest.WithInitialTermSize(flowWidth, flowHeight),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	return tm, newTerminal(t, tm.Output(), flowWidth, flowHeight)
}

func typeKeys(tm *teatest.TestModel, keys ...string) {
	for _, k := range keys {
		tm.Send(keyMsg(k))
	}
}

func requireScreen(t *testing.T, name, screen string) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		golden.RequireEqual(t, screen)
	})
}

func TestFlowTwoBuilds(t *testing.T) {
	stopped := make(chan struct{})
	var tm *teatest.TestModel
	stop := func() {
		close(stopped)
		// The pipeline reports each cancelled build. Stop runs inside
		// Update, so the events arrive from another goroutine.
		go tm.Send(batchMsg{events: []event.Event{
			finished("alpine-3", 60, "context canceled"),
		}})
	}
	tm, term := startFlow(t, Options{Builds: []string{"debian-12", "alpine-3"}, Stop: stop})

	tm.Send(batchMsg{events: []event.Event{
		started("debian-12", 0), started("alpine-3", 2),
		stepStarted("debian-12", "fetch", 1), progressed("debian-12", 5, 100<<20, 400<<20),
		stepStarted("alpine-3", "boot", 3),
		consoleOut("alpine-3", "ISOLINUX 6.04\r\nboot: "),
	}})
	term.waitFor("25%", "boot ⠋")

	tm.Send(batchMsg{events: []event.Event{
		progressed("debian-12", 10, 300<<20, 400<<20),
		stepFinished("debian-12", "fetch", 20, 19*time.Second, ""),
		stepStarted("debian-12", "provision", 21),
		message("debian-12", event.Output, 22, "Setting up openssh-server"),
		consoleOut("debian-12", "\x1b[1mDebian GNU/Linux 12\x1b[0m debian ttyS0\r\n\r\ndebian login: "),
		event.Event{Time: at(30), Build: "alpine-3", Kind: event.HTTPRequest,
			HTTP: &event.HTTP{Method: "GET", Path: "/answers", Status: http.StatusOK, Bytes: 812}},
		message("alpine-3", event.KeysTyped, 31, "<esc>install auto url=http://10.0.2.2:8080/answers<enter>"),
		consoleOut("alpine-3", "install auto url=http://10.0.2.2:8080/answers\r\nLoading vmlinuz... ok\r\n"),
		finished("debian-12", 80, ""),
	}})
	requireScreen(t, "progress", term.waitFor("debian login:", "1 done", "│ Setting up openssh-server"))

	typeKeys(tm, "2")
	requireScreen(t, "selected", term.waitFor("console · alpine-3", "Loading vmlinuz... ok", "GET /answers 200"))

	typeKeys(tm, "z")
	requireScreen(t, "zoomed", term.waitFor("z unzoom"))

	typeKeys(tm, "z", "/", "a", "n", "s", "w", "e", "r", "s")
	requireScreen(t, "search", term.waitFor(`search "answers" 2/2`))

	typeKeys(tm, "enter", "N")
	term.waitFor(`search "answers" 1/2`)
	typeKeys(tm, "esc", "q")
	requireScreen(t, "confirm", term.waitFor("1 build still running. Stop and quit? y/n"))

	typeKeys(tm, "y")
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop was not called after confirming")
	}
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))

	final := tm.FinalModel(t).(*model)
	if got := final.byName["alpine-3"].status; got != statusFailed {
		t.Errorf("alpine-3 status = %d, want failed", got)
	}
	if got := final.byName["debian-12"].status; got != statusDone {
		t.Errorf("debian-12 status = %d, want done", got)
	}
}

func TestFlowNarrowTerminal(t *testing.T) {
	m := newModel(Options{Builds: []string{"debian-12", "alpine-3"}})
	m.now = func() time.Time { return t0.Add(90 * time.Second) }
	m.loadavg = func() string { return "0.50 0.40 0.30" }
	t.Cleanup(m.close)
	tm := teatest.NewTestModel(t, m,
		teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	term := newTerminal(t, tm.Output(), 80, 24)

	tm.Send(batchMsg{events: []event.Event{
		started("debian-12", 0), stepStarted("debian-12", "export", 1), progressed("debian-12", 5, 1<<30, 4<<30),
		consoleOut("debian-12", numberedLines("systemd[1]: Started unit", 40)),
		message("debian-12", event.Info, 6, "converting to qcow2"),
	}})
	requireScreen(t, "console", term.waitFor("systemd[1]: Started unit xxxx 39", "25%"))

	typeKeys(tm, "l")
	requireScreen(t, "log", term.waitFor("· converting to qcow2"))

	typeKeys(tm, "?")
	term.waitFor("esc closes help")
	typeKeys(tm, "esc")
	tm.Send(batchMsg{events: []event.Event{finished("debian-12", 70, "")}, closed: true})
	term.waitFor("event stream ended: 1 done, 0 failed, 1 did not finish")
	typeKeys(tm, "q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

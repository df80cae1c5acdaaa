package tui

import (
	"os"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/bakeimg/bake/event"
)

// tickInterval is how often the model takes queued events and redraws.
// Events arriving between ticks are applied together, so a busy stream costs
// one render per tick rather than one per event.
const tickInterval = 250 * time.Millisecond

// mode is the input state that decides what a key press does.
type mode int

const (
	modeNormal   mode = iota
	modeSearch        // typing a search query
	modeHelp          // full help shown
	modeConfirm       // asking whether to stop running builds
	modeAttached      // keys go to the selected VM's console
)

// pane is one of the two scrollable views of a build.
type pane int

const (
	paneConsole pane = iota
	paneLog
)

// batchMsg carries the events that arrived since the previous tick.
type batchMsg struct {
	events  []event.Event
	closed  bool             // the events channel is closed and drained
	dropped map[string]int64 // console bytes the feed dropped, per build
}

// model is the dashboard's Bubble Tea model. It is used through a pointer:
// Update changes it in place and returns it.
type model struct {
	opts   Options
	builds []*build
	byName map[string]*build

	placeholder *build // selected while builds is empty

	selected int
	focus    pane
	zoom     bool
	mode     mode
	width    int
	height   int

	search  textinput.Model
	query   string  // active search, or empty when no search is active
	matches []int64 // absolute log indexes of entries matching query
	match   int     // index into matches of the entry jumped to

	closed     bool // the events channel is closed
	stopping   bool // Stop was called and the model waits for the builds to finish
	stopCalled bool
	interrupts int // ctrl+c presses since the last other key
	quitting   bool
	notice     string

	now      func() time.Time
	loadavg  func() string
	load     string
	loadAt   time.Time
	feed     *feed
	keys     keyMap
	styles   styles
	help     help.Model
	progress progress.Model
}

func newModel(opts Options) *model {
	m := &model{
		opts:    opts,
		byName:  make(map[string]*build),
		now:     time.Now,
		loadavg: readLoadavg,
		keys:    newKeyMap(),
		styles:  newStyles(opts.NoColor),
		width:   80,
		height:  24,
	}
	for _, name := range opts.Builds {
		m.addBuild(name)
	}

	m.search = textinput.New()
	m.search.Prompt = "/"
	m.search.SetVirtualCursor(true)
	m.help = help.New()
	m.help.Styles = m.styles.help

	bar := []progress.Option{progress.WithoutPercentage(), progress.WithFillCharacters('█', '░')}
	if opts.NoColor {
		bar = append(bar, progress.WithColors(lipgloss.NoColor{}))
	}
	m.progress = progress.New(bar...)
	return m
}

// addBuild returns the named build, creating it at the end of the list if
// the stream names a build that Options.Builds did not.
func (m *model) addBuild(name string) *build {
	if b, ok := m.byName[name]; ok {
		return b
	}
	var reply func([]byte)
	if m.opts.Attach != nil {
		attach := m.opts.Attach
		reply = func(p []byte) { attach(name, p) }
	}
	b := newBuild(name, m.opts.Scrollback, reply)
	m.builds = append(m.builds, b)
	m.byName[name] = b
	return b
}

// close releases the consoles' goroutines.
func (m *model) close() {
	for _, b := range m.builds {
		b.console.Close()
	}
	if m.placeholder != nil {
		m.placeholder.console.Close()
	}
}

// Init starts the tick that takes queued events.
func (m *model) Init() tea.Cmd {
	return m.tick()
}

func (m *model) tick() tea.Cmd {
	f := m.feed
	return tea.Tick(tickInterval, func(time.Time) tea.Msg {
		if f == nil {
			return batchMsg{}
		}
		return f.take()
	})
}

// Update applies one message.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.search.SetWidth(max(10, msg.Width/2))
		return m, nil
	case batchMsg:
		return m, m.ingest(msg)
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	case tea.PasteMsg:
		switch m.mode {
		case modeAttached:
			m.sendToConsole([]byte(msg.Content))
		case modeSearch:
			return m, m.updateSearch(msg)
		}
		return m, nil
	}
	return m, nil
}

// ingest applies a batch of events, moves scrolled views so they keep
// showing the same lines, and schedules the next tick.
func (m *model) ingest(msg batchMsg) tea.Cmd {
	for _, e := range msg.events {
		m.addBuild(e.Build).apply(e)
	}
	m.showSelectedConsole()
	for _, b := range m.builds {
		b.flushConsole()
	}
	for name, n := range msg.dropped {
		m.addBuild(name).console.addDropped(n)
	}
	if msg.closed {
		m.closed = true
	}
	m.refreshLoad()
	m.keepScrollPositions()
	if m.mode == modeAttached && m.selectedBuild().status != statusRunning {
		m.mode = modeNormal
		m.notice = "detached: " + m.selectedBuild().name + " is no longer running"
	}
	if m.query != "" {
		m.findMatches()
	}

	if m.stopping && (m.closed || m.activeCount() == 0) {
		return m.quit()
	}
	if m.closed {
		// Nothing changes any more, so the dashboard stops redrawing.
		return nil
	}
	return m.tick()
}

// showSelectedConsole marks the selected build's console visible and the
// others hidden, since every layout draws the selected console only. A
// hidden console holds its output unparsed until it is selected.
func (m *model) showSelectedConsole() {
	if len(m.builds) == 0 {
		return
	}
	m.selected = max(0, min(m.selected, len(m.builds)-1))
	for i, b := range m.builds {
		b.console.SetVisible(i == m.selected)
	}
}

// keepScrollPositions shifts the offsets of panes that do not follow by the
// number of lines added below them.
func (m *model) keepScrollPositions() {
	for _, b := range m.builds {
		b.syncScroll()
	}
}

func (m *model) refreshLoad() {
	now := m.now()
	if now.Sub(m.loadAt) < time.Second && m.load != "" {
		return
	}
	m.loadAt = now
	m.load = m.loadavg()
}

// readLoadavg returns the 1, 5 and 15 minute load averages, or "" where
// /proc/loadavg does not exist.
func readLoadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return ""
	}
	return strings.Join(fields[:3], " ")
}

func (m *model) selectedBuild() *build {
	if len(m.builds) == 0 {
		// With an empty Options.Builds and no events yet, the panes show an
		// empty build that is not part of the list.
		if m.placeholder == nil {
			m.placeholder = newBuild("", m.opts.Scrollback, nil)
		}
		return m.placeholder
	}
	m.selected = max(0, min(m.selected, len(m.builds)-1))
	return m.builds[m.selected]
}

// activeCount returns the number of builds that have not finished.
func (m *model) activeCount() int {
	n := 0
	for _, b := range m.builds {
		if b.active() {
			n++
		}
	}
	return n
}

func (m *model) counts() (queued, running, done, failed int) {
	for _, b := range m.builds {
		switch b.status {
		case statusQueued:
			queued++
		case statusRunning:
			running++
		case statusDone:
			done++
		case statusFailed:
			failed++
		}
	}
	return queued, running, done, failed
}

// requestQuit quits at once when nothing runs, and otherwise shows the
// confirmation prompt.
func (m *model) requestQuit() tea.Cmd {
	if m.closed || m.activeCount() == 0 || m.stopping {
		return m.quit()
	}
	m.mode = modeConfirm
	return nil
}

// stop calls Options.Stop once and waits for the builds to finish.
func (m *model) stop() tea.Cmd {
	m.mode = modeNormal
	m.stopping = true
	m.notice = "stopping builds and waiting for them to clean up (ctrl+c twice forces quit)"
	m.callStop()
	if m.closed || m.activeCount() == 0 {
		return m.quit()
	}
	return nil
}

func (m *model) callStop() {
	if m.stopCalled {
		return
	}
	m.stopCalled = true
	if m.opts.Stop != nil {
		m.opts.Stop()
	}
}

func (m *model) quit() tea.Cmd {
	m.quitting = true
	return tea.Quit
}

package tui

import (
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/bakeimg/bake/event"
)

// t0 is the time the test builds start. The test clock reads 90 s later.
var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func newTestModel(t *testing.T, opts Options, width, height int) *model {
	t.Helper()
	m := newModel(opts)
	m.now = func() time.Time { return t0.Add(90 * time.Second) }
	m.loadavg = func() string { return "0.50 0.40 0.30" }
	m.Update(tea.WindowSizeMsg{Width: width, Height: height})
	t.Cleanup(m.close)
	return m
}

// send applies events as one batch and waits for the consoles to parse
// their output, then applies an empty batch as the next tick would.
func (m *model) send(events ...event.Event) tea.Cmd {
	m.Update(batchMsg{events: events})
	for _, b := range m.builds {
		b.console.Sync()
	}
	_, cmd := m.Update(batchMsg{})
	return cmd
}

// press sends key presses named as Bubble Tea prints them.
func (m *model) press(keys ...string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range keys {
		_, cmd = m.Update(keyMsg(k))
	}
	return cmd
}

func keyMsg(k string) tea.KeyPressMsg {
	special := map[string]tea.KeyPressMsg{
		"tab":       {Code: tea.KeyTab},
		"shift+tab": {Code: tea.KeyTab, Mod: tea.ModShift},
		"enter":     {Code: tea.KeyEnter},
		"esc":       {Code: tea.KeyEscape},
		"up":        {Code: tea.KeyUp},
		"down":      {Code: tea.KeyDown},
		"pgup":      {Code: tea.KeyPgUp},
		"pgdown":    {Code: tea.KeyPgDown},
		"backspace": {Code: tea.KeyBackspace},
		"ctrl+c":    {Code: 'c', Mod: tea.ModCtrl},
		"ctrl+]":    {Code: ']', Mod: tea.ModCtrl},
	}
	if msg, ok := special[k]; ok {
		return msg
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// screen returns the rendered view without escape sequences.
func (m *model) screen() string {
	return ansi.Strip(m.View().Content)
}

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func started(build string, sec int) event.Event {
	return event.Event{Time: at(sec), Build: build, Kind: event.BuildStarted}
}

func stepStarted(build, step string, sec int) event.Event {
	return event.Event{Time: at(sec), Build: build, Kind: event.StepStarted, Step: step}
}

func stepFinished(build, step string, sec int, d time.Duration, err string) event.Event {
	return event.Event{Time: at(sec), Build: build, Kind: event.StepFinished, Step: step, Duration: d, Err: err}
}

func progressed(build string, sec int, current, total int64) event.Event {
	return event.Event{Time: at(sec), Build: build, Kind: event.Progress, Current: current, Total: total}
}

func consoleOut(build, data string) event.Event {
	return event.Event{Time: at(1), Build: build, Kind: event.Console, Data: []byte(data)}
}

func message(build string, kind event.Kind, sec int, text string) event.Event {
	return event.Event{Time: at(sec), Build: build, Kind: kind, Message: text}
}

func finished(build string, sec int, err string) event.Event {
	return event.Event{Time: at(sec), Build: build, Kind: event.BuildFinished, Err: err}
}

func numberedLines(prefix string, n int) string {
	var sb strings.Builder
	for i := range n {
		sb.WriteString(prefix)
		sb.WriteString(" ")
		sb.WriteString(strings.Repeat("x", i%7))
		sb.WriteString(" ")
		sb.WriteString(itoa(i))
		sb.WriteString("\r\n")
	}
	return sb.String()
}

func itoa(i int) string {
	return strconv.Itoa(i)
}

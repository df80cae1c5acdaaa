package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/bakeimg/bake/event"
)

const (
	// listWidth is the width of the build list in the wide layout.
	listWidth = 34
	// wideMinWidth is the narrowest terminal that gets the list beside the
	// console: the list plus a full 80-column console and a separator.
	wideMinWidth = listWidth + 1 + consoleWidth
	// minBothPanes is the body height below which only the focused pane is
	// shown in the wide layout. The narrow layout stacks both panes only on
	// tall terminals, since at 80x24 the console alone needs the space.
	minBothPanes       = 14
	minBothPanesNarrow = 36
)

// spinnerFrames animate builds whose current step has no known size, one
// frame every spinnerStep. Each frame changes the screen, and Bubble Tea
// parses and compares the whole screen on every change, so a faster spinner
// makes a quiet dashboard cost more. Two steps a second, half of them when
// the elapsed-time clocks change anyway, keep that low.
var spinnerFrames = spinner.MiniDot.Frames

const spinnerStep = 500 * time.Millisecond

// layout is the size of each region for the current terminal size.
type layout struct {
	wide        bool
	paneWidth   int
	consoleRows int // content rows of the console pane, or 0 when hidden
	logRows     int // content rows of the log pane, or 0 when hidden
}

func (m *model) layout() layout {
	w, h := m.width, m.height
	if m.zoom {
		return layout{paneWidth: w, consoleRows: max(1, h-1)}
	}

	l := layout{wide: w >= wideMinWidth && h >= 12, paneWidth: w}
	body := h - 4 // header, tabs, status line, footer
	minBoth := minBothPanesNarrow
	if l.wide {
		l.paneWidth = w - listWidth - 1
		body = h - 2 // header, footer
		minBoth = minBothPanes
	}
	if body >= minBoth {
		both := body - 2 // two title bars
		l.consoleRows = min(consoleHeight, both*3/5)
		l.logRows = both - l.consoleRows
		return l
	}
	body-- // one title bar

	if m.focus == paneConsole {
		l.consoleRows = max(1, body)
	} else {
		l.logRows = max(1, body)
	}
	return l
}

// paneHeight returns the content rows of pane p, or of the visible pane
// when p is hidden.
func (m *model) paneHeight(p pane) int {
	l := m.layout()
	rows := l.consoleRows
	if p == paneLog {
		rows = l.logRows
	}
	if rows == 0 {
		rows = max(l.consoleRows, l.logRows)
	}
	return rows
}

// View renders the dashboard.
func (m *model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "bake"
	return v
}

// render returns exactly m.height lines of exactly m.width cells.
func (m *model) render() string {
	if m.quitting {
		return ""
	}
	l := m.layout()
	var lines []string
	exact := false // every line is already m.width cells wide
	switch {
	case m.zoom:
		lines = m.consolePane(l.paneWidth, l.consoleRows)
	case m.mode == modeHelp:
		lines = append(lines, m.header())
		lines = append(lines, padLines(m.helpLines(m.height-2), m.height-2)...)
		lines = append(lines, m.footer())
	case l.wide:
		// The header and the body are cut to width as they are built, which
		// saves measuring every line twice.
		lines = append(lines, m.header())
		lines = append(lines, m.wideBody(l)...)
		lines = append(lines, fit(m.footer(), m.width))
		exact = len(lines) == m.height
	default:
		lines = append(lines, m.header(), m.tabs(), m.statusLine())
		lines = append(lines, m.panes(l)...)
		lines = append(lines, m.footer())
	}
	if exact {
		return strings.Join(lines, "\n")
	}
	for len(lines) < m.height {
		lines = append(lines, "")
	}
	lines = lines[:m.height]
	for i, line := range lines {
		lines[i] = fit(line, m.width)
	}
	return strings.Join(lines, "\n")
}

func (m *model) wideBody(l layout) []string {
	rows := m.height - 2
	list := m.list(rows)
	right := m.panes(l)
	sep := m.styles.faint.Render("│")
	body := make([]string, rows)
	for i := range body {
		left := ""
		if i < len(list) {
			left = list[i]
		}
		r := ""
		if i < len(right) {
			r = right[i]
		}
		body[i] = fit(left, listWidth) + sep + fit(r, l.paneWidth)
	}
	return body
}

// panes returns the visible panes stacked, each with its title bar.
func (m *model) panes(l layout) []string {
	var lines []string
	if l.consoleRows > 0 {
		lines = append(lines, m.consolePane(l.paneWidth, l.consoleRows)...)
	}
	if l.logRows > 0 {
		lines = append(lines, m.logPane(l.paneWidth, l.logRows)...)
	}
	return lines
}

func (m *model) header() string {
	queued, running, done, failed := m.counts()
	names := make([]string, len(m.builds))
	for i, b := range m.builds {
		names[i] = b.name
	}
	right := ""
	if m.load != "" {
		right = "load " + m.load + " "
	}

	counts := fmt.Sprintf("%d running · %d done · %d failed", running, done, failed)
	if queued > 0 {
		counts += fmt.Sprintf(" · %d queued", queued)
	}
	left := " bake │ " + strings.Join(names, " · ") + " │ " + counts
	if ansi.StringWidth(left)+ansi.StringWidth(right)+1 > m.width {
		counts = fmt.Sprintf("●%d ✓%d ✗%d", running, done, failed)
		if queued > 0 {
			counts += fmt.Sprintf(" ·%d", queued)
		}
		names := ansi.Truncate(strings.Join(names, " · "),
			max(0, m.width-ansi.StringWidth(right)-ansi.StringWidth(counts)-12), "…")
		left = " bake │ " + names + " │ " + counts
	}
	gap := max(1, m.width-ansi.StringWidth(left)-ansi.StringWidth(right))
	return m.styles.header.Render(fit(left+strings.Repeat(" ", gap)+right, m.width))
}

func (m *model) footer() string {
	switch m.mode {
	case modeSearch:
		return m.search.View() + m.styles.faint.Render("  "+m.matchCount()+" · enter keep · esc end")
	case modeConfirm:
		n := m.activeCount()
		text := fmt.Sprintf(" %d %s still running. Stop and quit? y/n ", n, plural(n, "build", "builds"))
		if m.notice != "" {
			text += " " + m.notice
		}
		return m.styles.warning.Render(text)
	case modeAttached:
		return m.styles.badge.Render(" ATTACHED ") +
			fmt.Sprintf(" keys go to %s's console · ctrl+] detach", m.selectedBuild().name)
	case modeHelp:
		return m.styles.faint.Render(" ? or esc closes help")
	}
	if m.notice != "" {
		return " " + m.notice
	}
	if m.closed {
		queued, running, done, failed := m.counts()
		text := fmt.Sprintf(" all builds finished: %d done, %d failed · q quit ", done, failed)
		if unfinished := queued + running; unfinished > 0 {
			text = fmt.Sprintf(" event stream ended: %d done, %d failed, %d did not finish · q quit ",
				done, failed, unfinished)
		}
		return m.styles.header.Render(text)
	}
	if m.query != "" {
		return fmt.Sprintf(" search %q %s · n/N next/previous · esc end", m.query, m.matchCount())
	}
	m.help.SetWidth(m.width - 1)
	return " " + m.help.ShortHelpView(m.keys.ShortHelp())
}

func (m *model) matchCount() string {
	if len(m.matches) == 0 {
		return "no matches"
	}
	return fmt.Sprintf("%d/%d", m.match+1, len(m.matches))
}

func (m *model) helpLines(rows int) []string {
	m.help.SetWidth(m.width - 2)
	text := m.help.FullHelpView(m.keys.FullHelp())
	lines := []string{"", " Keys", ""}
	for _, line := range strings.Split(text, "\n") {
		lines = append(lines, " "+line)
	}
	lines = append(lines, "",
		" The console pane shows the selected VM's serial console, and the log pane",
		" shows its steps, HTTP requests, provisioner output, warnings and errors.",
		" Scrolling keys move the focused pane, and l switches focus between them.")
	return lines[:max(0, min(len(lines), rows))]
}

// list returns the build list of the wide layout: two lines per build.
func (m *model) list(rows int) []string {
	var lines []string
	for i, b := range m.builds {
		elapsed := formatClock(b.elapsed(m.now()))
		name := fmt.Sprintf(" %s %s %s", m.number(i), m.glyph(b), b.name)
		gap := max(1, listWidth-ansi.StringWidth(name)-len(elapsed)-1)
		first := fit(name+strings.Repeat(" ", gap)+elapsed+" ", listWidth)
		second := fit("     "+m.stepInfo(b, listWidth-6), listWidth)
		if i == m.selected {
			first, second = m.styles.selected.Render(first), m.styles.selected.Render(second)
		}
		lines = append(lines, first, second)
	}
	if len(lines) > rows {
		// Keep the selected build visible when the list is taller than the
		// screen.
		start := min(2*m.selected, len(lines)-rows)
		lines = lines[start : start+rows]
	}
	return lines
}

func (m *model) number(i int) string {
	if i < 9 {
		return fmt.Sprint(i + 1)
	}
	return " "
}

// glyph returns the state mark of a build.
func (m *model) glyph(b *build) string {
	switch b.status {
	case statusRunning:
		return m.styles.running.Render("●")
	case statusDone:
		return m.styles.done.Render("✓")
	case statusFailed:
		return m.styles.failed.Render("✗")
	}
	return m.styles.faint.Render("·")
}

// stepInfo describes what a build is doing in at most width cells: the
// current step with a progress bar or a spinner, or its final state.
func (m *model) stepInfo(b *build, width int) string {
	switch b.status {
	case statusQueued:
		return m.styles.faint.Render("queued")
	case statusDone:
		return m.styles.done.Render("done")
	case statusFailed:
		return m.styles.failed.Render(ansi.Truncate("failed: "+oneLine(b.err), width, "…"))
	}

	step := b.step
	if step == "" {
		step = "starting"
	}
	if b.total <= 0 {
		frame := spinnerFrames[int(m.now().UnixMilli()/spinnerStep.Milliseconds())%len(spinnerFrames)]
		text := step + " " + m.styles.running.Render(frame)
		if b.detail != "" {
			text += " " + m.styles.faint.Render(oneLine(b.detail))
		}
		return ansi.Truncate(text, width, "…")
	}

	percent := float64(b.current) / float64(b.total)
	percent = max(0, min(1, percent))
	label := fmt.Sprintf(" %3d%%", int(percent*100))
	stepWidth := min(ansi.StringWidth(step), max(4, width/3))
	barWidth := width - stepWidth - 1 - len(label)
	if barWidth < 4 {
		return ansi.Truncate(step+label, width, "…")
	}
	m.progress.SetWidth(barWidth)
	return ansi.Truncate(step, stepWidth, "…") + " " + m.progress.ViewAs(percent) + label
}

// statusInfo is stepInfo with room to spare: a narrower bar followed by
// what the step is working on.
func (m *model) statusInfo(b *build, width int) string {
	if b.status != statusRunning || b.total <= 0 || b.detail == "" {
		return m.stepInfo(b, width)
	}
	detail := oneLine(b.detail)
	barPart := max(width/2, width-ansi.StringWidth(detail)-2)
	info := m.stepInfo(b, barPart)
	return info + "  " + m.styles.faint.Render(ansi.Truncate(detail, max(0, width-ansi.StringWidth(info)-2), "…"))
}

// tabs returns the narrow layout's build selector.
func (m *model) tabs() string {
	var parts []string
	selectedEnd := 0
	for i, b := range m.builds {
		tab := fmt.Sprintf(" %s %s %s ", m.number(i), m.glyph(b), b.name)
		if i == m.selected {
			tab = m.styles.selected.Render(tab)
		}
		parts = append(parts, tab)
		if i == m.selected {
			selectedEnd = len(parts)
		}
	}
	// Drop tabs from the left until the selected one fits.
	for len(parts) > 1 && ansi.StringWidth(strings.Join(parts[:selectedEnd], "│")) > m.width {
		parts = parts[1:]
		selectedEnd--
	}
	return strings.Join(parts, m.styles.faint.Render("│"))
}

// statusLine describes the selected build in the narrow layout.
func (m *model) statusLine() string {
	b := m.selectedBuild()
	elapsed := formatClock(b.elapsed(m.now()))
	info := m.statusInfo(b, m.width-len(elapsed)-4)
	gap := max(1, m.width-ansi.StringWidth(info)-len(elapsed)-2)
	return " " + info + strings.Repeat(" ", gap) + elapsed
}

func (m *model) consolePane(width, rows int) []string {
	b := m.selectedBuild()
	offset := b.consoleOffset
	if b.consoleFollow {
		offset = 0
	}
	content, offset := b.console.View(rows, offset)
	b.consoleOffset = offset

	title := " console · " + b.name + " · " + followText(b.consoleFollow, offset)
	if dropped := b.console.Dropped(); dropped > 0 {
		title += " · skipped " + formatBytes(dropped) + " (see the serial log)"
	}
	if m.zoom {
		title += " · z unzoom"
	}
	lines := []string{m.titleBar(title, width, m.focus == paneConsole || m.zoom)}
	if b.console.version.Load() == 0 {
		content = []string{m.styles.faint.Render("no console output yet")}
	}
	for _, line := range content {
		lines = append(lines, ansi.Truncate(line, width, "")+ansi.ResetStyle)
	}
	return padLines(lines, rows+1)
}

func (m *model) titleBar(title string, width int, focused bool) string {
	style := m.styles.title
	if focused {
		style = m.styles.titleOn
	}
	bar := style.Render(fit(title, width))
	if m.mode == modeAttached && strings.HasPrefix(title, " console") {
		badge := m.styles.badge.Render(" ATTACHED ")
		bar = style.Render(fit(title, width-10)) + badge
	}
	return bar
}

func (m *model) logPane(width, rows int) []string {
	b := m.selectedBuild()
	total := b.log.len()
	offset := b.logOffset
	if b.logFollow {
		offset = 0
	}
	offset = max(0, min(offset, total-rows))
	b.logOffset = offset

	title := fmt.Sprintf(" log · %s · %d %s · %s", b.name, total, plural(total, "entry", "entries"),
		followText(b.logFollow, offset))
	if m.query != "" {
		title += fmt.Sprintf(" · search %q %s", m.query, m.matchCount())
	}
	lines := []string{m.titleBar(title, width, m.focus == paneLog && !m.zoom)}

	current := int64(-1)
	if len(m.matches) > 0 {
		current = m.matches[m.match]
	}
	end := total - offset
	for i := max(0, end-rows); i < end; i++ {
		abs := b.log.dropped + int64(i)
		lines = append(lines, m.logLine(b.log.at(i), width, abs == current))
	}
	if total == 0 {
		lines = append(lines, m.styles.faint.Render("no events yet"))
	}
	return padLines(lines, rows+1)
}

// logLine renders one log entry, cut to width, with search matches marked.
func (m *model) logLine(e logEntry, width int, current bool) string {
	text := ansi.Truncate(e.time.Format("15:04:05")+" "+e.text, width, "…")
	if m.query == "" {
		return m.kindStyle(e.kind).Render(text)
	}

	mark := m.styles.match
	if current {
		mark = m.styles.current
	}
	var out strings.Builder
	lower, q := lowerASCII(text), lowerASCII(m.query)
	for {
		i := strings.Index(lower, q)
		if i < 0 {
			break
		}
		out.WriteString(m.kindStyle(e.kind).Render(text[:i]))
		out.WriteString(mark.Render(text[i : i+len(q)]))
		text, lower = text[i+len(q):], lower[i+len(q):]
	}
	out.WriteString(m.kindStyle(e.kind).Render(text))
	return out.String()
}

func (m *model) kindStyle(kind event.Kind) lipgloss.Style {
	switch kind {
	case event.Warning:
		return m.styles.warning
	case event.Error, event.BuildFinished:
		return m.styles.failed
	case event.HTTPRequest:
		return m.styles.http
	case event.StepStarted, event.StepFinished, event.BuildStarted:
		return m.styles.running
	case event.KeysTyped, event.Info:
		return m.styles.faint
	case event.Output:
		return lipgloss.NewStyle()
	}
	return lipgloss.NewStyle()
}

func followText(follow bool, offset int) string {
	if follow || offset == 0 {
		return "follow"
	}
	return fmt.Sprintf("scrolled ↑%d · f follow", offset)
}

// fit truncates or pads s to exactly width cells.
func fit(s string, width int) string {
	w := ansi.StringWidth(s)
	if w > width {
		return ansi.Truncate(s, width, "")
	}
	return s + strings.Repeat(" ", width-w)
}

func padLines(lines []string, n int) []string {
	n = max(0, n)
	for len(lines) < n {
		lines = append(lines, "")
	}
	return lines[:n]
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func plural(n int, singular, pluralForm string) string {
	if n == 1 {
		return singular
	}
	return pluralForm
}

package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// handleKey dispatches a key press by mode.
func (m *model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	if m.mode == modeAttached {
		// Every key but ctrl+] belongs to the guest, ctrl+c included.
		return m.attachedKey(msg)
	}
	if key.Matches(msg, m.keys.force) {
		return m.interrupt()
	}
	m.interrupts = 0

	switch m.mode {
	case modeSearch:
		return m.searchKey(msg)
	case modeConfirm:
		return m.confirmKey(msg)
	case modeHelp:
		if key.Matches(msg, m.keys.help, m.keys.clearSearch, m.keys.quit) {
			m.mode = modeNormal
		}
		return nil
	}
	return m.normalKey(msg)
}

// interrupt handles ctrl+c: the first press acts like q, the second stops
// the builds and quits without waiting.
func (m *model) interrupt() tea.Cmd {
	m.interrupts++
	if m.interrupts == 1 && !m.stopping {
		if m.mode == modeSearch || m.mode == modeHelp {
			m.mode = modeNormal
		}
		cmd := m.requestQuit()
		if m.mode == modeConfirm {
			m.notice = "press ctrl+c again to stop all builds and quit at once"
		}
		return cmd
	}
	m.callStop()
	return m.quit()
}

func (m *model) normalKey(msg tea.KeyPressMsg) tea.Cmd {
	m.notice = ""
	k := m.keys
	switch {
	case key.Matches(msg, k.quit):
		return m.requestQuit()
	case key.Matches(msg, k.help):
		m.mode = modeHelp
	case key.Matches(msg, k.next):
		m.selectBuild(m.selected + 1)
	case key.Matches(msg, k.prev):
		m.selectBuild(m.selected - 1 + len(m.builds))
	case key.Matches(msg, k.pick):
		if n := int(msg.Code - '1'); n < len(m.builds) {
			m.selectBuild(n)
		}
	case key.Matches(msg, k.zoom):
		m.zoom = !m.zoom
		if m.zoom {
			m.focus = paneConsole
		}
	case key.Matches(msg, k.pane):
		if !m.zoom {
			m.focus = 1 - m.focus
		}
	case key.Matches(msg, k.search):
		// Matches are shown in the log, which zoom hides.
		m.zoom = false
		m.mode = modeSearch
		m.search.SetValue("")
		return m.search.Focus()
	case key.Matches(msg, k.nextMatch):
		m.stepMatch(1)
	case key.Matches(msg, k.prevMatch):
		m.stepMatch(-1)
	case key.Matches(msg, k.clearSearch):
		m.endSearch()
	case key.Matches(msg, k.attach):
		m.startAttach()
	default:
		m.scrollKey(msg)
	}
	return nil
}

func (m *model) scrollKey(msg tea.KeyPressMsg) {
	k := m.keys
	page := max(1, m.paneHeight(m.focus)-1)
	switch {
	case key.Matches(msg, k.up):
		m.scroll(1)
	case key.Matches(msg, k.down):
		m.scroll(-1)
	case key.Matches(msg, k.pageUp):
		m.scroll(page)
	case key.Matches(msg, k.pageDown):
		m.scroll(-page)
	case key.Matches(msg, k.top):
		m.scroll(1 << 30)
	case key.Matches(msg, k.end):
		m.scroll(-(1 << 30))
	case key.Matches(msg, k.follow):
		m.toggleFollow()
	}
}

func (m *model) selectBuild(i int) {
	if len(m.builds) == 0 {
		return
	}
	m.selected = i % len(m.builds)
	m.showSelectedConsole()
	if m.query != "" {
		m.findMatches()
		m.stepMatch(0)
	}
}

// scroll moves the focused pane up by n lines (down when n is negative).
// Reaching the bottom turns follow mode back on.
func (m *model) scroll(n int) {
	b := m.selectedBuild()
	offset, follow := &b.consoleOffset, &b.consoleFollow
	total := b.console.Len()
	if m.focus == paneLog {
		offset, follow = &b.logOffset, &b.logFollow
		total = b.log.len()
	}
	height := m.paneHeight(m.focus)
	*offset = max(0, min(*offset+n, total-height))
	*follow = *offset == 0
}

func (m *model) toggleFollow() {
	b := m.selectedBuild()
	if m.focus == paneLog {
		b.logFollow = !b.logFollow
		if b.logFollow {
			b.logOffset = 0
		}
		return
	}
	b.consoleFollow = !b.consoleFollow
	if b.consoleFollow {
		b.consoleOffset = 0
	}
}

func (m *model) confirmKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "y", "Y", "enter", "q":
		return m.stop()
	case "n", "N", "esc":
		m.mode = modeNormal
		m.notice = ""
	}
	return nil
}

func (m *model) searchKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "esc":
		m.endSearch()
		return nil
	case "enter":
		m.mode = modeNormal
		m.search.Blur()
		if m.query == "" {
			m.endSearch()
		}
		return nil
	}

	return m.updateSearch(msg)
}

// updateSearch passes a key or paste to the search field and jumps to the
// newest match when the query changed.
func (m *model) updateSearch(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	m.search, cmd = m.search.Update(msg)
	if q := m.search.Value(); q != m.query {
		m.query = q
		m.findMatches()
		m.match = len(m.matches) - 1
		m.stepMatch(0)
	}
	return cmd
}

func (m *model) endSearch() {
	m.mode = modeNormal
	m.search.Blur()
	m.search.SetValue("")
	m.query = ""
	m.matches = nil
	m.match = 0
}

// findMatches collects the log entries of the selected build that contain
// the query, ignoring ASCII case, and keeps the current match if it still
// exists.
func (m *model) findMatches() {
	b := m.selectedBuild()
	var current int64 = -1
	if m.match >= 0 && m.match < len(m.matches) {
		current = m.matches[m.match]
	}

	m.matches = m.matches[:0]
	q := lowerASCII(m.query)
	for i := range b.log.len() {
		if strings.Contains(lowerASCII(b.log.at(i).text), q) {
			m.matches = append(m.matches, b.log.dropped+int64(i))
		}
	}
	m.match = len(m.matches) - 1
	for i, abs := range m.matches {
		if abs == current {
			m.match = i
		}
	}
}

// stepMatch moves to the next (1) or previous (-1) match, wrapping around,
// or re-shows the current one (0), and scrolls the log so it is visible.
func (m *model) stepMatch(dir int) {
	if m.query == "" || len(m.matches) == 0 {
		return
	}
	m.match = (m.match + dir + len(m.matches)) % len(m.matches)

	b := m.selectedBuild()
	if !m.zoom {
		m.focus = paneLog
	}
	index := int(m.matches[m.match] - b.log.dropped)
	height := m.paneHeight(paneLog)
	fromBottom := b.log.len() - 1 - index
	b.logOffset = max(0, min(fromBottom-height/2, b.log.len()-height))
	b.logFollow = b.logOffset == 0
}

func (m *model) startAttach() {
	b := m.selectedBuild()
	switch {
	case m.opts.Attach == nil:
		m.notice = "attaching is not available for these builds"
	case b.status != statusRunning:
		m.notice = "cannot attach: " + b.name + " is not running"
	default:
		m.mode = modeAttached
		m.focus = paneConsole
		b.consoleFollow, b.consoleOffset = true, 0
	}
}

func (m *model) attachedKey(msg tea.KeyPressMsg) tea.Cmd {
	if key.Matches(msg, m.keys.detach) {
		m.mode = modeNormal
		return nil
	}
	if data := keyBytes(msg); len(data) > 0 {
		m.sendToConsole(data)
	}
	return nil
}

func (m *model) sendToConsole(data []byte) {
	if m.opts.Attach != nil {
		m.opts.Attach(m.selectedBuild().name, data)
	}
}

// keyBytes encodes a key press as a VT100 terminal would send it over a
// serial line, or returns nil for keys without an encoding.
func keyBytes(msg tea.KeyPressMsg) []byte {
	k := msg.Key()
	if k.Mod&tea.ModCtrl != 0 {
		switch {
		case k.Code >= 'a' && k.Code <= 'z':
			return []byte{byte(k.Code - 'a' + 1)}
		case k.Code >= '@' && k.Code <= '_':
			return []byte{byte(k.Code - '@')}
		}
	}
	if k.Text != "" {
		if k.Mod&tea.ModAlt != 0 {
			return append([]byte{0x1b}, k.Text...)
		}
		return []byte(k.Text)
	}
	if seq, ok := specialKeys[k.Code]; ok {
		return []byte(seq)
	}
	return nil
}

var specialKeys = map[rune]string{
	tea.KeyEnter:     "\r",
	tea.KeyTab:       "\t",
	tea.KeyBackspace: "\x7f",
	tea.KeyEscape:    "\x1b",
	tea.KeySpace:     " ",
	tea.KeyUp:        "\x1b[A",
	tea.KeyDown:      "\x1b[B",
	tea.KeyRight:     "\x1b[C",
	tea.KeyLeft:      "\x1b[D",
	tea.KeyHome:      "\x1b[H",
	tea.KeyEnd:       "\x1b[F",
	tea.KeyInsert:    "\x1b[2~",
	tea.KeyDelete:    "\x1b[3~",
	tea.KeyPgUp:      "\x1b[5~",
	tea.KeyPgDown:    "\x1b[6~",
	tea.KeyF1:        "\x1bOP",
	tea.KeyF2:        "\x1bOQ",
	tea.KeyF3:        "\x1bOR",
	tea.KeyF4:        "\x1bOS",
	tea.KeyF5:        "\x1b[15~",
	tea.KeyF6:        "\x1b[17~",
	tea.KeyF7:        "\x1b[18~",
	tea.KeyF8:        "\x1b[19~",
	tea.KeyF9:        "\x1b[20~",
	tea.KeyF10:       "\x1b[21~",
	tea.KeyF11:       "\x1b[23~",
	tea.KeyF12:       "\x1b[24~",
}

// lowerASCII lower-cases ASCII letters only, so byte offsets into the
// result match the input.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

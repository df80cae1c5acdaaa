package tui

import "charm.land/bubbles/v2/key"

// keyMap lists the dashboard's key bindings, from which the help view is
// built.
type keyMap struct {
	next, prev, pick    key.Binding
	up, down, top, end  key.Binding
	pageUp, pageDown    key.Binding
	follow, zoom, pane  key.Binding
	search, nextMatch   key.Binding
	prevMatch, attach   key.Binding
	help, quit, force   key.Binding
	detach, clearSearch key.Binding
}

func newKeyMap() keyMap {
	return keyMap{
		next:        key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next build")),
		prev:        key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous build")),
		pick:        key.NewBinding(key.WithKeys("1", "2", "3", "4", "5", "6", "7", "8", "9"), key.WithHelp("1-9", "select build")),
		up:          key.NewBinding(key.WithKeys("k", "up"), key.WithHelp("k/↑", "scroll up")),
		down:        key.NewBinding(key.WithKeys("j", "down"), key.WithHelp("j/↓", "scroll down")),
		top:         key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "top")),
		end:         key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "bottom")),
		pageUp:      key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		pageDown:    key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
		follow:      key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "follow")),
		zoom:        key.NewBinding(key.WithKeys("z"), key.WithHelp("z", "zoom console")),
		pane:        key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "console/log")),
		search:      key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search log")),
		nextMatch:   key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "next match")),
		prevMatch:   key.NewBinding(key.WithKeys("N"), key.WithHelp("N", "previous match")),
		clearSearch: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "end search")),
		attach:      key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "attach")),
		detach:      key.NewBinding(key.WithKeys("ctrl+]"), key.WithHelp("ctrl+]", "detach")),
		help:        key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		quit:        key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		force:       key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c ×2", "force quit")),
	}
}

// ShortHelp returns the bindings shown in the footer. Help and quit come
// first, so a narrow terminal that cuts the footer still shows them.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.help, k.quit, k.next, k.zoom, k.pane, k.follow, k.search, k.attach}
}

// FullHelp returns the bindings shown by the help view, in columns.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.next, k.prev, k.pick, k.pane, k.zoom},
		{k.up, k.down, k.top, k.end, k.pageUp, k.pageDown, k.follow},
		{k.search, k.nextMatch, k.prevMatch, k.clearSearch},
		{k.attach, k.detach, k.help, k.quit, k.force},
	}
}

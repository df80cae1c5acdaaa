package tui

import (
	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
)

// styles holds every style the dashboard draws with. Without colour, only
// bold, faint and reverse video mark state, so NO_COLOR screens stay legible.
type styles struct {
	header   lipgloss.Style
	title    lipgloss.Style // pane title bar
	titleOn  lipgloss.Style // pane title bar of the focused pane
	selected lipgloss.Style // selected build in the list and tabs
	faint    lipgloss.Style
	running  lipgloss.Style
	done     lipgloss.Style
	failed   lipgloss.Style
	warning  lipgloss.Style
	http     lipgloss.Style
	match    lipgloss.Style // search match in the log
	current  lipgloss.Style // search match the view jumped to
	badge    lipgloss.Style // ATTACHED
	help     help.Styles
}

func newStyles(noColor bool) styles {
	plain := lipgloss.NewStyle()
	s := styles{
		header:   plain.Bold(true),
		title:    plain.Reverse(true),
		titleOn:  plain.Reverse(true).Bold(true),
		selected: plain.Reverse(true),
		faint:    plain.Faint(true),
		running:  plain.Bold(true),
		done:     plain,
		failed:   plain.Bold(true),
		warning:  plain.Bold(true),
		http:     plain,
		match:    plain.Underline(true),
		current:  plain.Reverse(true),
		badge:    plain.Reverse(true).Bold(true),
		help:     plainHelpStyles(),
	}
	if noColor {
		return s
	}

	s.header = s.header.Foreground(lipgloss.Color("15")).Background(lipgloss.Color("24"))
	s.title = plain.Foreground(lipgloss.Color("252")).Background(lipgloss.Color("238"))
	s.titleOn = plain.Bold(true).Foreground(lipgloss.Color("15")).Background(lipgloss.Color("25"))
	s.selected = plain.Background(lipgloss.Color("237")).Bold(true)
	s.running = s.running.Foreground(lipgloss.Color("39"))
	s.done = s.done.Foreground(lipgloss.Color("42"))
	s.failed = s.failed.Foreground(lipgloss.Color("196"))
	s.warning = s.warning.Foreground(lipgloss.Color("214"))
	s.http = s.http.Foreground(lipgloss.Color("110"))
	s.match = plain.Foreground(lipgloss.Color("0")).Background(lipgloss.Color("178"))
	s.current = plain.Foreground(lipgloss.Color("0")).Background(lipgloss.Color("208")).Bold(true)
	s.badge = plain.Bold(true).Foreground(lipgloss.Color("15")).Background(lipgloss.Color("160"))
	s.help = help.DefaultDarkStyles()
	return s
}

func plainHelpStyles() help.Styles {
	plain := lipgloss.NewStyle()
	return help.Styles{
		Ellipsis:       plain,
		ShortKey:       plain.Bold(true),
		ShortDesc:      plain,
		ShortSeparator: plain.Faint(true),
		FullKey:        plain.Bold(true),
		FullDesc:       plain,
		FullSeparator:  plain.Faint(true),
	}
}

package report

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// maxLineBytes bounds a console line that never ends, so a guest printing
// without newlines cannot grow the buffer without limit.
const maxLineBytes = 4096

// lineSplitter assembles console bytes that arrive in arbitrary chunks into
// whole lines.
type lineSplitter struct {
	partial []byte
}

// write appends data and returns every line it completes, cleaned for
// display. A line longer than maxLineBytes is cut and returned in pieces.
func (s *lineSplitter) write(data []byte) []string {
	var lines []string
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			s.partial = append(s.partial, data...)
			break
		}
		s.partial = append(s.partial, data[:i]...)
		lines = append(lines, cleanConsoleLine(s.partial))
		s.partial = s.partial[:0]
		data = data[i+1:]
	}
	for len(s.partial) >= maxLineBytes {
		lines = append(lines, cleanConsoleLine(s.partial[:maxLineBytes]))
		s.partial = append(s.partial[:0], s.partial[maxLineBytes:]...)
	}
	return lines
}

// flush returns the pending partial line, if it contains any visible text.
func (s *lineSplitter) flush() (string, bool) {
	if len(s.partial) == 0 {
		return "", false
	}
	line := cleanConsoleLine(s.partial)
	s.partial = s.partial[:0]
	return line, strings.TrimSpace(line) != ""
}

// cleanConsoleLine turns one raw terminal line into plain text. A carriage
// return inside the line moves the cursor back to column 0, so only the text
// after the last one stays visible, as on a terminal that redraws a progress
// bar in place.
func cleanConsoleLine(raw []byte) string {
	for len(raw) > 0 && raw[len(raw)-1] == '\r' {
		raw = raw[:len(raw)-1]
	}
	for i := len(raw) - 1; i >= 0; i-- {
		if raw[i] == '\r' {
			raw = raw[i+1:]
			break
		}
	}
	return cleanText(string(stripEscapes(raw)))
}

// stripEscapes removes ANSI/VT escape sequences (CSI, OSC, DCS and the
// two- and three-byte ESC forms) from b. An unterminated sequence at the
// end of b is dropped.
func stripEscapes(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0x1b {
			out = append(out, b[i])
			continue
		}
		i = skipEscape(b, i)
	}
	return out
}

// skipEscape returns the index of the last byte of the escape sequence that
// starts at b[start], which is ESC.
func skipEscape(b []byte, start int) int {
	i := start + 1
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '[': // CSI: parameter bytes, intermediate bytes, one final byte
		for i++; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				return i
			}
		}
		return len(b)
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC: a string ended by BEL or ESC \
		for i++; i < len(b); i++ {
			if b[i] == 0x07 {
				return i
			}
			if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
				return i + 1
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] >= 0x20 && b[i] <= 0x2f { // intermediate bytes, as in ESC ( B
		i++
	}
	return i
}

// cleanText makes s safe for a log line and for XML: invalid UTF-8 becomes
// U+FFFD, and control characters other than tab and newline are removed,
// along with U+FFFE and U+FFFF, which XML 1.0 does not allow.
func cleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if !needsCleaning(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if keepRune(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsCleaning(s string) bool {
	for _, r := range s {
		if !keepRune(r) {
			return true
		}
	}
	return false
}

func keepRune(r rune) bool {
	switch {
	case r == '\t' || r == '\n':
		return true
	case r < 0x20 || r == 0x7f:
		return false
	case r >= 0x80 && r <= 0x9f: // C1 controls
		return false
	case r == 0xfffe || r == 0xffff:
		return false
	}
	return true
}

// cleanMessage removes escape sequences and control characters from an
// event's text field, so a message cannot move the cursor or forge lines.
func cleanMessage(s string) string {
	return cleanText(string(stripEscapes([]byte(s))))
}

package tui

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// The VT emulator copies the whole screen for every line that scrolls, which
// costs about 37 µs per line at 80x24 (BenchmarkIngest, 2.6 GHz Xeon): half a
// second per megabyte of boot log. Most serial output is plain lines, though,
// and a plain line that scrolls off the top ends up in scrollback exactly as
// written. So a long run of plain lines is fed to the emulator only at its
// two ends, and the lines in between go straight to the scrollback ring.
//
// With h the screen height and L1..Lk a run of k >= 2h+1 plain lines, each
// starting in column 0 and ending in CR LF (see plainLine):
//
//  1. L1..Lh are parsed: everything that was on the screen scrolls off, and
//     the cursor sits in column 0 of the blank bottom row.
//  2. h-1 CR LFs scroll L2..Lh off, which leaves the screen blank.
//  3. L(h+1)..L(k-h) are pushed to the ring as text, one entry per screen
//     row, so a line longer than the screen is wide is cut where the
//     emulator would wrap it.
//  4. L(k-h+1)..Lk are parsed after the pen they start with is restored.
//     The first h-1 rows this scrolls off are the blank rows from step 2 and
//     are discarded.
//
// The ring and the screen then hold what parsing every line would give.

// plainLine reports whether line (ending in "\n") is eligible: one or more
// CRs before the line feed, optional CRs at the start, and in between only
// printable ASCII, SGR sequences and characters of plainRune. Such a line
// does not move the cursor except by printing and wrapping, and the CRs at
// either end have no effect beyond the one a CR LF has.
func plainLine(line []byte) bool {
	body, ok := plainBody(line)
	if !ok {
		return false
	}
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c >= 0x20 && c < 0x7f:
			i++
		case c == 0x1b:
			end := sgrEnd(body[i:])
			if end < 0 {
				return false
			}
			i += end
		default:
			r, size := utf8.DecodeRune(body[i:])
			if !plainRune(r) {
				return false
			}
			i += size
		}
	}
	return true
}

// plainBody returns line without its line feed and the CRs at either end,
// and false when no CR comes right before the line feed.
func plainBody(line []byte) ([]byte, bool) {
	n := len(line)
	if n < 2 || line[n-1] != '\n' || line[n-2] != '\r' {
		return nil, false
	}
	return bytes.TrimLeft(bytes.TrimRight(line[:n-1], "\r"), "\r"), true
}

// plainRune reports whether r is a character outside ASCII that the
// emulator draws in one cell on its own: Latin letters, general
// punctuation such as "…", arrows, box drawing and block elements.
// TestPlainRunesAreOneCell checks each of them against the emulator.
func plainRune(r rune) bool {
	switch {
	case r >= 0xa0 && r <= 0x24f:
		return r != 0xad // the soft hyphen has no width
	case r >= 0x2010 && r <= 0x2027, r >= 0x2030 && r <= 0x205e:
		return true
	case r >= 0x2190 && r <= 0x21ff, r >= 0x2500 && r <= 0x259f:
		return true
	}
	return false
}

// plainRows returns the screen rows that a plain line drawn with pen p
// fills, each consoleWidth cells at most and rendered for the ring, and the
// pen after the line.
func plainRows(p pen, line []byte) ([]string, pen) {
	body, _ := plainBody(line)
	var rows []string
	start, cells := 0, 0
	rowPen := p
	for i := 0; i < len(body); {
		if body[i] == 0x1b {
			end := sgrEnd(body[i:])
			p.update(body[i : i+end])
			i += end
			continue
		}
		if cells == consoleWidth {
			// The next character wraps to a new row.
			rows = append(rows, renderPlain(rowPen, body[start:i]))
			start, cells, rowPen = i, 0, p
		}
		_, size := utf8.DecodeRune(body[i:])
		i += size
		cells++
	}
	rows = append(rows, renderPlain(rowPen, body[start:]))
	return rows, p
}

// sgrEnd returns the length of the SGR sequence at the start of b, or -1 if
// b does not start with one.
func sgrEnd(b []byte) int {
	if len(b) < 3 || b[0] != 0x1b || b[1] != '[' {
		return -1
	}
	for i := 2; i < len(b); i++ {
		c := b[i]
		switch {
		case c == 'm':
			return i + 1
		case c >= '0' && c <= '9', c == ';', c == ':':
		default:
			return -1
		}
	}
	return -1
}

// plainRun finds the first run of at least minLines eligible lines in data
// that starts at a line start. It returns the run's byte range, or -1s.
func plainRun(data []byte, minLines int) (start, end int) {
	runStart, lines := 0, 0
	pos := 0
	for pos < len(data) {
		nl := bytes.IndexByte(data[pos:], '\n')
		if nl < 0 {
			break
		}
		line := data[pos : pos+nl+1]
		if plainLine(line) {
			lines++
		} else {
			if lines >= minLines {
				return runStart, pos
			}
			lines = 0
			runStart = pos + nl + 1
		}
		pos += nl + 1
	}
	if lines >= minLines {
		return runStart, pos
	}
	return -1, -1
}

// pen tracks the SGR state across lines as the SGR sequences written since
// the last full reset, which replayed in order restore it.
type pen struct {
	seqs string
}

// maxPen bounds the replayed SGR text. A longer pen disables the fast path
// until the next SGR sequence that resets the pen.
const maxPen = 256

// update applies the SGR sequences in line and reports whether the pen is
// still within maxPen.
func (p *pen) update(line []byte) bool {
	for i := 0; i < len(line); i++ {
		if line[i] != 0x1b {
			continue
		}
		end := sgrEnd(line[i:])
		if end < 0 {
			continue
		}
		seq := line[i : i+end]
		if resetsPen(seq) || len(p.seqs) > maxPen {
			p.seqs = string(seq)
		} else {
			p.seqs += string(seq)
		}
		i += end - 1
	}
	return len(p.seqs) <= maxPen
}

// resetsPen reports whether an SGR sequence starts from the default pen:
// no parameters, or a 0 among them.
func resetsPen(seq []byte) bool {
	params := string(seq[2 : len(seq)-1])
	if params == "" {
		return true
	}
	for _, p := range strings.FieldsFunc(params, func(r rune) bool { return r == ';' || r == ':' }) {
		if strings.Trim(p, "0") == "" {
			return true
		}
	}
	return false
}

// renderPlain returns the ring text of one row of a plain line, drawn
// starting with pen p.
func renderPlain(p pen, row []byte) string {
	body := string(row)
	if p.seqs == "" && !strings.Contains(body, "\x1b") {
		return body
	}
	return p.seqs + body + ansi.ResetStyle
}

// vtState tracks emulator state that plain lines would render differently
// under: a scroll region, auto-wrap turned off, or a character set other
// than ASCII.
type vtState struct {
	region  bool // a scroll region is set
	noWrap  bool // auto-wrap is off, so long lines do not wrap
	g0, g1  byte // designated character sets, where 'B' is ASCII
	shifted bool // SO selected G1
	pen     pen
	penOK   bool // pen is known: its SGR text stayed within maxPen
}

func newVTState() vtState {
	return vtState{g0: 'B', g1: 'B', penOK: true}
}

// plainSafe reports whether plain lines render as written.
func (s *vtState) plainSafe() bool {
	charset := s.g0
	if s.shifted {
		charset = s.g1
	}
	return !s.region && !s.noWrap && charset == 'B' && s.penOK
}

// scan updates the state from data fed to the emulator.
// NOTE: a sequence split across two writes is not seen, so the fast path
// may then render a few lines under the wrong scroll region or character
// set until the next sequence of the same kind.
func (s *vtState) scan(data []byte) {
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case 0x0e:
			s.shifted = true
		case 0x0f:
			s.shifted = false
		case 0x1b:
			if i+1 >= len(data) {
				return
			}
			switch data[i+1] {
			case 'c':
				*s = newVTState()
			case '(', ')':
				if i+2 < len(data) {
					if data[i+1] == '(' {
						s.g0 = data[i+2]
					} else {
						s.g1 = data[i+2]
					}
				}
			case '[':
				i = s.scanCSI(data, i)
			}
		}
	}
}

// scanCSI reads the CSI sequence at data[i] and returns the index of its
// final byte.
func (s *vtState) scanCSI(data []byte, i int) int {
	for j := i + 2; j < len(data); j++ {
		c := data[j]
		if c >= 0x40 && c <= 0x7e {
			switch c {
			case 'r':
				s.region = !fullScreenRegion(string(data[i+2 : j]))
			case 'h', 'l':
				if params := string(data[i+2 : j]); strings.HasPrefix(params, "?") &&
					slices.Contains(strings.Split(params[1:], ";"), "7") {
					s.noWrap = c == 'l'
				}
			case 'm':
				if end := sgrEnd(data[i : j+1]); end == j+1-i {
					s.penOK = s.pen.update(data[i : j+1])
				}
			}
			return j
		}
	}
	return len(data)
}

// fullScreenRegion reports whether the DECSTBM parameters params, such as
// "1;24", leave every row of the console in the scroll region, which is
// the same as no region.
func fullScreenRegion(params string) bool {
	top, bottom, _ := strings.Cut(params, ";")
	return (top == "" || top == "0" || top == "1") &&
		(bottom == "" || bottom == "0" || bottom == strconv.Itoa(consoleHeight))
}

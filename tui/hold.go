package tui

import (
	"bytes"
	"fmt"
	"strings"
)

// A console that is not on screen keeps its output as raw bytes instead of
// parsing it, because the VT emulator costs far more per byte than anything
// else the dashboard does. Only the selected build's console is drawn, so
// with four builds streaming three of them hold their output. When a console
// is selected again, its held bytes are parsed at once and it shows what
// parsing every write at once would have shown, unless held output hit its
// bound:
//
//   - Held output is bounded. Once it grows past maxHeldBytes or twice
//     keepLines lines, the oldest bytes are dropped at a line start. The newest
//     keepLines lines (a full scrollback and a screen) are kept within
//     maxHeldBytes/2 bytes. When the kept lines do not fill the scrollback,
//     the console shows a line that states how much was skipped above them.
//   - A query from the guest, such as a cursor position request, makes the
//     console parse everything held up to that point, so that the reply
//     is sent without waiting for the console to be selected.

const (
	// maxHeldBytes bounds the raw output a hidden console keeps. Parsing
	// it on selection takes an estimated 0.3 s, at the 3.5 MB per CPU second
	// the replay benchmark measured for the emulator on a 2.6 GHz Xeon, and
	// less for plain lines, which take the fast path.
	maxHeldBytes = 1 << 20
)

// heldOutput is the raw output of a hidden console that has not been parsed yet.
type heldOutput struct {
	data    []byte
	lines   int   // line feeds in data
	skipped int64 // bytes dropped from the front of data
	modes   modeTracker
}

// add appends p and drops the oldest bytes when the bounds are exceeded.
// keepLines is the number of newest lines that a trim keeps.
func (h *heldOutput) add(p []byte, keepLines int) {
	h.data = append(h.data, p...)
	h.lines += bytes.Count(p, []byte{'\n'})
	if len(h.data) > maxHeldBytes || h.lines > 2*keepLines {
		h.trim(keepLines)
	}
}

// trim drops the oldest bytes, keeping at most keepLines lines and at most
// maxHeldBytes/2 bytes. It cuts at a line start, or before an escape
// sequence when the kept bytes hold no line start, and records the modes
// the dropped bytes set.
func (h *heldOutput) trim(keepLines int) {
	cut := lineCut(h.data, keepLines)
	if len(h.data)-cut > maxHeldBytes/2 {
		cut = safeCut(h.data, len(h.data)-maxHeldBytes/2)
	}
	if cut <= 0 {
		return
	}
	h.modes.scan(h.data[:cut])
	h.skipped += int64(cut)
	h.lines -= bytes.Count(h.data[:cut], []byte{'\n'})
	// Copy the kept bytes, so the dropped ones can be freed.
	h.data = append([]byte(nil), h.data[cut:]...)
}

// pending reports whether take would return anything.
func (h *heldOutput) pending() bool {
	return len(h.data) > 0 || h.skipped > 0
}

// take returns the held output ready to be parsed, and empties h. When
// bytes were dropped, it starts with a line that states how many, followed
// by the sequences that restore the modes the dropped bytes had set.
// NOTE: text that the dropped bytes placed by cursor addressing, such as
// an installer dialog on the alternate screen, is lost, so the kept tail's
// partial updates may be drawn on a blank screen.
func (h *heldOutput) take() []byte {
	if h.skipped == 0 {
		out := h.data
		*h = heldOutput{}
		return out
	}
	var prefix strings.Builder
	fmt.Fprintf(&prefix, "\x1b[0m\r\n\x1b[2m── skipped %s while this console was hidden (see the serial log) ──\x1b[0m\r\n",
		formatBytes(h.skipped))
	prefix.WriteString(h.modes.restore())
	out := append([]byte(prefix.String()), h.data...)
	*h = heldOutput{}
	return out
}

// lineCut returns the index of the line start after which data holds
// keepLines line feeds, or 0 when it holds fewer.
func lineCut(data []byte, keepLines int) int {
	seen := 0
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] != '\n' {
			continue
		}
		if seen == keepLines {
			return i + 1
		}
		seen++
	}
	return 0
}

// safeCut returns the first index at or after at where parsing can start
// without splitting a line or an escape sequence: after a line feed, or at
// an ESC. It returns at when there is neither.
func safeCut(data []byte, at int) int {
	for i := at; i < len(data); i++ {
		switch data[i] {
		case '\n':
			return i + 1
		case 0x1b:
			return i
		}
	}
	return at
}

// modeTracker records the last sequence of each kind that changes how later
// output is drawn, so that dropping the bytes that contained them keeps
// their effect: the pen (SGR), the alternate screen, the scroll region,
// auto-wrap and the character sets.
type modeTracker struct {
	reset     bool // a full reset (ESC c) came before the other sequences
	pen       pen
	altScreen string
	region    string
	autoWrap  string
	g0, g1    string
	shift     byte // SO or SI, or 0 when neither was seen
}

// restore returns the recorded sequences, in an order where switching to
// the alternate screen comes before anything it would reset.
func (t *modeTracker) restore() string {
	var sb strings.Builder
	if t.reset {
		sb.WriteString("\x1bc")
	}
	sb.WriteString(t.altScreen)
	sb.WriteString(t.region)
	sb.WriteString(t.autoWrap)
	sb.WriteString(t.g0)
	sb.WriteString(t.g1)
	if t.shift != 0 {
		sb.WriteByte(t.shift)
	}
	sb.WriteString(t.pen.seqs)
	return sb.String()
}

// scan records the mode sequences in data.
// NOTE: like vtState.scan, it does not see a sequence split across two
// writes, and it ignores 8-bit C1 controls.
func (t *modeTracker) scan(data []byte) {
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case 0x0e, 0x0f:
			t.shift = data[i]
		case 0x1b:
			if i+1 >= len(data) {
				return
			}
			switch data[i+1] {
			case 'c':
				*t = modeTracker{reset: true}
			case '(', ')':
				if i+2 >= len(data) {
					return
				}
				if data[i+1] == '(' {
					t.g0 = string(data[i : i+3])
				} else {
					t.g1 = string(data[i : i+3])
				}
			case '[':
				i = t.scanCSI(data, i)
			}
		}
	}
}

// scanCSI records the CSI sequence at data[i] if it sets a tracked mode,
// and returns the index of its final byte.
func (t *modeTracker) scanCSI(data []byte, i int) int {
	for j := i + 2; j < len(data); j++ {
		c := data[j]
		if c < 0x40 || c > 0x7e {
			continue
		}
		seq := data[i : j+1]
		params := string(data[i+2 : j])
		switch c {
		case 'm':
			if sgrEnd(seq) == len(seq) {
				t.pen.update(seq)
			}
		case 'r':
			t.region = string(seq)
		case 'h', 'l':
			t.privateModes(params, c)
		}
		return j
	}
	return len(data)
}

// privateModes records DEC private mode changes to the alternate screen and
// auto-wrap, such as ESC[?1049h.
func (t *modeTracker) privateModes(params string, final byte) {
	if !strings.HasPrefix(params, "?") {
		return
	}
	for _, mode := range strings.Split(params[1:], ";") {
		switch mode {
		case "1049", "1047", "47":
			t.altScreen = "\x1b[?" + mode + string(final)
		case "7":
			t.autoWrap = "\x1b[?7" + string(final)
		}
	}
}

// hasQuery reports whether data contains a sequence the emulator replies
// to. Those are device attributes (CSI c), status and cursor position
// reports (CSI n), mode reports (CSI $p), in-band resize reports
// (CSI ?2048h) and colour queries (OSC 10, 11 and 12 with "?").
func hasQuery(data []byte) bool {
	for i := 0; i+1 < len(data); i++ {
		if data[i] != 0x1b {
			continue
		}
		switch data[i+1] {
		case '[':
			if csiQuery(data[i+2:]) {
				return true
			}
		case ']':
			end := min(len(data), i+2+32)
			body := data[i+2 : end]
			if (bytes.HasPrefix(body, []byte("10;")) || bytes.HasPrefix(body, []byte("11;")) ||
				bytes.HasPrefix(body, []byte("12;"))) && bytes.IndexByte(body, '?') >= 0 {
				return true
			}
		}
	}
	return false
}

// csiQuery reports whether the emulator replies to the CSI sequence whose
// parameters start at rest.
func csiQuery(rest []byte) bool {
	for j, c := range rest {
		if c < 0x40 || c > 0x7e {
			continue
		}
		params := rest[:j]
		switch c {
		case 'c', 'n':
			return true
		case 'p':
			return bytes.HasSuffix(params, []byte("$"))
		case 'h':
			return bytes.Contains(params, []byte("2048"))
		}
		return false
	}
	return false
}

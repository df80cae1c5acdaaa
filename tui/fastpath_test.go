package tui

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
)

// serialOutput returns n lines of console output drawn from kinds of line a
// guest prints, chosen by a seeded generator.
func serialOutput(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 1))
	var sb strings.Builder
	for i := range n {
		switch r.IntN(12) {
		case 0:
			fmt.Fprintf(&sb, "\x1b[1;31mred %d\r\n", i) // leaves the pen red
		case 1:
			fmt.Fprintf(&sb, "\x1b[0mreset %d\r\n", i)
		case 2:
			fmt.Fprintf(&sb, "%s %d\r\n", strings.Repeat("long", 30), i) // wraps
		case 3:
			fmt.Fprintf(&sb, "progress 10%%\rprogress 100%% %d\r\n", i)
		case 4:
			sb.WriteString("\r\n")
		case 5:
			fmt.Fprintf(&sb, "[\x1b[32m  OK  \x1b[0m] Started %d\r\n", i)
		case 6:
			fmt.Fprintf(&sb, "tab\there %d\r\n", i)
		case 7:
			fmt.Fprintf(&sb, "no cr %d\n", i)
		default:
			fmt.Fprintf(&sb, "plain line %d %s\r\n", i, strings.Repeat("x", r.IntN(60)))
		}
	}
	return sb.String()
}

func TestFastPathMatchesEmulator(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		chunks int
	}{
		{name: "plain lines", input: numberedLines("line", 500), chunks: 1},
		{name: "plain lines in pieces", input: numberedLines("line", 500), chunks: 37},
		{name: "mixed", input: serialOutput(1, 2000), chunks: 1},
		{name: "mixed in pieces", input: serialOutput(2, 2000), chunks: 101},
		{name: "screen half full first", input: "a\r\nb\r\n" + numberedLines("line", 200), chunks: 1},
		{name: "partial line first", input: "prompt " + numberedLines("line", 200) + "tail", chunks: 1},
		{name: "full-screen scroll region", input: "\x1b[1;24r" + numberedLines("line", 200), chunks: 1},
		{name: "scroll region", input: "\x1b[2;20r" + numberedLines("line", 200) + "\x1b[r" + numberedLines("after", 100), chunks: 1},
		{name: "line drawing", input: "\x1b(0" + numberedLines("qqq", 100) + "\x1b(B" + numberedLines("ascii", 100), chunks: 1},
		{name: "CR CR LF endings", input: strings.ReplaceAll(numberedLines("line", 200), "\r\n", "\r\r\n"), chunks: 1},
		{name: "leading CR", input: strings.ReplaceAll(numberedLines("line", 200), "\n", "\n\r"), chunks: 1},
		{name: "wrapped lines", input: wrappedLines(300), chunks: 1},
		{name: "wrapped lines in pieces", input: wrappedLines(300), chunks: 29},
		{name: "auto-wrap off", input: "\x1b[?7l" + wrappedLines(100) + "\x1b[?7h" + wrappedLines(100), chunks: 1},
		{name: "punctuation and box drawing", input: strings.Repeat("[  OK  ] Started dev-mqueue\u2026mount \u2500\u2502 caf\u00e9\r\n", 200), chunks: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConsole(100000, nil)
			t.Cleanup(c.Close)
			data := []byte(tt.input)
			step := len(data)/tt.chunks + 1
			for off := 0; off < len(data); off += step {
				c.feed(data[off:min(off+step, len(data))])
			}

			ref := vt.NewEmulator(consoleWidth, consoleHeight)
			ref.SetScrollbackSize(100000)
			_, _ = ref.Write(data)

			want := ref.Scrollback().Lines()
			if c.ring.len() != len(want) {
				t.Fatalf("ring has %d lines, emulator scrollback %d", c.ring.len(), len(want))
			}
			for i, line := range want {
				got := strings.TrimRight(ansi.Strip(c.ring.at(i)), " ")
				if w := strings.TrimRight(line.String(), " "); got != w {
					t.Fatalf("ring line %d = %q, want %q", i, got, w)
				}
			}
			if got, want := c.Text(), ref.String(); got != want {
				t.Errorf("screen =\n%s\nwant\n%s", got, want)
			}
			if got, want := c.emu.CursorPosition(), ref.CursorPosition(); got != want {
				t.Errorf("cursor = %v, want %v", got, want)
			}
		})
	}
}

// wrappedLines returns n lines of 1 to 250 cells, some exactly one or two
// screen widths and some with a colour change at a wrap point.
func wrappedLines(n int) string {
	var sb strings.Builder
	for i := range n {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&sb, "%s\r\n", strings.Repeat("a", consoleWidth))
		case 1:
			fmt.Fprintf(&sb, "%s\r\n", strings.Repeat("b", 2*consoleWidth))
		case 2:
			fmt.Fprintf(&sb, "%s\x1b[33m%s\x1b[0m %d\r\n", strings.Repeat("c", consoleWidth), strings.Repeat("d", 90), i)
		default:
			fmt.Fprintf(&sb, "line %d %s\r\n", i, strings.Repeat("e", (i*37)%250))
		}
	}
	return sb.String()
}

func TestPlainRunesAreOneCell(t *testing.T) {
	for r := rune(0x80); r < 0x2600; r++ {
		if !plainRune(r) {
			continue
		}
		emu := vt.NewEmulator(consoleWidth, consoleHeight)
		_, _ = emu.Write([]byte(string(r) + "x"))
		if got := emu.CursorPosition().X; got != 2 {
			t.Errorf("U+%04X moves the cursor to column %d, want 2", r, got)
		}
		if got := emu.CellAt(1, 0); got == nil || got.Content != "x" {
			t.Errorf("U+%04X combines with the character after it", r)
		}
	}
}

func TestPlainRows(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{name: "empty", line: "\r\n", want: []string{""}},
		{name: "one row", line: "abc\r\r\n", want: []string{"abc"}},
		{name: "exactly one width", line: strings.Repeat("a", consoleWidth) + "\r\n", want: []string{strings.Repeat("a", consoleWidth)}},
		{name: "one cell more", line: strings.Repeat("a", consoleWidth) + "b\r\n", want: []string{strings.Repeat("a", consoleWidth), "b"}},
		{name: "colour at the wrap", line: strings.Repeat("a", consoleWidth) + "\x1b[31mb\r\n",
			want: []string{strings.Repeat("a", consoleWidth) + "\x1b[31m\x1b[m", "\x1b[31mb\x1b[m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !plainLine([]byte(tt.line)) {
				t.Fatalf("plainLine(%q) = false, want true", tt.line)
			}
			got, _ := plainRows(pen{}, []byte(tt.line))
			if !slices.Equal(got, tt.want) {
				t.Errorf("rows = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFastPathKeepsPen(t *testing.T) {
	c := newConsole(1000, nil)
	t.Cleanup(c.Close)
	c.feed([]byte("\x1b[31m" + numberedLines("red", 100) + "\x1b[0m"))

	if c.ring.len() == 0 {
		t.Fatal("ring is empty")
	}
	for i := range c.ring.len() {
		if line := c.ring.at(i); !strings.Contains(line, "31") {
			t.Fatalf("ring line %d = %q, want it drawn red", i, line)
		}
	}
	cell := c.emu.CellAt(0, 0)
	if cell == nil || cell.Style.Fg == nil {
		t.Error("screen lost the red pen after the fast path")
	}
}

func TestPlainRun(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		minLines  int
		wantStart int
		wantEnd   int
	}{
		{name: "all plain", data: "a\r\nb\r\nc\r\n", minLines: 3, wantStart: 0, wantEnd: 9},
		{name: "too short", data: "a\r\nb\r\n", minLines: 3, wantStart: -1, wantEnd: -1},
		{name: "cursor move breaks", data: "x\x1b[H\r\na\r\nb\r\nc\r\n", minLines: 3, wantStart: 6, wantEnd: 15},
		{name: "sgr allowed", data: "\x1b[1;32ma\r\nb\x1b[m\r\nc\r\n", minLines: 3, wantStart: 0, wantEnd: 19},
		{name: "bare lf breaks", data: "a\nb\r\nc\r\nd\r\n", minLines: 3, wantStart: 2, wantEnd: 11},
		{name: "partial tail excluded", data: "a\r\nb\r\nc\r\nd", minLines: 3, wantStart: 0, wantEnd: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := plainRun([]byte(tt.data), tt.minLines)
			if start != tt.wantStart || end != tt.wantEnd {
				t.Errorf("plainRun = %d, %d; want %d, %d", start, end, tt.wantStart, tt.wantEnd)
			}
		})
	}
}

package report

import (
	"slices"
	"testing"
	"time"
)

func TestCleanConsoleLine(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{name: "plain", raw: "hello", want: "hello"},
		{name: "crlf", raw: "hello\r", want: "hello"},
		{name: "carriage return redraw", raw: " 10%\r 55%\r100%", want: "100%"},
		{name: "sgr colour", raw: "\x1b[1;32mOK\x1b[0m done", want: "OK done"},
		{name: "cursor and erase", raw: "\x1b[2J\x1b[H\x1b[?25lmenu\x1b[K", want: "menu"},
		{name: "osc title with bel", raw: "\x1b]0;grub\x07boot", want: "boot"},
		{name: "osc with string terminator", raw: "\x1b]2;t\x1b\\x", want: "x"},
		{name: "charset designation", raw: "\x1b(Bline\x1b)0", want: "line"},
		{name: "two-byte escape", raw: "\x1bcreset", want: "reset"},
		{name: "unterminated csi", raw: "text\x1b[12", want: "text"},
		{name: "backspace and bell", raw: "a\bb\x07c", want: "abc"},
		{name: "tab kept", raw: "a\tb", want: "a\tb"},
		{name: "invalid utf8", raw: "bad\xff\xfe end", want: "bad\uFFFD end"},
		{name: "c1 control rune", raw: "a\u0085b", want: "ab"},
		{name: "non-character ffff", raw: "a\uffffb", want: "ab"},
		{name: "unicode kept", raw: "Grüße ✓", want: "Grüße ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cleanConsoleLine([]byte(tt.raw)); got != tt.want {
				t.Errorf("cleanConsoleLine(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestLineSplitterAcrossChunks(t *testing.T) {
	var s lineSplitter
	var got []string
	for _, chunk := range []string{"fir", "st\r\nsec", "ond\n\x1b[3", "1mthird\x1b[0m", "\npart"} {
		got = append(got, s.write([]byte(chunk))...)
	}
	want := []string{"first", "second", "third"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
	rest, ok := s.flush()
	if !ok || rest != "part" {
		t.Errorf("flush() = %q, %v, want \"part\", true", rest, ok)
	}
	if _, ok := s.flush(); ok {
		t.Error("second flush() returned a line")
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{in: "350ms", want: "350ms"},
		{in: "2.14s", want: "2.1s"},
		{in: "12m3.4s", want: "12m3s"},
	}
	for _, tt := range tests {
		d, err := time.ParseDuration(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := formatDuration(d); got != tt.want {
			t.Errorf("formatDuration(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{in: 0, want: "0 B"},
		{in: 1023, want: "1023 B"},
		{in: 1536, want: "1.5 KiB"},
		{in: 10 << 30, want: "10.0 GiB"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.in); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

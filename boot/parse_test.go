package boot

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func press(name, qcode string) Action {
	return Action{Op: OpPress, Key: Key{Name: name, QCode: qcode}}
}

func typed(text string) Action { return Action{Op: OpType, Text: text} }

func wait(d time.Duration) Action { return Action{Op: OpWait, Duration: d} }

// withoutPos returns the actions with every Pos cleared, for comparisons
// that are not about positions.
func withoutPos(actions []Action) []Action {
	out := make([]Action, len(actions))
	for i, a := range actions {
		a.Pos = 0
		out[i] = a
	}
	return out
}

func mustParse(t *testing.T, text string) (*Program, []Warning) {
	t.Helper()
	p, warnings, err := Parse(text)
	if err != nil {
		t.Fatalf("Parse(%q) failed: %v", text, err)
	}
	return p, warnings
}

func TestParseSpecialKeys(t *testing.T) {
	tests := []struct {
		tag   string
		name  string
		qcode string
	}{
		{tag: "<enter>", name: "enter", qcode: "ret"},
		{tag: "<return>", name: "return", qcode: "ret"},
		{tag: "<esc>", name: "esc", qcode: "esc"},
		{tag: "<tab>", name: "tab", qcode: "tab"},
		{tag: "<bs>", name: "bs", qcode: "backspace"},
		{tag: "<del>", name: "del", qcode: "delete"},
		{tag: "<spacebar>", name: "spacebar", qcode: "spc"},
		{tag: "<insert>", name: "insert", qcode: "insert"},
		{tag: "<home>", name: "home", qcode: "home"},
		{tag: "<end>", name: "end", qcode: "end"},
		{tag: "<pageUp>", name: "pageUp", qcode: "pgup"},
		{tag: "<pageDown>", name: "pageDown", qcode: "pgdn"},
		{tag: "<up>", name: "up", qcode: "up"},
		{tag: "<down>", name: "down", qcode: "down"},
		{tag: "<left>", name: "left", qcode: "left"},
		{tag: "<right>", name: "right", qcode: "right"},
		{tag: "<f1>", name: "f1", qcode: "f1"},
		{tag: "<f2>", name: "f2", qcode: "f2"},
		{tag: "<f3>", name: "f3", qcode: "f3"},
		{tag: "<f4>", name: "f4", qcode: "f4"},
		{tag: "<f5>", name: "f5", qcode: "f5"},
		{tag: "<f6>", name: "f6", qcode: "f6"},
		{tag: "<f7>", name: "f7", qcode: "f7"},
		{tag: "<f8>", name: "f8", qcode: "f8"},
		{tag: "<f9>", name: "f9", qcode: "f9"},
		{tag: "<f10>", name: "f10", qcode: "f10"},
		{tag: "<f11>", name: "f11", qcode: "f11"},
		{tag: "<f12>", name: "f12", qcode: "f12"},
		{tag: "<leftShift>", name: "leftShift", qcode: "shift"},
		{tag: "<rightShift>", name: "rightShift", qcode: "shift_r"},
		{tag: "<leftCtrl>", name: "leftCtrl", qcode: "ctrl"},
		{tag: "<rightCtrl>", name: "rightCtrl", qcode: "ctrl_r"},
		{tag: "<leftAlt>", name: "leftAlt", qcode: "alt"},
		{tag: "<rightAlt>", name: "rightAlt", qcode: "alt_r"},
		{tag: "<leftSuper>", name: "leftSuper", qcode: "meta_l"},
		{tag: "<rightSuper>", name: "rightSuper", qcode: "meta_r"},
	}
	for _, tt := range tests {
		variants := []string{tt.tag, strings.ToUpper(tt.tag), strings.ToLower(tt.tag)}
		for _, text := range variants {
			t.Run(text, func(t *testing.T) {
				p, warnings := mustParse(t, text)
				if len(warnings) != 0 {
					t.Errorf("warnings = %v, want none", warnings)
				}
				want := []Action{press(tt.name, tt.qcode)}
				if got := withoutPos(p.Actions); !reflect.DeepEqual(got, want) {
					t.Errorf("actions = %+v, want %+v", got, want)
				}
			})
		}
	}
}

func TestParseModifierHolds(t *testing.T) {
	tests := []struct {
		name  string
		qcode string
	}{
		{name: "leftShift", qcode: "shift"},
		{name: "rightShift", qcode: "shift_r"},
		{name: "leftCtrl", qcode: "ctrl"},
		{name: "rightCtrl", qcode: "ctrl_r"},
		{name: "leftAlt", qcode: "alt"},
		{name: "rightAlt", qcode: "alt_r"},
		{name: "leftSuper", qcode: "meta_l"},
		{name: "rightSuper", qcode: "meta_r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "<" + strings.ToUpper(tt.name) + "on>x<" + tt.name + "Off>"
			p, warnings := mustParse(t, text)
			if len(warnings) != 0 {
				t.Errorf("warnings = %v, want none", warnings)
			}
			key := Key{Name: tt.name, QCode: tt.qcode}
			want := []Action{
				{Op: OpHold, Pos: 0, Key: key},
				{Op: OpType, Pos: len(tt.name) + 4, Text: "x"},
				{Op: OpRelease, Pos: len(tt.name) + 5, Key: key},
			}
			if !reflect.DeepEqual(p.Actions, want) {
				t.Errorf("actions = %+v, want %+v", p.Actions, want)
			}
		})
	}
}

func TestParseModifierWarnings(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		wantPos  []int
		wantText []string
	}{
		{
			name:     "on without off",
			text:     "ab<leftCtrlOn>c",
			wantPos:  []int{2},
			wantText: []string{"<leftCtrlOn> has no matching <leftCtrlOff>"},
		},
		{
			name:     "two unreleased in order",
			text:     "<rightAltOn><leftShiftOn>x",
			wantPos:  []int{0, 12},
			wantText: []string{"<rightAltOn>", "<leftShiftOn>"},
		},
		{
			name:     "off without on",
			text:     "x<leftAltOff>",
			wantPos:  []int{1},
			wantText: []string{"which no earlier <leftAltOn> holds"},
		},
		{
			name:     "on twice",
			text:     "<leftCtrlOn><leftCtrlOn><leftCtrlOff>",
			wantPos:  []int{12},
			wantText: []string{"already held since byte offset 0"},
		},
		{
			name: "balanced",
			text: "<leftCtrlOn><leftAltOn><del><leftAltOff><leftCtrlOff>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings := mustParse(t, tt.text)
			if len(warnings) != len(tt.wantPos) {
				t.Fatalf("warnings = %v, want %d", warnings, len(tt.wantPos))
			}
			for i, w := range warnings {
				if w.Pos != tt.wantPos[i] {
					t.Errorf("warning %d at %d, want %d", i, w.Pos, tt.wantPos[i])
				}
				if !strings.Contains(w.String(), tt.wantText[i]) {
					t.Errorf("warning %d = %q, want it to contain %q", i, w, tt.wantText[i])
				}
			}
		})
	}
}

func TestParseLiteralText(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []Action
	}{
		{name: "plain", text: "install auto=true", want: []Action{typed("install auto=true")}},
		{name: "heredoc", text: "cat <<EOF >> f", want: []Action{typed("cat <<EOF >> f")}},
		{name: "comparison", text: "a < b", want: []Action{typed("a < b")}},
		{name: "lt at end", text: "a<", want: []Action{typed("a<")}},
		{name: "digit after lt", text: "<1>", want: []Action{typed("<1>")}},
		{name: "punctuation in tag", text: "<a_b>", want: []Action{typed("<a_b>")}},
		{name: "dot outside wait", text: "<file.txt>", want: []Action{typed("<file.txt>")}},
		{name: "unclosed name", text: "<enter", want: []Action{typed("<enter")}},
		{name: "space in tag", text: "<enter >", want: []Action{typed("<enter >")}},
		{name: "lt escape", text: "<lt>enter>", want: []Action{typed("<enter>")}},
		{name: "escapes", text: "x<LT>y<gt>z", want: []Action{typed("x<y>z")}},
		{
			name: "text around keys",
			text: "ab<enter>cd",
			want: []Action{typed("ab"), press("enter", "ret"), typed("cd")},
		},
		{
			name: "every printable character",
			text: " !\"#$%&'()*+,-./0123456789:;=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
			want: []Action{typed(" !\"#$%&'()*+,-./0123456789:;=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")},
		},
		{name: "empty", text: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := mustParse(t, tt.text)
			if got := withoutPos(p.Actions); !reflect.DeepEqual(got, withoutPos(tt.want)) {
				t.Errorf("actions = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseWaits(t *testing.T) {
	tests := []struct {
		text string
		want time.Duration
	}{
		{text: "<wait>", want: time.Second},
		{text: "<WAIT>", want: time.Second},
		{text: "<wait5>", want: 5 * time.Second},
		{text: "<wait10>", want: 10 * time.Second},
		{text: "<wait3>", want: 3 * time.Second},
		{text: "<wait1.5>", want: 1500 * time.Millisecond},
		{text: "<wait1m30s>", want: 90 * time.Second},
		{text: "<wait250ms>", want: 250 * time.Millisecond},
		{text: "<Wait2H>", want: 2 * time.Hour},
		{text: "<wait1.5s>", want: 1500 * time.Millisecond},
		{text: "<wait10s>", want: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			p, _ := mustParse(t, tt.text)
			want := []Action{wait(tt.want)}
			if got := withoutPos(p.Actions); !reflect.DeepEqual(got, want) {
				t.Errorf("actions = %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseWaitFor(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    string
		timeout time.Duration
	}{
		{name: "double quotes", text: `<waitFor "boot:" 30s>`, want: "boot:", timeout: 30 * time.Second},
		{name: "single quotes", text: `<waitFor 'boot:' 30s>`, want: "boot:", timeout: 30 * time.Second},
		{name: "default timeout", text: `<waitFor "login:">`, want: "login:", timeout: DefaultWaitForTimeout},
		{name: "bare seconds", text: `<waitFor "x" 90>`, want: "x", timeout: 90 * time.Second},
		{name: "case insensitive", text: `<WAITFOR "x" 1m>`, want: "x", timeout: time.Minute},
		{name: "no space before quote", text: `<waitFor"x">`, want: "x", timeout: DefaultWaitForTimeout},
		{name: "extra spaces", text: `<waitFor   "a b"   2m  >`, want: "a b", timeout: 2 * time.Minute},
		{name: "escaped quote", text: `<waitFor "say \"hi\"" 1s>`, want: `say "hi"`, timeout: time.Second},
		{name: "escaped backslash", text: `<waitFor 'C:\\' 1s>`, want: `C:\`, timeout: time.Second},
		{name: "non-ASCII text", text: `<waitFor "Démarrage">`, want: "Démarrage", timeout: DefaultWaitForTimeout},
		{name: "angle brackets", text: `<waitFor "<ok>" 5s>`, want: "<ok>", timeout: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := mustParse(t, tt.text)
			want := []Action{{Op: OpWaitFor, Text: tt.want, Duration: tt.timeout}}
			if !reflect.DeepEqual(p.Actions, want) {
				t.Errorf("actions = %+v, want %+v", p.Actions, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		wantPos int
		want    string
	}{
		{name: "typo suggests enter", text: "abc<entr>", wantPos: 3, want: "unknown key <entr>; did you mean <enter>?"},
		{name: "typo keeps case", text: "<ESACPE>", wantPos: 0, want: "unknown key <ESACPE>"},
		{name: "typo suggests pageUp", text: "<pagup>", wantPos: 0, want: "did you mean <pageUp>?"},
		{name: "typo suggests modifier", text: "<leftCtrlOnn>", wantPos: 0, want: "did you mean <leftCtrlOn>?"},
		{name: "far from any key", text: "x <zzzzzz>", wantPos: 2, want: "write <lt>zzzzzz> to type the text literally"},
		{name: "wait zero", text: "<wait0>", wantPos: 0, want: "a wait must be longer than zero"},
		{name: "wait zero seconds", text: "<wait0s>", wantPos: 0, want: "a wait must be longer than zero"},
		{name: "wait negative", text: "ab<wait-5s>", wantPos: 2, want: "a wait must be longer than zero"},
		{name: "wait negative bare", text: "<wait-1>", wantPos: 0, want: "a wait must be longer than zero"},
		{name: "wait bad unit", text: "<wait5x>", wantPos: 0, want: `invalid duration "5x"`},
		{name: "wait word", text: "<waitabit>", wantPos: 0, want: `invalid duration "abit"`},
		{name: "wait overflow", text: "<wait99999999999h>", wantPos: 0, want: "invalid duration"},
		{name: "waitFor without text", text: "<waitFor>", wantPos: 0, want: "needs the console text"},
		{name: "waitFor unquoted", text: "<waitFor boot 5s>", wantPos: 0, want: "needs the console text in quotes"},
		{name: "waitFor unterminated", text: `<waitFor "boot 5s>`, wantPos: 0, want: "has no closing \""},
		{name: "waitFor empty", text: `<waitFor "" 5s>`, wantPos: 0, want: "text is empty"},
		{name: "waitFor bad timeout", text: `<waitFor "x" soon>`, wantPos: 0, want: `invalid <waitFor> timeout "soon"`},
		{name: "waitFor zero timeout", text: `<waitFor "x" 0s>`, wantPos: 0, want: "must be longer than zero"},
		{name: "waitFor unclosed", text: `<waitFor "x" 5s`, wantPos: 0, want: "is not closed"},
		{name: "e acute", text: "caf\u00e9", wantPos: 3, want: `character 'é' (U+00E9) has no key on a US keyboard`},
		{name: "emoji", text: "ok\U0001F600", wantPos: 2, want: "U+1F600"},
		{name: "tab", text: "a\tb", wantPos: 1, want: "write <tab> to press Tab"},
		{name: "newline", text: "a\nb", wantPos: 1, want: "write <enter> to press Enter"},
		{name: "carriage return", text: "a\rb", wantPos: 1, want: "write <enter>"},
		{name: "bell", text: "\a", wantPos: 0, want: "control character U+0007 cannot be typed"},
		{name: "delete", text: "x\x7f", wantPos: 1, want: "control character U+007F"},
		{name: "NUL", text: "\x00", wantPos: 0, want: "control character U+0000"},
		{name: "invalid UTF-8", text: "ab\xff", wantPos: 2, want: "invalid UTF-8 byte 0xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := Parse(tt.text)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.text, p.Actions)
			}
			if p != nil {
				t.Errorf("Parse returned a program with an error")
			}
			var syntax *SyntaxError
			if !errors.As(err, &syntax) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if syntax.Pos != tt.wantPos {
				t.Errorf("error at %d, want %d: %v", syntax.Pos, tt.wantPos, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			wantPrefix := "boot command at byte offset "
			if !strings.HasPrefix(err.Error(), wantPrefix) {
				t.Errorf("error = %q, want prefix %q", err, wantPrefix)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	_, _, err := Parse("<entr> caf\u00e9 <wait0>")
	if err == nil {
		t.Fatal("Parse succeeded, want three errors")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("error has %d lines, want 3: %v", len(lines), err)
	}
	for i, offset := range []string{"offset 0:", "offset 10:", "offset 13:"} {
		if !strings.Contains(lines[i], offset) {
			t.Errorf("line %d = %q, want %q", i, lines[i], offset)
		}
	}
}

func TestParseStopsAfterManyErrors(t *testing.T) {
	_, _, err := Parse(strings.Repeat("\u00e9", 1000))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 {
		t.Errorf("error has %d lines, want %d", len(lines), maxErrors+1)
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "too many errors") {
		t.Errorf("last line = %q, want it to say too many errors", last)
	}
}

func TestParsePositions(t *testing.T) {
	p, _ := mustParse(t, "<esc><wait>ab<lt>c<enter><waitFor 'x'>")
	wantPos := []int{0, 5, 11, 18, 25}
	if len(p.Actions) != len(wantPos) {
		t.Fatalf("actions = %+v, want %d", p.Actions, len(wantPos))
	}
	for i, a := range p.Actions {
		if a.Pos != wantPos[i] {
			t.Errorf("action %d (%v) at %d, want %d", i, a.Op, a.Pos, wantPos[i])
		}
	}
	if got := p.Actions[2].Text; got != "ab<c" {
		t.Errorf("text = %q, want %q", got, "ab<c")
	}
}

func TestProgramStringRoundTrip(t *testing.T) {
	text := `<esc><wait>install url=http://10.0.2.2:8080/ a<b ` +
		`<leftCtrlOn>c<leftCtrlOff><waitFor "bo\"ot:" 30s><wait1m30s><F12><enter>`
	p, _ := mustParse(t, text)
	again, _ := mustParse(t, p.String())
	if !reflect.DeepEqual(withoutPos(again.Actions), withoutPos(p.Actions)) {
		t.Errorf("round trip changed the program:\n got %+v\nwant %+v", again.Actions, p.Actions)
	}
	want := `<esc><wait1s>install url=http://10.0.2.2:8080/ a<lt>b ` +
		`<leftCtrlOn>c<leftCtrlOff><waitFor "bo\"ot:" 30s><wait1m30s><f12><enter>`
	if got := p.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestProgramKeystrokes(t *testing.T) {
	p, _ := mustParse(t, "Ab<enter><wait><leftShiftOn>x<leftShiftOff>")
	if got, want := p.Keystrokes(), 6; got != want {
		t.Errorf("Keystrokes() = %d, want %d", got, want)
	}
}

func TestKeyNamesAllParse(t *testing.T) {
	for _, name := range KeyNames() {
		text := "<" + name + ">"
		if name == "waitFor" {
			text = `<waitFor "x">`
		}
		if _, _, err := Parse(text); err != nil {
			t.Errorf("Parse(%q) failed: %v", text, err)
		}
	}
}

func TestParseLargeCommand(t *testing.T) {
	chunk := "install auto=true url=http://10.0.2.2:8080/preseed.cfg a<b <lt>x<enter><wait250ms><leftAltOn><f2><leftAltOff>"
	small := strings.Repeat(chunk, 1<<20/len(chunk)+1)
	large := strings.Repeat(chunk, 10<<20/len(chunk)+1)

	// Parsing must scale linearly: ten times the input may take about ten
	// times as long, never a hundred (quadratic). The fastest of three runs
	// counts, so other processes on a loaded machine do not skew the ratio.
	fastest := func(text string) time.Duration {
		best := time.Duration(math.MaxInt64)
		for range 3 {
			start := time.Now()
			p, _, err := Parse(text)
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("Parse failed: %v", err)
			}
			if len(p.Actions) == 0 {
				t.Fatal("Parse returned no actions")
			}
			best = min(best, elapsed)
		}
		return best
	}
	smallTime, largeTime := fastest(small), fastest(large)
	ratio := float64(largeTime) / float64(max(smallTime, time.Microsecond))
	t.Logf("parsed %d bytes in %s and %d bytes in %s (ratio %.1f)", len(small), smallTime, len(large), largeTime, ratio)
	if ratio > 40 {
		t.Errorf("10x the input took %.1fx as long (%s vs %s): parsing is not linear", ratio, largeTime, smallTime)
	}
}

func TestUSLayoutCoversPrintableASCII(t *testing.T) {
	for c := byte(0x20); c < 0x7f; c++ {
		if usLayout[c].qcode == "" {
			t.Errorf("character %q has no key", c)
		}
	}
	for c := byte(0); c < 0x20; c++ {
		if usLayout[c].qcode != "" {
			t.Errorf("control character %#x has key %q", c, usLayout[c].qcode)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	chunk := "install auto=true url=http://10.0.2.2:8080/preseed.cfg a<b <lt>x<enter><wait250ms><leftAltOn><f2><leftAltOff>"
	text := strings.Repeat(chunk, 1<<20/len(chunk)+1)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, _, err := Parse(text); err != nil {
			b.Fatal(err)
		}
	}
}

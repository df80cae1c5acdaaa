// Package boot parses the boot-command language, a superset of Packer's
// QEMU boot_command, and types a parsed program into a guest as QEMU key
// events (qcodes with US-keyboard shift state, never keysyms).
//
// The language is documented in docs/boot-command.md.
package boot

import (
	"strconv"
	"strings"
	"time"
)

// Op is the kind of one Action.
type Op int

const (
	// OpType types Text, one key press per character.
	OpType Op = iota
	// OpPress presses and releases Key.
	OpPress
	// OpHold presses Key and keeps it down (<leftShiftOn>).
	OpHold
	// OpRelease releases Key (<leftShiftOff>).
	OpRelease
	// OpWait pauses for Duration.
	OpWait
	// OpWaitFor waits until Text appears on the serial console, for at
	// most Duration.
	OpWaitFor
)

// String returns the name of the operation.
func (o Op) String() string {
	switch o {
	case OpType:
		return "type"
	case OpPress:
		return "press"
	case OpHold:
		return "hold"
	case OpRelease:
		return "release"
	case OpWait:
		return "wait"
	case OpWaitFor:
		return "waitFor"
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Key is a key named by a tag.
type Key struct {
	Name  string // canonical tag name without On/Off, such as "enter" or "leftCtrl"
	QCode string // QEMU QKeyCode, such as "ret" or "ctrl"
}

// Action is one step of a Program.
type Action struct {
	Op Op
	// Pos is the byte offset in the parsed text where the action starts.
	Pos int
	// Text is the characters to type (OpType) or the console text to wait
	// for (OpWaitFor).
	Text string
	// Key is set for OpPress, OpHold and OpRelease.
	Key Key
	// Duration is the pause (OpWait) or the timeout (OpWaitFor).
	Duration time.Duration
}

// Program is a parsed boot command: the actions in the order they run.
type Program struct {
	Actions []Action
}

// Keystrokes returns the number of key presses the program makes. A
// character that needs Shift counts as one.
func (p *Program) Keystrokes() int {
	n := 0
	for _, a := range p.Actions {
		switch a.Op {
		case OpType:
			n += len(a.Text) // typed text is ASCII
		case OpPress, OpHold, OpRelease:
			n++
		}
	}
	return n
}

// String returns the program in canonical boot-command syntax. Parsing the
// result gives the same actions; every literal '<' is written as <lt>.
func (p *Program) String() string {
	var b strings.Builder
	for _, a := range p.Actions {
		a.format(&b, true)
	}
	return b.String()
}

// format writes the action in boot-command syntax. With escape unset,
// literal text is written as is, for display.
func (a Action) format(b *strings.Builder, escape bool) {
	switch a.Op {
	case OpType:
		if escape {
			b.WriteString(strings.ReplaceAll(a.Text, "<", "<lt>"))
		} else {
			b.WriteString(a.Text)
		}
	case OpPress:
		b.WriteString("<" + a.Key.Name + ">")
	case OpHold:
		b.WriteString("<" + a.Key.Name + "On>")
	case OpRelease:
		b.WriteString("<" + a.Key.Name + "Off>")
	case OpWait:
		b.WriteString("<wait" + a.Duration.String() + ">")
	case OpWaitFor:
		b.WriteString("<waitFor " + quote(a.Text) + " " + a.Duration.String() + ">")
	}
}

// quote returns s in double quotes with '"' and '\' escaped by a
// backslash, the form <waitFor> accepts.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

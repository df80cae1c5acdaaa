package boot

import "strings"

// stroke is the QEMU qcode of the key that types one character on a US
// keyboard, and whether Shift must be held for it.
type stroke struct {
	qcode string
	shift bool
}

// usLayout maps each printable ASCII character to its key on a US keyboard.
// Entries with an empty qcode have no key: control characters and DEL.
var usLayout = buildUSLayout()

func buildUSLayout() [128]stroke {
	var table [128]stroke
	for c := 'a'; c <= 'z'; c++ {
		table[c] = stroke{qcode: string(c)}
		table[c-'a'+'A'] = stroke{qcode: string(c), shift: true}
	}
	for c := '0'; c <= '9'; c++ {
		table[c] = stroke{qcode: string(c)}
	}
	unshifted := map[byte]string{
		' ': "spc", '-': "minus", '=': "equal", '[': "bracket_left",
		']': "bracket_right", '\\': "backslash", ';': "semicolon",
		'\'': "apostrophe", '`': "grave_accent", ',': "comma", '.': "dot",
		'/': "slash",
	}
	for c, q := range unshifted {
		table[c] = stroke{qcode: q}
	}
	shifted := map[byte]string{
		'!': "1", '@': "2", '#': "3", '$': "4", '%': "5", '^': "6", '&': "7",
		'*': "8", '(': "9", ')': "0", '_': "minus", '+': "equal",
		'{': "bracket_left", '}': "bracket_right", '|': "backslash",
		':': "semicolon", '"': "apostrophe", '~': "grave_accent",
		'<': "comma", '>': "dot", '?': "slash",
	}
	for c, q := range shifted {
		table[c] = stroke{qcode: q, shift: true}
	}
	return table
}

// keyInfo describes one special key that a tag can name.
type keyInfo struct {
	name  string // canonical spelling, used in messages and Program.String
	qcode string
}

// specialKeys lists the keys that <name> presses and releases. Lookups go
// through keysByName, which is keyed by the lower-case name.
var specialKeys = []keyInfo{
	{"enter", "ret"}, {"return", "ret"}, {"esc", "esc"}, {"tab", "tab"},
	{"bs", "backspace"}, {"del", "delete"}, {"spacebar", "spc"},
	{"insert", "insert"}, {"home", "home"}, {"end", "end"},
	{"pageUp", "pgup"}, {"pageDown", "pgdn"},
	{"up", "up"}, {"down", "down"}, {"left", "left"}, {"right", "right"},
	{"f1", "f1"}, {"f2", "f2"}, {"f3", "f3"}, {"f4", "f4"}, {"f5", "f5"},
	{"f6", "f6"}, {"f7", "f7"}, {"f8", "f8"}, {"f9", "f9"}, {"f10", "f10"},
	{"f11", "f11"}, {"f12", "f12"},
}

// modifierKeys lists the keys that also take the On and Off suffixes to
// hold them down and release them. Without a suffix they are pressed and
// released like any special key.
var modifierKeys = []keyInfo{
	{"leftShift", "shift"}, {"rightShift", "shift_r"},
	{"leftCtrl", "ctrl"}, {"rightCtrl", "ctrl_r"},
	{"leftAlt", "alt"}, {"rightAlt", "alt_r"},
	{"leftSuper", "meta_l"}, {"rightSuper", "meta_r"},
}

// escapes lists the tags that type one character which would otherwise
// start a tag.
var escapes = map[string]string{"lt": "<", "gt": ">"}

// tagKind is the kind of action a fixed tag name produces.
type tagKind int

const (
	tagPress tagKind = iota
	tagHold
	tagRelease
	tagEscape
)

// tagInfo is the meaning of one fixed tag name.
type tagInfo struct {
	kind  tagKind
	key   keyInfo
	lower string // lower-case key name, which keys the held-modifier map
	text  string // for tagEscape
}

// tagsByName maps every fixed tag name, lower-cased, to its meaning. Wait
// tags are parsed separately because they carry a duration.
var tagsByName = buildTagTable()

// tagNames lists the canonical spelling of every tag, for suggestions.
var tagNames = buildTagNames()

func buildTagTable() map[string]tagInfo {
	table := make(map[string]tagInfo)
	for _, k := range specialKeys {
		table[strings.ToLower(k.name)] = tagInfo{kind: tagPress, key: k, lower: strings.ToLower(k.name)}
	}
	for _, k := range modifierKeys {
		lower := strings.ToLower(k.name)
		table[lower] = tagInfo{kind: tagPress, key: k, lower: lower}
		table[lower+"on"] = tagInfo{kind: tagHold, key: k, lower: lower}
		table[lower+"off"] = tagInfo{kind: tagRelease, key: k, lower: lower}
	}
	for name, text := range escapes {
		table[name] = tagInfo{kind: tagEscape, text: text}
	}
	return table
}

func buildTagNames() []string {
	var names []string
	for _, k := range specialKeys {
		names = append(names, k.name)
	}
	for _, k := range modifierKeys {
		names = append(names, k.name, k.name+"On", k.name+"Off")
	}
	names = append(names, "lt", "gt", "wait", "wait5", "wait10", "waitFor")
	return names
}

// extendedQCodes are the keys whose scancodes carry an 0xE0 prefix byte in
// scancode set 1, among those the language can press.
var extendedQCodes = map[string]bool{
	"ctrl_r": true, "alt_r": true, "meta_l": true, "meta_r": true,
	"insert": true, "delete": true, "home": true, "end": true, "pgup": true,
	"pgdn": true, "up": true, "down": true, "left": true, "right": true,
}

// scancodeBytes returns the number of bytes that events produce in PC
// scancode set 1, which QEMU sends while the keyboard controller
// translates, as a BIOS sets it up.
//
// NOTE: a guest that turns translation off reads set 2, where a key
// release takes one byte more, so a full batch can then exceed 16 bytes.
func scancodeBytes(events []KeyEvent) int {
	n := 0
	for _, e := range events {
		n++
		if extendedQCodes[e.QCode] {
			n++
		}
	}
	return n
}

// shiftQCodes are the qcodes of both Shift keys.
var shiftQCodes = [2]string{"shift", "shift_r"}

// KeyNames returns the canonical spelling of every tag name in the
// language, including the wait tags, in documentation order.
func KeyNames() []string {
	return append([]string(nil), tagNames...)
}

package boot

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultWaitForTimeout is the timeout of a <waitFor> tag that names none.
const DefaultWaitForTimeout = 5 * time.Minute

// maxErrors bounds how many syntax errors one Parse call reports, so that a
// large garbage input does not produce a message of the same size.
const maxErrors = 20

// SyntaxError is one error in a boot command, at a byte offset.
type SyntaxError struct {
	Pos int    // byte offset in the parsed text
	Msg string // what is wrong and how to fix it
}

// Error returns the message with its position.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("boot command at byte offset %d: %s", e.Pos, e.Msg)
}

// Warning is a problem that does not stop the boot command from running.
type Warning struct {
	Pos int
	Msg string
}

// String returns the warning with its position.
func (w Warning) String() string {
	return fmt.Sprintf("boot command at byte offset %d: %s", w.Pos, w.Msg)
}

// Parse parses a boot command. Callers join a recipe's command list into
// one string first and render templates before parsing.
//
// The error, when not nil, joins one *SyntaxError per problem found. After
// 20 problems a last *SyntaxError says that parsing stopped. Use errors.As
// to read the first position. Warnings are
// returned separately because they do not stop the build.
func Parse(text string) (*Program, []Warning, error) {
	p := &parser{src: text, held: make(map[string]int)}
	p.run()
	p.warnUnreleased()
	if len(p.errs) > 0 {
		return nil, p.warnings, errors.Join(p.errs...)
	}
	return &Program{Actions: p.program()}, p.warnings, nil
}

type parser struct {
	src string
	// actions fills fixed-size chunks that program joins once at the end,
	// which costs one copy instead of the repeated copies of a growing
	// slice on multi-megabyte input.
	chunks   [][]Action
	actions  []Action
	text     textRun
	warnings []Warning
	errs     []error
	held     map[string]int // lower-case modifier name -> offset of its On tag
}

// textRun collects consecutive literal characters into one OpType action.
// While the run is a single slice of the source it costs no copy.
type textRun struct {
	active     bool
	pos        int
	start, end int
	buf        []byte // set once the run is no longer one slice of the source
}

func (p *parser) run() {
	i := 0
	for i < len(p.src) {
		if len(p.errs) >= maxErrors {
			p.errs = append(p.errs, &SyntaxError{Pos: i, Msg: "too many errors; stopped parsing here"})
			return
		}
		if p.src[i] == '<' {
			if n, ok := p.tag(i); ok {
				i += n
				continue
			}
			p.addSource(i, i+1)
			i++
			continue
		}
		j := i
		for j < len(p.src) && p.src[j] != '<' && typeable(p.src[j]) {
			j++
		}
		if j > i {
			p.addSource(i, j)
			i = j
			continue
		}
		i += p.untypeable(i)
	}
	p.flushText()
}

func typeable(c byte) bool {
	return c < utf8.RuneSelf && usLayout[c].qcode != ""
}

// addSource adds src[start:end] to the current text run.
func (p *parser) addSource(start, end int) {
	t := &p.text
	switch {
	case !t.active:
		*t = textRun{active: true, pos: start, start: start, end: end}
	case t.buf == nil && start == t.end:
		t.end = end
	default:
		p.detachText()
		t.buf = append(t.buf, p.src[start:end]...)
	}
}

// addLiteral adds s, which does not appear at this place in the source,
// to the current text run.
func (p *parser) addLiteral(pos int, s string) {
	t := &p.text
	if !t.active {
		*t = textRun{active: true, pos: pos, start: pos, end: pos}
	}
	p.detachText()
	t.buf = append(t.buf, s...)
}

func (p *parser) detachText() {
	t := &p.text
	if t.buf == nil {
		t.buf = append(make([]byte, 0, t.end-t.start+16), p.src[t.start:t.end]...)
	}
}

func (p *parser) flushText() {
	t := &p.text
	if !t.active {
		return
	}
	text := p.src[t.start:t.end]
	if t.buf != nil {
		text = string(t.buf)
	}
	p.push(Action{Op: OpType, Pos: t.pos, Text: text})
	*t = textRun{}
}

func (p *parser) add(a Action) {
	p.flushText()
	p.push(a)
}

const chunkSize = 1024

func (p *parser) push(a Action) {
	if len(p.actions) == chunkSize {
		p.chunks = append(p.chunks, p.actions)
		p.actions = make([]Action, 0, chunkSize)
	}
	p.actions = append(p.actions, a)
}

// program returns every action in one slice.
func (p *parser) program() []Action {
	if len(p.chunks) == 0 {
		return p.actions
	}
	all := make([]Action, 0, len(p.chunks)*chunkSize+len(p.actions))
	for _, chunk := range p.chunks {
		all = append(all, chunk...)
	}
	return append(all, p.actions...)
}

func (p *parser) errorf(pos int, format string, args ...any) {
	p.errs = append(p.errs, &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(pos int, format string, args ...any) {
	p.warnings = append(p.warnings, Warning{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// tag handles a '<' at offset pos. It returns the number of bytes
// consumed and true when the '<' begins a tag, or false when the '<' is a
// literal character. A tag is a letter followed by letters and digits and
// then '>'. Wait tags may also contain '.', '+' and '-' so that every Go
// duration, and the invalid negative ones, reach the duration check.
func (p *parser) tag(pos int) (int, bool) {
	j := pos + 1
	if j >= len(p.src) || !isLetter(p.src[j]) {
		return 0, false
	}
	for j < len(p.src) && (isLetter(p.src[j]) || isDigit(p.src[j])) {
		j++
	}
	if hasFoldPrefix(p.src[pos+1:j], "wait") {
		for j < len(p.src) && isDurationByte(p.src[j]) {
			j++
		}
	}
	name := p.src[pos+1 : j]
	if j < len(p.src) && p.src[j] == '>' {
		p.namedTag(pos, name)
		return j + 1 - pos, true
	}
	if strings.EqualFold(name, "waitFor") && j < len(p.src) && isWaitForStart(p.src[j]) {
		return p.waitFor(pos, j), true
	}
	return 0, false
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isDurationByte(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '.' || c == '+' || c == '-'
}

func isWaitForStart(c byte) bool { return c == ' ' || c == '"' || c == '\'' }

func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// namedTag handles a complete tag <name> at offset pos.
func (p *parser) namedTag(pos int, name string) {
	if info, ok := lookupTag(name); ok {
		p.knownTag(pos, info)
		return
	}
	lower := strings.ToLower(name)
	if lower == "waitfor" {
		p.errorf(pos, "<%s> needs the console text to wait for, as in <waitFor \"boot:\" 30s>", name)
		return
	}
	if strings.HasPrefix(lower, "wait") {
		p.waitTag(pos, name)
		return
	}
	p.unknownTag(pos, name)
}

// lookupTag finds a fixed tag by name, ignoring case, without allocating
// for names of up to 32 bytes.
func lookupTag(name string) (tagInfo, bool) {
	var buf [32]byte
	if len(name) > len(buf) {
		info, ok := tagsByName[strings.ToLower(name)]
		return info, ok
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	info, ok := tagsByName[string(buf[:len(name)])]
	return info, ok
}

func (p *parser) knownTag(pos int, info tagInfo) {
	key := Key{Name: info.key.name, QCode: info.key.qcode}
	lower := info.lower
	switch info.kind {
	case tagPress:
		p.add(Action{Op: OpPress, Pos: pos, Key: key})
	case tagHold:
		if since, ok := p.held[lower]; ok {
			p.warnf(pos, "<%sOn> repeats: %s is already held since byte offset %d", key.Name, key.Name, since)
		} else {
			p.held[lower] = pos
		}
		p.add(Action{Op: OpHold, Pos: pos, Key: key})
	case tagRelease:
		if _, ok := p.held[lower]; ok {
			delete(p.held, lower)
		} else {
			p.warnf(pos, "<%sOff> releases %s, which no earlier <%sOn> holds", key.Name, key.Name, key.Name)
		}
		p.add(Action{Op: OpRelease, Pos: pos, Key: key})
	case tagEscape:
		p.addLiteral(pos, info.text)
	}
}

// waitTag handles <wait>, <waitN> (seconds) and <waitDURATION>.
func (p *parser) waitTag(pos int, name string) {
	arg := name[len("wait"):]
	d, err := parseWaitDuration(arg)
	if err != nil {
		p.errorf(pos, "invalid duration %q in <%s>: write seconds (<wait5>) or a Go duration (<wait1m30s>, <wait250ms>)", arg, name)
		return
	}
	if d <= 0 {
		p.errorf(pos, "<%s> waits %s: a wait must be longer than zero; remove it or give a positive duration", name, d)
		return
	}
	p.add(Action{Op: OpWait, Pos: pos, Duration: d})
}

// parseWaitDuration parses the argument of a wait tag: empty for one
// second, a bare number of seconds, or a Go duration with units in any case.
func parseWaitDuration(arg string) (time.Duration, error) {
	arg = strings.ToLower(arg)
	if arg == "" {
		return time.Second, nil
	}
	if isBareNumber(arg) {
		return time.ParseDuration(arg + "s")
	}
	return time.ParseDuration(arg)
}

func isBareNumber(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

func (p *parser) unknownTag(pos int, name string) {
	if suggestion := nearestTag(name); suggestion != "" {
		p.errorf(pos, "unknown key <%s>; did you mean <%s>?", name, suggestion)
		return
	}
	p.errorf(pos, "unknown key <%s>; see docs/boot-command.md for key names, or write <lt>%s> to type the text literally", name, name)
}

// untypeable reports the character at offset pos, which no US-keyboard key
// types, and returns its length in bytes.
func (p *parser) untypeable(pos int) int {
	r, size := utf8.DecodeRuneInString(p.src[pos:])
	switch {
	case r == utf8.RuneError && size == 1:
		p.errorf(pos, "invalid UTF-8 byte 0x%02x: the boot command must be UTF-8 text", p.src[pos])
	case r == '\t':
		p.errorf(pos, "tab character cannot be typed literally: write <tab> to press Tab")
	case r == '\n' || r == '\r':
		p.errorf(pos, "line break cannot be typed literally: write <enter> to press Enter")
	case r < 0x20 || r == 0x7f:
		p.errorf(pos, "control character %U cannot be typed: remove it, or use a modifier such as <leftCtrlOn>c<leftCtrlOff>", r)
	default:
		p.errorf(pos, "character %q (%U) has no key on a US keyboard: the boot command can type only printable ASCII", r, r)
	}
	return size
}

// warnUnreleased warns about every modifier held at the end of the
// command, in order of position.
func (p *parser) warnUnreleased() {
	names := make([]string, 0, len(p.held))
	for name := range p.held {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return p.held[names[i]] < p.held[names[j]] })
	for _, lower := range names {
		key := tagsByName[lower].key.name
		p.warnf(p.held[lower], "<%sOn> has no matching <%sOff>; the key stays down until the boot command ends", key, key)
	}
}

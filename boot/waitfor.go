package boot

import "strings"

// waitFor parses <waitFor "TEXT"> or <waitFor "TEXT" TIMEOUT> starting at
// the '<' at offset pos; rest is the offset just after the name. TEXT is
// in single or double quotes, where a backslash escapes the next byte.
// TIMEOUT is seconds or a Go duration. It returns the bytes consumed.
func (p *parser) waitFor(pos, rest int) int {
	i := skipSpaces(p.src, rest)
	if i >= len(p.src) || (p.src[i] != '"' && p.src[i] != '\'') {
		p.errorf(pos, "<waitFor> needs the console text in quotes, as in <waitFor \"boot:\" 30s>")
		return p.skipTag(pos, i)
	}
	text, end, ok := unquote(p.src, i)
	if !ok {
		p.errorf(pos, "<waitFor> text starting at byte offset %d has no closing %c", i, p.src[i])
		return len(p.src) - pos
	}
	if text == "" {
		p.errorf(pos, "<waitFor> text is empty: give the console text to wait for")
		return p.skipTag(pos, end)
	}

	i = skipSpaces(p.src, end)
	timeout := DefaultWaitForTimeout
	if i < len(p.src) && p.src[i] != '>' {
		j := i
		for j < len(p.src) && p.src[j] != '>' && p.src[j] != ' ' {
			j++
		}
		arg := p.src[i:j]
		d, err := parseWaitDuration(arg)
		if err != nil {
			p.errorf(pos, "invalid <waitFor> timeout %q: write seconds (30) or a Go duration (2m, 1m30s)", arg)
			return p.skipTag(pos, j)
		}
		if d <= 0 {
			p.errorf(pos, "<waitFor> timeout %s must be longer than zero", d)
			return p.skipTag(pos, j)
		}
		timeout = d
		i = skipSpaces(p.src, j)
	}
	if i >= len(p.src) || p.src[i] != '>' {
		p.errorf(pos, "<waitFor> is not closed: expected '>' after the text and the optional timeout")
		return p.skipTag(pos, i)
	}

	p.add(Action{Op: OpWaitFor, Pos: pos, Text: text, Duration: timeout})
	return i + 1 - pos
}

func skipSpaces(s string, i int) int {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

// skipTag returns the bytes from pos through the next '>' at or after i,
// or through the end of the text, so that parsing resumes after a broken
// tag.
func (p *parser) skipTag(pos, i int) int {
	if i > len(p.src) {
		i = len(p.src)
	}
	if k := strings.IndexByte(p.src[i:], '>'); k >= 0 {
		return i + k + 1 - pos
	}
	return len(p.src) - pos
}

// unquote reads a quoted string whose opening quote is at s[i]. It returns
// the unescaped text, the offset after the closing quote, and false when
// the string is not closed.
func unquote(s string, i int) (string, int, bool) {
	q := s[i]
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case q:
			return b.String(), j + 1, true
		case '\\':
			if j+1 < len(s) {
				j++
			}
			b.WriteByte(s[j])
		default:
			b.WriteByte(s[j])
		}
	}
	return "", len(s), false
}

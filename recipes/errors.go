package recipes

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem found in a recipe, a variable file or an override.
// Line and Column are 1-based, Column counts bytes, and both are zero when
// the problem has no place in a file, such as a required key that is
// missing.
type Error struct {
	File   string
	Line   int
	Column int
	Key    string // dotted key such as "vm.memory" or "provision[1].shell"
	Msg    string

	err error // underlying cause, for errors.Is and errors.As
}

// Error formats e as "file:line:col: key: message", leaving out the parts
// that are not known.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.err }

// ErrorList is every problem found while loading a recipe, sorted by file,
// line and column. Load returns it as an error when it is not empty.
type ErrorList []*Error

// Error returns one line per problem.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, for errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// collector gathers errors for one load, with positions looked up from the
// recipe's key map. Only the first error for each key is kept, so a value
// that failed to decode does not also fail validation.
type collector struct {
	file   string
	pos    positions
	errs   ErrorList
	failed map[string]bool
}

func newCollector(file string, pos positions) *collector {
	return &collector{file: file, pos: pos, failed: map[string]bool{}}
}

// add records a problem with the key at path, placed at the key's position
// or, when the key is not in the file, at its closest ancestor's.
func (c *collector) add(path keyPath, format string, args ...any) {
	key := path.String()
	if c.failed[key] {
		return
	}
	c.failed[key] = true
	p := c.pos.lookup(path)
	c.errs = append(c.errs, &Error{
		File:   c.file,
		Line:   p.line,
		Column: p.column,
		Key:    key,
		Msg:    fmt.Sprintf(format, args...),
	})
}

// has reports whether an error was already recorded for path.
func (c *collector) has(path keyPath) bool { return c.failed[path.String()] }

// hasUnder reports whether an error was already recorded for path or any
// key below it.
func (c *collector) hasUnder(path keyPath) bool {
	prefix := path.String()
	for key := range c.failed {
		if key == prefix || strings.HasPrefix(key, prefix+".") || strings.HasPrefix(key, prefix+"[") {
			return true
		}
	}
	return false
}

// sorted returns the errors ordered by file, line and column, with errors
// that have no position first within their file.
func sorted(errs ErrorList) ErrorList {
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
		)
	})
	return errs
}

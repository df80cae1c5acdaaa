package recipes

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyPath is the route to one value in a decoded document: table keys, and
// array indexes written as "[N]".
type keyPath []string

// child returns a copy of p extended by the key name.
func (p keyPath) child(name string) keyPath {
	return append(clonePath(p), name)
}

// index returns a copy of p extended by the array index i.
func (p keyPath) index(i int) keyPath {
	return append(clonePath(p), "["+strconv.Itoa(i)+"]")
}

func clonePath(p keyPath) keyPath {
	return append(make(keyPath, 0, len(p)+1), p...)
}

// String formats p as a dotted TOML key, quoting parts that are not bare
// keys: `http.content."preseed.cfg"`, `provision[0].shell`.
func (p keyPath) String() string {
	var b strings.Builder
	for i, part := range p {
		if isIndex(part) {
			b.WriteString(part)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if isBareKey(part) {
			b.WriteString(part)
		} else {
			b.WriteString(strconv.Quote(part))
		}
	}
	return b.String()
}

func isIndex(part string) bool {
	return len(part) > 2 && part[0] == '[' && part[len(part)-1] == ']'
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

type position struct{ line, column int }

// positions maps each key in a document (formatted by keyPath.String) to the
// place where it is first written.
type positions map[string]position

// lookup returns the position of path, or of its closest ancestor present in
// the document, or the zero position.
func (m positions) lookup(path keyPath) position {
	for n := len(path); n > 0; n-- {
		if p, ok := m[path[:n].String()]; ok {
			return p
		}
	}
	return position{}
}

// mapPositions walks the TOML syntax tree of doc and records where every
// key, table header and array element starts. It also returns the number
// of key-value pairs. The walk stops silently at a syntax error, so callers
// learn about syntax errors from the decoder.
func mapPositions(doc []byte) (positions, int) {
	w := positionWalker{pos: positions{}, arrays: map[string]int{}, lines: lineStarts(doc)}
	w.parser.Reset(doc)
	for w.parser.NextExpression() {
		w.expression(w.parser.Expression())
	}
	return w.pos, w.keys
}

type positionWalker struct {
	parser unstable.Parser
	pos    positions
	// arrays counts the [[tables]] seen so far under each array key.
	arrays map[string]int
	table  keyPath
	keys   int
	// lines holds the offset at which each line starts, so that a position
	// costs a binary search instead of a scan from the start of the file.
	lines []int
}

func lineStarts(doc []byte) []int {
	starts := []int{0}
	for i, c := range doc {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

func (w *positionWalker) expression(n *unstable.Node) {
	switch n.Kind {
	case unstable.Table:
		w.table = w.header(n, false)
	case unstable.ArrayTable:
		w.table = w.header(n, true)
	case unstable.KeyValue:
		w.keyValue(w.table, n)
	}
}

// header resolves a [table] or [[array table]] header to a path, choosing
// the latest element of any array of tables it passes through.
func (w *positionWalker) header(n *unstable.Node, array bool) keyPath {
	var path keyPath
	it := n.Key()
	for it.Next() {
		k := it.Node()
		path = path.child(string(k.Data))
		last := it.IsLast()
		key := path.String()
		switch {
		case last && array:
			i := w.arrays[key]
			w.arrays[key] = i + 1
			path = path.index(i)
		case w.arrays[key] > 0:
			path = path.index(w.arrays[key] - 1)
		}
		w.record(path, k)
		if last && array {
			w.record(path[:len(path)-1], k)
		}
	}
	return path
}

func (w *positionWalker) keyValue(base keyPath, n *unstable.Node) {
	w.keys++
	path := base
	it := n.Key()
	for it.Next() {
		path = path.child(string(it.Node().Data))
		w.record(path, it.Node())
	}
	w.value(path, n.Value())
}

func (w *positionWalker) value(path keyPath, n *unstable.Node) {
	switch n.Kind {
	case unstable.InlineTable:
		it := n.Children()
		for it.Next() {
			if it.Node().Kind == unstable.KeyValue {
				w.keyValue(path, it.Node())
			}
		}
	case unstable.Array:
		i := 0
		it := n.Children()
		for it.Next() {
			if it.Node().Kind == unstable.Comment {
				continue
			}
			elem := path.index(i)
			w.record(elem, it.Node())
			w.value(elem, it.Node())
			i++
		}
	}
}

// record stores the start of n as the position of path unless the path
// already has one or n carries no position.
func (w *positionWalker) record(path keyPath, n *unstable.Node) {
	key := path.String()
	if _, ok := w.pos[key]; ok || n.Raw.Length == 0 {
		return
	}
	offset := int(n.Raw.Offset)
	line := sort.SearchInts(w.lines, offset+1) // lines[line-1] <= offset
	w.pos[key] = position{line: line, column: offset - w.lines[line-1] + 1}
}

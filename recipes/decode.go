package recipes

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// decoder copies a generic TOML document (as produced by toml.Unmarshal into
// a map) into typed structs, recording every unknown key and type mismatch
// instead of stopping at the first.
type decoder struct {
	errs *collector
	// deferred lists text-typed values (sizes, durations) whose string holds
	// a template action, to be parsed after variables are rendered.
	deferred []deferredText
}

type deferredText struct {
	path   keyPath
	text   string
	target encoding.TextUnmarshaler
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

func (d *decoder) decode(path keyPath, raw any, v reflect.Value) {
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) {
		d.decodeText(path, raw, v.Addr().Interface().(encoding.TextUnmarshaler))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if s, ok := raw.(string); ok {
			v.SetString(s)
			return
		}
	case reflect.Bool:
		if b, ok := raw.(bool); ok {
			v.SetBool(b)
			return
		}
	case reflect.Int:
		if n, ok := raw.(int64); ok {
			if v.OverflowInt(n) {
				d.errs.add(path, "integer %d is out of range", n)
				return
			}
			v.SetInt(n)
			return
		}
	case reflect.Slice:
		if d.decodeSlice(path, raw, v) {
			return
		}
	case reflect.Map:
		if m, ok := raw.(map[string]any); ok {
			d.decodeMap(path, m, v)
			return
		}
	case reflect.Struct:
		if m, ok := raw.(map[string]any); ok {
			d.decodeStruct(path, m, v)
			return
		}
	}
	d.errs.add(path, "expected %s, got %s", describeType(v.Type()), describeValue(raw))
}

// decodeText parses a size or duration. A string containing "{{" is kept
// for later, since it can only be parsed once variables are known.
func (d *decoder) decodeText(path keyPath, raw any, target encoding.TextUnmarshaler) {
	var text string
	switch x := raw.(type) {
	case string:
		text = x
	case int64:
		if _, ok := target.(*Size); !ok {
			d.errs.add(path, "expected a string such as \"90s\", got %s", describeValue(raw))
			return
		}
		text = strconv.FormatInt(x, 10)
	default:
		d.errs.add(path, "expected a string, got %s", describeValue(raw))
		return
	}
	if strings.Contains(text, "{{") {
		d.deferred = append(d.deferred, deferredText{path: path, text: text, target: target})
		return
	}
	if err := target.UnmarshalText([]byte(text)); err != nil {
		d.errs.add(path, "%v", err)
	}
}

// decodeSlice fills a slice from an array. A lone string is accepted where a
// list of strings is expected, so `iso = "x.iso"` means `iso = ["x.iso"]`.
func (d *decoder) decodeSlice(path keyPath, raw any, v reflect.Value) bool {
	if s, ok := raw.(string); ok && v.Type().Elem().Kind() == reflect.String {
		v.Set(reflect.ValueOf([]string{s}))
		return true
	}
	items, ok := raw.([]any)
	if !ok {
		return false
	}
	out := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		d.decode(path.index(i), item, out.Index(i))
	}
	v.Set(out)
	return true
}

func (d *decoder) decodeMap(path keyPath, m map[string]any, v reflect.Value) {
	out := reflect.MakeMapWithSize(v.Type(), len(m))
	for _, k := range sortedKeys(m) {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(path.child(k), m[k], elem)
		out.SetMapIndex(reflect.ValueOf(k), elem)
	}
	v.Set(out)
}

func (d *decoder) decodeStruct(path keyPath, m map[string]any, v reflect.Value) {
	fields := tomlFields(v.Type())
	for _, k := range sortedKeys(m) {
		i, ok := fields[k]
		if !ok {
			d.errs.add(path.child(k), "%s", unknownKeyMessage(k, fields))
			continue
		}
		d.decode(path.child(k), m[k], v.Field(i))
	}
}

// tomlFields maps each decodable toml tag of struct type t to its field
// index. Fields tagged "-" are not part of the file format.
func tomlFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	return fields
}

func unknownKeyMessage(key string, fields map[string]int) string {
	names := sortedKeys(fields)
	// Suggest a key only when at most a third of the letters differ, so a
	// suggestion is a likely typo rather than a different word.
	best, bestDist := "", max(1, len(key)/3)+1
	for _, name := range names {
		if strings.HasPrefix(name, key) || strings.HasPrefix(key, name) {
			return fmt.Sprintf("unknown key, did you mean %q?", name)
		}
	}
	for _, name := range names {
		if dist := editDistance(key, name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key, did you mean %q?", best)
	}
	return "unknown key, expected one of: " + strings.Join(names, ", ")
}

// editDistance returns the Levenshtein distance between a and b in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describeType names what a recipe must write for a Go type.
func describeType(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Size]():
		return "a size string such as \"2GiB\""
	case reflect.TypeFor[Duration]():
		return "a duration string such as \"90s\""
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int:
		return "an integer"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		if t.Elem().Kind() == reflect.Struct {
			return "an array of tables"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "a table"
	}
	return t.String()
}

// describeValue names the TOML type of a decoded value.
func describeValue(raw any) string {
	switch x := raw.(type) {
	case string:
		return fmt.Sprintf("a string (%q)", truncate(x, 40))
	case bool:
		return fmt.Sprintf("a boolean (%t)", x)
	case int64:
		return fmt.Sprintf("an integer (%d)", x)
	case float64:
		return fmt.Sprintf("a float (%v)", x)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return "a date or time"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

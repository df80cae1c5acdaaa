package recipes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
)

// LoadOptions sets the variable values that override a recipe's defaults.
// From lowest to highest precedence: the recipe's defaults, BAKE_VAR_name
// entries in Environ, each file in VarFiles in order, then Vars.
type LoadOptions struct {
	// Vars holds name=value pairs from the command line (--var).
	Vars map[string]string
	// VarFiles are TOML files of name = "value" pairs (--var-file).
	VarFiles []string
	// Environ is the process environment as os.Environ returns it. Only
	// BAKE_VAR_ entries for declared variables are used.
	Environ []string
}

// MaxFileSize is the largest recipe or variable file Load reads.
const MaxFileSize = 8 << 20

// MaxKeys is the largest number of key-value pairs in a recipe or variable
// file.
// NOTE: go-toml v2.4.3 checks for duplicate keys by a linear search, so
// decoding time grows with the square of the number of keys in one table.
// In one test run, 20,000 keys took about 1 s and 100,000 took 47 s.
const MaxKeys = 10000

// Load reads the recipe at path, resolves its variables, renders its static
// fields, applies defaults and validates it. Every problem found is
// returned at once as an ErrorList. A recipe with [[matrix]] builds is an
// error here: load it with LoadAll.
func Load(path string, opts LoadOptions) (*Recipe, error) {
	list, err := LoadAll(path, opts)
	if err != nil {
		return nil, err
	}
	if len(list) != 1 {
		return nil, ErrorList{{File: path, Key: matrixKey,
			Msg: fmt.Sprintf("recipe declares %d matrix builds: load it with LoadAll", len(list))}}
	}
	return list[0], nil
}

// loadBuild decodes and validates one build of a parsed recipe: the recipe
// itself when build is nil, or one of its matrix entries.
func loadBuild(path string, doc []byte, pos positions, raw map[string]any,
	build *matrixEntry, opts LoadOptions) (*Recipe, ErrorList) {
	errs := newCollector(path, pos)
	r := &Recipe{}
	d := &decoder{errs: errs}
	d.decodeStruct(nil, raw, reflect.ValueOf(r).Elem())

	if err := setLocation(r, path, doc); err != nil {
		return nil, ErrorList{err}
	}
	r.origin = origin{file: path, pos: pos, nameKey: keyPath{"name"}}
	hasDefault := func(name string) bool {
		return tableHas(raw, "variables", name, "default")
	}
	if build != nil {
		hasDefault = build.applyVars(r, hasDefault, errs)
	}
	extra := resolveVariables(r, hasDefault, errs, opts)
	if build != nil {
		build.applyName(r, errs)
	}
	renderStatic(r, d, errs)
	checkExplicitZeros(r, raw, errs)
	applyDefaults(r)
	checkDynamic(r, errs)
	validate(r, errs)
	resolvePaths(r)
	checkFiles(r, errs)
	if r.SSH.Password != "" {
		r.Secrets = appendUnique(r.Secrets, r.SSH.Password)
	}
	checkBootCommand(r, errs)

	all := append(errs.errs, extra...)
	if len(all) > 0 {
		return nil, all
	}
	return r, nil
}

// readDocument reads a TOML file and rejects content that is not text:
// invalid UTF-8 and NUL bytes, which TOML does not allow. It drops a UTF-8
// byte order mark, which some Windows editors write and others hide, so
// positions match what an editor shows.
func readDocument(path, kind string) ([]byte, *Error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{File: path, Msg: kind + " file not found: check the path", err: err}
	}
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("failed to read %s file: %v", kind, err), err: err}
	}
	defer f.Close()

	doc, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("failed to read %s file: %v", kind, err), err: err}
	}
	if len(doc) > MaxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("%s file is larger than the %d-byte maximum", kind, MaxFileSize)}
	}
	if bytes.HasPrefix(doc, []byte{0xff, 0xfe}) || bytes.HasPrefix(doc, []byte{0xfe, 0xff}) {
		return nil, &Error{File: path, Line: 1, Column: 1, Msg: "UTF-16 text: save the file as UTF-8"}
	}
	if i := bytes.IndexByte(doc, 0); i >= 0 {
		line, col := lineColumn(doc, i)
		return nil, &Error{File: path, Line: line, Column: col, Msg: "NUL byte: a TOML file must be text"}
	}
	if !utf8.Valid(doc) {
		line, col := lineColumn(doc, invalidUTF8Offset(doc))
		return nil, &Error{File: path, Line: line, Column: col, Msg: "invalid UTF-8: save the file as UTF-8"}
	}
	doc = bytes.TrimPrefix(doc, []byte("\ufeff"))
	if i := bytes.Index(doc, []byte("\ufeff")); i >= 0 {
		line, col := lineColumn(doc, i)
		return nil, &Error{File: path, Line: line, Column: col, Msg: "byte order mark (U+FEFF) inside the file: delete it"}
	}
	return doc, nil
}

func invalidUTF8Offset(doc []byte) int {
	for i := 0; i < len(doc); {
		r, size := utf8.DecodeRune(doc[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(doc)
}

// lineColumn returns the 1-based line and the 1-based column in bytes of
// offset in doc.
func lineColumn(doc []byte, offset int) (int, int) {
	before := doc[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	return line, offset - (bytes.LastIndexByte(before, '\n') + 1) + 1
}

// mapDocument returns the positions of the keys in doc and rejects a
// document with more than MaxKeys keys before the decoder sees it.
func mapDocument(path string, doc []byte) (positions, *Error) {
	pos, keys := mapPositions(doc)
	if keys > MaxKeys {
		return nil, &Error{File: path, Msg: fmt.Sprintf("%d keys, more than the %d maximum", keys, MaxKeys)}
	}
	return pos, nil
}

// parseDocument decodes doc into generic maps, reporting a syntax error
// with its position.
func parseDocument(path string, doc []byte) (map[string]any, *Error) {
	var raw map[string]any
	err := toml.Unmarshal(doc, &raw)
	if err == nil {
		return raw, nil
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		return nil, &Error{
			File:   path,
			Line:   line,
			Column: col,
			Key:    keyPath(de.Key()).String(),
			Msg:    "invalid TOML: " + strings.TrimPrefix(de.Error(), "toml: "),
			err:    err,
		}
	}
	return nil, &Error{File: path, Msg: "invalid TOML: " + err.Error(), err: err}
}

// setLocation fills Path, Dir and Hash.
func setLocation(r *Recipe, path string, doc []byte) *Error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return &Error{File: path, Msg: fmt.Sprintf("failed to resolve the recipe path: %v", err), err: err}
	}
	sum := sha256.Sum256(doc)
	r.Path = abs
	r.Dir = filepath.Dir(abs)
	r.Hash = hex.EncodeToString(sum[:])
	return nil
}

// tableHas reports whether the nested tables of raw contain the key path.
// checkExplicitZeros rejects a zero written for a value whose zero means
// "use the default", so "cpus = 0" is an error rather than 2 CPUs.
func checkExplicitZeros(r *Recipe, raw map[string]any, errs *collector) {
	checks := []struct {
		path keyPath
		zero bool
		fix  string
	}{
		{keyPath{"vm", "cpus"}, r.VM.CPUs == 0, fmt.Sprintf("use at least 1, or remove the key for the default of %d", DefaultCPUs)},
		{keyPath{"ssh", "port"}, r.SSH.Port == 0, fmt.Sprintf("use a port from 1 to 65535, or remove the key for the default of %d", DefaultSSHPort)},
		{keyPath{"ssh", "timeout"}, r.SSH.Timeout == 0, fmt.Sprintf("use a duration such as \"10m\", or remove the key for the default of %s", shortDuration(DefaultSSHTimeout))},
		{keyPath{"shutdown", "timeout"}, r.Shutdown.Timeout == 0, fmt.Sprintf("use a duration such as \"5m\", or remove the key for the default of %s", shortDuration(DefaultShutdownTime))},
		{keyPath{"http", "port_min"}, r.HTTP.PortMin == 0, fmt.Sprintf("use a port from 1 to 65535, or remove the key for the default of %d", DefaultHTTPPortMin)},
		{keyPath{"http", "port_max"}, r.HTTP.PortMax == 0, fmt.Sprintf("use a port from 1 to 65535, or remove the key for the default of %d", DefaultHTTPPortMax)},
	}
	for _, c := range checks {
		if c.zero && tableHas(raw, c.path...) {
			errs.add(c.path, "invalid value %s: %s", writtenValue(raw, c.path), c.fix)
		}
	}
}

// writtenValue returns the value at path as the recipe wrote it: a string
// quoted, anything else as Go prints it.
func writtenValue(raw map[string]any, path keyPath) string {
	value, _ := rawValue(raw, path...)
	if s, ok := value.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(value)
}

// shortDuration formats d as a recipe would write it: "30m", not "30m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func tableHas(raw map[string]any, keys ...string) bool {
	_, ok := rawValue(raw, keys...)
	return ok
}

// rawValue returns the decoded value at the path of keys, and whether the
// document contains it.
func rawValue(raw map[string]any, keys ...string) (any, bool) {
	var cur any = raw
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

package recipes

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// matrixKey is the top-level array of tables that declares the builds of
// a matrix recipe.
const matrixKey = "matrix"

// matrixFields are the keys a [[matrix]] entry may set.
var matrixFields = map[string]int{"name": 0, "vars": 1}

// matrixEntry is one [[matrix]] table: a build of the recipe with its own
// name and variable values.
type matrixEntry struct {
	index int
	name  string // template with .Name (the recipe's name) and .Vars
	vars  map[string]string
	// built is the rendered build name, empty until it renders and
	// validates.
	built string
}

func (e *matrixEntry) path() keyPath { return keyPath{matrixKey}.index(e.index) }

// LoadAll reads the recipe at path and returns one validated Recipe per
// [[matrix]] entry, in file order, or the recipe itself when it declares no
// matrix. Each build has its own Name, Vars, Secrets and output directory.
// Problems shared by every build are reported once; a problem found in
// only some builds names the build. Two builds with the same name or the
// same output directory are an error.
func LoadAll(path string, opts LoadOptions) ([]*Recipe, error) {
	doc, rerr := readDocument(path, "recipe")
	if rerr != nil {
		return nil, ErrorList{rerr}
	}
	pos, perr := mapDocument(path, doc)
	if perr != nil {
		return nil, ErrorList{perr}
	}
	raw, perr := parseDocument(path, doc)
	if perr != nil {
		return nil, ErrorList{perr}
	}

	errs := takeUnknownKeys(path, pos, raw)
	entries, matrixErrs := takeMatrix(path, pos, raw)
	errs = append(errs, matrixErrs...)
	if entries == nil {
		r, buildErrs := loadBuild(path, doc, pos, raw, nil, opts)
		if all := append(errs, buildErrs...); len(all) > 0 {
			return nil, sorted(unique(all))
		}
		return []*Recipe{r}, nil
	}

	builds := make([]*Recipe, len(entries))
	perBuild := make([]ErrorList, len(entries))
	for i := range entries {
		builds[i], perBuild[i] = loadBuild(path, doc, pos, raw, &entries[i], opts)
	}
	errs = append(errs, mergeBuildErrors(entries, perBuild)...)
	errs = append(errs, CheckDistinct(builds)...)
	if len(errs) > 0 {
		return nil, sorted(errs)
	}
	return builds, nil
}

// takeUnknownKeys reports and removes the top-level keys that are neither
// recipe fields nor matrix, so that their messages list matrix among the
// expected keys and a matrix recipe reports them once, not once per build.
func takeUnknownKeys(path string, pos positions, raw map[string]any) ErrorList {
	fields := tomlFields(reflect.TypeFor[Recipe]())
	fields[matrixKey] = -1
	errs := newCollector(path, pos)
	for _, k := range sortedKeys(raw) {
		if _, ok := fields[k]; !ok {
			errs.add(keyPath{k}, "%s", unknownKeyMessage(k, fields))
			delete(raw, k)
		}
	}
	return errs.errs
}

// takeMatrix removes the matrix key from raw and decodes its entries. It
// returns nil entries when the recipe has no usable matrix.
func takeMatrix(path string, pos positions, raw map[string]any) ([]matrixEntry, ErrorList) {
	value, ok := raw[matrixKey]
	if !ok {
		return nil, nil
	}
	delete(raw, matrixKey)

	errs := newCollector(path, pos)
	tables, ok := value.([]any)
	switch {
	case !ok:
		errs.add(keyPath{matrixKey}, "expected an array of tables ([[matrix]]), got %s", describeValue(value))
		return nil, errs.errs
	case len(tables) == 0:
		errs.add(keyPath{matrixKey}, "empty: add [[matrix]] entries or remove the key")
		return nil, errs.errs
	}

	// An entry that is not a table has no build to load, so it is left
	// out after its error is recorded.
	entries := make([]matrixEntry, 0, len(tables))
	for i, table := range tables {
		e := matrixEntry{index: i}
		m, ok := table.(map[string]any)
		if !ok {
			errs.add(e.path(), "expected a table, got %s", describeValue(table))
			continue
		}
		decodeMatrixEntry(&e, m, errs)
		entries = append(entries, e)
	}
	return entries, errs.errs
}

func decodeMatrixEntry(e *matrixEntry, m map[string]any, errs *collector) {
	for _, k := range sortedKeys(m) {
		if _, ok := matrixFields[k]; !ok {
			errs.add(e.path().child(k), "%s", unknownKeyMessage(k, matrixFields))
		}
	}
	if name, ok := m["name"]; ok {
		s, isString := name.(string)
		if !isString {
			errs.add(e.path().child("name"), "expected a string, got %s", describeValue(name))
		}
		e.name = s
	}
	vars, ok := m["vars"]
	if !ok {
		return
	}
	table, isTable := vars.(map[string]any)
	if !isTable {
		errs.add(e.path().child("vars"), "expected a table of strings, got %s", describeValue(vars))
		return
	}
	e.vars = map[string]string{}
	for _, k := range sortedKeys(table) {
		s, isString := table[k].(string)
		if !isString {
			errs.add(e.path().child("vars").child(k), "expected a string, got %s", describeValue(table[k]))
			continue
		}
		e.vars[k] = s
	}
}

// applyVars makes the entry's values the defaults of the variables they
// name, so the environment, variable files and --var still override them.
// It returns hasDefault extended by those variables.
func (e *matrixEntry) applyVars(r *Recipe, hasDefault func(string) bool, errs *collector) func(string) bool {
	declared := map[string]string{}
	for name := range r.Variables {
		declared[name] = ""
	}
	for _, name := range sortedKeys(e.vars) {
		v, ok := r.Variables[name]
		if !ok {
			errs.add(e.path().child("vars").child(name), "%v", unknownVariableError(name, declared))
			continue
		}
		v.Default = e.vars[name]
		r.Variables[name] = v
	}
	return func(name string) bool {
		if _, ok := e.vars[name]; ok {
			_, isDeclared := r.Variables[name]
			return isDeclared
		}
		return hasDefault(name)
	}
}

// applyName renders the entry's name and makes it the build's Name. On
// failure the recipe's own name stays and its "name" errors are
// suppressed, because the problem is reported at the entry.
func (e *matrixEntry) applyName(r *Recipe, errs *collector) {
	path := e.path().child("name")
	name, err := e.renderName(r)
	switch {
	case err != nil:
		errs.add(path, "%v", err)
	case name == "":
		errs.add(path, "empty build name: the template rendered to \"\"")
	case containsSecret(name, r.Secrets):
		errs.add(path, "build name contains the value of a sensitive variable:"+
			" build names appear unmasked in paths and logs, so use a variable that is not sensitive")
	default:
		validateName(errs, path, name, true)
	}
	if errs.has(path) {
		errs.failed[keyPath{"name"}.String()] = true
		return
	}
	e.built = name
	r.Name = name
	r.origin.nameKey = path
}

func containsSecret(s string, secrets []string) bool {
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s, secret) {
			return true
		}
	}
	return false
}

func (e *matrixEntry) renderName(r *Recipe) (string, error) {
	if e.name == "" {
		return "", fmt.Errorf("missing: set a build name such as \"{{ .Name }}-%d\"", e.index+1)
	}
	tmpl, err := parseTemplate(e.name, r.Vars)
	if err != nil {
		return "", err
	}
	if err := checkStaticRefs(templateRefs(tmpl)); err != nil {
		return "", err
	}
	return Render(e.name, TemplateData{Name: r.Name, Vars: r.Vars})
}

// mergeBuildErrors reports an error found in every build once, and an
// error found in only some builds once per build, naming the build.
func mergeBuildErrors(entries []matrixEntry, perBuild []ErrorList) ErrorList {
	count := map[string]int{}
	for i := range perBuild {
		perBuild[i] = unique(perBuild[i])
		for _, e := range perBuild[i] {
			count[e.Error()]++
		}
	}
	var out ErrorList
	reported := map[string]bool{}
	for i, list := range perBuild {
		for _, e := range list {
			text := e.Error()
			if count[text] < len(entries) {
				named := *e
				named.Msg += " (" + entries[i].label() + ")"
				out = append(out, &named)
				continue
			}
			if !reported[text] {
				reported[text] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// label names the build of an entry in messages.
func (e *matrixEntry) label() string {
	if e.built == "" {
		return "in build " + e.path().String()
	}
	return fmt.Sprintf("in build %q, %s", e.built, e.path())
}

// unique drops errors whose text repeats an earlier one.
func unique(errs ErrorList) ErrorList {
	seen := map[string]bool{}
	var out ErrorList
	for _, e := range errs {
		if text := e.Error(); !seen[text] {
			seen[text] = true
			out = append(out, e)
		}
	}
	return out
}

// CheckDistinct reports builds that share a name or an output directory,
// which would make them overwrite each other's images. Each error is
// placed at the later build's name and gives the earlier one's position.
// Builds are compared in the order given, and nil entries are skipped.
func CheckDistinct(builds []*Recipe) ErrorList {
	var errs ErrorList
	names := map[string]*Recipe{}
	dirs := map[string]*Recipe{}
	for _, r := range builds {
		if r == nil {
			continue
		}
		if prev, ok := names[r.Name]; ok {
			errs = append(errs, r.nameError(fmt.Sprintf(
				"duplicate build name %q: %s already uses it, give each build a distinct name",
				r.Name, prev.nameLocation())))
			continue
		}
		names[r.Name] = r
		if prev, ok := dirs[r.Output.Directory]; ok {
			errs = append(errs, r.nameError(fmt.Sprintf(
				"build %q writes to output directory %s, as build %q at %s does:"+
					" use {{ .Name }} in output.directory so each build has its own",
				r.Name, r.Output.Directory, prev.Name, prev.nameLocation())))
			continue
		}
		dirs[r.Output.Directory] = r
	}
	return errs
}

// origin is the source of a loaded build: the file as named to Load, the
// key positions of that file and the key that set the build name.
type origin struct {
	file    string
	pos     positions
	nameKey keyPath
}

// nameError returns an error placed where r's build name is set.
func (r *Recipe) nameError(msg string) *Error {
	o := r.origin
	p := o.pos.lookup(o.nameKey)
	return &Error{File: o.file, Line: p.line, Column: p.column, Key: o.nameKey.String(), Msg: msg}
}

// nameLocation formats the file, line and column that set r's build name,
// with the key when it is a matrix entry's.
func (r *Recipe) nameLocation() string {
	o := r.origin
	p := o.pos.lookup(o.nameKey)
	var b strings.Builder
	b.WriteString(o.file)
	if p.line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.line, p.column)
	}
	if len(o.nameKey) > 0 && !slices.Equal(o.nameKey, keyPath{"name"}) {
		b.WriteString(" (" + o.nameKey.String() + ")")
	}
	return b.String()
}

package recipes

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// EnvPrefix starts the name of an environment variable that sets a recipe
// variable: BAKE_VAR_name=value.
const EnvPrefix = "BAKE_VAR_"

// variableName matches the names that `.Vars.name` in a template can reach.
var variableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// variableResolver computes the final value of every declared variable.
type variableResolver struct {
	recipe *Recipe
	errs   *collector
	// extra holds errors from variable files and overrides, which are not
	// placed in the recipe file.
	extra ErrorList

	values      map[string]string
	fromDefault map[string]bool
	state       map[string]resolveState
}

type resolveState int

const (
	unresolved resolveState = iota
	resolving
	resolved
	failed
)

// resolveVariables fills r.Vars and adds sensitive values to r.Secrets.
// hasDefault reports which variables declare a default key.
func resolveVariables(r *Recipe, hasDefault func(name string) bool, errs *collector, opts LoadOptions) ErrorList {
	v := &variableResolver{
		recipe:      r,
		errs:        errs,
		values:      map[string]string{},
		fromDefault: map[string]bool{},
		state:       map[string]resolveState{},
	}
	names := sortedKeys(r.Variables)
	for _, name := range names {
		if !variableName.MatchString(name) {
			errs.add(keyPath{"variables", name},
				"invalid variable name: use letters, digits and underscores, starting with a letter or underscore")
			continue
		}
		if hasDefault(name) {
			v.values[name] = r.Variables[name].Default
			v.fromDefault[name] = true
		}
	}

	v.applyEnviron(opts.Environ)
	for _, file := range opts.VarFiles {
		v.applyVarFile(file)
	}
	v.applyOverrides(opts.Vars)

	for _, name := range names {
		if _, ok := v.values[name]; !ok && !errs.has(keyPath{"variables", name}) {
			errs.add(keyPath{"variables", name},
				"no default and no value: set it with --var %s=VALUE, a variable file or %s%s",
				name, EnvPrefix, name)
		}
	}
	for _, name := range names {
		v.resolve(name, nil)
	}

	r.Vars = v.values
	for _, name := range names {
		if r.Variables[name].Sensitive && v.values[name] != "" {
			r.Secrets = appendUnique(r.Secrets, v.values[name])
		}
	}
	return v.extra
}

func (v *variableResolver) declared(name string) bool {
	_, ok := v.recipe.Variables[name]
	return ok && variableName.MatchString(name)
}

func (v *variableResolver) set(name, value string) {
	v.values[name] = value
	v.fromDefault[name] = false
}

// applyEnviron reads BAKE_VAR_name entries. Names the recipe does not
// declare are ignored, because one environment serves many recipes.
func (v *variableResolver) applyEnviron(environ []string) {
	for _, kv := range environ {
		key, value, ok := strings.Cut(kv, "=")
		name, isVar := strings.CutPrefix(key, EnvPrefix)
		if ok && isVar && v.declared(name) {
			v.set(name, value)
		}
	}
}

func (v *variableResolver) applyOverrides(vars map[string]string) {
	for _, name := range sortedKeys(vars) {
		if !v.declared(name) {
			v.extra = append(v.extra, &Error{
				Msg: fmt.Sprintf("--var %s: %v", name, unknownVariableError(name, v.declaredValues())),
			})
			continue
		}
		v.set(name, vars[name])
	}
}

// declaredValues returns the declared variable names as map keys, for
// messages that list them.
func (v *variableResolver) declaredValues() map[string]string {
	m := map[string]string{}
	for name := range v.recipe.Variables {
		if variableName.MatchString(name) {
			m[name] = ""
		}
	}
	return m
}

// applyVarFile reads a TOML file of name = "value" pairs.
func (v *variableResolver) applyVarFile(file string) {
	doc, err := readDocument(file, "variable")
	if err != nil {
		v.extra = append(v.extra, err)
		return
	}
	pos, perr := mapDocument(file, doc)
	if perr != nil {
		v.extra = append(v.extra, perr)
		return
	}
	raw, perr := parseDocument(file, doc)
	if perr != nil {
		v.extra = append(v.extra, perr)
		return
	}
	errs := newCollector(file, pos)
	for _, name := range sortedKeys(raw) {
		path := keyPath{name}
		value, isString := raw[name].(string)
		switch {
		case !v.declared(name):
			errs.add(path, "%v", unknownVariableError(name, v.declaredValues()))
		case !isString:
			errs.add(path, "expected a string, got %s", describeValue(raw[name]))
		default:
			v.set(name, value)
		}
	}
	v.extra = append(v.extra, errs.errs...)
}

// resolve renders the default of name, after the variables it refers to.
// stack holds the variables being resolved, to report a cycle.
func (v *variableResolver) resolve(name string, stack []string) bool {
	switch v.state[name] {
	case resolved:
		return true
	case failed:
		return false
	case resolving:
		cycle := append(stack[slices.Index(stack, name):], name)
		v.errs.add(keyPath{"variables", cycle[0], "default"},
			"variable default refers to itself: %s", strings.Join(cycle, " -> "))
		return false
	}
	value, ok := v.values[name]
	if !ok || !v.fromDefault[name] || !strings.Contains(value, "{{") {
		v.state[name] = resolved
		return ok
	}

	v.state[name] = resolving
	ok = v.renderDefault(name, value, append(stack, name))
	v.state[name] = resolved
	if !ok {
		v.state[name] = failed
	}
	return ok
}

func (v *variableResolver) renderDefault(name, value string, stack []string) bool {
	path := keyPath{"variables", name, "default"}
	tmpl, err := parseTemplate(value, nil)
	if err != nil {
		v.errs.add(path, "%v", err)
		return false
	}
	refs := templateRefs(tmpl)
	if err := checkStaticRefs(refs); err != nil {
		v.errs.add(path, "%v", err)
		return false
	}

	deps := refs.vars
	if refs.anyVars {
		deps = sortedKeys(v.declaredValues())
	}
	for _, dep := range deps {
		if !v.declared(dep) {
			v.errs.add(path, "%v", unknownVariableError(dep, v.declaredValues()))
			return false
		}
		if !v.resolve(dep, stack) {
			return false
		}
	}

	out, err := Render(value, TemplateData{Name: v.recipe.Name, Vars: v.values})
	if err != nil {
		v.errs.add(path, "%v", err)
		return false
	}
	v.values[name] = out
	return true
}

// checkStaticRefs rejects references to values that only exist once the
// build runs, for fields rendered when the recipe is loaded.
func checkStaticRefs(r refs) error {
	for _, f := range r.fields {
		if slices.Contains(buildTimeFields, f) {
			return fmt.Errorf(".%s is only known during the build, so it cannot be used here:"+
				" use it in boot.command, vm.append, http.content, cloud_init data or provisioners", f)
		}
		if !slices.Contains(templateFields, f) {
			return unknownFieldError(f)
		}
	}
	return nil
}

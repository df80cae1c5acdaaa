package recipes

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// maxRenderedSize bounds the output of one template. A recipe field that
// renders to more than this is almost certainly a runaway template.
const maxRenderedSize = 16 << 20

// Render executes text as a Go text/template with data. Besides the fields
// of TemplateData, the function `user "name"` returns a variable, as in
// Packer's JSON templates. A reference to a variable that data.Vars does
// not contain is an error naming it.
func Render(text string, data TemplateData) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	tmpl, err := parseTemplate(text, data.Vars)
	if err != nil {
		return "", err
	}
	refs := templateRefs(tmpl)
	for _, name := range refs.vars {
		if _, ok := data.Vars[name]; !ok {
			return "", unknownVariableError(name, data.Vars)
		}
	}
	for _, f := range refs.fields {
		if !slices.Contains(templateFields, f) {
			return "", unknownFieldError(f)
		}
	}

	var b strings.Builder
	w := &limitedWriter{w: &b, n: maxRenderedSize}
	if err := tmpl.Execute(w, data); err != nil {
		return "", fmt.Errorf("render template: %w", cleanTemplateError(err))
	}
	return b.String(), nil
}

// templateFields are the fields of TemplateData, in the order they are
// documented.
var templateFields = []string{"Name", "HTTPIP", "HTTPPort", "SSHPublicKey", "Vars"}

// buildTimeFields are only known once the build runs, so only dynamic
// fields may use them.
var buildTimeFields = []string{"HTTPIP", "HTTPPort", "SSHPublicKey"}

// parseTemplate parses text with the recipe template functions bound to
// vars, and rejects constructs recipes do not allow.
func parseTemplate(text string, vars map[string]string) (*template.Template, error) {
	user := func(name string) (string, error) {
		v, ok := vars[name]
		if !ok {
			return "", unknownVariableError(name, vars)
		}
		return v, nil
	}
	tmpl, err := template.New("").
		Option("missingkey=error").
		Funcs(template.FuncMap{"user": user}).
		Parse(text)
	if err != nil {
		return nil, fmt.Errorf("invalid template: %w", cleanTemplateError(err))
	}
	if hasRange(tmpl) {
		return nil, errors.New("invalid template: range is not supported in recipe templates")
	}
	// A defined template can call itself, which text/template only stops
	// after 100,000 levels; recipes have no use for either.
	if len(tmpl.Templates()) > 1 || hasTemplateCall(tmpl) {
		return nil, errors.New("invalid template: define, block and template are not supported in recipe templates")
	}
	return tmpl, nil
}

// cleanTemplateError drops text/template's "template: :LINE:" prefix,
// which names an anonymous template and only adds noise.
func cleanTemplateError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	if rest, ok := strings.CutPrefix(msg, ":"); ok {
		if i := strings.Index(rest, ": "); i >= 0 {
			msg = "line " + rest[:i] + ": " + strings.Replace(rest[i+2:], `executing "" at `, "at ", 1)
		}
	}
	return errors.New(msg)
}

func unknownVariableError(name string, vars map[string]string) error {
	if len(vars) == 0 {
		return fmt.Errorf("unknown variable %q: the recipe declares no variables, add a [variables.%s] table", name, name)
	}
	return fmt.Errorf("unknown variable %q: declared variables are %s", name, strings.Join(sortedKeys(vars), ", "))
}

func unknownFieldError(field string) error {
	return fmt.Errorf("unknown template field .%s: use .%s", field, strings.Join(templateFields, ", ."))
}

// limitedWriter fails once more than n bytes are written, which stops
// template execution.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("output exceeds %d bytes", maxRenderedSize)
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// refs is the set of names a template refers to: variables, top-level
// fields of TemplateData, and whether it reaches variables through a name
// only known at run time (`index .Vars $x`, `user $x`).
type refs struct {
	vars    []string
	fields  []string
	anyVars bool
}

func templateRefs(tmpl *template.Template) refs {
	var r refs
	for _, t := range tmpl.Templates() {
		if t.Tree != nil {
			walkNodes(t.Tree.Root, func(n parse.Node) { r.add(n) })
		}
	}
	return r
}

func (r *refs) add(n parse.Node) {
	switch n := n.(type) {
	case *parse.FieldNode:
		r.addField(n.Ident)
	case *parse.ChainNode:
		if f, ok := n.Node.(*parse.FieldNode); ok {
			r.addField(append(slices.Clone(f.Ident), n.Field...))
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			r.addField(n.Ident[1:])
		}
	case *parse.CommandNode:
		r.addCall(n.Args)
	}
}

// addCall records the variable named by `user "name"` or
// `index .Vars "name"`.
func (r *refs) addCall(args []parse.Node) {
	if len(args) == 0 {
		return
	}
	id, ok := args[0].(*parse.IdentifierNode)
	if !ok {
		return
	}
	switch {
	case id.Ident == "user" && len(args) == 2:
		if s, ok := args[1].(*parse.StringNode); ok {
			r.vars = appendUnique(r.vars, s.Text)
			return
		}
		r.anyVars = true
	case id.Ident == "user":
		r.anyVars = true
	case id.Ident == "index" && len(args) == 3 && isVarsField(args[1]):
		if s, ok := args[2].(*parse.StringNode); ok {
			r.vars = appendUnique(r.vars, s.Text)
		}
	}
}

func isVarsField(n parse.Node) bool {
	f, ok := n.(*parse.FieldNode)
	return ok && len(f.Ident) == 1 && f.Ident[0] == "Vars"
}

func (r *refs) addField(ident []string) {
	if len(ident) == 0 {
		return
	}
	r.fields = appendUnique(r.fields, ident[0])
	if ident[0] != "Vars" {
		return
	}
	if len(ident) >= 2 {
		r.vars = appendUnique(r.vars, ident[1])
	} else {
		r.anyVars = true
	}
}

func appendUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// hasNode reports whether any node of tmpl satisfies match.
func hasNode(tmpl *template.Template, match func(parse.Node) bool) bool {
	found := false
	for _, t := range tmpl.Templates() {
		if t.Tree != nil {
			walkNodes(t.Tree.Root, func(n parse.Node) { found = found || match(n) })
		}
	}
	return found
}

func hasRange(tmpl *template.Template) bool {
	return hasNode(tmpl, func(n parse.Node) bool { _, ok := n.(*parse.RangeNode); return ok })
}

func hasTemplateCall(tmpl *template.Template) bool {
	return hasNode(tmpl, func(n parse.Node) bool { _, ok := n.(*parse.TemplateNode); return ok })
}

// walkNodes calls visit on n and every node below it.
func walkNodes(n parse.Node, visit func(parse.Node)) {
	if n == nil || isNilNode(n) {
		return
	}
	visit(n)
	switch n := n.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			walkNodes(c, visit)
		}
	case *parse.ActionNode:
		walkNodes(n.Pipe, visit)
	case *parse.PipeNode:
		for _, c := range n.Cmds {
			walkNodes(c, visit)
		}
	case *parse.CommandNode:
		for _, c := range n.Args {
			walkNodes(c, visit)
		}
	case *parse.ChainNode:
		walkNodes(n.Node, visit)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.TemplateNode:
		walkNodes(n.Pipe, visit)
	}
}

func walkBranch(b *parse.BranchNode, visit func(parse.Node)) {
	walkNodes(b.Pipe, visit)
	walkNodes(b.List, visit)
	walkNodes(b.ElseList, visit)
}

// isNilNode reports whether n is a typed nil pointer, which the parse tree
// uses for absent parts such as a missing else branch.
func isNilNode(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.ListNode:
		return n == nil
	case *parse.PipeNode:
		return n == nil
	}
	return false
}

package recipes

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bakeimg/bake/boot"
	"github.com/bakeimg/bake/event"
)

// bootPlaceholders stand in for the build-time template values while the
// boot command is checked at load time. They have the shape of real
// values, so the rendered text parses as the build's will.
var bootPlaceholders = struct {
	HTTPIP       string
	HTTPPort     int
	SSHPublicKey string
}{
	HTTPIP:       "10.0.2.2",
	HTTPPort:     DefaultHTTPPortMin,
	SSHPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderKeyForValidation bake",
}

// checkBootCommand renders boot.command with placeholder build-time values
// and parses it with the boot package, so that an unknown key, a bad wait
// or a character without a US-keyboard key fails validation instead of
// the build. Each syntax error is placed at the command element it falls
// in. Secret values are masked in the messages.
// NOTE: a template whose output depends on the real HTTP port or key (for
// example an if on .HTTPPort) is only checked for the placeholder values.
func checkBootCommand(r *Recipe, errs *collector) {
	base := keyPath{"boot", "command"}
	// A variable that failed to resolve has its own error, and rendering
	// with it would only add a second, misleading one.
	if len(r.Boot.Command) == 0 || errs.hasUnder(base) || errs.hasUnder(keyPath{"variables"}) {
		return
	}
	data := r.TemplateData()
	data.HTTPIP = bootPlaceholders.HTTPIP
	data.HTTPPort = bootPlaceholders.HTTPPort
	data.SSHPublicKey = bootPlaceholders.SSHPublicKey

	starts := make([]int, len(r.Boot.Command))
	var text strings.Builder
	for i, element := range r.Boot.Command {
		out, err := Render(element, data)
		if err != nil {
			errs.add(base.index(i), "%s", maskSecrets(err.Error(), r.Secrets))
			return
		}
		starts[i] = text.Len()
		text.WriteString(out)
	}

	_, warnings, err := boot.Parse(text.String())
	for _, w := range warnings {
		i := elementAt(starts, w.Pos)
		p := errs.pos.lookup(base.index(i))
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s:%d:%d: %s: %s", errs.file, p.line, p.column,
			base.index(i), maskSecrets(w.Msg, r.Secrets)))
	}
	for _, e := range splitErrors(err) {
		var se *boot.SyntaxError
		if !errors.As(e, &se) {
			errs.add(base, "%s", maskSecrets(e.Error(), r.Secrets))
			continue
		}
		i := elementAt(starts, se.Pos)
		addBootError(errs, base.index(i), se.Pos-starts[i], maskSecrets(se.Msg, r.Secrets))
	}
}

// addBootError records a boot command error. Unlike collector.add it keeps
// every error for the same element, since one element can hold several
// mistakes.
func addBootError(errs *collector, path keyPath, offset int, msg string) {
	p := errs.pos.lookup(path)
	errs.failed[path.String()] = true
	errs.errs = append(errs.errs, &Error{
		File:   errs.file,
		Line:   p.line,
		Column: p.column,
		Key:    path.String(),
		Msg:    fmt.Sprintf("invalid boot command at byte %d of the rendered element: %s", offset, msg),
	})
}

// elementAt returns the index of the element that contains byte offset
// pos of the joined command, given each element's start offset.
func elementAt(starts []int, pos int) int {
	i := 0
	for j, s := range starts {
		if s <= pos {
			i = j
		}
	}
	return i
}

// splitErrors returns the errors joined in err, or err alone.
func splitErrors(err error) []error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		return joined.Unwrap()
	}
	return []error{err}
}

// maskSecrets replaces every secret value in s with event.Mask, as
// event.Emitter does.
func maskSecrets(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, event.Mask)
		}
	}
	return s
}

// Package provision runs a recipe's provisioners: inline shell commands,
// local scripts and file uploads on the guest, and host commands.
package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bakeimg/bake/communicator"
	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/recipes"
)

// Runner runs commands on and uploads files to the guest.
type Runner interface {
	Run(ctx context.Context, cmd string, env map[string]string, stdout, stderr func(line string)) (exitCode int, err error)
	Upload(ctx context.Context, local, remote string) error
}

var _ Runner = (*communicator.Client)(nil)

// Options carries what Run needs besides the provisioner itself.
type Options struct {
	// Index is the provisioner's 1-based position in the recipe, used in
	// errors and events.
	Index int
	// Shell contains the rendered shell lines. Nil means the provisioner's
	// own lines, unrendered.
	Shell []string
	// Environment contains the rendered environment. Nil means the
	// provisioner's own values, unrendered.
	Environment map[string]string
	// Local holds the rendered host commands of a local provisioner. Nil
	// means the provisioner's own lines, unrendered.
	Local []string
	// Dir is the recipe's directory, against which relative script and
	// source paths are resolved.
	Dir string
	// TempDir is the directory on the guest for uploaded scripts. Empty
	// means /tmp.
	TempDir string
	Emitter *event.Emitter // nil drops events
}

// Provisioner kinds, as they appear in errors.
const (
	KindShell  = "shell"
	KindScript = "script"
	KindFile   = "file"
)

// Kind returns which kind of provisioner p is, or "" when it sets none of
// shell, local, script and source.
func Kind(p recipes.Provisioner) string {
	switch {
	case len(p.Shell) > 0:
		return KindShell
	case len(p.Local) > 0:
		return KindLocal
	case p.Script != "":
		return KindScript
	case p.Source != "":
		return KindFile
	}
	return ""
}

// Run runs one provisioner. Output lines become event.Output events. With
// p.ExpectDisconnect, a connection that drops while a command runs counts
// as success, and so does exit status 129 or 143 (SIGHUP or SIGTERM), which
// a rebooting guest may report before the connection drops.
func Run(ctx context.Context, c Runner, p recipes.Provisioner, opts Options) error {
	if opts.Emitter == nil {
		opts.Emitter = event.NewEmitter("", event.Discard)
	}
	if opts.TempDir == "" {
		opts.TempDir = "/tmp"
	}
	if opts.Shell == nil {
		opts.Shell = p.Shell
	}
	if opts.Environment == nil {
		opts.Environment = p.Environment
	}
	if opts.Local == nil {
		opts.Local = p.Local
	}

	r := &run{c: c, p: p, opts: opts, label: label(p, opts.Index)}
	var err error
	switch Kind(p) {
	case KindShell:
		err = r.shell(ctx)
	case KindScript:
		err = r.script(ctx)
	case KindFile:
		err = r.file(ctx)
	case KindLocal:
		err = r.local(ctx)
	default:
		err = errors.New("nothing to do: set shell, local, script or source")
	}
	if err != nil {
		return fmt.Errorf("%s: %w", r.label, err)
	}
	return nil
}

// label names a provisioner in messages, as in `provisioner 2 (shell)` or
// `provisioner 2 "install agent" (shell)`.
func label(p recipes.Provisioner, index int) string {
	kind := Kind(p)
	if kind == "" {
		kind = "unknown"
	}
	if p.Name != "" {
		return fmt.Sprintf("provisioner %d %q (%s)", index, p.Name, kind)
	}
	return fmt.Sprintf("provisioner %d (%s)", index, kind)
}

type run struct {
	c     Runner
	p     recipes.Provisioner
	opts  Options
	label string

	// trackLines is set for a script made by shellScript, whose failing
	// line arrives on standard error as failedLineMarker.
	trackLines bool
	failedLine int
}

// shell runs the lines as one script with "sh -e", so the first failing
// line stops it. A script whose command stays within maxInlineCommand
// bytes travels in the command itself. That saves an SFTP session and its round trips, which
// cost over a second on an emulated guest. A longer script is uploaded
// first.
func (r *run) shell(ctx context.Context) error {
	lines := normalizeLineEnds(r.opts.Shell)
	script, tracked := shellScript(lines)
	r.trackLines = tracked
	cmd := "sh -e -c " + communicator.Quote(script)

	if commandLength(cmd, r.opts.Environment) > maxInlineCommand {
		local, err := writeTemp(script)
		if err != nil {
			return err
		}
		defer os.Remove(local)
		remote := path.Join(r.opts.TempDir, "bake-"+randomHex()+".sh")
		if err := r.c.Upload(ctx, local, remote); err != nil {
			return fmt.Errorf("failed to upload the script: %w", err)
		}
		cmd = "sh -e " + communicator.Quote(remote) + removeAfter(remote)
	}

	r.opts.Emitter.Infof("%s: running %s", r.label, describeLines(r.opts.Shell))
	return r.exec(ctx, cmd, fmt.Sprintf("command %q", firstLine(r.opts.Shell)))
}

// maxInlineCommand is the longest command, with its environment, that
// carries a script inline. Dropbear's sysoptions.h sets MAX_CMD_LEN to 9000
// bytes, and a longer command closes the session. OpenSSH accepts far
// longer commands.
const maxInlineCommand = 8000

// commandLength estimates the bytes of the exec request for cmd with env,
// which the communicator sends as "export NAME='value'; " before it.
func commandLength(cmd string, env map[string]string) int {
	n := len(cmd)
	for name, value := range env {
		n += len("export =; ") + len(name) + len(communicator.Quote(value))
	}
	return n
}

// failedLineMarker starts the line the script's EXIT trap writes to
// standard error with the index of the shell line that failed.
const failedLineMarker = "__bake_failed_line="

// shellScript joins the lines into one script, as a script file would
// contain them. When every line is a whole command on its own, the script
// also sets a marker before each line and reports the marker of the line
// that failed, and tracked is true. A marker would break a command that
// spans lines, such as a line ending in a backslash or "&&", a here
// document, or an if written over several lines, so such scripts get none.
func shellScript(lines []string) (script string, tracked bool) {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	if !slices.ContainsFunc(lines, continues) {
		b.WriteString("trap 'bake_status=$?; [ \"$bake_status\" -eq 0 ] || echo \"" + failedLineMarker + "$bake_line\" >&2' EXIT\n")
		for i, line := range lines {
			fmt.Fprintf(&b, "bake_line=%d\n%s\n", i, line)
		}
		return b.String(), true
	}
	for _, line := range lines {
		b.WriteString(line + "\n")
	}
	return b.String(), false
}

// continuationEnds are the line endings after which the shell reads the
// next line as part of the same command.
var continuationEnds = []string{"\\", "&&", "||", "|", "{", "(", "do", "then", "else", "in", ";;"}

// compoundWords are the words that start or continue a compound command,
// which usually spans several lines.
var compoundWords = map[string]bool{
	"if": true, "then": true, "elif": true, "else": true, "fi": true,
	"for": true, "while": true, "until": true, "do": true, "done": true,
	"case": true, "esac": true, "{": true, "}": true, "(": true, ")": true,
	"select": true, "function": true,
}

// continues reports whether line may not be a whole command on its own.
// It returns true for a newline, a here document, an open quote, or an
// unclosed parenthesis or brace in line. It also returns true when line
// starts with a compound-command word or ends in an operator or word after
// which the shell reads on, and in any doubt.
func continues(line string) bool {
	t := strings.TrimSpace(line)
	if strings.ContainsAny(t, "\n\r") || strings.Contains(t, "<<") || !quotesClosed(t) {
		return true
	}
	// A subshell or group is open. Parentheses inside quotes count too,
	// which can only make the result true.
	if strings.Count(t, "(") != strings.Count(t, ")") || strings.Count(t, "{") != strings.Count(t, "}") {
		return true
	}
	if fields := strings.Fields(t); len(fields) > 0 {
		first := strings.TrimLeft(fields[0], "(")
		if compoundWords[fields[0]] || compoundWords[first] || strings.HasSuffix(fields[0], "()") {
			return true
		}
	}
	for _, end := range continuationEnds {
		if strings.HasSuffix(t, end) {
			return true
		}
	}
	return false
}

// quotesClosed reports whether every quote in line is closed, following
// the shell's rules for backslashes.
func quotesClosed(line string) bool {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
		case c == '\\':
			i++
		case quote == '"':
			if c == '"' {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		}
	}
	return quote == 0
}

// normalizeLineEnds turns CRLF line ends into LF. A recipe saved on
// Windows then runs the commands it shows, not names that end in CR.
func normalizeLineEnds(lines []string) []string {
	out := make([]string, len(lines))
	for i, line := range lines {
		out[i] = strings.TrimSuffix(strings.ReplaceAll(line, "\r\n", "\n"), "\r")
	}
	return out
}

// script uploads a local script and runs it directly, so its shebang line
// picks the interpreter.
func (r *run) script(ctx context.Context) error {
	local := r.resolve(r.p.Script)
	remote := path.Join(r.opts.TempDir, "bake-"+randomHex()+"-"+filepath.Base(local))
	if err := r.c.Upload(ctx, local, remote); err != nil {
		return fmt.Errorf("failed to upload script %q: %w", r.p.Script, err)
	}
	r.opts.Emitter.Infof("%s: running %s", r.label, r.p.Script)
	quoted := communicator.Quote(remote)
	cmd := "chmod +x " + quoted + " && " + quoted + removeAfter(remote)
	return r.exec(ctx, cmd, fmt.Sprintf("script %q", r.p.Script))
}

// file uploads a file or directory to its destination.
func (r *run) file(ctx context.Context) error {
	if r.p.Destination == "" {
		return fmt.Errorf("missing destination for source %q: set destination", r.p.Source)
	}
	local := r.resolve(r.p.Source)
	r.opts.Emitter.Infof("%s: uploading %s to %s", r.label, r.p.Source, r.p.Destination)
	if err := r.c.Upload(ctx, local, r.p.Destination); err != nil {
		return fmt.Errorf("failed to upload %q to %q: %w", r.p.Source, r.p.Destination, err)
	}
	return nil
}

// exec runs cmd with output as events and turns its result into an error
// that starts with subject, such as `command "apt-get update"`.
func (r *run) exec(ctx context.Context, cmd, subject string) error {
	emitter := r.opts.Emitter
	stdout := func(line string) { emitter.Emit(event.Event{Kind: event.Output, Message: line}) }
	r.failedLine = -1
	stderr := func(line string) {
		if index, ok := strings.CutPrefix(line, failedLineMarker); ok && r.trackLines {
			if n, err := strconv.Atoi(index); err == nil {
				r.failedLine = n
			}
			return
		}
		emitter.Emit(event.Event{Kind: event.Output, Message: line, Stderr: true})
	}

	code, err := r.c.Run(ctx, cmd, r.opts.Environment, stdout, stderr)
	if r.trackLines && r.failedLine >= 0 && r.failedLine < len(r.opts.Shell) {
		// Name the line that failed rather than the first one.
		subject = fmt.Sprintf("command %q (line %d)", firstLine(r.opts.Shell[r.failedLine:r.failedLine+1]), r.failedLine+1)
	}
	switch {
	case err != nil && r.p.ExpectDisconnect && errors.Is(err, communicator.ErrDisconnected):
		emitter.Infof("%s: connection dropped as expected", r.label)
		return nil
	case err == nil && r.p.ExpectDisconnect && killedByShutdown(code):
		emitter.Infof("%s: %s ended with status %d as the guest shut down, as expected", r.label, subject, code)
		return nil
	case err != nil:
		return fmt.Errorf("%s failed: %w", subject, err)
	case code != 0:
		return fmt.Errorf("%s exited with status %d", subject, code)
	}
	return nil
}

// killedByShutdown reports whether code means the command died of SIGHUP
// or SIGTERM, which a shutdown or reboot sends to every process.
func killedByShutdown(code int) bool {
	const sigHUP, sigTERM = 1, 15
	return code == 128+sigHUP || code == 128+sigTERM
}

func (r *run) resolve(p string) string {
	if filepath.IsAbs(p) || r.opts.Dir == "" {
		return p
	}
	return filepath.Join(r.opts.Dir, p)
}

// removeAfter returns a shell suffix that deletes the uploaded file and
// keeps the command's exit status.
func removeAfter(remote string) string {
	return "; status=$?; rm -f " + communicator.Quote(remote) + "; exit $status"
}

// maxCommandChars is how much of a command an error message quotes.
const maxCommandChars = 60

// firstLine returns the first shell line for an error message, cut to
// maxCommandChars and marked with "…" when cut or followed by more lines.
func firstLine(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	first, rest, multiline := strings.Cut(lines[0], "\n")
	cut := len(lines) > 1 || multiline && rest != ""
	if runes := []rune(first); len(runes) > maxCommandChars {
		first = string(runes[:maxCommandChars])
		cut = true
	}
	if cut {
		first += " …"
	}
	return first
}

func describeLines(lines []string) string {
	if len(lines) == 1 {
		return "1 command"
	}
	return fmt.Sprintf("%d commands", len(lines))
}

func writeTemp(content string) (string, error) {
	f, err := os.CreateTemp("", "bake-*.sh")
	if err != nil {
		return "", fmt.Errorf("failed to create a local temporary script: %w", err)
	}
	_, werr := f.WriteString(content)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("failed to write local temporary script %q: %w", f.Name(), err)
	}
	return f.Name(), nil
}

func randomHex() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

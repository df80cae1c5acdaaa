package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bakeimg/bake/communicator"
	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/recipes"
)

// upload is one recorded Upload call, with the local file's content read
// at the time of the call.
type upload struct {
	local, remote string
	content       string
	mode          os.FileMode
}

// runCall is one recorded Run call.
type runCall struct {
	cmd string
	env map[string]string
}

// fakeRunner records calls and plays back scripted output and results.
type fakeRunner struct {
	stdout    []string
	stderr    []string
	code      int
	runErr    error
	uploadErr error

	uploads []upload
	runs    []runCall
}

func (f *fakeRunner) Upload(_ context.Context, local, remote string) error {
	if f.uploadErr != nil {
		return f.uploadErr
	}
	u := upload{local: local, remote: remote}
	if info, err := os.Stat(local); err == nil && info.Mode().IsRegular() {
		data, _ := os.ReadFile(local)
		u.content, u.mode = string(data), info.Mode().Perm()
	}
	f.uploads = append(f.uploads, u)
	return nil
}

func (f *fakeRunner) Run(_ context.Context, cmd string, env map[string]string, stdout, stderr func(string)) (int, error) {
	f.runs = append(f.runs, runCall{cmd: cmd, env: env})
	for _, l := range f.stdout {
		stdout(l)
	}
	for _, l := range f.stderr {
		stderr(l)
	}
	return f.code, f.runErr
}

type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) Emit(ev event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) outputs() []string {
	var out []string
	for _, ev := range r.events {
		if ev.Kind == event.Output {
			prefix := "out: "
			if ev.Stderr {
				prefix = "err: "
			}
			out = append(out, prefix+ev.Message)
		}
	}
	return out
}

var remoteScript = regexp.MustCompile(`^/tmp/bake-[0-9a-f]{8}\.sh$`)

func TestRunShell(t *testing.T) {
	runner := &fakeRunner{stdout: []string{"Reading package lists..."}, stderr: []string{"warning: x"}}
	rec := &recorder{}
	p := recipes.Provisioner{Shell: []string{"{{ .Raw }}"}, Environment: map[string]string{"RAW": "{{ x }}"}}
	err := Run(context.Background(), runner, p, Options{
		Index:       1,
		Shell:       []string{"apt-get update", "apt-get -y install qemu-guest-agent"},
		Environment: map[string]string{"DEBIAN_FRONTEND": "noninteractive"},
		Emitter:     event.NewEmitter("b", rec),
	})
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}

	if len(runner.uploads) != 0 {
		t.Errorf("uploads = %d, want 0: a short script travels in the command", len(runner.uploads))
	}
	wantScript := "#!/bin/sh\n" +
		`trap 'bake_status=$?; [ "$bake_status" -eq 0 ] || echo "__bake_failed_line=$bake_line" >&2' EXIT` + "\n" +
		"bake_line=0\napt-get update\nbake_line=1\napt-get -y install qemu-guest-agent\n"
	if len(runner.runs) != 1 {
		t.Fatalf("runs = %d, want 1", len(runner.runs))
	}
	if want := "sh -e -c " + communicator.Quote(wantScript); runner.runs[0].cmd != want {
		t.Errorf("command = %q, want %q", runner.runs[0].cmd, want)
	}
	if got := runner.runs[0].env["DEBIAN_FRONTEND"]; got != "noninteractive" {
		t.Errorf("env DEBIAN_FRONTEND = %q, want the rendered value", got)
	}
	if _, ok := runner.runs[0].env["RAW"]; ok {
		t.Error("the unrendered environment was used")
	}

	wantOut := []string{"out: Reading package lists...", "err: warning: x"}
	if got := rec.outputs(); !slices.Equal(got, wantOut) {
		t.Errorf("output events = %q, want %q", got, wantOut)
	}
}

// A script too long for the SSH command is uploaded and run from a file
// that is removed afterwards.
func TestRunShellLongScriptUploaded(t *testing.T) {
	runner := &fakeRunner{}
	line := "echo " + strings.Repeat("x", 1000)
	lines := make([]string, 40)
	for i := range lines {
		lines[i] = line
	}

	err := Run(context.Background(), runner, recipes.Provisioner{Shell: lines}, Options{
		Index:   1,
		Shell:   lines,
		Emitter: event.NewEmitter("b", &recorder{}),
	})
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}

	if len(runner.uploads) != 1 {
		t.Fatalf("uploads = %d, want 1 for a %d-byte script", len(runner.uploads), len(joined(lines)))
	}
	up := runner.uploads[0]
	if !remoteScript.MatchString(up.remote) {
		t.Errorf("remote script path = %q, want /tmp/bake-XXXXXXXX.sh", up.remote)
	}
	if up.content != joined(lines) {
		t.Errorf("uploaded script differs from the joined lines")
	}
	if up.mode != 0o600 {
		t.Errorf("local script mode = %v, want 0600", up.mode)
	}
	if _, err := os.Stat(up.local); !os.IsNotExist(err) {
		t.Errorf("local script %q still exists after Run", up.local)
	}

	q := communicator.Quote(up.remote)
	wantCmd := "sh -e " + q + "; status=$?; rm -f " + q + "; exit $status"
	if len(runner.runs) != 1 || runner.runs[0].cmd != wantCmd {
		t.Errorf("runs = %+v, want one run of %q", runner.runs, wantCmd)
	}
}

func TestRunShellFailure(t *testing.T) {
	long := strings.Repeat("x", 70)
	tests := []struct {
		name    string
		p       recipes.Provisioner
		shell   []string
		runner  *fakeRunner
		wantErr string
		wantIs  error
	}{
		{
			name:    "exit status names first line",
			shell:   []string{"false", "echo never"},
			runner:  &fakeRunner{code: 3},
			wantErr: `provisioner 2 (shell): command "false …" exited with status 3`,
		},
		{
			name:    "single line not marked",
			shell:   []string{"exit 7"},
			runner:  &fakeRunner{code: 7},
			wantErr: `provisioner 2 (shell): command "exit 7" exited with status 7`,
		},
		{
			name:    "long line truncated",
			shell:   []string{long},
			runner:  &fakeRunner{code: 1},
			wantErr: `provisioner 2 (shell): command "` + long[:60] + ` …" exited with status 1`,
		},
		{
			name:    "multi-line entry",
			shell:   []string{"cat <<EOF > /etc/x\nbody\nEOF"},
			runner:  &fakeRunner{code: 1},
			wantErr: `provisioner 2 (shell): command "cat <<EOF > /etc/x …" exited with status 1`,
		},
		{
			name:    "named provisioner",
			p:       recipes.Provisioner{Name: "agent"},
			shell:   []string{"false"},
			runner:  &fakeRunner{code: 1},
			wantErr: `provisioner 2 "agent" (shell): command "false" exited with status 1`,
		},
		{
			name:    "disconnect not expected",
			shell:   []string{"reboot"},
			runner:  &fakeRunner{code: -1, runErr: fmt.Errorf("%w: EOF", communicator.ErrDisconnected)},
			wantErr: `provisioner 2 (shell): command "reboot" failed: ssh: connection dropped`,
			wantIs:  communicator.ErrDisconnected,
		},
		{
			name:    "upload fails",
			shell:   []string{"true", strings.Repeat("#", maxInlineCommand)},
			runner:  &fakeRunner{uploadErr: errors.New("no space left on device")},
			wantErr: `provisioner 2 (shell): failed to upload the script: no space left on device`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			p.Shell = tt.shell
			err := Run(context.Background(), tt.runner, p, Options{Index: 2})
			if err == nil {
				t.Fatal("Run() succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want prefix %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error does not wrap %v", tt.wantIs)
			}
		})
	}
}

func TestRunExpectDisconnect(t *testing.T) {
	tests := []struct {
		name        string
		p           recipes.Provisioner
		code        int
		runErr      error
		wantErr     bool
		wantMessage string
	}{
		{name: "shell disconnect", p: recipes.Provisioner{Shell: []string{"reboot"}, ExpectDisconnect: true}, code: -1, runErr: communicator.ErrDisconnected, wantMessage: "connection dropped as expected"},
		{name: "script disconnect", p: recipes.Provisioner{Script: "reboot.sh", ExpectDisconnect: true}, code: -1, runErr: communicator.ErrDisconnected, wantMessage: "connection dropped as expected"},
		{name: "other error still fails", p: recipes.Provisioner{Shell: []string{"reboot"}, ExpectDisconnect: true}, runErr: context.Canceled, wantErr: true},
		{name: "killed by SIGTERM", p: recipes.Provisioner{Shell: []string{"reboot"}, ExpectDisconnect: true}, code: 143, wantMessage: "ended with status 143"},
		{name: "killed by SIGHUP", p: recipes.Provisioner{Shell: []string{"reboot"}, ExpectDisconnect: true}, code: 129, wantMessage: "ended with status 129"},
		{name: "other status still fails", p: recipes.Provisioner{Shell: []string{"reboot"}, ExpectDisconnect: true}, code: 1, wantErr: true},
		{name: "SIGTERM without expect_disconnect", p: recipes.Provisioner{Shell: []string{"reboot"}}, code: 143, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "reboot.sh"), []byte("#!/bin/sh\nreboot\n"), 0o755)
			rec := &recorder{}
			err := Run(context.Background(), &fakeRunner{code: tt.code, runErr: tt.runErr}, tt.p,
				Options{Index: 1, Dir: dir, Emitter: event.NewEmitter("b", rec)})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Run() error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			last := rec.events[len(rec.events)-1]
			if !strings.Contains(last.Message, tt.wantMessage) {
				t.Errorf("last event = %q, want it to contain %q", last.Message, tt.wantMessage)
			}
		})
	}
}

func TestRunScript(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scripts", "setup.sh"), []byte("#!/bin/bash\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		code    int
		wantErr string
	}{
		{name: "success", code: 0},
		{name: "failure", code: 5, wantErr: `provisioner 3 (script): script "scripts/setup.sh" exited with status 5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runner := &fakeRunner{code: tt.code}
			p := recipes.Provisioner{Script: "scripts/setup.sh", Environment: map[string]string{"A": "1"}}
			err := Run(context.Background(), runner, p, Options{Index: 3, Dir: dir, TempDir: "/var/tmp"})
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Run() = %v", err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Run() error = %v, want %q", err, tt.wantErr)
			}

			if len(runner.uploads) != 1 {
				t.Fatalf("uploads = %d, want 1", len(runner.uploads))
			}
			up := runner.uploads[0]
			if up.local != filepath.Join(dir, "scripts", "setup.sh") {
				t.Errorf("uploaded %q, want the script resolved against the recipe directory", up.local)
			}
			if !regexp.MustCompile(`^/var/tmp/bake-[0-9a-f]{8}-setup\.sh$`).MatchString(up.remote) {
				t.Errorf("remote path = %q, want /var/tmp/bake-XXXXXXXX-setup.sh", up.remote)
			}
			q := communicator.Quote(up.remote)
			wantCmd := "chmod +x " + q + " && " + q + "; status=$?; rm -f " + q + "; exit $status"
			if runner.runs[0].cmd != wantCmd {
				t.Errorf("command = %q, want %q", runner.runs[0].cmd, wantCmd)
			}
			if runner.runs[0].env["A"] != "1" {
				t.Errorf("env = %v, want the provisioner's environment", runner.runs[0].env)
			}
		})
	}
}

func TestRunFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		p          recipes.Provisioner
		uploadErr  error
		wantLocal  string
		wantRemote string
		wantErr    string
	}{
		{
			name:       "relative source",
			p:          recipes.Provisioner{Source: "files/motd", Destination: "/etc/motd"},
			wantLocal:  filepath.Join(dir, "files/motd"),
			wantRemote: "/etc/motd",
		},
		{
			name:       "absolute source",
			p:          recipes.Provisioner{Source: "/srv/conf", Destination: "/etc/app/"},
			wantLocal:  "/srv/conf",
			wantRemote: "/etc/app/",
		},
		{
			name:    "missing destination",
			p:       recipes.Provisioner{Source: "files/motd"},
			wantErr: `provisioner 4 (file): missing destination for source "files/motd": set destination`,
		},
		{
			name:      "upload fails",
			p:         recipes.Provisioner{Source: "files/motd", Destination: "/etc/motd"},
			uploadErr: errors.New("permission denied"),
			wantErr:   `provisioner 4 (file): failed to upload "files/motd" to "/etc/motd": permission denied`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runner := &fakeRunner{uploadErr: tt.uploadErr}
			err := Run(context.Background(), runner, tt.p, Options{Index: 4, Dir: dir})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Run() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run() = %v", err)
			}
			if len(runner.runs) != 0 {
				t.Errorf("file provisioner ran %d commands, want none", len(runner.runs))
			}
			if len(runner.uploads) != 1 {
				t.Fatalf("uploads = %d, want 1", len(runner.uploads))
			}
			if got := runner.uploads[0]; got.local != tt.wantLocal || got.remote != tt.wantRemote {
				t.Errorf("upload %q to %q, want %q to %q", got.local, got.remote, tt.wantLocal, tt.wantRemote)
			}
		})
	}
}

func TestRunNothingToDo(t *testing.T) {
	err := Run(context.Background(), &fakeRunner{}, recipes.Provisioner{}, Options{Index: 1})
	want := "provisioner 1 (unknown): nothing to do: set shell, local, script or source"
	if err == nil || err.Error() != want {
		t.Errorf("Run() error = %v, want %q", err, want)
	}
}

func TestRunLocal(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	emitter := event.NewEmitter("b", rec)
	p := recipes.Provisioner{Local: []string{"echo out-$GREETING", "echo err >&2", "pwd > where"}}
	err := Run(context.Background(), &fakeRunner{}, p, Options{
		Index: 1, Dir: dir, Emitter: emitter, Environment: map[string]string{"GREETING": "hi"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "where"))
	if strings.TrimSpace(string(got)) != dir {
		t.Errorf("ran in %q, want the recipe directory %q", got, dir)
	}
	lines := rec.outputs()
	slices.Sort(lines)
	want := []string{"err: err", "out: out-hi"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("output events = %q, want %q", lines, want)
	}
}

func TestRunLocalFailure(t *testing.T) {
	p := recipes.Provisioner{Local: []string{"exit 7"}}
	err := Run(context.Background(), &fakeRunner{}, p, Options{Index: 3, Dir: t.TempDir()})
	want := `provisioner 3 (local): host command "exit 7" exited with status 7`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// joined returns the script shellScript makes of lines.
func joined(lines []string) string {
	script, _ := shellScript(lines)
	return script
}

func TestContinues(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{line: "apt-get update", want: false},
		{line: "echo 'a && b' \"c | d\"", want: false},
		{line: "cd /tmp; make && make install", want: false},
		{line: "echo it\\'s", want: false},
		{line: "", want: false},
		{line: "echo joined \\", want: true},
		{line: "make &&", want: true},
		{line: "false ||", want: true},
		{line: "cat file |", want: true},
		{line: "cat <<EOF", want: true},
		{line: "cat <<-'EOF' > /etc/x", want: true},
		{line: "if true; then echo x; fi", want: true},
		{line: "for f in a b; do", want: true},
		{line: "done", want: true},
		{line: "esac", want: true},
		{line: "setup() {", want: true},
		{line: "(cd /tmp", want: true},
		{line: "echo 'open quote", want: true},
		{line: "echo \"open", want: true},
		{line: "echo two\nlines", want: true},
	}
	for _, tt := range tests {
		if got := continues(tt.line); got != tt.want {
			t.Errorf("continues(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

// The environment counts towards the inline command's length, since the
// communicator sends it as exports in front of the command.
func TestInlineLimitCountsEnvironment(t *testing.T) {
	script := []string{"echo " + strings.Repeat("x", maxInlineCommand-500)}
	tests := []struct {
		name        string
		env         map[string]string
		wantUploads int
	}{
		{name: "short environment", env: map[string]string{"A": "1"}, wantUploads: 0},
		{name: "long environment", env: map[string]string{"A": strings.Repeat("v", 600)}, wantUploads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runner := &fakeRunner{}
			err := Run(context.Background(), runner, recipes.Provisioner{Shell: script}, Options{
				Index:       1,
				Shell:       script,
				Environment: tt.env,
				Emitter:     event.NewEmitter("b", &recorder{}),
			})
			if err != nil {
				t.Fatalf("Run() = %v", err)
			}
			if len(runner.uploads) != tt.wantUploads {
				t.Errorf("uploads = %d, want %d", len(runner.uploads), tt.wantUploads)
			}
		})
	}
}

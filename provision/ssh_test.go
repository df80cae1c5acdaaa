package provision

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bakeimg/bake/communicator"
	"github.com/bakeimg/bake/communicator/sshtest"
	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/recipes"
)

// The tests below run provisioners through a real SSH client against an
// in-process server that runs commands on the host, so "the guest" is the
// test's temporary directories.

func connect(t *testing.T, srv *sshtest.Server) *communicator.Client {
	t.Helper()
	key, err := communicator.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	srv.AuthorizedKey = key.Signer.PublicKey()
	srv.Start(t)
	client, err := communicator.Connect(context.Background(), communicator.Config{
		Addr: srv.Addr, User: "root", Signer: key.Signer, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func TestShellOverSSH(t *testing.T) {
	// A long comment line pushes the script over maxInlineCommand, so it is
	// uploaded instead of sent in the command.
	long := "# " + strings.Repeat("x", maxInlineCommand)
	tests := []struct {
		name   string
		noSFTP bool
		pad    []string
	}{
		{name: "inline"},
		{name: "sftp upload", pad: []string{long}},
		{name: "exec upload", noSFTP: true, pad: []string{long}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := connect(t, &sshtest.Server{NoSFTP: tt.noSFTP})
			guestTmp := t.TempDir()
			rec := &recorder{}
			lines := append(append([]string{}, tt.pad...),
				`echo "hello $NAME"`,
				`echo warn >&2`,
				`false`,
				`echo never`,
			)
			p := recipes.Provisioner{Shell: lines}
			err := Run(context.Background(), client, p, Options{
				Index:       1,
				Environment: map[string]string{"NAME": "it's me"},
				TempDir:     guestTmp,
				Emitter:     event.NewEmitter("b", rec),
			})
			want := fmt.Sprintf(`provisioner 1 (shell): command "false" (line %d) exited with status 1`, len(tt.pad)+3)
			if err == nil || err.Error() != want {
				t.Fatalf("Run() error = %v, want %q", err, want)
			}
			// Standard output and standard error travel as separate
			// streams, so only the order within each is defined.
			got := rec.outputs()
			slices.Sort(got)
			wantOut := []string{"err: warn", "out: hello it's me"}
			if !slices.Equal(got, wantOut) {
				t.Errorf("output events = %q, want %q in any order", got, wantOut)
			}
			left, err := os.ReadDir(guestTmp)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Errorf("guest temp dir still contains %d files, want the script removed", len(left))
			}
		})
	}
}

func TestScriptAndFileOverSSH(t *testing.T) {
	recipeDir := t.TempDir()
	guest := t.TempDir()
	script := "#!/bin/sh\nset -e\necho \"$GREETING\" > \"$OUT\"\n"
	if err := os.WriteFile(filepath.Join(recipeDir, "setup.sh"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(recipeDir, "files", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(recipeDir, "files", "etc", "motd"), []byte("welcome\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	client := connect(t, &sshtest.Server{})

	out := filepath.Join(guest, "greeting")
	scriptStep := recipes.Provisioner{Script: "setup.sh", Environment: map[string]string{"GREETING": "hi there", "OUT": out}}
	if err := Run(context.Background(), client, scriptStep, Options{Index: 1, Dir: recipeDir, TempDir: guest}); err != nil {
		t.Fatalf("script provisioner: %v", err)
	}
	if data, err := os.ReadFile(out); err != nil || string(data) != "hi there\n" {
		t.Errorf("script output file = %q, %v, want \"hi there\\n\"", data, err)
	}

	dest := filepath.Join(guest, "root")
	fileStep := recipes.Provisioner{Source: "files", Destination: dest}
	if err := Run(context.Background(), client, fileStep, Options{Index: 2, Dir: recipeDir}); err != nil {
		t.Fatalf("file provisioner: %v", err)
	}
	info, err := os.Stat(filepath.Join(dest, "etc", "motd"))
	if err != nil {
		t.Fatalf("uploaded file missing: %v", err)
	}
	if info.Mode().Perm() != 0o640 {
		t.Errorf("uploaded mode = %v, want 0640", info.Mode().Perm())
	}
}

func TestExpectDisconnectOverSSH(t *testing.T) {
	srv := &sshtest.Server{Handle: func(cmd string, ch ssh.Channel) sshtest.Result {
		return sshtest.Result{Drop: true}
	}}
	client := connect(t, srv)
	p := recipes.Provisioner{Shell: []string{"reboot"}, ExpectDisconnect: true}
	if err := Run(context.Background(), client, p, Options{Index: 1}); err != nil {
		t.Errorf("Run() = %v, want the dropped connection accepted", err)
	}
}

// Shell lines reach the guest's shell byte for byte when the script
// travels inside the command: quotes, backslashes, expansions, a here
// document and non-ASCII text.
func TestShellInlineQuotingOverSSH(t *testing.T) {
	client := connect(t, &sshtest.Server{})
	rec := &recorder{}
	lines := []string{
		`echo 'single '"'"'quoted'"'"' text'`,
		`printf '%s\n' "back\\slash" 'dollar $HOME' "tab	end"`,
		`x=$(echo sub); echo "$x" ` + "`echo tick`",
		"cat <<'EOF'\nhere $NOT_EXPANDED 'q' \"dq\"\nEOF",
		`echo "grüße ✓"`,
		`echo "$GREETING"`,
	}
	err := Run(context.Background(), client, recipes.Provisioner{Shell: lines}, Options{
		Index:       1,
		Environment: map[string]string{"GREETING": `it's "$me"`},
		TempDir:     t.TempDir(),
		Emitter:     event.NewEmitter("b", rec),
	})
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	want := []string{
		"out: single 'quoted' text",
		`out: back\slash`,
		"out: dollar $HOME",
		"out: tab	end",
		"out: sub tick",
		`out: here $NOT_EXPANDED 'q' "dq"`,
		"out: grüße ✓",
		`out: it's "$me"`,
	}
	if got := rec.outputs(); !slices.Equal(got, want) {
		t.Errorf("output =\n%q\nwant\n%q", got, want)
	}
}

// Commands that span several entries run as they would from a script
// file: bake adds no line markers between their lines.
func TestShellMultiLineCommandsOverSSH(t *testing.T) {
	tests := []struct {
		name    string
		lines   []string
		want    []string
		wantErr string
	}{
		{
			name: "continued and compound commands",
			lines: []string{
				`echo joined \`, `word`,
				`cat <<EOF`, `here`, `EOF`,
				`if true; then`, `echo in-if`, `fi`,
				`false &&`, `echo skipped`,
				`case x in`, `x) echo matched ;;`, `esac`,
				`echo end`,
			},
			want: []string{"out: joined word", "out: here", "out: in-if", "out: matched", "out: end"},
		},
		{
			name:    "failure without line markers names the first line",
			lines:   []string{`cat <<EOF`, `doc`, `EOF`, `false`, `echo never`},
			want:    []string{"out: doc"},
			wantErr: `provisioner 1 (shell): command "cat <<EOF …" exited with status 1`,
		},
		{
			name:  "CRLF line ends",
			lines: []string{"echo crlf\r", "printf '%s\\n' first\r\nprintf '%s\\n' second\r\n"},
			want:  []string{"out: crlf", "out: first", "out: second"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := connect(t, &sshtest.Server{})
			rec := &recorder{}
			err := Run(context.Background(), client, recipes.Provisioner{Shell: tt.lines}, Options{
				Index:   1,
				TempDir: t.TempDir(),
				Emitter: event.NewEmitter("b", rec),
			})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Run() = %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("Run() = %v, want %q", err, tt.wantErr)
			}
			if got := rec.outputs(); !slices.Equal(got, tt.want) {
				t.Errorf("output = %q, want %q", got, tt.want)
			}
		})
	}
}

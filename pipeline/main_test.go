package pipeline_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/internal/fakeqemu"
	"github.com/bakeimg/bake/pipeline"
	"github.com/bakeimg/bake/recipes"
)

// The test binary doubles as qemu-system-x86_64: fakeqemu.Install links it
// onto PATH under that name.
func TestMain(m *testing.M) {
	fakeqemu.RunIfInvoked()
	os.Exit(m.Run())
}

// fixture is the on-disk setup of one fake build: a small base image, the
// recipe directory, bake's home and the output directory.
type fixture struct {
	fake    *fakeqemu.Fake
	dir     string // recipe directory
	home    string
	out     string
	outNew  string // the default out, whose parent no test creates
	base    string
	baseSHA string
	dest    string // destination of the file provisioner
}

func newFixture(t *testing.T, mode string) *fixture {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed (Debian package qemu-utils)")
	}
	fx := &fixture{fake: fakeqemu.Install(t, mode), dir: t.TempDir(), home: t.TempDir()}
	fx.out = filepath.Join(t.TempDir(), "images", "fake")
	fx.outNew = fx.out
	fx.base = filepath.Join(fx.dir, "base.qcow2")
	fx.dest = filepath.Join(t.TempDir(), "etc", "motd")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", fx.base, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	b, err := os.ReadFile(fx.base)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	fx.baseSHA = hex.EncodeToString(sum[:])
	if err := os.MkdirAll(filepath.Join(fx.dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fx.dir, "files", "motd"), []byte("baked by a fake\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return fx
}

// recipeTemplate is a base-disk recipe using every step. @NAME@ fields are
// replaced by recipe().
const recipeTemplate = `name = "fake"

[source]
disk_image = "@BASE@"
checksum = "@CHECKSUM@"

[vm]
cpus = 1
memory = "256MiB"
accelerator = "tcg"

[boot]
wait = "10ms"
command = ["<enter>"]

[http.content]
"hello.txt" = "hello from {{ .Name }}"

[cloud_init]
user_data = """
#cloud-config
ssh_authorized_keys:
  - {{ .SSHPublicKey }}
"""

[ssh]
timeout = "@SSH_TIMEOUT@"

@PROVISION@

[shutdown]
timeout = "@SHUTDOWN_TIMEOUT@"

[output]
directory = "@OUT@"
formats = [@FORMATS@]
`

const defaultProvision = `[[provision]]
name = "marker"
shell = ["echo provisioned > marker", "echo line on stdout"]

[[provision]]
source = "files/motd"
destination = "@DEST@"
`

// recipeOptions changes the recipe's defaults; empty fields keep them.
type recipeOptions struct {
	checksum        string // default: sha256 of the base image
	sshTimeout      string // default 20s
	shutdownTimeout string // default 5s
	provision       string // default defaultProvision
	formats         string // default "qcow2", "raw"
}

func (fx *fixture) recipe(t *testing.T, o recipeOptions) *recipes.Recipe {
	t.Helper()
	if o.checksum == "" {
		o.checksum = "sha256:" + fx.baseSHA
	}
	if o.sshTimeout == "" {
		o.sshTimeout = "20s"
	}
	if o.shutdownTimeout == "" {
		o.shutdownTimeout = "5s"
	}
	if o.provision == "" {
		o.provision = defaultProvision
	}
	if o.formats == "" {
		o.formats = `"qcow2", "raw"`
	}
	text := strings.NewReplacer(
		"@PROVISION@", o.provision,
		"@BASE@", fx.base,
		"@CHECKSUM@", o.checksum,
		"@SSH_TIMEOUT@", o.sshTimeout,
		"@SHUTDOWN_TIMEOUT@", o.shutdownTimeout,
		"@OUT@", fx.out,
		"@FORMATS@", o.formats,
	).Replace(recipeTemplate)
	text = strings.ReplaceAll(text, "@DEST@", fx.dest)
	path := filepath.Join(fx.dir, "fake.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := recipes.Load(path, recipes.LoadOptions{})
	if err != nil {
		t.Fatalf("recipe does not load: %v\n%s", err, text)
	}
	return r
}

func (fx *fixture) options() pipeline.Options {
	return pipeline.Options{Home: fx.home, Accelerator: "tcg", Version: "test", PowerdownTimeout: time.Second}
}

// recorder is a sink that keeps every event and calls onEvent, if set,
// inline.
type recorder struct {
	mu      sync.Mutex
	events  []event.Event
	onEvent func(event.Event)
}

func (r *recorder) Emit(e event.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if r.onEvent != nil {
		r.onEvent(e)
	}
}

func (r *recorder) all() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// messages returns the messages of events of kind.
func (r *recorder) messages(kind event.Kind) []string {
	var out []string
	for _, e := range r.all() {
		if e.Kind == kind {
			out = append(out, e.Message)
		}
	}
	return out
}

// stepsStarted returns the names of the steps that started, in order.
func (r *recorder) stepsStarted() []string {
	var out []string
	for _, e := range r.all() {
		if e.Kind == event.StepStarted {
			out = append(out, e.Step)
		}
	}
	return out
}

// run bakes r with fx's options and returns the result and the events.
func (fx *fixture) run(ctx context.Context, r *recipes.Recipe, rec *recorder) pipeline.Result {
	if rec == nil {
		rec = &recorder{}
	}
	return pipeline.New(r, fx.options(), event.NewEmitter(r.Name, rec)).Run(ctx)
}

// assertNoLeftovers checks what every finished build, good or bad, must
// leave behind: no QEMU process, an empty work area and a log directory.
func (fx *fixture) assertNoLeftovers(t *testing.T, res pipeline.Result) {
	t.Helper()
	if pids := fx.fake.WaitGone(3 * time.Second); len(pids) > 0 {
		t.Errorf("fake QEMU processes still running: %v", pids)
	}
	work, err := os.ReadDir(filepath.Join(fx.home, "work"))
	if err != nil && !os.IsNotExist(err) {
		t.Error(err)
	}
	for _, e := range work {
		t.Errorf("work directory left behind: %s", filepath.Join(fx.home, "work", e.Name()))
	}
	if res.LogDir == "" {
		t.Error("result has no log directory")
	} else if _, err := os.Stat(res.LogDir); err != nil {
		t.Errorf("log directory missing: %v", err)
	}
}

// assertNoOutput checks that a failed build left nothing at the output
// path, not even a half-written directory beside it.
func (fx *fixture) assertNoOutput(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(fx.out); !os.IsNotExist(err) {
		t.Errorf("output directory %s exists after a failed build (stat: %v)", fx.out, err)
	}
	// The default output's parent does not exist before the build, which
	// makes it for its lock file and must not leave it behind empty.
	if fx.out != fx.outNew {
		return
	}
	if _, err := os.Stat(filepath.Dir(fx.out)); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(filepath.Dir(fx.out))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("output's parent %s left behind after a failed build, holding %q (stat: %v)", filepath.Dir(fx.out), names, err)
	}
}

package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
	"github.com/bakeimg/bake/qemu"
	"github.com/bakeimg/bake/recipes"
)

// isoRecipeTemplate is an install from an ISO onto a blank disk, whose boot
// command types the URL of a seed file that the HTTP server serves.
// isoRecipe() replaces the @NAME@ fields. Tests run it with the fake's
// echo-keys mode, because an installer's boot prompt mirrored to the serial
// console echoes keys and the typer otherwise waits out its echo timeout.
const isoRecipeTemplate = `name = "fake"
communicator = "@COMMUNICATOR@"

[source]
iso = "@ISO@"
checksum = "none"

[vm]
cpus = 1
memory = "256MiB"
disk_size = "16MiB"
accelerator = "tcg"
firmware = "@FIRMWARE@"

[boot]
wait = "10ms"
key_interval = "1ms"
command = ["install url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg<enter>"]

[http]
request_timeout = "2s"

[http.content]
"/preseed.cfg" = "d-i netcfg/get_hostname string {{ .Name }}"

[ssh]
timeout = "1m"

[shutdown]
timeout = "@SHUTDOWN_TIMEOUT@"

[output]
directory = "@OUT@"
formats = ["qcow2"]
`

// isoOptions changes the ISO recipe's defaults. Empty fields keep them.
type isoOptions struct {
	communicator    string // default "ssh"
	firmware        string // default "bios"
	shutdownTimeout string // default 5s
}

// isoRecipe writes a small file to stand in for the installer ISO, which
// the fake QEMU never reads, and loads an ISO install recipe using it.
func (fx *fixture) isoRecipe(t *testing.T, o isoOptions) *recipes.Recipe {
	t.Helper()
	if o.communicator == "" {
		o.communicator = "ssh"
	}
	if o.firmware == "" {
		o.firmware = "bios"
	}
	if o.shutdownTimeout == "" {
		o.shutdownTimeout = "5s"
	}

	iso := fx.iso()
	if err := os.WriteFile(iso, []byte("not really an ISO 9660 image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		"@COMMUNICATOR@", o.communicator,
		"@ISO@", iso,
		"@FIRMWARE@", o.firmware,
		"@SHUTDOWN_TIMEOUT@", o.shutdownTimeout,
		"@OUT@", fx.out,
	).Replace(isoRecipeTemplate)
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

func (fx *fixture) iso() string { return filepath.Join(fx.dir, "installer.iso") }

// seedPort returns the HTTP server's port from the build's info events.
func seedPort(t *testing.T, rec *recorder) int {
	t.Helper()
	for _, msg := range rec.messages(event.Info) {
		var port int
		if _, err := fmt.Sscanf(msg, "serving seed files on http://10.0.2.2:%d/", &port); err == nil {
			return port
		}
	}
	t.Fatalf("info events %q do not name the seed server's port", rec.messages(event.Info))
	return 0
}

// quotedArgs returns the argv of one start as the fake logs it: each
// argument quoted, separated by spaces.
func quotedArgs(args ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	return strings.Join(quoted, " ")
}

func TestISOSeedNeverRequested(t *testing.T) {
	// ssh-never stands for an installer that never reaches its sshd, so
	// only the HTTP request timeout can end the build early.
	fx := newFixture(t, "ssh-never,echo-keys")
	r := fx.isoRecipe(t, isoOptions{})
	rec := &recorder{}
	start := time.Now()
	res := fx.run(context.Background(), r, rec)
	took := time.Since(start)
	if res.Err == nil {
		t.Fatal("build succeeded although the guest never fetched its seed")
	}
	fx.assertNoLeftovers(t, res)
	fx.assertNoOutput(t)

	if took < 2*time.Second {
		t.Errorf("build failed after %s, before the 2s http.request_timeout", took)
	}
	if took > 10*time.Second {
		t.Errorf("build took %s to fail, want about the 2s http.request_timeout, not the 1m ssh.timeout", took)
	}
	port := seedPort(t, rec)
	want := fmt.Sprintf("ssh: the guest never requested anything from http://10.0.2.2:%d/ within 2s: "+
		"check that the boot command types this URL with the right port, "+
		"that the guest network is up (user-mode networking reaches the host as 10.0.2.2), "+
		"and the serial console log for installer errors; console log: %s", port, filepath.Join(res.LogDir, "console.log"))
	if res.Err.Error() != want {
		t.Errorf("error = %q\nwant    %q", res.Err, want)
	}
	wantTyped := fmt.Sprintf("install url=http://10.0.2.2:%d/preseed.cfg", port)
	if typed := fx.fake.Typed(); !slices.Equal(typed, []string{wantTyped}) {
		t.Errorf("guest received typed lines %q, want %q", typed, wantTyped)
	}
	if n := len(rec.messages(event.HTTPRequest)); n != 0 {
		t.Errorf("%d HTTP request events, want none", n)
	}
}

func TestISOSeedRequested(t *testing.T) {
	// SSH comes up only after the 2s http.request_timeout has passed, so
	// the build gets that far only if the fetch counted.
	fx := newFixture(t, "fetch-seed,echo-keys,slow-boot=3s")
	r := fx.isoRecipe(t, isoOptions{})
	rec := &recorder{}
	res := fx.run(context.Background(), r, rec)
	if res.Err != nil {
		t.Fatalf("build failed: %v", res.Err)
	}
	fx.assertNoLeftovers(t, res)

	port := seedPort(t, rec)
	wantFetch := fmt.Sprintf("http://10.0.2.2:%d/preseed.cfg 200", port)
	if fetched := fx.fake.Fetched(); !slices.Equal(fetched, []string{wantFetch}) {
		t.Errorf("guest fetched %q, want %q", fetched, wantFetch)
	}
	var requests []event.HTTP
	for _, e := range rec.all() {
		if e.Kind == event.HTTPRequest && e.HTTP != nil {
			requests = append(requests, *e.HTTP)
		}
	}
	if len(requests) != 1 {
		t.Fatalf("HTTP request events = %+v, want one", requests)
	}
	if got := requests[0]; got.Method != "GET" || got.Path != "/preseed.cfg" || got.Status != 200 {
		t.Errorf("HTTP request event = %+v, want GET /preseed.cfg with status 200", got)
	}
	if got, want := requests[0].Bytes, int64(len("d-i netcfg/get_hostname string fake")); got != want {
		t.Errorf("HTTP request event bytes = %d, want %d for the rendered seed", got, want)
	}
	if steps := rec.stepsStarted(); !slices.Contains(steps, "export") {
		t.Errorf("steps started = %v, want the build to reach export", steps)
	}
}

func TestISOBootsDiskFirst(t *testing.T) {
	fx := newFixture(t, "fetch-seed,echo-keys")
	r := fx.isoRecipe(t, isoOptions{})
	res := fx.run(context.Background(), r, nil)
	if res.Err != nil {
		t.Fatalf("build failed: %v", res.Err)
	}
	fx.assertNoLeftovers(t, res)

	starts := fx.fake.Starts()
	if len(starts) != 1 {
		t.Fatalf("fake started %d times, want 1", len(starts))
	}
	argv := starts[0]
	// order=cd tries the disk before the CD, so once the installer has
	// written a bootloader, the reboot at its end reaches the new system
	// instead of the installer again.
	if want := quotedArgs("-boot", "order=cd"); !strings.Contains(argv, want) {
		t.Errorf("qemu argv lacks %s: %s", want, argv)
	}
	cd := quotedArgs("-drive", "file="+fx.iso()+",id=cd0,if=ide,media=cdrom,readonly=on,format=raw")
	if !strings.Contains(argv, cd) {
		t.Errorf("qemu argv lacks the ISO as a read-only CD, %s: %s", cd, argv)
	}
	if !strings.Contains(argv, `,id=disk0,format=qcow2,`) {
		t.Errorf("qemu argv lacks the work disk disk0: %s", argv)
	}
	if strings.Contains(argv, "if=pflash") {
		t.Errorf("qemu argv has pflash drives for BIOS firmware: %s", argv)
	}
	if want := quotedArgs("-machine", "pc"); !strings.Contains(argv, want) {
		t.Errorf("qemu argv lacks %s for BIOS firmware: %s", want, argv)
	}
}

// fakeOVMF writes stand-ins for OVMF's code and variable store into a new
// directory and points FindEFI at it.
func fakeOVMF(t *testing.T) (code, vars string) {
	t.Helper()
	dir := t.TempDir()
	code = filepath.Join(dir, "OVMF_CODE_4M.fd")
	vars = filepath.Join(dir, "OVMF_VARS_4M.fd")
	if err := os.WriteFile(code, []byte("fake OVMF code\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, []byte("fake OVMF variable store\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(qemu.EnvOVMFDir, dir)
	return code, vars
}

func TestISOWithEFI(t *testing.T) {
	fx := newFixture(t, "fetch-seed,echo-keys")
	code, vars := fakeOVMF(t)
	r := fx.isoRecipe(t, isoOptions{firmware: "efi"})
	res := fx.run(context.Background(), r, nil)
	if res.Err != nil {
		t.Fatalf("build failed: %v", res.Err)
	}
	fx.assertNoLeftovers(t, res)

	starts := fx.fake.Starts()
	if len(starts) != 1 {
		t.Fatalf("fake started %d times, want 1", len(starts))
	}
	argv := starts[0]
	if want := quotedArgs("-machine", "q35"); !strings.Contains(argv, want) {
		t.Errorf("qemu argv lacks %s: %s", want, argv)
	}
	codeDrive := quotedArgs("-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code)
	if !strings.Contains(argv, codeDrive) {
		t.Errorf("qemu argv lacks the read-only firmware code %s: %s", codeDrive, argv)
	}
	// The variable store is a copy in the build's work directory, whose
	// name is random, so the firmware's template itself is never written.
	varsDrive := regexp.MustCompile(regexp.QuoteMeta(`"-drive" "if=pflash,format=raw,unit=1,file=`+filepath.Join(fx.home, "work", "fake-")) +
		`[^/"]+/efivars\.fd"`)
	if !varsDrive.MatchString(argv) {
		t.Errorf("qemu argv lacks a writable variable store in the work directory, matching %s: %s", varsDrive, argv)
	}
	if strings.Contains(argv, "file="+vars) {
		t.Errorf("qemu argv uses the firmware's variable store template %s itself: %s", vars, argv)
	}

	efivars := filepath.Join(fx.out, "fake.efivars.fd")
	b, err := os.ReadFile(efivars)
	if err != nil {
		t.Fatalf("output lacks the EFI variable store: %v", err)
	}
	if string(b) != "fake OVMF variable store\n" {
		t.Errorf("fake.efivars.fd = %q, want the copy of %s", b, vars)
	}
	sums, err := os.ReadFile(filepath.Join(fx.out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256File(t, efivars) + "  fake.efivars.fd\n"; !strings.Contains(string(sums), want) {
		t.Errorf("SHA256SUMS lacks %q:\n%s", want, sums)
	}
}

func TestISOWithEFIMissingOVMF(t *testing.T) {
	fx := newFixture(t, "fetch-seed,echo-keys")
	empty := t.TempDir()
	t.Setenv(qemu.EnvOVMFDir, empty)
	r := fx.isoRecipe(t, isoOptions{firmware: "efi"})
	rec := &recorder{}
	res := fx.run(context.Background(), r, rec)
	if res.Err == nil {
		t.Fatal("EFI build succeeded without OVMF")
	}
	fx.assertNoLeftovers(t, res)
	fx.assertNoOutput(t)

	want := fmt.Sprintf("vm: EFI firmware (OVMF) not found in BAKE_OVMF_DIR=%q: put OVMF_CODE_4M.fd and OVMF_VARS_4M.fd there, "+
		"or unset BAKE_OVMF_DIR and install the Debian package ovmf (apt-get install ovmf), or set vm.firmware = \"bios\"", empty)
	if res.Err.Error() != want {
		t.Errorf("error = %q\nwant    %q", res.Err, want)
	}
	if !strings.Contains(res.Err.Error(), "Debian package ovmf") {
		t.Errorf("error does not name the Debian package ovmf: %v", res.Err)
	}
	if starts := fx.fake.Starts(); len(starts) != 0 {
		t.Errorf("QEMU started %d times, want none", len(starts))
	}
}

// A build paces its boot command by the guest's echo when the guest echoes,
// and emits an info event when it falls back to the fixed pace.
func TestISOBootTypingFollowsEcho(t *testing.T) {
	tests := []struct {
		name         string
		mode         string
		wantFallback bool
	}{
		{name: "guest echoes", mode: "fetch-seed,echo-keys"},
		{name: "guest silent", mode: "fetch-seed", wantFallback: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, tt.mode)
			r := fx.isoRecipe(t, isoOptions{})
			rec := &recorder{}
			res := fx.run(context.Background(), r, rec)
			if res.Err != nil {
				t.Fatalf("build failed: %v", res.Err)
			}
			var fallback []string
			for _, m := range rec.messages(event.Info) {
				if strings.Contains(m, "did not echo") {
					fallback = append(fallback, m)
				}
			}
			if got := len(fallback) > 0; got != tt.wantFallback {
				t.Errorf("fallback messages %q, want fallback %v", fallback, tt.wantFallback)
			}
		})
	}
}

package fakeqemu

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Fake is a fake QEMU installed on PATH for one test.
type Fake struct {
	// Dir is the state directory, the value of EnvDir.
	Dir string
}

// Install puts a link named Binary to the running test binary first on
// PATH and sets EnvMode to mode and EnvDir to a new directory. The test
// binary's TestMain must call RunIfInvoked. Install uses t.Setenv, so the
// test cannot run in parallel with others. At the end of the test any fake
// still running is killed.
func Install(t testing.TB, mode string) *Fake {
	t.Helper()
	if _, err := ParseMode(mode); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(self, filepath.Join(bin, Binary)); err != nil {
		t.Fatal(err)
	}
	f := &Fake{Dir: t.TempDir()}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv(EnvMode, mode)
	t.Setenv(EnvDir, f.Dir)
	t.Cleanup(func() {
		for _, pid := range f.Running() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return f
}

// SetMode changes the mode of fakes started from now on.
func (f *Fake) SetMode(t testing.TB, mode string) {
	t.Helper()
	if _, err := ParseMode(mode); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvMode, mode)
}

// GuestDir returns the working directory of commands run over SSH.
func (f *Fake) GuestDir() string { return filepath.Join(f.Dir, GuestDir) }

// Starts returns the argv of every fake started so far, one line each.
func (f *Fake) Starts() []string { return f.lines(ArgvLog) }

// QMPCommands returns the QMP commands received so far, each as its name
// followed by a space and its JSON arguments.
func (f *Fake) QMPCommands() []string { return f.lines(QMPLog) }

// QMPCommandNames returns the names of the QMP commands received so far.
func (f *Fake) QMPCommandNames() []string {
	var names []string
	for _, line := range f.QMPCommands() {
		name, _, _ := strings.Cut(line, " ")
		names = append(names, name)
	}
	return names
}

// Commands returns the SSH exec requests received so far.
func (f *Fake) Commands() []string { return f.unquotedLines(ExecLog) }

// Typed returns the lines typed with input-send-event so far, each the
// text before one Enter, decoded with a US keyboard layout.
func (f *Fake) Typed() []string { return f.unquotedLines(TypedLog) }

// Fetched returns the URLs fetched in fetch-seed mode so far, each as
// typed and followed by a space and the HTTP status code.
func (f *Fake) Fetched() []string {
	var out []string
	for _, line := range f.lines(FetchLog) {
		quoted, status, _ := strings.Cut(line, " ")
		if url, err := strconv.Unquote(quoted); err == nil {
			out = append(out, url+" "+status)
		}
	}
	return out
}

func (f *Fake) unquotedLines(name string) []string {
	var out []string
	for _, line := range f.lines(name) {
		if s, err := strconv.Unquote(line); err == nil {
			out = append(out, s)
		}
	}
	return out
}

func (f *Fake) lines(name string) []string {
	b, err := os.ReadFile(filepath.Join(f.Dir, name))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// Running returns the ids of processes, other than the caller and zombies,
// whose environment contains this fake's EnvDir. These are the fakes, the
// commands they run for the guest, and anything else the test started
// after Install, such as a bake binary or qemu-img.
func (f *Fake) Running() []int {
	marker := []byte(EnvDir + "=" + f.Dir + "\x00")
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, marker) {
			continue
		}
		if zombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func zombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and
	// may itself contain spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// WaitGone waits up to timeout for every process Running lists to end and
// returns those still running.
func (f *Fake) WaitGone(timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		pids := f.Running()
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bakeimg/bake/recipes"
)

var update = flag.Bool("update", false, "rewrite the .err files in testdata/bad from the current output of bake validate")

// corpusDir holds broken and hostile recipes, each NAME.toml beside
// NAME.err, the exact standard error of `bake validate NAME.toml`.
const corpusDir = "../../testdata/bad"

// maxValidateTime fails a corpus case whose process uses this much CPU
// time, because no recipe should take seconds to validate and a slow case
// is likely a hang. CPU time rather than elapsed time is compared, since
// parallel tests on a shared machine can stall a process for seconds.
const maxValidateTime = 5 * time.Second

// killAfter ends a corpus case that has not exited after this long, which
// catches a hang that waits instead of spinning.
const killAfter = 60 * time.Second

// corpusSource is a source table that needs no local file.
const corpusSource = `[source]
disk_image = "https://example.invalid/base.qcow2"
checksum = "none"
`

// generatedCases are corpus cases too large to check in. Each is written
// to a temporary directory and compared with NAME.err in corpusDir.
var generatedCases = map[string]func() []byte{
	// A 10 MiB boot command makes the file larger than MaxFileSize.
	"huge-boot-command": func() []byte {
		return bootCommandRecipe("huge-boot-command", strings.Repeat("a", 10<<20))
	},
	// A 7 MiB boot command fits, so the TOML decoder, the template check
	// and the boot command parser all run on it before the bad key at
	// the end.
	"long-boot-command": func() []byte {
		return bootCommandRecipe("long-boot-command", strings.Repeat("a", 7<<20)+"<entr>")
	},
	// One key more than MaxKeys.
	"too-many-keys": func() []byte {
		var b bytes.Buffer
		b.WriteString("name = \"too-many-keys\"\n\n" + corpusSource + "\n[http.content]\n")
		for i := range recipes.MaxKeys {
			fmt.Fprintf(&b, "f%d = \"x\"\n", i)
		}
		return b.Bytes()
	},
	// Arrays nested a million levels deep.
	"deep-nesting": func() []byte {
		const depth = 1_000_000
		return []byte("name = \"deep-nesting\"\nx = " + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "\n")
	},
}

func bootCommandRecipe(name, command string) []byte {
	return []byte(fmt.Sprintf("name = %q\n\n%s\n[boot]\ncommand = [\"%s\"]\n", name, corpusSource, command))
}

// corpusCase is one recipe to validate: the directory to run in and the
// file name, which is also how the file appears in messages.
type corpusCase struct {
	name string
	dir  string
	file string
}

func corpusCases(t *testing.T) []corpusCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []corpusCase
	for _, p := range paths {
		file := filepath.Base(p)
		cases = append(cases, corpusCase{name: strings.TrimSuffix(file, ".toml"), dir: corpusDir, file: file})
	}
	for name, generate := range generatedCases {
		dir := t.TempDir()
		file := name + ".toml"
		if err := os.WriteFile(filepath.Join(dir, file), generate(), 0o644); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, corpusCase{name: name, dir: dir, file: file})
	}
	return cases
}

func TestBadInputCorpus(t *testing.T) {
	bake, err := exec.LookPath("bake")
	if err != nil {
		t.Fatalf("bake is not on PATH, although TestMain installs it: %v", err)
	}
	cases := corpusCases(t)
	if len(cases) < 20 {
		t.Fatalf("found %d corpus cases in %s, want at least 20", len(cases), corpusDir)
	}

	var elapsed, cpu time.Duration
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, c := validateCorpusCase(t, bake, c)
			elapsed += e
			cpu += c
		})
	}
	t.Logf("validated %d corpus cases in %v (%v CPU time)", len(cases), elapsed, cpu)
}

// validateCorpusCase runs bake validate on one case, checks its exit
// status and output, and returns the elapsed and the CPU time it took.
func validateCorpusCase(t *testing.T, bake string, c corpusCase) (time.Duration, time.Duration) {
	cmd := exec.Command(bake, "validate", c.file)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "BAKE_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(killAfter, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	killed := !timer.Stop()
	elapsed := time.Since(start)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()

	if killed {
		t.Fatalf("bake validate %s was killed after %v: it hangs", c.file, killAfter)
	}
	if cpu > maxValidateTime {
		t.Errorf("bake validate %s used %v of CPU time, more than %v: it probably hangs", c.file, cpu, maxValidateTime)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("bake validate %s: %v, want exit status 2\nstderr:\n%s", c.file, err, stderr.String())
	}
	if code := exitErr.ExitCode(); code != exitUsage {
		t.Errorf("bake validate %s exited with status %d, want %d", c.file, code, exitUsage)
	}
	if strings.Contains(stderr.String(), "panic:") || strings.Contains(stderr.String(), "goroutine ") {
		t.Errorf("bake validate %s panicked:\n%s", c.file, stderr.String())
	}
	if stdout.Len() > 0 {
		t.Errorf("bake validate %s wrote to standard output, want nothing:\n%s", c.file, stdout.String())
	}
	compareGolden(t, filepath.Join(corpusDir, c.name+".err"), stderr.Bytes())
	return elapsed, cpu
}

// compareGolden compares got with the file at path, or writes got there
// when -update is set.
func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing expected output: %v (run go test ./cmd/bake -run TestBadInputCorpus -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("stderr differs from %s (run with -update to accept it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestBadInputCorpusComplete checks that every .err file belongs to a case,
// so a renamed or deleted recipe does not leave a stale expectation.
func TestBadInputCorpusComplete(t *testing.T) {
	errFiles, err := filepath.Glob(filepath.Join(corpusDir, "*.err"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range errFiles {
		name := strings.TrimSuffix(filepath.Base(p), ".err")
		_, generated := generatedCases[name]
		_, statErr := os.Stat(filepath.Join(corpusDir, name+".toml"))
		if !generated && statErr != nil {
			t.Errorf("%s has no %s.toml and no generated case", p, name)
		}
	}
}

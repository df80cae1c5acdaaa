package main

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/bakeimg/bake/internal/fakeqemu"
)

// The test binary is also the bake command and the fake QEMU of the
// scripts in testdata: testscript runs it under those names.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"bake":          func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
		fakeqemu.Binary: fakeqemu.Main,
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("BAKE_HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv(fakeqemu.EnvDir, filepath.Join(env.WorkDir, "fake"))
			env.Setenv(fakeqemu.EnvMode, "normal")
			env.Setenv("CI", "")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "qemu-img" {
				_, err := exec.LookPath("qemu-img")
				return err == nil, nil
			}
			return false, errors.New("unknown condition " + cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":  cmdExitCode,
			"jsonlines": cmdJSONLines,
			"xmlvalid":  cmdXMLValid,
		},
	})
}

// cmdExitCode runs a program like exec and checks its exit status:
// exitcode 2 bake validate bad.toml
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("invalid exit code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			ts.Fatalf("%s did not run: %v", args[1], err)
		}
		got = exitErr.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// cmdJSONLines checks that every line of a file is a JSON event and that
// the named event kinds occur: jsonlines events.jsonl build.started ...
func cmdJSONLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: jsonlines FILE [KIND...]")
	}
	seen := map[string]bool{}
	scanner := bufio.NewScanner(strings.NewReader(ts.ReadFile(args[0])))
	scanner.Buffer(nil, 1<<20)
	for n := 1; scanner.Scan(); n++ {
		var ev struct {
			Kind  string `json:"kind"`
			Build string `json:"build"`
		}
		if err := json.Unmarshal(scanner.Bytes(), &ev); err != nil {
			ts.Fatalf("%s:%d: not a JSON object: %v: %s", args[0], n, err, scanner.Text())
		}
		if ev.Kind == "" || ev.Build == "" {
			ts.Fatalf("%s:%d: event without kind or build: %s", args[0], n, scanner.Text())
		}
		seen[ev.Kind] = true
	}
	for _, kind := range args[1:] {
		if !seen[kind] {
			ts.Fatalf("%s has no %s event", args[0], kind)
		}
	}
}

// cmdXMLValid checks that a file is well-formed JUnit XML with the given
// numbers of tests and failures: xmlvalid report.xml 1 0
func cmdXMLValid(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: xmlvalid FILE TESTS FAILURES")
	}
	var suites struct {
		XMLName xml.Name
		Suites  []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
		} `xml:"testsuite"`
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal([]byte(ts.ReadFile(args[0])), &suites); err != nil {
		ts.Fatalf("%s is not valid XML: %v", args[0], err)
	}
	tests, failures := suites.Tests, suites.Failures
	switch suites.XMLName.Local {
	case "testsuites":
		if len(suites.Suites) == 0 {
			ts.Fatalf("%s has no testsuite element", args[0])
		}
		tests, failures = 0, 0
		for _, s := range suites.Suites {
			tests += s.Tests
			failures += s.Failures
		}
	case "testsuite":
	default:
		ts.Fatalf("%s has root element <%s>, want <testsuites> or <testsuite>", args[0], suites.XMLName.Local)
	}
	if strconv.Itoa(tests) != args[1] || strconv.Itoa(failures) != args[2] {
		ts.Fatalf("%s has %d tests and %d failures, want %s and %s", args[0], tests, failures, args[1], args[2])
	}
}

func TestUsageListsEveryFlag(t *testing.T) {
	globalFlagSet(&options{}).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(usageText, "  -"+f.Name+" ") && !strings.Contains(usageText, "  -"+f.Name+"\n") {
			t.Errorf("usage text does not list -%s", f.Name)
		}
	})
}

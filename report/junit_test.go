package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bakeimg/bake/event"
)

func readJUnit(t *testing.T, path string) xmlTestSuites {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var suites xmlTestSuites
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatalf("report is not valid XML: %v\n%s", err, data)
	}
	return suites
}

func TestJUnitScriptedBuilds(t *testing.T) {
	j := NewJUnit("")
	for _, ev := range script() {
		j.Emit(ev)
	}
	j.Emit(event.Event{Time: at(100), Build: "stuck", Kind: event.BuildStarted})
	j.Emit(event.Event{Time: at(200), Build: "stuck", Kind: event.StepStarted, Step: "boot"})
	j.Emit(event.Event{Time: at(3200), Build: "stuck", Kind: event.Info, Step: "boot", Message: "waiting"})

	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := j.WriteFile(path); err != nil {
		t.Fatalf("WriteFile() = %v", err)
	}
	suites := readJUnit(t, path)
	if len(suites.Suites) != 1 {
		t.Fatalf("got %d test suites, want 1", len(suites.Suites))
	}
	s := suites.Suites[0]
	if s.Name != "bake" || s.Tests != 3 || s.Failures != 1 || s.Errors != 1 {
		t.Errorf("suite = name %q tests %d failures %d errors %d, want bake 3 1 1", s.Name, s.Tests, s.Failures, s.Errors)
	}
	if s.Timestamp != "2026-12-04T16:40:00" {
		t.Errorf("timestamp = %q", s.Timestamp)
	}
	if len(s.Cases) != 3 {
		t.Fatalf("got %d test cases, want 3", len(s.Cases))
	}

	failed := s.Cases[0]
	if failed.Name != "debian-12-cloud" || failed.Time != "19.000" {
		t.Errorf("first case = %q time %s, want debian-12-cloud time 19.000", failed.Name, failed.Time)
	}
	wantProps := []xmlProperty{
		{Name: "fetch", Value: "12.000s passed"},
		{Name: "provision", Value: "1.300s failed: provisioner 1 (shell) failed"},
	}
	if failed.Properties == nil || fmt.Sprint(failed.Properties.Properties) != fmt.Sprint(wantProps) {
		t.Errorf("properties = %+v, want %+v", failed.Properties, wantProps)
	}
	if failed.Failure == nil {
		t.Fatal("failed build has no failure element")
	}
	if failed.Failure.Message != "provisioner 1 (shell) failed" || failed.Failure.Type != "provision" {
		t.Errorf("failure = message %q type %q", failed.Failure.Message, failed.Failure.Type)
	}
	if !strings.Contains(failed.Failure.Body, "error: provisioner 1 (shell): exit status 100") {
		t.Errorf("failure body lacks the error event:\n%s", failed.Failure.Body)
	}
	wantOut := "SeaBIOS (version 1.16)\nBooting from DVD/CD...\n100%\nboot: "
	if failed.SystemOut == nil || failed.SystemOut.Text != wantOut {
		t.Errorf("system-out = %q, want %q", failed.SystemOut, wantOut)
	}

	passed := s.Cases[1]
	if passed.Name != "alpine" || passed.Failure != nil || passed.Error != nil || passed.Time != "18.500" {
		t.Errorf("second case = %+v, want alpine passed in 18.500", passed)
	}

	stuck := s.Cases[2]
	if stuck.Error == nil || stuck.Error.Message != "build did not finish" {
		t.Errorf("unfinished case error = %+v", stuck.Error)
	}
	if stuck.Time != "3.100" {
		t.Errorf("unfinished case time = %s, want 3.100 (first to last event)", stuck.Time)
	}
	if stuck.Properties == nil || stuck.Properties.Properties[0].Value != "unfinished" {
		t.Errorf("unfinished step property = %+v", stuck.Properties)
	}
}

func TestJUnitConsoleTailAndInvalidCharacters(t *testing.T) {
	j := NewJUnit("images")
	j.Emit(event.Event{Time: at(0), Build: "b", Kind: event.BuildStarted})
	for i := range 120 {
		j.Emit(event.Event{Time: at(i), Build: "b", Kind: event.Console, Data: fmt.Appendf(nil, "line %d \x00\x01\x1b[31m\xff\n", i)})
	}
	j.Emit(event.Event{Time: at(200), Build: "b", Kind: event.BuildFinished, Err: "bad \x00\x0b byte \uffff", Duration: 200e6})

	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := j.WriteFile(path); err != nil {
		t.Fatalf("WriteFile() = %v", err)
	}
	s := readJUnit(t, path).Suites[0]
	tc := s.Cases[0]
	if tc.SystemOut == nil {
		t.Fatal("no system-out element")
	}
	lines := strings.Split(tc.SystemOut.Text, "\n")
	if len(lines) != consoleTailLines {
		t.Fatalf("system-out has %d lines, want %d", len(lines), consoleTailLines)
	}
	if lines[0] != "line 70 \uFFFD" || lines[len(lines)-1] != "line 119 \uFFFD" {
		t.Errorf("tail runs from %q to %q, want line 70 to line 119", lines[0], lines[len(lines)-1])
	}
	if tc.Failure == nil || tc.Failure.Message != "bad  byte " {
		t.Errorf("failure = %+v, want control characters stripped", tc.Failure)
	}
}

func TestJUnitWriteFileMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "junit.xml")
	err := NewJUnit("").WriteFile(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFile() error = %v, want it to name %q", err, path)
	}
}

func TestJUnitConcurrentEmit(t *testing.T) {
	j := NewJUnit("")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			name := fmt.Sprintf("build-%d", i)
			j.Emit(event.Event{Time: at(0), Build: name, Kind: event.BuildStarted})
			for n := range 100 {
				j.Emit(event.Event{Time: at(n), Build: name, Kind: event.StepStarted, Step: "s"})
				j.Emit(event.Event{Time: at(n), Build: name, Kind: event.Console, Data: []byte("x\n")})
				j.Emit(event.Event{Time: at(n), Build: name, Kind: event.StepFinished, Step: "s"})
			}
			j.Emit(event.Event{Time: at(100), Build: name, Kind: event.BuildFinished})
		})
	}
	var buf bytes.Buffer
	wg.Go(func() {
		if err := j.Write(&buf); err != nil {
			t.Errorf("Write() = %v", err)
		}
	})
	wg.Wait()

	buf.Reset()
	if err := j.Write(&buf); err != nil {
		t.Fatal(err)
	}
	var suites xmlTestSuites
	if err := xml.Unmarshal(buf.Bytes(), &suites); err != nil {
		t.Fatal(err)
	}
	if got := suites.Suites[0].Tests; got != 4 {
		t.Errorf("tests = %d, want 4", got)
	}
	for _, tc := range suites.Suites[0].Cases {
		if n := len(tc.Properties.Properties); n != 100 {
			t.Errorf("%s has %d step properties, want 100", tc.Name, n)
		}
	}
}

func TestJUnitCDATATerminatorInConsole(t *testing.T) {
	j := NewJUnit("")
	j.Emit(event.Event{Time: at(0), Build: "b", Kind: event.Console, Data: []byte("a ]]> <b>&amp;\n")})
	j.Emit(event.Event{Time: at(1), Build: "b", Kind: event.BuildFinished, Err: "x ]]> y"})
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := j.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	tc := readJUnit(t, path).Suites[0].Cases[0]
	if tc.SystemOut == nil || tc.SystemOut.Text != "a ]]> <b>&amp;" {
		t.Errorf("system-out = %+v, want the line unchanged", tc.SystemOut)
	}
	if tc.Failure == nil || !strings.HasPrefix(tc.Failure.Body, "x ]]> y\n") {
		t.Errorf("failure = %+v, want the error unchanged", tc.Failure)
	}
}

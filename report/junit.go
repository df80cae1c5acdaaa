package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bakeimg/bake/event"
)

// consoleTailLines is how many console lines each test case keeps.
const consoleTailLines = 50

// JUnit collects events and writes them as JUnit XML: one test suite, one
// test case per build, each step as a property.
type JUnit struct {
	suite string

	mu     sync.Mutex
	builds []*junitBuild // in order of their first event
	byName map[string]*junitBuild
}

var _ event.Sink = (*JUnit)(nil)

type junitBuild struct {
	name        string
	start       time.Time
	last        time.Time
	finished    bool
	interrupted bool
	duration    time.Duration
	err         string
	failedStep  string
	errors      []string // messages of Error events
	steps       []junitStep
	console     lineSplitter
	tail        []string // at most consoleTailLines
}

type junitStep struct {
	name     string
	start    time.Time
	finished bool
	duration time.Duration
	err      string
}

// NewJUnit returns a collector for a test suite with the given name. An
// empty name becomes "bake".
func NewJUnit(suite string) *JUnit {
	if suite == "" {
		suite = "bake"
	}
	return &JUnit{suite: suite, byName: map[string]*junitBuild{}}
}

// Emit records ev.
func (j *JUnit) Emit(ev event.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()

	b := j.build(ev.Build, ev.Time)
	if ev.Time.After(b.last) {
		b.last = ev.Time
	}
	switch ev.Kind {
	case event.BuildStarted:
		b.start = ev.Time
	case event.BuildFinished:
		b.finished = true
		b.duration = ev.Duration
		b.err = ev.Err
		b.interrupted = ev.Interrupted
		b.addConsole(b.console.flush())
	case event.StepStarted:
		b.steps = append(b.steps, junitStep{name: ev.Step, start: ev.Time})
	case event.StepFinished:
		b.finishStep(ev)
	case event.Error:
		b.errors = append(b.errors, joinNonEmpty(": ", ev.Message, ev.Err))
	case event.Console:
		for _, line := range b.console.write(ev.Data) {
			b.addConsole(line, true)
		}
	}
}

func (j *JUnit) build(name string, at time.Time) *junitBuild {
	b, ok := j.byName[name]
	if !ok {
		b = &junitBuild{name: name, start: at, last: at}
		j.byName[name] = b
		j.builds = append(j.builds, b)
	}
	return b
}

func (b *junitBuild) finishStep(ev event.Event) {
	i := len(b.steps) - 1
	for i >= 0 && (b.steps[i].name != ev.Step || b.steps[i].finished) {
		i--
	}
	if i < 0 { // finished without a recorded start
		b.steps = append(b.steps, junitStep{name: ev.Step})
		i = len(b.steps) - 1
	}
	s := &b.steps[i]
	s.finished = true
	s.duration = ev.Duration
	s.err = ev.Err
	if ev.Err != "" && b.failedStep == "" {
		b.failedStep = ev.Step
	}
}

func (b *junitBuild) addConsole(line string, ok bool) {
	if !ok {
		return
	}
	if len(b.tail) == consoleTailLines {
		copy(b.tail, b.tail[1:])
		b.tail = b.tail[:consoleTailLines-1]
	}
	b.tail = append(b.tail, line)
}

// WriteFile writes the XML report to path, replacing it atomically.
func (j *JUnit) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("failed to create JUnit report %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())

	if err := j.Write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write JUnit report %q: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to set mode of JUnit report %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write JUnit report %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to write JUnit report %q: %w", path, err)
	}
	return nil
}

// Write writes the XML report to w. A build that has not finished is
// reported as an error.
func (j *JUnit) Write(w io.Writer) error {
	j.mu.Lock()
	suite := j.suiteXML()
	j.mu.Unlock()

	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(xmlTestSuites{Suites: []xmlTestSuite{suite}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

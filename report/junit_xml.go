package report

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// The JUnit XML elements, in the form GitLab, Jenkins and most CI tools read.

type xmlTestSuites struct {
	XMLName xml.Name       `xml:"testsuites"`
	Suites  []xmlTestSuite `xml:"testsuite"`
}

type xmlTestSuite struct {
	Name      string        `xml:"name,attr"`
	Tests     int           `xml:"tests,attr"`
	Failures  int           `xml:"failures,attr"`
	Errors    int           `xml:"errors,attr"`
	Skipped   int           `xml:"skipped,attr"`
	Time      string        `xml:"time,attr"`
	Timestamp string        `xml:"timestamp,attr,omitempty"`
	Cases     []xmlTestCase `xml:"testcase"`
}

type xmlTestCase struct {
	Name       string         `xml:"name,attr"`
	ClassName  string         `xml:"classname,attr"`
	Time       string         `xml:"time,attr"`
	Properties *xmlProperties `xml:"properties,omitempty"`
	Failure    *xmlProblem    `xml:"failure,omitempty"`
	Error      *xmlProblem    `xml:"error,omitempty"`
	SystemOut  *xmlText       `xml:"system-out,omitempty"`
}

// xmlText is element text written as CDATA, so line breaks stay readable.
type xmlText struct {
	Text string `xml:",cdata"`
}

type xmlProperties struct {
	Properties []xmlProperty `xml:"property"`
}

type xmlProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xmlProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",cdata"`
}

// suiteXML builds the test suite from the recorded builds. The caller holds
// j.mu.
func (j *JUnit) suiteXML() xmlTestSuite {
	suite := xmlTestSuite{Name: cleanMessage(j.suite)}
	var total time.Duration
	var first time.Time
	for _, b := range j.builds {
		tc := b.testCase(suite.Name)
		switch {
		case tc.Failure != nil:
			suite.Failures++
		case tc.Error != nil:
			suite.Errors++
		}
		suite.Cases = append(suite.Cases, tc)
		total += b.elapsed()
		if first.IsZero() || b.start.Before(first) {
			first = b.start
		}
	}
	suite.Tests = len(suite.Cases)
	suite.Time = seconds(total)
	if !first.IsZero() {
		suite.Timestamp = first.UTC().Format("2006-01-02T15:04:05")
	}
	return suite
}

func (b *junitBuild) elapsed() time.Duration {
	if b.finished && b.duration > 0 {
		return b.duration
	}
	return b.last.Sub(b.start)
}

func (b *junitBuild) testCase(class string) xmlTestCase {
	tc := xmlTestCase{
		Name:      cleanMessage(b.name),
		ClassName: class,
		Time:      seconds(b.elapsed()),
	}
	if len(b.tail) > 0 {
		tc.SystemOut = &xmlText{Text: strings.Join(b.tail, "\n")}
	}
	if len(b.steps) > 0 {
		tc.Properties = &xmlProperties{}
		for _, s := range b.steps {
			tc.Properties.Properties = append(tc.Properties.Properties,
				xmlProperty{Name: cleanMessage(s.name), Value: s.result()})
		}
	}

	switch {
	case !b.finished:
		tc.Error = &xmlProblem{
			Message: "build did not finish",
			Type:    "unfinished",
			Body:    b.problemBody("build did not finish"),
		}
	case b.interrupted:
		tc.Error = &xmlProblem{
			Message: cleanMessage(b.err),
			Type:    "interrupted",
			Body:    b.problemBody(b.err),
		}
	case b.err != "":
		tc.Failure = &xmlProblem{
			Message: cleanMessage(b.err),
			Type:    cleanMessage(b.failedStep),
			Body:    b.problemBody(b.err),
		}
	}
	return tc
}

// result is a step's property value: its duration and outcome.
func (s junitStep) result() string {
	switch {
	case !s.finished:
		return "unfinished"
	case s.err != "":
		return seconds(s.duration) + "s failed: " + cleanMessage(s.err)
	default:
		return seconds(s.duration) + "s passed"
	}
}

// problemBody is the text of a failure or error element: the build error,
// the failed step and the error events before it. The console tail is in
// the test case's system-out.
func (b *junitBuild) problemBody(err string) string {
	var sb strings.Builder
	sb.WriteString(cleanMessage(err))
	sb.WriteString("\n")
	if b.failedStep != "" {
		fmt.Fprintf(&sb, "failed step: %s\n", cleanMessage(b.failedStep))
	}
	for _, e := range b.errors {
		if e != err {
			fmt.Fprintf(&sb, "error: %s\n", cleanMessage(e))
		}
	}
	return sb.String()
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}

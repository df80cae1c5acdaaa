package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bakeimg/bake/event"
)

func TestJSONRoundTrip(t *testing.T) {
	var out bytes.Buffer
	j := NewJSON(&out)
	events := script()
	for _, ev := range events {
		j.Emit(ev)
	}
	if err := j.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(events) {
		t.Fatalf("wrote %d lines, want %d", len(lines), len(events))
	}
	got, err := ReadJSON(&out)
	if err != nil {
		t.Fatalf("ReadJSON() = %v", err)
	}
	if len(got) != len(events) {
		t.Fatalf("read %d events, want %d", len(got), len(events))
	}
	for i := range events {
		if !reflect.DeepEqual(got[i], events[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], events[i])
		}
	}
}

func TestJSONSchema(t *testing.T) {
	tests := []struct {
		name string
		ev   event.Event
		want string
	}{
		{
			name: "step finished",
			ev:   event.Event{Time: t0, Build: "b", Kind: event.StepFinished, Step: "ssh", Duration: 2100 * time.Millisecond},
			want: `{"time":"2026-12-04T16:40:00Z","build":"b","kind":"step.finished","step":"ssh","duration_ns":2100000000}`,
		},
		{
			name: "console as text",
			ev:   event.Event{Time: t0, Build: "b", Kind: event.Console, Data: []byte("a<b>\x1b[0m\r\n")},
			want: `{"time":"2026-12-04T16:40:00Z","build":"b","kind":"console","text":"a<b>\u001b[0m\r\n"}`,
		},
		{
			name: "stderr output",
			ev:   event.Event{Time: t0, Build: "b", Kind: event.Output, Message: "oops", Stderr: true},
			want: `{"time":"2026-12-04T16:40:00Z","build":"b","kind":"output","message":"oops","stderr":true}`,
		},
		{
			name: "http request",
			ev: event.Event{Time: t0, Build: "b", Kind: event.HTTPRequest,
				HTTP: &event.HTTP{Method: "GET", Path: "/ks.cfg", Status: 404, Bytes: 19}},
			want: `{"time":"2026-12-04T16:40:00Z","build":"b","kind":"http.request","http":{"method":"GET","path":"/ks.cfg","status":404,"bytes":19}}`,
		},
		{
			name: "progress",
			ev:   event.Event{Time: t0, Build: "b", Kind: event.Progress, Step: "fetch", Current: 5, Total: 10},
			want: `{"time":"2026-12-04T16:40:00Z","build":"b","kind":"progress","step":"fetch","current":5,"total":10}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			NewJSON(&out).Emit(tt.ev)
			if got := strings.TrimSuffix(out.String(), "\n"); got != tt.want {
				t.Errorf("JSON line\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestJSONInvalidUTF8Console(t *testing.T) {
	var out bytes.Buffer
	NewJSON(&out).Emit(event.Event{Time: t0, Build: "b", Kind: event.Console, Data: []byte("x\xffy")})
	sc := bufio.NewScanner(&out)
	if !sc.Scan() {
		t.Fatal("no line written")
	}
	if !json.Valid(sc.Bytes()) {
		t.Fatalf("line is not valid JSON: %s", sc.Bytes())
	}
	var j JSONEvent
	if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	if j.Text != "x\uFFFDy" {
		t.Errorf("text = %q, want invalid byte replaced by U+FFFD", j.Text)
	}
}

func TestReadJSONInvalidLine(t *testing.T) {
	_, err := ReadJSON(strings.NewReader(`{"kind":"info"}` + "\n{oops\n"))
	if err == nil || !strings.Contains(err.Error(), "invalid JSON event 2") {
		t.Errorf("ReadJSON() error = %v, want it to name event 2", err)
	}
}

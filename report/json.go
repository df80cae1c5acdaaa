package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/bakeimg/bake/event"
)

// JSONEvent is the JSON form of one event: the fields of event.Event with
// their json tags, plus the console bytes as a string in Text.
type JSONEvent struct {
	event.Event
	// Text is the raw console output of a console event. Invalid UTF-8 is
	// replaced by U+FFFD, and escape sequences are kept.
	Text string `json:"text,omitempty"`
}

// ToEvent returns the event.Event that j encodes, with Text moved to Data.
func (j JSONEvent) ToEvent() event.Event {
	ev := j.Event
	if j.Text != "" {
		ev.Data = []byte(j.Text)
	}
	return ev
}

// JSON writes one JSON object per line for every event. The schema is
// documented in docs/events.md.
type JSON struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

var _ event.Sink = (*JSON)(nil)

// NewJSON returns a JSON sink writing to w.
func NewJSON(w io.Writer) *JSON {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSON{enc: enc}
}

// Emit writes ev as one line. After the first write error every later
// event is dropped; Err returns that error.
func (j *JSON) Emit(ev event.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	if err := j.enc.Encode(JSONEvent{Event: ev, Text: string(ev.Data)}); err != nil {
		j.err = fmt.Errorf("failed to write JSON event: %w", err)
	}
}

// Err returns the first error the writer returned, if any.
func (j *JSON) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// ReadJSON decodes a stream written by JSON back into events.
func ReadJSON(r io.Reader) ([]event.Event, error) {
	var events []event.Event
	dec := json.NewDecoder(bufio.NewReader(r))
	for line := 1; dec.More(); line++ {
		var j JSONEvent
		if err := dec.Decode(&j); err != nil {
			return events, fmt.Errorf("invalid JSON event %d: %w", line, err)
		}
		events = append(events, j.ToEvent())
	}
	return events, nil
}

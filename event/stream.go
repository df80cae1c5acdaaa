package event

import (
	"bytes"
	"sync"
)

// StreamRedactor masks secrets in a byte stream that arrives in arbitrary
// chunks, such as a serial console that echoes a typed password one key at
// a time. It holds back a chunk's tail while that tail could be the start of
// a secret, so a secret split across chunks is still masked.
type StreamRedactor struct {
	mu      sync.Mutex
	secrets [][]byte
	pending []byte
	out     func([]byte)
}

// NewStreamRedactor returns a redactor that passes masked output to out.
// Empty secrets are ignored.
func NewStreamRedactor(secrets []string, out func([]byte)) *StreamRedactor {
	r := &StreamRedactor{out: out}
	for _, s := range secrets {
		if s != "" {
			r.secrets = append(r.secrets, []byte(s))
		}
	}
	return r
}

// Write masks p together with any held-back bytes and passes on all but a
// possible secret prefix at the end.
func (r *StreamRedactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.secrets) == 0 {
		r.out(p)
		return len(p), nil
	}
	r.pending = append(r.pending, p...)
	for _, s := range r.secrets {
		r.pending = bytes.ReplaceAll(r.pending, s, []byte(Mask))
	}
	keep := r.secretPrefixLen()
	if ready := len(r.pending) - keep; ready > 0 {
		r.out(append([]byte(nil), r.pending[:ready]...))
		r.pending = append(r.pending[:0], r.pending[ready:]...)
	}
	return len(p), nil
}

// Flush passes on the held-back bytes, which are not a whole secret.
func (r *StreamRedactor) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) > 0 {
		r.out(append([]byte(nil), r.pending...))
		r.pending = r.pending[:0]
	}
}

// Pending reports whether bytes are held back.
func (r *StreamRedactor) Pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) > 0
}

// secretPrefixLen returns the length of the longest suffix of pending that
// is a proper prefix of a secret.
func (r *StreamRedactor) secretPrefixLen() int {
	longest := 0
	for _, s := range r.secrets {
		for n := min(len(s)-1, len(r.pending)); n > longest; n-- {
			if bytes.Equal(r.pending[len(r.pending)-n:], s[:n]) {
				longest = n
				break
			}
		}
	}
	return longest
}

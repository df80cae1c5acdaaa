package tui

// ring is a fixed-capacity ring buffer: pushing to a full ring drops the
// oldest item. Indexes passed to at count from the oldest item kept.
type ring[T any] struct {
	items   []T
	start   int
	n       int
	dropped int64 // items pushed out since creation
}

func newRing[T any](capacity int) ring[T] {
	return ring[T]{items: make([]T, capacity)}
}

func (r *ring[T]) push(v T) {
	if len(r.items) == 0 {
		r.dropped++
		return
	}
	if r.n < len(r.items) {
		r.items[(r.start+r.n)%len(r.items)] = v
		r.n++
		return
	}
	r.items[r.start] = v
	r.start = (r.start + 1) % len(r.items)
	r.dropped++
}

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) at(i int) T {
	return r.items[(r.start+i)%len(r.items)]
}

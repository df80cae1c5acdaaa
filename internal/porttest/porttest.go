// Package porttest occupies loopback ports for tests of port allocation.
package porttest

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// Occupy listens on n consecutive loopback ports and returns the first.
// The listeners close when the test ends.
func Occupy(t testing.TB, n int) int {
	t.Helper()
	for attempt := 0; attempt < 100; attempt++ {
		first := 20000 + rand.IntN(30000)
		var listeners []net.Listener
		for port := first; port < first+n; port++ {
			l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				break
			}
			listeners = append(listeners, l)
		}
		if len(listeners) == n {
			t.Cleanup(func() {
				for _, l := range listeners {
					l.Close()
				}
			})
			return first
		}
		for _, l := range listeners {
			l.Close()
		}
	}
	t.Fatalf("found no %d consecutive free loopback ports", n)
	return 0
}

//go:build race

package boot

// raceEnabled is true when tests run with the race detector, which slows
// the parser about fivefold.
const raceEnabled = true

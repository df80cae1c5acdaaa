//go:build !race

package boot

const raceEnabled = false

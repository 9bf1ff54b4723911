//go:build race

package cluster

// raceEnabled: the test binary runs with the race detector.
const raceEnabled = true

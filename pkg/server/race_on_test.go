//go:build race

package server

// raceEnabled: under the race detector sync.Pool drops items at random, so
// allocation counts of code that uses pools (the JSON codec does) mean
// nothing.
const raceEnabled = true

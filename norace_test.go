//go:build !race

package wtcache

const raceEnabled = false

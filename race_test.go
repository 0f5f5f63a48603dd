//go:build race

package wtcache

// raceEnabled: the race detector slows Go code many times over, so timing
// ratios between wtcache and pgx mean nothing under it; tests that assert
// them run without -race (make test runs them separately).
const raceEnabled = true

package wtcache

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestSoak runs the consistency checker's workload with its faults, at
// full concurrency, cycle after cycle under both failure policies, for
// WTCACHE_SOAK (a Go duration; make soak sets 10m). Every cycle must end
// without a violation; after the last, no goroutine wtcache started may be
// left (goleak), and the heap in use after a GC, sampled after every cycle,
// must stay flat once the first cycle has warmed up (it is reported). Without
// WTCACHE_SOAK it runs a short form: two cycles of short phases.
func TestSoak(t *testing.T) {
	needServices(t)
	long := os.Getenv("WTCACHE_SOAK")
	dur := time.Duration(0)
	if long != "" {
		var err error
		if dur, err = time.ParseDuration(long); err != nil {
			t.Fatalf("WTCACHE_SOAK=%q: %v", long, err)
		}
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	var samples []uint64
	start := time.Now()
	for cycle := 0; cycle < 2 || time.Since(start) < dur; cycle++ {
		failure := []string{"fail", "fallback"}[cycle%2]
		t.Run(fmt.Sprintf("cycle %d %s", cycle, failure), func(t *testing.T) {
			o := chaosOptionsFor(failure)
			if long == "" {
				o.phaseDur = time.Second
				o.faults = []string{"calm", "redis-proxy-flap", "redis-kill", "pg-terminate"}
			}
			r := newChaosRun(t, o)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			r.report(r.run(seed))
		})
		if t.Failed() {
			return
		}
		samples = append(samples, heap())
	}
	const mib = 1 << 20
	warm := samples[0]
	peak := warm
	for _, s := range samples[1:] {
		peak = max(peak, s)
	}
	last := samples[len(samples)-1]
	t.Logf("%d cycles in %v; heap in use after each (MiB): first %.1f, peak after %.1f, last %.1f",
		len(samples), time.Since(start).Round(time.Second), float64(warm)/mib, float64(peak)/mib, float64(last)/mib)
	if last > warm+warm/2+32*mib {
		t.Fatalf("the heap grew from %.1f MiB after the first cycle to %.1f MiB", float64(warm)/mib, float64(last)/mib)
	}
}

package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
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
	// One handle lives through every cycle, with the near cache on, so
	// that what it keeps (plans, sessions, the near cache, counters) is in
	// the heap sampled after each cycle; its own reads must see its own
	// writes.
	resident := startResident(t)
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
			resident.stop()
			return
		}
		samples = append(samples, heap())
	}
	ops, bad := resident.stop()
	t.Logf("the resident handle: %d operations, %d reads that missed its own last write", ops, bad)
	if bad > 0 || ops == 0 {
		t.Fatalf("the resident handle: %d operations, %d stale reads", ops, bad)
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

// resident is a wtcache handle with a steady workload for the whole soak.
type resident struct {
	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
	ops, bad atomic.Int64
	closeAll func()
}

// startResident opens a handle with the near cache on its own table of
// 2,000 accounts and runs one paced worker: lookups by key and of key
// lists, updates, and transactions of three updates, checking every read
// against what it wrote last.
func startResident(t *testing.T) *resident {
	e := needServices(t)
	p, err := sql.Open("pgx", e.dbURL) // closed by stop, before goleak looks
	if err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("wt_soak_%d", time.Now().UnixNano()%1e9)
	mustExec(t, p, "CREATE TABLE "+table+" (id bigint PRIMARY KEY, balance bigint NOT NULL, note text NOT NULL)")
	mustExec(t, p, "INSERT INTO "+table+" SELECT g, 0, repeat('x', 40) FROM generate_series(1, 2000) g")
	prefix := fmt.Sprintf("soak%d", time.Now().UnixNano()%1e9)
	// Not e.open: its cleanup would run after goleak has looked.
	c, err := (&wtDriver{}).openConnector(e.dsn(prefix, "cache_local=on", "cache_local_tables=*"))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(2)
	r := &resident{quit: make(chan struct{}), done: make(chan struct{})}
	r.closeAll = func() {
		_ = db.Close()
		ctx := context.Background()
		if keys, _ := e.rdb.Keys(ctx, "{"+prefix+":*").Result(); len(keys) > 0 {
			e.rdb.Del(ctx, keys...)
		}
		_, _ = p.ExecContext(ctx, "DROP TABLE IF EXISTS "+table)
		_ = p.Close()
	}
	want := make([]int64, 2001)
	go func() {
		defer close(r.done)
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
		read := func(id int) {
			var bal int64
			if err := db.QueryRowContext(ctx, "SELECT balance FROM "+table+" WHERE id = $1", id).Scan(&bal); err != nil || bal != want[id] {
				r.bad.Add(1)
			}
		}
		for {
			select {
			case <-r.quit:
				return
			case <-time.After(time.Millisecond):
			}
			id := 1 + rng.IntN(2000)
			switch rng.IntN(10) {
			case 0, 1, 2, 3, 4:
				read(id)
			case 5:
				ids := []int64{int64(id), int64(1 + rng.IntN(2000)), int64(1 + rng.IntN(2000))}
				rows, err := db.QueryContext(ctx, "SELECT id, balance FROM "+table+" WHERE id = ANY($1)", ids)
				if err != nil {
					r.bad.Add(1)
					break
				}
				for rows.Next() {
					var k, bal int64
					if rows.Scan(&k, &bal) != nil || bal != want[k] {
						r.bad.Add(1)
					}
				}
				rows.Close()
			case 6, 7, 8:
				if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET balance = balance + 1 WHERE id = $1", id); err != nil {
					r.bad.Add(1)
					break
				}
				want[id]++
				read(id)
			case 9:
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					r.bad.Add(1)
					break
				}
				ids := []int{id, 1 + rng.IntN(2000), 1 + rng.IntN(2000)}
				ok := true
				for _, k := range ids {
					if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET balance = balance + 1 WHERE id = $1", k); err != nil {
						ok = false
					}
				}
				if rng.IntN(4) == 0 || !ok {
					_ = tx.Rollback()
				} else if tx.Commit() == nil {
					for _, k := range ids {
						want[k]++
					}
				} else {
					r.bad.Add(1)
				}
				read(id)
			}
			r.ops.Add(1)
		}
	}()
	return r
}

// stop ends the workload and closes everything; it returns the counts.
func (r *resident) stop() (ops, bad int64) {
	r.stopOnce.Do(func() {
		close(r.quit)
		<-r.done
		r.closeAll()
	})
	return r.ops.Load(), r.bad.Load()
}

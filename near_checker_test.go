package wtcache

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wtcache/wtcache/internal/faultproxy"
)

// The near cache's checker: writers and readers in separate operating-system
// processes (this test binary run again in a role). Writers increment rows
// through wtcache and log each new value with the time its statement
// returned; readers read the rows through wtcache with the near cache on
// and log what they saw with the time the read began. A read is a violation
// when it returns a value older than one whose write returned more than
// cache_local_max_stale before the read began.
//
// The same run with the fence removed (the near cache serving whatever the
// heartbeat says) and the tracking connection silently cut in the readers
// must find violations: that is what shows the checker can fail. In both
// runs the readers' tracking connections fall silent after a second while
// reads go on, and speaks again a second later.

const (
	nearCkRows     = 6
	nearCkMaxStale = 25 * time.Millisecond
	nearCkTable    = "wt_near_ck"
)

type nearCkRead struct {
	key, v int64
	at     int64 // unix ns the read began
	near   bool
}

type nearCkWrite struct {
	key, v int64
	ret    int64 // unix ns the write returned
}

// TestNearCheckerProcesses: zero stale reads across processes with the
// fence; violations found without it.
func TestNearCheckerProcesses(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	mustExec(t, p, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s; CREATE TABLE %[1]s (id bigint PRIMARY KEY, v bigint NOT NULL);
		INSERT INTO %[1]s SELECT g, 0 FROM generate_series(1, %[2]d) g`, nearCkTable, nearCkRows))
	t.Cleanup(func() { mustExec(t, p, "DROP TABLE IF EXISTS "+nearCkTable) })

	run := func(t *testing.T, broken bool) (viol []string, nearHits int, delays []time.Duration) {
		prefix := fmt.Sprintf("nearck%d", time.Now().UnixNano())
		t.Cleanup(func() {
			keys, _ := e.rdb.Keys(context.Background(), "{"+prefix+":*").Result()
			if len(keys) > 0 {
				e.rdb.Del(context.Background(), keys...)
			}
		})
		dir := t.TempDir()
		var cmds []*exec.Cmd
		start := func(role string, i int) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestNearCheckerRole$", "-test.count=1")
			cmd.Env = append(os.Environ(),
				"WTCACHE_NEAR_ROLE="+role,
				"WTCACHE_NEAR_OUT="+filepath.Join(dir, fmt.Sprintf("%s%d.log", role, i)),
				"WTCACHE_NEAR_PREFIX="+prefix,
				"WTCACHE_NEAR_BROKEN="+strconv.FormatBool(broken),
				"WTCACHE_NEAR_SEED="+strconv.Itoa(i))
			out, _ := os.Create(filepath.Join(dir, fmt.Sprintf("%s%d.out", role, i)))
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		for i := 0; i < 2; i++ {
			start("reader", i)
		}
		for i := 0; i < 2; i++ {
			start("writer", i)
		}
		for _, c := range cmds {
			if err := c.Wait(); err != nil {
				outs, _ := filepath.Glob(filepath.Join(dir, "*.out"))
				for _, o := range outs {
					b, _ := os.ReadFile(o)
					t.Logf("%s:\n%s", filepath.Base(o), b)
				}
				t.Fatalf("a role process failed: %v", err)
			}
		}
		var reads []nearCkRead
		var writes []nearCkWrite
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, l := range logs {
			f, err := os.Open(l)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fs := strings.Fields(sc.Text())
				n := make([]int64, len(fs)-1)
				for i := range n {
					n[i], _ = strconv.ParseInt(fs[i+1], 10, 64)
				}
				switch fs[0] {
				case "W":
					writes = append(writes, nearCkWrite{key: n[0], v: n[1], ret: n[2]})
				case "R":
					reads = append(reads, nearCkRead{key: n[0], v: n[1], at: n[2], near: n[3] == 1})
					nearHits += int(n[3])
				}
			}
			f.Close()
		}
		if len(writes) < 100 || len(reads) < 1000 {
			t.Fatalf("too little traffic: %d writes, %d reads", len(writes), len(reads))
		}
		viol, delays = nearCkCheck(reads, writes, nearCkMaxStale)
		return viol, nearHits, delays
	}

	t.Run("fenced", func(t *testing.T) {
		viol, hits, delays := run(t, false)
		p50, p99, mx := percentiles(delays)
		t.Logf("near hits %d; after a write returned, another process served the old row for: p50 %v, p99 %v, max %v (%d writes)", hits, p50, p99, mx, len(delays))
		if hits < 100 {
			t.Fatalf("only %d near hits: the near cache was hardly exercised", hits)
		}
		if len(viol) > 0 {
			t.Fatalf("%d reads older than allowed, e.g.:\n%s", len(viol), strings.Join(viol[:min(len(viol), 10)], "\n"))
		}
	})
	t.Run("fence removed", func(t *testing.T) {
		viol, hits, _ := run(t, true)
		t.Logf("near hits %d, violations %d", hits, len(viol))
		if len(viol) == 0 {
			t.Fatal("the checker found nothing without the fence: it cannot fail")
		}
	})
}

// nearCkCheck returns the violations, and for every write how long after
// it returned some read still began that returned an older value.
func nearCkCheck(reads []nearCkRead, writes []nearCkWrite, maxStale time.Duration) (viol []string, delays []time.Duration) {
	byKey := map[int64][]nearCkWrite{}
	for _, w := range writes {
		byKey[w.key] = append(byKey[w.key], w)
	}
	late := map[[2]int64]int64{} // key, value -> latest start of a read that missed it
	for k := range byKey {
		slices.SortFunc(byKey[k], func(a, b nearCkWrite) int { return int(a.v - b.v) })
	}
	for _, r := range reads {
		ws := byKey[r.key]
		// The writes this read missed: values above r.v. The first of them
		// returned earliest (values grow in commit order).
		i, _ := slices.BinarySearchFunc(ws, r.v+1, func(w nearCkWrite, v int64) int { return int(w.v - v) })
		bad := false
		for j := i; j < len(ws) && j < i+64; j++ {
			w := ws[j]
			if w.ret >= r.at {
				break
			}
			if r.at-w.ret > int64(maxStale) && !bad {
				bad = true // one per read
				viol = append(viol, fmt.Sprintf("key %d: read began %v after the write of %d returned and saw %d (near %v)", r.key, time.Duration(r.at-w.ret), w.v, r.v, r.near))
			}
			if kv := [2]int64{w.key, w.v}; r.at > late[kv] {
				late[kv] = r.at
			}
		}
	}
	for _, w := range writes {
		d := time.Duration(0)
		if l, ok := late[[2]int64{w.key, w.v}]; ok {
			d = time.Duration(l - w.ret)
		}
		delays = append(delays, d)
	}
	return viol, delays
}

func percentiles(ds []time.Duration) (p50, p99, mx time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}

// TestNearCheckerRole is one process of TestNearCheckerProcesses; it does
// nothing unless WTCACHE_NEAR_ROLE is set.
func TestNearCheckerRole(t *testing.T) {
	role := os.Getenv("WTCACHE_NEAR_ROLE")
	if role == "" {
		t.Skip("a role of TestNearCheckerProcesses")
	}
	e := needServices(t)
	prefix, broken := os.Getenv("WTCACHE_NEAR_PREFIX"), os.Getenv("WTCACHE_NEAR_BROKEN") == "true"
	seed, _ := strconv.Atoi(os.Getenv("WTCACHE_NEAR_SEED"))
	out, err := os.Create(os.Getenv("WTCACHE_NEAR_OUT"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var mu sync.Mutex
	w := bufio.NewWriter(out)
	logf := func(format string, a ...any) {
		mu.Lock()
		fmt.Fprintf(w, format, a...)
		mu.Unlock()
	}
	const dur = 5 * time.Second
	ctx := context.Background()
	var wg sync.WaitGroup
	switch role {
	case "writer":
		db, _ := e.open(t, prefix)
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				end := time.Now().Add(dur)
				for i := 0; time.Now().Before(end); i++ {
					key := int64(1 + (seed*7+g*3+i)%nearCkRows)
					var v int64
					err := db.QueryRowContext(ctx, "UPDATE "+nearCkTable+" SET v = v + 1 WHERE id = $1 RETURNING v", key).Scan(&v)
					ret := time.Now().UnixNano()
					if err != nil {
						t.Error(err)
						return
					}
					logf("W %d %d %d\n", key, v, ret)
					time.Sleep(2 * time.Millisecond)
				}
			}(g)
		}
	case "reader":
		// The tracking connection goes through a proxy that falls silent
		// after a second (the connection stays open; nothing arrives).
		px, err := faultproxy.Start(e.rdb.Options().Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer px.Close()
		opts := []Option{func(c *config) { c.localAddr = px.Addr() }}
		db, c := e.openWith(t, prefix, opts, "cache_local=on", "cache_local_tables="+nearCkTable,
			"cache_local_max_stale="+nearCkMaxStale.String())
		db.SetMaxOpenConns(4)
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
		waitNearServing(t, c)
		c.near.brokenFence.Store(broken)
		time.AfterFunc(time.Second, px.Hang)
		time.AfterFunc(2*time.Second, px.Up)
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				end := time.Now().Add(dur)
				for i := 0; time.Now().Before(end); i++ {
					key := int64(1 + (g+i)%nearCkRows)
					at := time.Now().UnixNano()
					h := c.near.hits.Load()
					var v int64
					if err := db.QueryRowContext(ctx, "SELECT v FROM "+nearCkTable+" WHERE id = $1", key).Scan(&v); err != nil {
						t.Error(err)
						return
					}
					near := 0
					if c.near.hits.Load() > h {
						near = 1 // this or a concurrent read was a near hit
					}
					logf("R %d %d %d %d\n", key, v, at, near)
				}
			}(g)
		}
	}
	wg.Wait()
	mu.Lock()
	_ = w.Flush()
	mu.Unlock()
}

package proto

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// BenchmarkScripts times a write's two scripts (an intent, then its
// release with an image per row) against a bare GET in the same loop, on
// the Redis named by WTCACHE_TEST_REDIS, for one row and for ten, and
// reports each as a multiple of the GET ("intent/get", "release/get").
func BenchmarkScripts(b *testing.B) {
	rdb := benchRedis(b)
	ctx := context.Background()
	img := make([]byte, 120)
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			tag := fmt.Sprintf("{bench-scripts-%d}", time.Now().UnixNano())
			meta := tag + ":t"
			keys := make([]string, n)
			imgs := make([][]byte, n)
			for i := range keys {
				keys[i], imgs[i] = fmt.Sprintf("%s:r:%d", tag, i), img
			}
			defer func() {
				if ks, _ := rdb.Keys(ctx, tag+"*").Result(); len(ks) > 0 {
					rdb.Del(ctx, ks...)
				}
			}()
			var get, intent, release time.Duration
			for b.Loop() {
				s := time.Now()
				if err := rdb.Get(ctx, tag+":absent").Err(); err != redis.Nil {
					b.Fatal(err)
				}
				get += time.Since(s)
				s = time.Now()
				tok := NewToken()
				gen, err := Intent(ctx, rdb, meta, keys, tok, 30000, false)
				if err != nil {
					b.Fatal(err)
				}
				intent += time.Since(s)
				s = time.Now()
				if _, err := Release(ctx, rdb, meta, keys, tok, gen, 60000, false, false, imgs); err != nil {
					b.Fatal(err)
				}
				release += time.Since(s)
			}
			b.ReportMetric(float64(intent)/float64(get), "intent/get")
			b.ReportMetric(float64(release)/float64(get), "release/get")
		})
	}
}

// BenchmarkFillRedisTime measures what a fill costs Redis itself, per row,
// against a bare GET: the server's own time (INFO commandstats) for fills
// of N fresh rows, then for N bare GETs of absent keys, read around each
// block, so that neither counts the other (nor the Lua calls inside the
// fill). Reports "fill-row/get": a row's share of its fill's script time
// in bare GETs.
func BenchmarkFillRedisTime(b *testing.B) {
	rdb := benchRedis(b)
	ctx := context.Background()
	usec := func(cmd string) float64 {
		s, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		i := strings.Index(s, "cmdstat_"+cmd+":")
		if i < 0 {
			return 0
		}
		var calls, us float64
		if _, err := fmt.Sscanf(s[i+len("cmdstat_"+cmd+":"):], "calls=%g,usec=%g,", &calls, &us); err != nil {
			b.Fatal(err)
		}
		return us
	}
	img := make([]byte, 120)
	// rows=N: one lookup's fill of N rows; jobs=N: N lookups' fills of a
	// row each, queued in one window (FillMany merges them).
	for _, tc := range []struct {
		n      int
		single bool
	}{{1, false}, {10, false}, {100, false}, {10, true}, {100, true}} {
		n := tc.n
		name := fmt.Sprintf("rows=%d", n)
		if tc.single {
			name = fmt.Sprintf("jobs=%d", n)
		}
		b.Run(name, func(b *testing.B) {
			tag := fmt.Sprintf("{bench-fill-%d}", time.Now().UnixNano())
			meta := tag + ":t"
			defer func() {
				if ks, _ := rdb.Keys(ctx, tag+"*").Result(); len(ks) > 0 {
					rdb.Del(ctx, ks...)
				}
			}()
			var fillUs, getUs float64
			round := 0
			for b.Loop() {
				round++
				keys := make([]string, n)
				imgs := make([][]byte, n)
				for i := range keys {
					keys[i], imgs[i] = fmt.Sprintf("%s:r:%d", tag, round*n+i), img
				}
				p, err := Peek(ctx, rdb, meta, keys)
				if err == nil && p.Gen == "" {
					err = InitMeta(ctx, rdb, meta, &p)
				}
				if err != nil {
					b.Fatal(err)
				}
				versions := make([]string, n)
				for i := range versions {
					versions[i] = p.Rows[i].Version
				}
				u0 := usec("evalsha")
				if tc.single {
					jobs := make([]*FillJob, n)
					for i := range jobs {
						jobs[i] = &FillJob{Meta: meta, Keys: keys[i : i+1], Gen: p.Gen, Seq: p.Seq, Versions: versions[i : i+1], TTLMs: 60000, Images: imgs[i : i+1]}
					}
					FillMany(ctx, rdb, jobs)
					stored := 0
					for _, j := range jobs {
						if j.Err != nil {
							b.Fatal(j.Err)
						}
						stored += j.Stored
					}
					if stored != n {
						b.Fatalf("fills: %d stored", stored)
					}
				} else if stored, err := Fill(ctx, rdb, meta, keys, p.Gen, p.Seq, versions, 60000, imgs); err != nil || stored != n {
					b.Fatalf("fill: %d stored, %v", stored, err)
				}
				u1 := usec("evalsha")
				g0 := usec("get")
				for range keys {
					if err := rdb.Get(ctx, tag+":absent").Err(); err != redis.Nil {
						b.Fatal(err)
					}
				}
				g1 := usec("get")
				fillUs += u1 - u0
				getUs += g1 - g0
			}
			b.ReportMetric(fillUs/float64(round*n), "fill-us/row")
			b.ReportMetric(getUs/float64(round*n), "get-us")
			b.ReportMetric(fillUs/getUs, "fill-row/get")
		})
	}
}

// benchRedis is a client of the Redis named by WTCACHE_TEST_REDIS, closed
// with the benchmark; without it the benchmark is skipped.
func benchRedis(b *testing.B) *redis.Client {
	u := os.Getenv("WTCACHE_TEST_REDIS")
	if u == "" {
		b.Skip("set WTCACHE_TEST_REDIS to time the scripts on a real Redis")
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	b.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

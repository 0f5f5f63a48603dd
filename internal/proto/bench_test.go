package proto

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// BenchmarkScripts times a write's two scripts (an intent, then its
// release with an image per row) against a bare GET in the same loop, on
// the Redis named by WTCACHE_TEST_REDIS, for one row and for ten, and
// reports each as a multiple of the GET ("intent/get", "release/get").
func BenchmarkScripts(b *testing.B) {
	u := os.Getenv("WTCACHE_TEST_REDIS")
	if u == "" {
		b.Skip("set WTCACHE_TEST_REDIS to time the scripts on a real Redis")
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
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

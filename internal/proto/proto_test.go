package proto

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// The protocol is tested against miniredis (always) and against the real
// Redis named by WTCACHE_TEST_REDIS (when set): the scripts must behave the
// same on both.
func servers(t *testing.T) map[string]func(t *testing.T) (redis.UniversalClient, func(time.Duration)) {
	return map[string]func(t *testing.T) (redis.UniversalClient, func(time.Duration)){
		"miniredis": func(t *testing.T) (redis.UniversalClient, func(time.Duration)) {
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			return rdb, func(d time.Duration) {
				mr.SetTime(time.Now().Add(d))
				mr.FastForward(d)
			}
		},
		"redis": func(t *testing.T) (redis.UniversalClient, func(time.Duration)) {
			u := os.Getenv("WTCACHE_TEST_REDIS")
			if u == "" {
				if os.Getenv("CI") == "true" {
					t.Fatal("WTCACHE_TEST_REDIS is not set and CI=true")
				}
				t.Skip("set WTCACHE_TEST_REDIS to run against a real Redis")
			}
			opts, err := redis.ParseURL(u)
			if err != nil {
				t.Fatal(err)
			}
			rdb := redis.NewClient(opts)
			t.Cleanup(func() { _ = rdb.Close() })
			return rdb, func(d time.Duration) { time.Sleep(d) }
		},
	}
}

const (
	meta = "{test:proto}:t"
	k1   = "{test:proto}:r:1"
	k2   = "{test:proto}:r:2"
)

func forEach(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient, advance func(time.Duration))) {
	for name, mk := range servers(t) {
		t.Run(name, func(t *testing.T) {
			rdb, adv := mk(t)
			ctx := context.Background()
			rdb.Del(ctx, meta, k1, k2)
			t.Cleanup(func() { rdb.Del(context.Background(), meta, k1, k2) })
			fn(t, rdb, adv)
		})
	}
}

func outcomes(r ReadResult) string {
	s := ""
	for _, x := range r.Rows {
		s += string(x.Outcome)
	}
	return s
}

func mustRead(t *testing.T, rdb redis.UniversalClient, token string, keys ...string) ReadResult {
	t.Helper()
	r, err := Read(context.Background(), rdb, meta, keys, token, 2000)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLeaseFillHit(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		r := mustRead(t, rdb, "A", k1, k2)
		if got := outcomes(r); got != "MM" {
			t.Fatalf("first read: %s, want MM", got)
		}
		// A second reader sees the lease held by A.
		r2 := mustRead(t, rdb, "B", k1)
		if outcomes(r2) != "O" || r2.Rows[0].Owner != "A" {
			t.Fatalf("second read: %+v, want O owned by A", r2.Rows)
		}
		n, err := Fill(ctx, rdb, meta, []string{k1, k2}, "A", r.Gen, 60000, [][]byte{[]byte("img1"), nil})
		if err != nil || n != 1 {
			t.Fatalf("fill: %d %v, want 1 stored", n, err)
		}
		r3 := mustRead(t, rdb, "C", k1)
		if outcomes(r3) != "H" || string(r3.Rows[0].Image) != "img1" {
			t.Fatalf("after fill: %+v, want hit img1", r3.Rows)
		}
		// k2 stored nothing and released the lease: the next reader leases it.
		if got := outcomes(mustRead(t, rdb, "D", k2)); got != "M" {
			t.Fatalf("k2 after empty fill: %s, want M", got)
		}
	})
}

// A slow reader's fill must fail when a write intent arrived after it took
// the lease (the stale-set race that leases exist for).
func TestIntentDefeatsSlowFill(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		r := mustRead(t, rdb, "slow", k1)
		gen, err := Intent(ctx, rdb, meta, []string{k1}, "w1", 30000, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := outcomes(mustRead(t, rdb, "x", k1)); got != "L" {
			t.Fatalf("read during intent: %s, want L", got)
		}
		if _, err := Release(ctx, rdb, meta, []string{k1}, "w1", gen, 60000, false, false, [][]byte{[]byte("new")}); err != nil {
			t.Fatal(err)
		}
		n, err := Fill(ctx, rdb, meta, []string{k1}, "slow", r.Gen, 60000, [][]byte{[]byte("old")})
		if err != nil || n != 0 {
			t.Fatalf("slow fill stored %d (%v), want 0", n, err)
		}
		r2 := mustRead(t, rdb, "y", k1)
		if outcomes(r2) != "H" || string(r2.Rows[0].Image) != "new" {
			t.Fatalf("after release: %+v, want hit on the mirrored image", r2.Rows)
		}
	})
}

// Two writers on one row: neither stores its image; the row stays a miss.
func TestContendedWritersStoreNothing(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		g1, _ := Intent(ctx, rdb, meta, []string{k1}, "w1", 30000, false)
		g2, _ := Intent(ctx, rdb, meta, []string{k1}, "w2", 30000, false)
		if n, _ := Release(ctx, rdb, meta, []string{k1}, "w2", g2, 60000, false, false, [][]byte{[]byte("two")}); n != 0 {
			t.Fatal("w2 stored while w1 was live")
		}
		if n, _ := Release(ctx, rdb, meta, []string{k1}, "w1", g1, 60000, false, false, [][]byte{[]byte("one")}); n != 0 {
			t.Fatal("w1 stored on a contended row")
		}
		if got := outcomes(mustRead(t, rdb, "r", k1)); got != "M" {
			t.Fatalf("after contended writes: %s, want a miss", got)
		}
	})
}

// A table-wide intent sends every reader to the database; its release moves
// the generation, so images stored before are misses.
func TestTableWideIntentAndGeneration(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		r := mustRead(t, rdb, "A", k1)
		if n, _ := Fill(ctx, rdb, meta, []string{k1}, "A", r.Gen, 60000, [][]byte{[]byte("v")}); n != 1 {
			t.Fatal("fill failed")
		}
		gen, err := Intent(ctx, rdb, meta, nil, "tw", 30000, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := outcomes(mustRead(t, rdb, "B", k1)); got != "L" {
			t.Fatalf("during table intent: %s, want L", got)
		}
		if _, err := Release(ctx, rdb, meta, nil, "tw", gen, 0, true, true, nil); err != nil {
			t.Fatal(err)
		}
		r2 := mustRead(t, rdb, "C", k1)
		if outcomes(r2) != "M" || r2.Gen == r.Gen {
			t.Fatalf("after bump: %s gen %q (before %q), want a miss under a new generation", outcomes(r2), r2.Gen, r.Gen)
		}
	})
}

// A writer that dies holding a table intent: once the intent's deadline
// passes, readers move the generation themselves (the write may have
// committed), so nothing stale survives.
func TestDeadTableIntentMovesGeneration(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, advance func(time.Duration)) {
		ctx := context.Background()
		r := mustRead(t, rdb, "A", k1)
		Fill(ctx, rdb, meta, []string{k1}, "A", r.Gen, 60000, [][]byte{[]byte("v")})
		if _, err := Intent(ctx, rdb, meta, nil, "dead", 200, true); err != nil {
			t.Fatal(err)
		}
		advance(400 * time.Millisecond)
		if got := outcomes(mustRead(t, rdb, "B", k1)); got != "M" {
			t.Fatalf("after a dead table intent: %s, want a miss", got)
		}
	})
}

// A dead row intent (writer crashed) stops blocking fills after its
// deadline.
func TestDeadRowIntentExpires(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, advance func(time.Duration)) {
		ctx := context.Background()
		if _, err := Intent(ctx, rdb, meta, []string{k1}, "dead", 200, false); err != nil {
			t.Fatal(err)
		}
		if got := outcomes(mustRead(t, rdb, "A", k1)); got != "L" {
			t.Fatalf("live intent: %s, want L", got)
		}
		advance(400 * time.Millisecond)
		if got := outcomes(mustRead(t, rdb, "B", k1)); got != "M" {
			t.Fatalf("dead intent: %s, want M", got)
		}
	})
}

// A key of the wrong type is deleted and reported, then leased.
func TestWrongTypeIsCorrupt(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		rdb.Set(ctx, k1, "garbage", 0)
		rdb.Set(ctx, meta, "garbage", 0)
		r := mustRead(t, rdb, "A", k1)
		if outcomes(r) != "M" || !r.Rows[0].Corrupt {
			t.Fatalf("wrong type: %+v, want a corrupt miss", r.Rows)
		}
	})
}

func TestDiscardOnlyTheSameImage(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		r := mustRead(t, rdb, "A", k1)
		Fill(ctx, rdb, meta, []string{k1}, "A", r.Gen, 60000, [][]byte{[]byte("bad")})
		if err := Discard(ctx, rdb, k1, []byte("other")); err != nil {
			t.Fatal(err)
		}
		if got := outcomes(mustRead(t, rdb, "B", k1)); got != "H" {
			t.Fatalf("discard of another image removed it: %s", got)
		}
		Discard(ctx, rdb, k1, []byte("bad"))
		if got := outcomes(mustRead(t, rdb, "C", k1)); got != "M" {
			t.Fatalf("discard kept the image: %s", got)
		}
	})
}

func mustPeek(t *testing.T, rdb redis.UniversalClient, keys ...string) []string {
	t.Helper()
	imgs, _, err := Peek(context.Background(), rdb, meta, keys)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(imgs))
	for i, img := range imgs {
		if img == nil {
			out[i] = "-"
		} else {
			out[i] = string(img)
		}
	}
	return out
}

// Peek answers a hit only where Read would: never during a row intent, a
// live table intent (placed after the image was stored), a lease, or for a
// key of another type.
func TestPeekHitsOnlyValidImages(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, advance func(time.Duration)) {
		ctx := context.Background()
		if got := mustPeek(t, rdb, k1); got[0] != "-" {
			t.Fatalf("empty cache: %v", got)
		}
		r := mustRead(t, rdb, "A", k1, k2)
		if got := mustPeek(t, rdb, k1, k2); got[0] != "-" || got[1] != "-" {
			t.Fatalf("during leases: %v, want no hit", got)
		}
		if n, _ := Fill(ctx, rdb, meta, []string{k1, k2}, "A", r.Gen, 60000, [][]byte{[]byte("a1"), []byte("a2")}); n != 2 {
			t.Fatal("fill failed")
		}
		if got := mustPeek(t, rdb, k1, k2); got[0] != "a1" || got[1] != "a2" {
			t.Fatalf("after fill: %v, want a1 a2", got)
		}
		// A row intent hides the row until its release stores the new image.
		gen, err := Intent(ctx, rdb, meta, []string{k1}, "w1", 30000, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustPeek(t, rdb, k1, k2); got[0] != "-" || got[1] != "a2" {
			t.Fatalf("during a row intent: %v, want - a2", got)
		}
		if _, err := Release(ctx, rdb, meta, []string{k1}, "w1", gen, 60000, false, false, [][]byte{[]byte("b1")}); err != nil {
			t.Fatal(err)
		}
		if got := mustPeek(t, rdb, k1); got[0] != "b1" {
			t.Fatalf("after the release: %v, want b1", got)
		}
		// A live table intent hides every image stored before it.
		tgen, err := Intent(ctx, rdb, meta, nil, "tw", 30000, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustPeek(t, rdb, k1, k2); got[0] != "-" || got[1] != "-" {
			t.Fatalf("during a table intent: %v, want no hit", got)
		}
		if _, err := Release(ctx, rdb, meta, nil, "tw", tgen, 0, true, true, nil); err != nil {
			t.Fatal(err)
		}
		if got := mustPeek(t, rdb, k1, k2); got[0] != "-" || got[1] != "-" {
			t.Fatalf("after a table-wide write: %v, want no hit", got)
		}
		// A table intent whose writer died: still no hit after its deadline.
		r = mustRead(t, rdb, "B", k1)
		Fill(ctx, rdb, meta, []string{k1}, "B", r.Gen, 60000, [][]byte{[]byte("c1")})
		if _, err := Intent(ctx, rdb, meta, nil, "dead", 200, true); err != nil {
			t.Fatal(err)
		}
		advance(400 * time.Millisecond)
		if got := mustPeek(t, rdb, k1); got[0] != "-" {
			t.Fatalf("after a dead table intent: %v, want no hit", got)
		}
		// A key of another type is no hit and no error.
		rdb.Del(ctx, k2)
		rdb.Set(ctx, k2, "junk", 0)
		if got := mustPeek(t, rdb, k1, k2); got[1] != "-" {
			t.Fatalf("wrong type: %v, want no hit", got)
		}
	})
}

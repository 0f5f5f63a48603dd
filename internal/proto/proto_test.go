package proto

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
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
			all := []string{meta, StateKey(meta), k1, k2, ImageKey(k1), ImageKey(k2), VersionKey(k1), VersionKey(k2)}
			rdb.Del(ctx, all...)
			t.Cleanup(func() { rdb.Del(context.Background(), all...) })
			fn(t, rdb, adv)
		})
	}
}

// TestAppendSiblingMatchesSibling: the key PeekInto builds in its buffer
// is the one ImageKey and VersionKey give, for any row key (tags, braces,
// separators anywhere).
func TestAppendSiblingMatchesSibling(t *testing.T) {
	alphabet := []string{"{", "}", ":", "r", "v", "x", "\\", "1", ""}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		k := b.String()
		for _, kind := range []byte{'v', 'n'} {
			if got, want := string(appendSibling(nil, k, kind)), sibling(k, string(kind)); got != want {
				t.Fatalf("row key %q, kind %c: %q, want %q", k, kind, got, want)
			}
		}
	}
	// And through the command: a two-key Peek sends exactly those keys.
	a := keyArg("abc")
	if s := fmt.Sprint(&a); s != "abc" {
		t.Fatalf("a key argument reads as %q", s)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	// Internal to wtcache, but importable here because this module's path
	// lies under github.com/wtcache/wtcache. Programs outside the repository
	// cannot import it; the test uses it to check that wtcache reads back
	// exactly the Redis URL that withCacheRedis wrote.
	"github.com/wtcache/wtcache/internal/dsn"
)

func TestWithCacheRedis(t *testing.T) {
	const redisURL = `redis://user:p@ss&w=rd 'q'\x#1@127.0.0.1:6379/0?dial_timeout=1s`
	tests := []struct {
		name, pg, wantInner string
	}{
		{"url without query", "postgres://app@db:5432/bank", "postgres://app@db:5432/bank"},
		{"url with query", "postgres://app@db/bank?sslmode=disable", "postgres://app@db/bank?sslmode=disable"},
		{"url with a '#' (part of a value for libpq and pgx)", "postgresql://app@db/bank?sslmode=disable#x", "postgresql://app@db/bank?sslmode=disable#x"},
		{"url with a '?' in the password", "postgres://app:p?w@db/bank", "postgres://app:p?w@db/bank"},
		{"keyword/value", "host=db user=app dbname=bank", "host=db user=app dbname=bank"},
		{"empty keyword/value", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withCacheRedis(tt.pg, redisURL)
			inner, params, err := dsn.Split(got)
			if err != nil {
				t.Fatalf("dsn.Split(%q): %v", got, err)
			}
			if inner != tt.wantInner {
				t.Errorf("inner DSN = %q, want %q", inner, tt.wantInner)
			}
			if len(params) != 1 || params[0].Key != "cache_redis" || params[0].Value != redisURL {
				t.Errorf("params = %q, want one cache_redis=%q", params, redisURL)
			}
		})
	}
}

// TestQuickstartServesFromRedis runs the tour against the servers the
// integration tests use and checks what it claims: the second read of the
// account and the reads after the transfer are served from Redis.
func TestQuickstartServesFromRedis(t *testing.T) {
	db, rd := os.Getenv("WTCACHE_TEST_DATABASE"), os.Getenv("WTCACHE_TEST_REDIS")
	if db == "" || rd == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("WTCACHE_TEST_DATABASE and WTCACHE_TEST_REDIS must be set where CI=true")
		}
		t.Skip("set WTCACHE_TEST_DATABASE and WTCACHE_TEST_REDIS (make test-integration)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := quickstart(ctx, withCacheRedis(db, rd)+fmt.Sprintf("&cache_prefix=qs%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", s)
	// Reads of account 1 twice, then of accounts 1 and 2 after the
	// transfer: the second read and the two after the transfer (written
	// through at its commit) are hits.
	if s.Hits < 3 {
		t.Errorf("the quickstart's reads: %d hits, want 3: %+v", s.Hits, s)
	}
	if s.Bypasses != 0 {
		t.Errorf("the quickstart's reads passed through: %v", s.BypassReasons)
	}
}

package main

import (
	"testing"

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
		{"url with fragment", "postgresql://app@db/bank?sslmode=disable#x", "postgresql://app@db/bank?sslmode=disable#x"},
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

package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestBank runs the whole program with short phases against the test
// services: PostgreSQL from WTCACHE_TEST_DATABASE, with miniredis and, when
// WTCACHE_TEST_REDIS is set, with that Redis too. It fails when any of the
// program's checks fails.
func TestBank(t *testing.T) {
	dbURL := os.Getenv("WTCACHE_TEST_DATABASE")
	if dbURL == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("WTCACHE_TEST_DATABASE is not set, and CI=true: the bank example must run in CI")
		}
		t.Skip("WTCACHE_TEST_DATABASE is not set")
	}
	caches := []struct{ name, url string }{{"miniredis", ""}}
	if u := os.Getenv("WTCACHE_TEST_REDIS"); u != "" {
		caches = append(caches, struct{ name, url string }{"redis", u})
	}
	for _, c := range caches {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			err := run(ctx, config{
				DatabaseURL: dbURL,
				RedisURL:    c.url,
				Table:       "bank_accounts_test",
				Accounts:    200,
				Workers:     4,
				Duration:    2 * time.Second,
				Outage:      time.Second,
				Out:         &out,
			})
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

package wtcache_test

import (
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"
)

// Integration tests run against the real services named by these variables.
// Without them they skip with a message, except where CI=true: there a
// missing service is a failure, never a silent skip.
const (
	envDatabase = "WTCACHE_TEST_DATABASE" // e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	envRedis    = "WTCACHE_TEST_REDIS"    // e.g. redis://127.0.0.1:6379/15
)

type integrationEnv struct {
	DatabaseURL string
	RedisURL    string
}

func requireIntegration(t testing.TB) integrationEnv {
	t.Helper()
	env := integrationEnv{DatabaseURL: os.Getenv(envDatabase), RedisURL: os.Getenv(envRedis)}
	if env.DatabaseURL == "" || env.RedisURL == "" {
		msg := "integration test: set " + envDatabase + " and " + envRedis + " to run it against real PostgreSQL and Redis (make test-integration)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so this is a failure, not a skip")
		}
		t.Skip(msg)
	}
	return env
}

// wtcacheDSN adds cache_redis to a PostgreSQL DSN in URL form.
func wtcacheDSN(t testing.TB, databaseURL, redisURL string, extra ...string) string {
	t.Helper()
	sep := "?"
	if strings.Contains(databaseURL, "?") {
		sep = "&"
	}
	dsn := databaseURL + sep + "cache_redis=" + url.QueryEscape(redisURL)
	for _, e := range extra {
		dsn += "&" + e
	}
	return dsn
}

func openDB(t testing.TB, driverName, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatalf("sql.Open(%q): %v", driverName, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

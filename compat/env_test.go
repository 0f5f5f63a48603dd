package compat_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache"
)

// The tests run against the real services named by these variables. Without
// them they skip with a message, except where CI=true: there a missing
// service is a failure, never a silent skip.
const (
	envDatabase = "WTCACHE_TEST_DATABASE" // e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	envRedis    = "WTCACHE_TEST_REDIS"    // e.g. redis://127.0.0.1:6379/15
)

// Polling for the background fill: a lookup that missed stores its rows in
// Redis after it has returned them, and wtcache exports no hook that waits
// for that, so the second read is retried until it is a hit.
const (
	fillAttempts = 50
	fillSleep    = 10 * time.Millisecond
)

func requireServices(t testing.TB) (databaseURL, redisURL string) {
	t.Helper()
	databaseURL, redisURL = os.Getenv(envDatabase), os.Getenv(envRedis)
	if databaseURL == "" || redisURL == "" {
		msg := "compat test: set " + envDatabase + " and " + envRedis +
			" to run it against real PostgreSQL and Redis (make test-integration)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so this is a failure, not a skip")
		}
		t.Skip(msg)
	}
	return databaseURL, redisURL
}

// handle is one wtcache *sql.DB and its connector, whose counters tell
// whether a read was served from Redis.
type handle struct {
	DB *sql.DB
	c  driver.Connector
}

func (h handle) stats(t testing.TB) wtcache.Stats {
	t.Helper()
	s, ok := wtcache.StatsOf(h.c)
	if !ok {
		t.Fatal("wtcache.StatsOf: not a wtcache connector")
	}
	return s
}

// env is what one ORM's test works with: two wtcache handles that share
// the Redis server and key prefix, as two processes of one application
// would, and a plain pgx handle to compare against.
type env struct {
	Cached handle  // the handle under test
	Other  handle  // a second handle on the same Redis and prefix
	Plain  *sql.DB // sql.Open("pgx", url): no cache
	Prefix string
}

// newEnv opens the three handles with a key prefix of its own, drops and
// creates the tables with ddl through the plain handle, and at the end
// drops the tables and deletes the prefix's Redis keys.
func newEnv(t *testing.T, name string, tables []string, ddl ...string) *env {
	t.Helper()
	databaseURL, redisURL := requireServices(t)
	ctx := context.Background()
	e := &env{Prefix: fmt.Sprintf("compat-%s-%d-%d", name, os.Getpid(), time.Now().UnixNano())}

	redisOpts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("redis.ParseURL(%s): %v", envRedis, err)
	}
	admin := redis.NewClient(redisOpts)
	if err := admin.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer: %v", envRedis, err)
	}
	// Registered first, so run last: after the handles are closed, which
	// waits for their background fills, no key of the prefix can appear.
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := admin.Keys(ctx, "{"+e.Prefix+":*").Result()
		if err != nil {
			t.Errorf("listing the Redis keys of prefix %s: %v", e.Prefix, err)
		} else if len(keys) > 0 {
			if err := admin.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("deleting the Redis keys of prefix %s: %v", e.Prefix, err)
			}
		}
		_ = admin.Close()
	})

	e.Plain, err = sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatalf("sql.Open(pgx): %v", err)
	}
	t.Cleanup(func() { _ = e.Plain.Close() })
	if err := e.Plain.PingContext(ctx); err != nil {
		t.Fatalf("PostgreSQL at %s does not answer: %v", envDatabase, err)
	}
	dropTables := func() {
		for i := len(tables) - 1; i >= 0; i-- {
			if _, err := e.Plain.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+tables[i]+" CASCADE"); err != nil {
				t.Errorf("dropping %s: %v", tables[i], err)
			}
		}
	}
	dropTables()
	t.Cleanup(dropTables)
	for _, stmt := range ddl {
		if _, err := e.Plain.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	e.Cached = openCached(t, databaseURL, redisOpts, e.Prefix)
	e.Other = openCached(t, databaseURL, redisOpts, e.Prefix)
	return e
}

// openCached opens wtcache through the Go API, with a Redis client of its
// own.
func openCached(t *testing.T, databaseURL string, redisOpts *redis.Options, prefix string) handle {
	t.Helper()
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		t.Fatalf("pgx.ParseConfig(%s): %v", envDatabase, err)
	}
	rdb := redis.NewClient(redisOpts)
	c, err := wtcache.NewConnector(stdlib.GetConnector(*cfg), rdb, wtcache.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatalf("wtcache.NewConnector: %v", err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("closing the wtcache handle: %v", err)
		}
		_ = rdb.Close()
	})
	return handle{DB: db, c: c}
}

// sqlLog records the statement texts an ORM hands to database/sql.
type sqlLog struct {
	mu    sync.Mutex
	texts []string
}

func (l *sqlLog) add(q string) {
	l.mu.Lock()
	l.texts = append(l.texts, q)
	l.mu.Unlock()
}

func (l *sqlLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.texts)
}

// since returns the texts recorded after mark m, without repeats.
func (l *sqlLog) since(m int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, q := range l.texts[m:] {
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	return out
}

// lookupCase is one ORM lookup by key: read runs it through an ORM instance
// built on a given handle.
type lookupCase[O, T any] struct {
	// rows is how many rows the lookup asks for: a read served from Redis
	// adds that many to Hits.
	rows int
	read func(orm O) (T, error)
}

// expectServed proves that lookup is served from Redis on cached after its
// first read, and that every read returns what the same ORM returns on
// plain pgx. log is where the ORM's statement texts are recorded; the
// texts of the lookup are logged, and reported when it is not served.
func expectServed[O, T any](t *testing.T, h handle, cached, plain O, log *sqlLog, lc lookupCase[O, T]) T {
	t.Helper()
	want, err := lc.read(plain)
	if err != nil {
		t.Fatalf("through plain pgx: %v", err)
	}
	m := log.mark()
	before := h.stats(t)
	got, err := lc.read(cached)
	if err != nil {
		t.Fatalf("first read through wtcache: %v", err)
	}
	first := h.stats(t)
	texts := strings.Join(log.since(m), "\n    ")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("first read through wtcache differs from plain pgx\n got: %+v\nwant: %+v\n sql: %s", got, want, texts)
	}
	recognised := first.Misses > before.Misses || first.Hits > before.Hits
	for attempt := 1; attempt <= fillAttempts; attempt++ {
		s0 := h.stats(t)
		got, err = lc.read(cached)
		if err != nil {
			t.Fatalf("read %d through wtcache: %v", attempt+1, err)
		}
		s1 := h.stats(t)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read %d through wtcache differs from plain pgx\n got: %+v\nwant: %+v\n sql: %s", attempt+1, got, want, texts)
		}
		if s1.Hits-s0.Hits >= int64(lc.rows) {
			t.Logf("served from Redis on read %d (%d hits): %s", attempt+1, s1.Hits-s0.Hits, texts)
			return got
		}
		time.Sleep(fillSleep)
	}
	after := h.stats(t)
	why := "the recognizer does not see a primary-key lookup (no counter moved)"
	switch {
	case after.Bypasses > before.Bypasses:
		why = "recognised as a lookup but passed through (Bypasses grew)"
	case after.Hits > before.Hits:
		why = fmt.Sprintf("fewer than %d hits in any one read", lc.rows)
	case recognised:
		why = "read from PostgreSQL but never filled into Redis"
	}
	t.Fatalf("not served from Redis after %d reads: %s\n  counters before %+v, after %+v\n  sql: %s",
		fillAttempts+1, why, before, after, texts)
	return got
}

// expectSame runs read through the ORM on wtcache (twice, so that a second
// read could come from Redis) and on plain pgx, and requires equal results.
func expectSame[O, T any](t *testing.T, cached, plain O, read func(orm O) (T, error)) T {
	t.Helper()
	want, wantErr := read(plain)
	for i := 1; i <= 2; i++ {
		got, err := read(cached)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("read %d through wtcache: error %v, plain pgx: %v", i, err, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read %d through wtcache differs from plain pgx\n got: %+v\nwant: %+v", i, got, want)
		}
	}
	return want
}

package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/faultproxy"
)

// Integration tests of the read and write paths against the real
// PostgreSQL and Redis named by WTCACHE_TEST_DATABASE and WTCACHE_TEST_REDIS.

type itEnv struct {
	dbURL, redisURL string
	rdb             *redis.Client
}

func needServices(t testing.TB) itEnv {
	t.Helper()
	db, rd := os.Getenv("WTCACHE_TEST_DATABASE"), os.Getenv("WTCACHE_TEST_REDIS")
	if db == "" || rd == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("WTCACHE_TEST_DATABASE and WTCACHE_TEST_REDIS must be set where CI=true")
		}
		t.Skip("integration test: set WTCACHE_TEST_DATABASE and WTCACHE_TEST_REDIS (make test-integration)")
	}
	opts, err := redis.ParseURL(rd)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return itEnv{dbURL: db, redisURL: rd, rdb: rdb}
}

var prefixSeq atomic.Int64

// open returns a *sql.DB through wtcache and its connector. Each test gets
// its own key prefix, so tests never see each other's entries.
func (e itEnv) open(t testing.TB, prefix string, extra ...string) (*sql.DB, *connector) {
	t.Helper()
	return e.openWith(t, prefix, nil, extra...)
}

// openWith is open with Go options too.
func (e itEnv) openWith(t testing.TB, prefix string, opts []Option, extra ...string) (*sql.DB, *connector) {
	t.Helper()
	if prefix == "" {
		prefix = fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, prefixSeq.Add(1))
	}
	c, err := (&wtDriver{opts: opts}).openConnector(e.dsn(prefix, extra...))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() {
		_ = db.Close()
		keys, _ := e.rdb.Keys(context.Background(), "{"+prefix+":*").Result()
		if len(keys) > 0 {
			e.rdb.Del(context.Background(), keys...)
		}
	})
	return db, c
}

// dsn is the test database's URL with the test Redis, the key prefix and
// extra parameters.
func (e itEnv) dsn(prefix string, extra ...string) string {
	d := e.dbURL
	sep := "?"
	if strings.Contains(d, "?") {
		sep = "&"
	}
	d += sep + "cache_redis=" + url.QueryEscape(e.redisURL) + "&cache_prefix=" + prefix
	for _, x := range extra {
		d += "&" + x
	}
	return d
}

func (e itEnv) plain(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// settle waits for the fills and releases that run after a call returns.
func (c *connector) settle() { c.bg.Wait() }

const accountsSchema = `
DROP TABLE IF EXISTS wt_entries, wt_accounts CASCADE;
CREATE TABLE wt_accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL, deleted_at timestamptz);
CREATE TABLE wt_entries (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES wt_accounts(id) ON DELETE CASCADE, amount bigint NOT NULL);
INSERT INTO wt_accounts SELECT g, 'owner ' || g, 100, NULL FROM generate_series(1, 10) g;
INSERT INTO wt_entries (account_id, amount) SELECT g, 100 FROM generate_series(1, 10) g;
`

func setupAccounts(t *testing.T, e itEnv) {
	t.Helper()
	p := e.plain(t)
	mustExec(t, p, accountsSchema)
	t.Cleanup(func() { mustExec(t, p, "DROP TABLE IF EXISTS wt_entries, wt_accounts CASCADE") })
}

func balance(t *testing.T, db *sql.DB, id int) int64 {
	t.Helper()
	var b int64
	if err := db.QueryRowContext(context.Background(), "SELECT balance FROM wt_accounts WHERE id = $1", id).Scan(&b); err != nil {
		t.Fatalf("balance of %d: %v", id, err)
	}
	return b
}

func entryCount(t *testing.T, db *sql.DB, id int) int {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT * FROM wt_entries WHERE id = $1", id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n
}

// warm reads a row twice so that it is cached, and checks the second read
// was a hit.
func warm(t *testing.T, db *sql.DB, c *connector, id int) {
	t.Helper()
	balance(t, db, id)
	c.settle()
	h := c.hits.Load()
	balance(t, db, id)
	if c.hits.Load() == h {
		t.Fatalf("row %d was not served from Redis after a fill", id)
	}
}

// TestReadYourWrites: after every kind of write through one handle, a read
// through another handle sharing the Redis sees the new row at once (G1).
func TestReadYourWrites(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	prefix := fmt.Sprintf("ryw%d", time.Now().UnixNano())
	a, ca := e.open(t, prefix)
	b, cb := e.open(t, prefix)
	ctx := context.Background()

	steps := []struct {
		name  string
		write func() error
		id    int
		want  int64
	}{
		{"autocommit update by key", func() error {
			_, err := a.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance + 5 WHERE id = $1", 1)
			return err
		}, 1, 105},
		{"autocommit update without key", func() error {
			_, err := a.ExecContext(ctx, "UPDATE wt_accounts SET balance = 7 WHERE owner = $1", "owner 2")
			return err
		}, 2, 7},
		{"prepared update", func() error {
			st, err := a.PrepareContext(ctx, "UPDATE wt_accounts SET balance = $1 WHERE id = $2")
			if err != nil {
				return err
			}
			defer st.Close()
			_, err = st.ExecContext(ctx, 33, 3)
			return err
		}, 3, 33},
		{"transaction committed", func() error {
			tx, err := a.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance - 50 WHERE id = 4"); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance + 50 WHERE id = 5"); err != nil {
				return err
			}
			return tx.Commit()
		}, 4, 50},
		{"write query with RETURNING", func() error {
			rows, err := a.QueryContext(ctx, "UPDATE wt_accounts SET balance = 1 WHERE id = $1 RETURNING id", 6)
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			return rows.Close()
		}, 6, 1},
		{"BEGIN and COMMIT as statements", func() error {
			conn, err := a.Conn(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			for _, q := range []string{"BEGIN", "UPDATE wt_accounts SET balance = 8 WHERE id = 7", "COMMIT"} {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					return err
				}
			}
			return nil
		}, 7, 8},
		{"multi-statement string", func() error {
			_, err := a.ExecContext(ctx, "UPDATE wt_accounts SET balance = 9 WHERE id = 8; UPDATE wt_accounts SET balance = 0 WHERE id = 9")
			return err
		}, 8, 9},
		{"data-modifying CTE", func() error {
			_, err := a.ExecContext(ctx, "WITH x AS (UPDATE wt_accounts SET balance = 10 WHERE id = 9 RETURNING id) SELECT count(*) FROM x")
			return err
		}, 9, 10},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			warm(t, b, cb, s.id)
			if err := s.write(); err != nil {
				t.Fatal(err)
			}
			if got := balance(t, b, s.id); got != s.want {
				t.Fatalf("other handle read %d right after the write, want %d", got, s.want)
			}
			if got := balance(t, a, s.id); got != s.want {
				t.Fatalf("writing handle read %d, want %d", got, s.want)
			}
			ca.settle()
			cb.settle()
			// And once everything settled, the cache converges on it.
			if got := balance(t, b, s.id); got != s.want {
				t.Fatalf("after settling read %d, want %d", got, s.want)
			}
		})
	}
}

// TestRollbackMirrorsNothing: a rolled-back write leaves the cached row as
// it was, and it is still served from Redis.
func TestRollbackMirrorsNothing(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c := e.open(t, "")
	ctx := context.Background()
	warm(t, db, c, 1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = 0 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	// Inside the transaction the read goes to the database and sees the
	// uncommitted row; outside it nobody does.
	var inTx int64
	if err := tx.QueryRowContext(ctx, "SELECT balance FROM wt_accounts WHERE id = $1", 1).Scan(&inTx); err != nil || inTx != 0 {
		t.Fatalf("read in the transaction: %d %v, want 0", inTx, err)
	}
	if got := balance(t, db, 1); got != 100 {
		t.Fatalf("uncommitted write leaked: %d", got)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	h := c.hits.Load()
	if got := balance(t, db, 1); got != 100 {
		t.Fatalf("after rollback: %d, want 100", got)
	}
	if c.hits.Load() == h {
		t.Fatal("a rollback invalidated the row; it should have mirrored nothing")
	}
}

// TestCascadeInvalidatesChildren: deleting a parent through wtcache removes
// the cached children that ON DELETE CASCADE deleted.
func TestCascadeInvalidatesChildren(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c := e.open(t, "")
	ctx := context.Background()
	if n := entryCount(t, db, 3); n != 1 {
		t.Fatalf("entry 3: %d rows", n)
	}
	c.settle()
	if n := entryCount(t, db, 3); n != 1 {
		t.Fatal("entry 3 gone before the delete")
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM wt_accounts WHERE id = $1", 3); err != nil {
		t.Fatal(err)
	}
	if n := entryCount(t, db, 3); n != 0 {
		t.Fatal("the cascaded child row is still served from the cache")
	}
	c.settle()
	if n := entryCount(t, db, 3); n != 0 {
		t.Fatal("after settling, the cascaded child row is served from the cache")
	}
}

// TestPrimaryKeyChange: UPDATE ... SET id = ... moves the row; the old key
// is a miss and the new key is the row.
func TestPrimaryKeyChange(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c := e.open(t, "")
	ctx := context.Background()
	mustExec(t, db, "DELETE FROM wt_entries WHERE account_id = 2")
	warm(t, db, c, 2)
	if _, err := db.ExecContext(ctx, "UPDATE wt_accounts SET id = 200 WHERE id = $1", 2); err != nil {
		t.Fatal(err)
	}
	for _, when := range []string{"right after the update", "after settling"} {
		rows, err := db.QueryContext(ctx, "SELECT * FROM wt_accounts WHERE id = $1", 2)
		if err != nil {
			t.Fatal(err)
		}
		found := rows.Next()
		rows.Close()
		if found {
			t.Fatalf("%s: the old key still returns the row", when)
		}
		c.settle()
	}
	if got := balance(t, db, 200); got != 100 {
		t.Fatalf("new key: %d", got)
	}
}

// TestTruncateAndAlter: TRUNCATE and ALTER TABLE through wtcache invalidate
// the whole table; after ALTER the cached rows have the new column.
func TestTruncateAndAlter(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c := e.open(t, "")
	ctx := context.Background()
	warm(t, db, c, 4)
	mustExec(t, db, "ALTER TABLE wt_accounts ADD COLUMN note text DEFAULT 'x'")
	rows, err := db.QueryContext(ctx, "SELECT * FROM wt_accounts WHERE id = $1", 4)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	rows.Close()
	if len(cols) != 5 || cols[4] != "note" {
		t.Fatalf("after ALTER TABLE: columns %v", cols)
	}
	warm(t, db, c, 4)
	mustExec(t, db, "TRUNCATE wt_accounts CASCADE")
	for _, when := range []string{"right after TRUNCATE", "after settling"} {
		rows, err = db.QueryContext(ctx, "SELECT * FROM wt_accounts WHERE id = $1", 4)
		if err != nil {
			t.Fatal(err)
		}
		found := rows.Next()
		rows.Close()
		if found {
			t.Fatalf("%s: a truncated row is still served", when)
		}
		c.settle()
	}
}

// TestConnectionLostDuringCommit: the backend dies while the transaction
// commits. Whatever the outcome, no reader may then see the old row from
// the cache while the database has the new one.
func TestConnectionLostDuringCommit(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c := e.open(t, "")
	killer := e.plain(t)
	ctx := context.Background()
	warm(t, db, c, 5)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = 42 WHERE id = 5"); err != nil {
		t.Fatal(err)
	}
	mustExec(t, killer, "SELECT pg_terminate_backend($1)", pid)
	time.Sleep(50 * time.Millisecond)
	commitErr := tx.Commit()
	var inDB int64
	if err := killer.QueryRowContext(ctx, "SELECT balance FROM wt_accounts WHERE id = 5").Scan(&inDB); err != nil {
		t.Fatal(err)
	}
	if got := balance(t, db, 5); got != inDB {
		t.Fatalf("commit error %v; database has %d, wtcache serves %d", commitErr, inDB, got)
	}
	c.settle()
	if got := balance(t, db, 5); got != inDB {
		t.Fatalf("after settling: database has %d, wtcache serves %d", inDB, got)
	}
}

// openThroughProxy opens wtcache with its Redis behind a fault proxy.
func (e itEnv) openThroughProxy(t *testing.T, extra ...string) (*sql.DB, *connector, *faultproxy.Proxy) {
	return e.openThroughProxyWith(t, nil, extra...)
}

func (e itEnv) openThroughProxyWith(t *testing.T, opts []Option, extra ...string) (*sql.DB, *connector, *faultproxy.Proxy) {
	t.Helper()
	ropts, _ := redis.ParseURL(e.redisURL)
	px, err := faultproxy.Start(ropts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	u, _ := url.Parse(e.redisURL)
	u.Host = px.Addr()
	q := u.Query()
	q.Set("max_retries", "-1")
	u.RawQuery = q.Encode()
	proxied := itEnv{dbURL: e.dbURL, redisURL: u.String(), rdb: e.rdb}
	db, c := proxied.openWith(t, "", opts, append([]string{"cache_timeout=200ms"}, extra...)...)
	return db, c, px
}

// TestFailClosedRefusesWriteWhenRedisIsDown (G5, fail): the write is
// refused before it touches the database, with ErrCacheUnavailable, never
// driver.ErrBadConn.
func TestFailClosedRefusesWriteWhenRedisIsDown(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c, px := e.openThroughProxy(t, "cache_failure=fail")
	plain := e.plain(t)
	ctx := context.Background()
	warm(t, db, c, 1)
	px.Down()
	_, err := db.ExecContext(ctx, "UPDATE wt_accounts SET balance = 0 WHERE id = $1", 1)
	if !errors.Is(err, ErrCacheUnavailable) || errors.Is(err, driver.ErrBadConn) {
		t.Fatalf("write with Redis down: %v, want ErrCacheUnavailable", err)
	}
	if got := balance(t, plain, 1); got != 100 {
		t.Fatalf("the refused write reached the database: balance %d", got)
	}
	// Reads keep working from the database.
	if got := balance(t, db, 1); got != 100 {
		t.Fatalf("read with Redis down: %d", got)
	}
	// A transaction is refused at COMMIT and rolled back.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = 1 WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); !errors.Is(err, ErrCacheUnavailable) {
		t.Fatalf("commit with Redis down: %v", err)
	}
	if got := balance(t, plain, 2); got != 100 {
		t.Fatalf("the refused transaction committed: balance %d", got)
	}
	px.Up()
	// Writes are accepted again once the breaker's probe has seen Redis
	// answer (it pings every probeInterval).
	waitFor(t, time.Second, "the breaker to close", func() bool { return !c.cacheDown() })
	if _, err := db.ExecContext(ctx, "UPDATE wt_accounts SET balance = 5 WHERE id = $1", 1); err != nil {
		t.Fatalf("write after Redis came back: %v", err)
	}
	if got := balance(t, db, 1); got != 5 {
		t.Fatalf("after recovery: %d", got)
	}
}

// TestFallBackWritesAndRepairs (G5, fallback): the write goes to the
// database; this handle stops serving the table from Redis until it has
// invalidated it, which happens by itself when Redis is back.
func TestFallBackWritesAndRepairs(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c, px := e.openThroughProxy(t, "cache_failure=fallback")
	ctx := context.Background()
	warm(t, db, c, 1)
	px.Down()
	if _, err := db.ExecContext(ctx, "UPDATE wt_accounts SET balance = 7 WHERE id = $1", 1); err != nil {
		t.Fatalf("fallback write: %v", err)
	}
	if !c.dirty(c.anyTableOID(t)) {
		t.Fatal("the table is not marked dirty after an uninvalidated write")
	}
	px.Up()
	// Even before the repair ran, this handle must not serve the old row.
	if got := balance(t, db, 1); got != 7 {
		t.Fatalf("read after fallback write: %d, want 7", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.dirtyN.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if c.dirtyN.Load() > 0 {
		t.Fatal("the table was not repaired after Redis came back")
	}
	warm(t, db, c, 1)
	if got := balance(t, db, 1); got != 7 {
		t.Fatalf("after repair: %d, want 7", got)
	}
}

func (c *connector) anyTableOID(t *testing.T) uint32 {
	t.Helper()
	for _, ti := range c.schema.cacheable() {
		if ti.ident.Name == "wt_accounts" {
			return ti.oid
		}
	}
	t.Fatal("wt_accounts unknown to the connector")
	return 0
}

// TestWritesAreMirrored: an UPDATE by key, in autocommit and in a
// transaction, leaves the row PostgreSQL stored in Redis: the next read is
// a hit with the new value, not a miss. A ROLLBACK TO SAVEPOINT discards
// the images written after the savepoint (those keys are invalidated
// instead).
func TestWritesAreMirrored(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c := e.open(t, "")
	ctx := context.Background()
	hitWith := func(id int, want int64) {
		t.Helper()
		c.settle()
		h, m := c.hits.Load(), c.misses.Load()
		if got := balance(t, db, id); got != want {
			t.Fatalf("row %d: %d, want %d", id, got, want)
		}
		if c.hits.Load() != h+1 || c.misses.Load() != m {
			t.Fatalf("row %d was read from PostgreSQL, not mirrored (hits %d->%d, misses %d->%d)", id, h, c.hits.Load(), m, c.misses.Load())
		}
	}
	warm(t, db, c, 1)
	res, err := db.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance + 1 WHERE id = $1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("rows affected %d", n)
	}
	hitWith(1, 101)

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"UPDATE wt_accounts SET balance = balance - 10 WHERE id = 2",
		"UPDATE wt_accounts SET balance = balance + 10 WHERE id = 3",
		"SAVEPOINT s",
		"UPDATE wt_accounts SET balance = 0 WHERE id = 4",
		"ROLLBACK TO SAVEPOINT s",
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if got := balance(t, db, 4); got != 100 {
		t.Fatalf("row 4 after ROLLBACK TO SAVEPOINT: %d, want 100", got)
	}
	// Images written before the savepoint were dropped too (simple and
	// safe): rows 2 and 3 are correct, whether hit or miss.
	if balance(t, db, 2) != 90 || balance(t, db, 3) != 110 {
		t.Fatal("transfer not visible")
	}
	// A transaction without savepoints mirrors its rows.
	tx, _ = db.BeginTx(ctx, nil)
	tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance - 5 WHERE id = 5")
	tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance + 5 WHERE id = 6")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	hitWith(5, 95)
	hitWith(6, 105)
}

// TestInvalidateWritesWrapperCannotSee: a write by another program leaves
// the cache stale (documented); Invalidate repairs it, by key and by table.
func TestInvalidateWritesWrapperCannotSee(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c := e.open(t, "")
	other := e.plain(t)
	ctx := context.Background()
	for _, id := range []int{1, 2} {
		warm(t, db, c, id)
	}
	mustExec(t, other, "UPDATE wt_accounts SET balance = 0 WHERE id IN (1, 2)")
	if got := balance(t, db, 1); got != 100 {
		t.Fatalf("expected the documented staleness after a write that bypassed wtcache, got %d", got)
	}
	if err := Invalidate(ctx, db, "wt_accounts", int64(1)); err != nil {
		t.Fatal(err)
	}
	if got := balance(t, db, 1); got != 0 {
		t.Fatalf("after Invalidate by key: %d, want 0", got)
	}
	if got := balance(t, db, 2); got != 100 {
		t.Fatalf("row 2 should still be the stale cached row before the table is invalidated, got %d", got)
	}
	if err := Invalidate(ctx, db, "public.wt_accounts"); err != nil {
		t.Fatal(err)
	}
	if got := balance(t, db, 2); got != 0 {
		t.Fatalf("after Invalidate of the table: %d, want 0", got)
	}
	if err := Invalidate(ctx, other, "wt_accounts"); !errors.Is(err, ErrNotWtcache) {
		t.Fatalf("Invalidate on a plain pgx handle: %v", err)
	}
}

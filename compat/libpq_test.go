package compat_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq" // registers "postgres"

	"github.com/wtcache/wtcache"
)

// TestLibPQ holds wtcache over lib/pq (cache_driver=postgres) to what the
// README promises for a driver other than pgx: lib/pq does not report the
// transaction status, so wtcache serves no read through it and mirrors no
// write, and its writes to cached tables still invalidate the rows that
// pgx handles of the same cache serve. Every read through lib/pq returns
// exactly what plain lib/pq returns (its Go types, not pgx's), whatever
// Redis holds; every read through the pgx handle returns what plain pgx
// returns, before, inside and after lib/pq's transactions, committed or
// rolled back, opened by database/sql or by text ("BEGIN; SELECT 1").
func TestLibPQ(t *testing.T) {
	databaseURL, redisURL := requireServices(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("compat-pq-%d-%d", os.Getpid(), time.Now().UnixNano())
	sep := "?"
	if strings.Contains(databaseURL, "?") {
		sep = "&"
	}
	cacheParams := "cache_redis=" + url.QueryEscape(redisURL) + "&cache_prefix=" + prefix
	open := func(driverName, dsn string) *sql.DB {
		db, err := sql.Open(driverName, dsn)
		if err != nil {
			t.Fatalf("sql.Open(%s): %v", driverName, err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	plainPQ := open("postgres", databaseURL)
	plainPgx := open("pgx", databaseURL)
	viaPQ := open("wtcache", databaseURL+sep+cacheParams+"&cache_driver=postgres")
	viaPgx := open("wtcache", databaseURL+sep+cacheParams)

	const table = "compat_pq_accounts"
	mustExec := func(db *sql.DB, q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(plainPgx, "DROP TABLE IF EXISTS "+table)
	t.Cleanup(func() { _, _ = plainPgx.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table) })
	mustExec(plainPgx, "CREATE TABLE "+table+" (id int PRIMARY KEY, balance numeric(12,2) NOT NULL, ref uuid NOT NULL, at timestamptz NOT NULL, tags text[])")
	mustExec(plainPgx, "INSERT INTO "+table+" VALUES (1, 100, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2026-01-02 03:04:05+00', '{x,y}'), (2, 5, 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '2026-02-03 04:05:06+00', NULL)")

	const lookup = "SELECT id, balance, ref, at, tags FROM " + table + " WHERE id = $1"
	type querier interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}
	read := func(q querier, id int) []any {
		t.Helper()
		rows, err := q.QueryContext(ctx, lookup, id)
		if err != nil {
			t.Fatalf("lookup %d: %v", id, err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var out []any
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("scan: %v", err)
			}
			out = append(out, vals...)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("rows: %v", err)
		}
		return out
	}
	// same compares, with their Go types, what wtcache over lib/pq and
	// over pgx return with what plain lib/pq and plain pgx return. pqConn
	// is lib/pq's connection or transaction when one is open.
	same := func(step string, pqConn querier) {
		t.Helper()
		for id := 1; id <= 2; id++ {
			for round := 0; round < 2; round++ { // the second read may be a hit
				if got, want := read(viaPgx, id), read(plainPgx, id); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: pgx through wtcache read %d as %#v, plain pgx %#v", step, id, got, want)
				}
				if pqConn != nil {
					// Inside lib/pq's transaction: its reads see its own
					// writes, which no other session does; they are read
					// (and must not be hits: checked at the end).
					read(pqConn, id)
					continue
				}
				if got, want := read(viaPQ, id), read(plainPQ, id); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: lib/pq through wtcache read %d as %#v, plain lib/pq %#v", step, id, got, want)
				}
			}
		}
	}
	// warm makes row 1 a hit of the pgx handle, so that a write through
	// lib/pq has an entry to invalidate.
	warm := func(step string) {
		t.Helper()
		before := dbStats(t, viaPgx).Hits
		for i := 0; i < 100; i++ {
			read(viaPgx, 1)
			if dbStats(t, viaPgx).Hits > before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: row 1 never became a hit of the pgx handle", step)
	}

	warm("start")
	same("start", nil)
	if s := dbStats(t, viaPQ); s.Hits != 0 || s.BypassReasons["driver_not_supported"] == 0 {
		t.Errorf("lib/pq handle: %d hits, %d bypasses for driver_not_supported; want 0 and some", s.Hits, s.BypassReasons["driver_not_supported"])
	}

	// A transaction opened by text, rolled back.
	warm("text transaction")
	t.Cleanup(func() { _, _ = plainPgx.ExecContext(context.Background(), "ROLLBACK PREPARED 'compat_pq'") })
	c, err := viaPQ.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A failure may leave its transaction open, which would block the
	// cleanup's DROP TABLE.
	t.Cleanup(func() { _, _ = c.ExecContext(context.Background(), "ROLLBACK"); _ = c.Close() })
	steps := []struct {
		name, sql string
		fails     bool
	}{
		{"BEGIN; SELECT 1", "BEGIN; SELECT 1", false},
		{"update inside", "UPDATE " + table + " SET balance = 999 WHERE id = 1", false},
		{"ROLLBACK", "ROLLBACK", false},
		{"BEGIN", "BEGIN", false},
		{"update again", "UPDATE " + table + " SET balance = 300, tags = '{z}' WHERE id = 1", false},
		{"COMMIT; SELECT 1", "COMMIT; SELECT 1", false},
		{"autocommit update", "UPDATE " + table + " SET balance = balance + 1 WHERE id = 1", false},
		{"autocommit delete", "DELETE FROM " + table + " WHERE id = 2", false},
		{"autocommit insert", "INSERT INTO " + table + " VALUES (2, 7, 'c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13', now(), '{}')", false},
		// A failed transaction: its COMMIT rolls back.
		{"BEGIN before a failure", "BEGIN", false},
		{"update before a failure", "UPDATE " + table + " SET balance = 555 WHERE id = 1", false},
		{"failure", "SELECT 1/0", true},
		{"COMMIT of a failed transaction", "COMMIT", false},
		// Two-phase: the text leaves wtcache believing a transaction open
		// after PREPARE TRANSACTION; the writes that follow commit on
		// their own and must be invalidated at once.
		{"BEGIN to prepare", "BEGIN", false},
		{"update to prepare", "UPDATE " + table + " SET balance = 600 WHERE id = 1", false},
		{"PREPARE TRANSACTION", "PREPARE TRANSACTION 'compat_pq'", false},
		{"COMMIT PREPARED", "COMMIT PREPARED 'compat_pq'", false},
		{"autocommit update after two-phase", "UPDATE " + table + " SET balance = balance + 1 WHERE id = 1", false},
		{"autocommit delete after two-phase", "DELETE FROM " + table + " WHERE id = 2", false},
		// BEGIN and a write in one string.
		{"BEGIN; UPDATE in one string", "BEGIN; UPDATE " + table + " SET balance = 700 WHERE id = 1", false},
		{"COMMIT after the one string", "COMMIT", false},
		// A string that fails stops before its COMMIT: the transaction
		// stays open.
		{"failed string", "BEGIN; SAVEPOINT s; SELECT 1/0; COMMIT", true},
		{"ROLLBACK TO after the failed string", "ROLLBACK TO SAVEPOINT s", false},
		{"update after the failed string", "UPDATE " + table + " SET balance = 800 WHERE id = 1", false},
		{"COMMIT after the failed string", "COMMIT", false},
	}
	for _, s := range steps {
		if _, err := c.ExecContext(ctx, s.sql); (err != nil) != s.fails {
			t.Fatalf("%s: %v", s.name, err)
		}
		var in querier = c
		if s.name == "ROLLBACK" || strings.HasPrefix(s.name, "COMMIT") || strings.HasPrefix(s.name, "autocommit") {
			in = nil
		}
		if s.fails {
			continue // the transaction is failed: reads would fail too
		}
		same("after "+s.name, in)
		warm("after " + s.name)
	}
	_ = c.Close()

	// A transaction of database/sql, committed and rolled back.
	for _, commit := range []bool{true, false} {
		warm("database/sql transaction")
		tx, err := viaPQ.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET balance = balance * 2 WHERE id = $1", 1); err != nil {
			t.Fatal(err)
		}
		same(fmt.Sprintf("inside a transaction (commit %v)", commit), tx)
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
		same(fmt.Sprintf("after a transaction (commit %v)", commit), nil)
	}
	// A COMMIT sent as text inside a database/sql transaction: the writes
	// after it commit on their own.
	for _, end := range []string{"COMMIT", "PREPARE TRANSACTION 'compat_pq'"} {
		warm("text " + end + " in a database/sql transaction")
		tx, err := viaPQ.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, end); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET balance = balance + 3 WHERE id = $1", 1); err != nil {
			t.Fatal(err)
		}
		same("after a write that a text "+end+" left alone", nil)
		_ = tx.Rollback() // lib/pq: unexpected transaction status idle
		same("after Rollback of a transaction a text "+end+" ended", nil)
		_, _ = plainPgx.ExecContext(ctx, "COMMIT PREPARED 'compat_pq'")
		same("after its COMMIT PREPARED", nil)
	}
	if s := dbStats(t, viaPQ); s.Hits != 0 {
		t.Errorf("lib/pq handle served %d hits; it must serve none", s.Hits)
	}
}

func dbStats(t *testing.T, db *sql.DB) wtcache.Stats {
	t.Helper()
	s, err := wtcache.DBStats(context.Background(), db)
	if err != nil {
		t.Fatalf("wtcache.DBStats: %v", err)
	}
	return s
}

// TestLibPQErrorsHaveNoPassword: malformed and unreachable lib/pq DSNs
// through wtcache, in both forms, with the password in every position
// lib/pq reads one: no error holds it.
func TestLibPQErrorsHaveNoPassword(t *testing.T) {
	const secret = "Zq7sEcReT"
	const redisParam = "cache_redis=redis%3A%2F%2F127.0.0.1%3A1%2F0"
	for _, d := range []string{
		"postgres://app:" + secret + "@127.0.0.1:1/x?sslmode=bogus&cache_driver=postgres&" + redisParam,
		"postgres://app:" + secret + "@127.0.0.1:1/x?sslmode=disable&cache_driver=postgres&" + redisParam,
		"postgres://app:" + secret + "@127.0.0.1:1/x?%zz&cache_driver=postgres&" + redisParam,
		"postgres://app:" + secret + "@127.0.0.1:notaport/x?cache_driver=postgres&" + redisParam,
		"host=127.0.0.1 port=1 password=" + secret + " sslmode=bogus cache_driver=postgres cache_redis=redis://127.0.0.1:1/0",
		"host=127.0.0.1 port=1 password='" + secret + "' sslmode=disable cache_driver=postgres cache_redis=redis://127.0.0.1:1/0",
		"host=127.0.0.1 port=1 password='" + secret + " cache_driver=postgres cache_redis=redis://127.0.0.1:1/0",
	} {
		db, err := sql.Open("wtcache", d)
		if err == nil {
			err = db.Ping()
			_ = db.Close()
		}
		if err == nil {
			t.Fatalf("%q: a database on port 1 answered", d)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error holds the password: %v", err)
		}
	}
}

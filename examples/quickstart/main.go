// Command quickstart opens PostgreSQL through the wtcache driver and runs a
// few ordinary statements: it creates a table, upserts rows, reads one back
// by primary key (twice: the second read is served from Redis), transfers
// money between two accounts in a transaction (the new balances are written
// through to Redis after the commit) and prints wtcache's counters.
//
// Run it from this directory, against a running PostgreSQL and Redis:
//
//	go run .
//
// or from the repository root with "make demo-quickstart". Two environment variables
// choose the servers:
//
//	DATABASE_URL  PostgreSQL DSN, URL or keyword/value form
//	              (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
//	REDIS_URL     Redis URL (default redis://127.0.0.1:6379/0)
//
// It exits with status 1 on any error.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wtcache/wtcache" // registers the "wtcache" driver
)

const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
)

func main() {
	if err := run(); err != nil {
		// wtcache's errors never contain passwords; print the error only,
		// never the DSN.
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := quickstart(ctx, withCacheRedis(getenv("DATABASE_URL", defaultDatabaseURL), getenv("REDIS_URL", defaultRedisURL)))
	return err
}

// quickstart runs the tour on dsn and returns wtcache's counters.
func quickstart(ctx context.Context, dsn string) (wtcache.Stats, error) {
	var none wtcache.Stats

	db, err := sql.Open("wtcache", dsn)
	if err != nil {
		return none, err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return none, err
	}
	fmt.Println("connected to PostgreSQL through the wtcache driver")

	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS quickstart_accounts (
		id      bigint PRIMARY KEY,
		owner   text NOT NULL,
		balance numeric NOT NULL
	)`); err != nil {
		return none, err
	}
	fmt.Println("table quickstart_accounts is ready")

	accounts := []struct {
		id      int64
		owner   string
		balance string // numeric travels as text, without float rounding
	}{
		{1, "alice", "100.00"},
		{2, "bob", "50.00"},
		{3, "carol", "75.00"},
	}
	for _, a := range accounts {
		if _, err := db.ExecContext(ctx, `INSERT INTO quickstart_accounts (id, owner, balance)
			VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, balance = EXCLUDED.balance`,
			a.id, a.owner, a.balance); err != nil {
			return none, err
		}
	}
	fmt.Printf("upserted %d accounts\n", len(accounts))

	for range 2 {
		owner, balance, err := account(ctx, db, 1)
		if err != nil {
			return none, err
		}
		fmt.Printf("account 1: owner=%s balance=%s\n", owner, balance)
		// The first read was a miss: wtcache stores the row in Redis just
		// after returning it. Give it a moment, then read again: a hit.
		time.Sleep(50 * time.Millisecond)
	}

	if err := transfer(ctx, db, 1, 2, "25.00"); err != nil {
		return none, err
	}
	fmt.Println("transferred 25.00 from account 1 to account 2")

	for _, id := range []int64{1, 2} {
		owner, balance, err := account(ctx, db, id)
		if err != nil {
			return none, err
		}
		fmt.Printf("account %d: owner=%s balance=%s\n", id, owner, balance)
	}
	s, err := wtcache.DBStats(ctx, db)
	if err != nil {
		return none, err
	}
	fmt.Printf("rows served from Redis: %d, read from PostgreSQL: %d, lookups passed through: %d\n", s.Hits, s.Misses, s.Bypasses)
	fmt.Println("done")
	return s, nil
}

// account reads one account by primary key.
func account(ctx context.Context, db *sql.DB, id int64) (owner, balance string, err error) {
	err = db.QueryRowContext(ctx,
		`SELECT owner, balance FROM quickstart_accounts WHERE id = $1`, id).Scan(&owner, &balance)
	return owner, balance, err
}

// transfer moves amount from one account to another, atomically: either
// both updates commit or neither does.
func transfer(ctx context.Context, db *sql.DB, from, to int64, amount string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit

	// By primary key only, so that wtcache knows which rows the statement
	// changes and writes them through to Redis after the commit.
	res, err := tx.ExecContext(ctx,
		`UPDATE quickstart_accounts SET balance = balance - $1 WHERE id = $2`, amount, from)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return errors.New("transfer: source account missing")
	}
	var enough bool
	if err := tx.QueryRowContext(ctx, `SELECT balance >= 0 FROM quickstart_accounts WHERE id = $1`, from).Scan(&enough); err != nil {
		return err
	}
	if !enough {
		return errors.New("transfer: balance too low") // the deferred Rollback undoes the debit
	}
	res, err = tx.ExecContext(ctx,
		`UPDATE quickstart_accounts SET balance = balance + $1 WHERE id = $2`, amount, to)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return errors.New("transfer: destination account missing")
	}
	return tx.Commit()
}

// withCacheRedis adds wtcache's cache_redis parameter to a PostgreSQL DSN.
// In the URL form the Redis URL is a query parameter and must be
// percent-encoded; in the keyword/value form it is a single-quoted value
// with ' and \ escaped by a backslash (percent-encoding is not decoded
// there).
func withCacheRedis(pgDSN, redisURL string) string {
	if strings.HasPrefix(pgDSN, "postgres://") || strings.HasPrefix(pgDSN, "postgresql://") {
		// libpq and pgx read a URL with no fragment: a '#' is part of
		// the value it is in, so the parameter goes at the end. Whether
		// the URL has a query is read as they read it (a '?' in the
		// password does not start one).
		rest := pgDSN[strings.Index(pgDSN, "://")+3:]
		if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
			rest = rest[i+1:] // past the user information
		}
		sep := "?"
		if strings.Contains(rest, "?") {
			sep = "&"
		}
		return pgDSN + sep + "cache_redis=" + strings.ReplaceAll(url.QueryEscape(redisURL), "+", "%20")
	}
	quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(redisURL)
	return strings.TrimSpace(pgDSN) + " cache_redis='" + quoted + "'"
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

package wtcache_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestSessionEndedAnswersLikePgx ends a connection's session from the
// server (pg_terminate_backend) and runs each kind of statement on it
// first: through wtcache, which asks the catalog before every statement
// here (cache_schema_refresh=1ms), the application must meet the error
// plain pgx gives (the server's FATAL 57P01), not driver.ErrBadConn from a
// connection wtcache's own query found closed.
func TestSessionEndedAnswersLikePgx(t *testing.T) {
	env := requireIntegration(t)
	ctx := context.Background()
	plain := openDB(t, "pgx", env.DatabaseURL)
	wrapped := openDB(t, "wtcache", wtcacheDSN(t, env.DatabaseURL, env.RedisURL, "cache_schema_refresh=1ms"))
	if _, err := plain.ExecContext(ctx, `DROP TABLE IF EXISTS wt_lost; CREATE TABLE wt_lost (id int PRIMARY KEY, v int); INSERT INTO wt_lost VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = plain.ExecContext(context.Background(), `DROP TABLE IF EXISTS wt_lost`) })

	kinds := []struct {
		name string
		run  func(c *sql.Conn) error
	}{
		{"query", func(c *sql.Conn) error {
			var n int
			return c.QueryRowContext(ctx, "SELECT 1").Scan(&n)
		}},
		{"exec", func(c *sql.Conn) error { _, err := c.ExecContext(ctx, "SELECT 1"); return err }},
		{"lookup", func(c *sql.Conn) error {
			var id, v int
			return c.QueryRowContext(ctx, "SELECT id, v FROM wt_lost WHERE id = $1", 1).Scan(&id, &v)
		}},
		{"write", func(c *sql.Conn) error {
			_, err := c.ExecContext(ctx, "UPDATE wt_lost SET v = v + 1 WHERE id = $1", 1)
			return err
		}},
		{"write through query", func(c *sql.Conn) error {
			var v int
			return c.QueryRowContext(ctx, "UPDATE wt_lost SET v = v + 1 WHERE id = 1 RETURNING v").Scan(&v)
		}},
		{"prepare", func(c *sql.Conn) error {
			s, err := c.PrepareContext(ctx, "SELECT v FROM wt_lost WHERE id = $1")
			if err == nil {
				s.Close()
			}
			return err
		}},
		{"begin", func(c *sql.Conn) error {
			tx, err := c.BeginTx(ctx, nil)
			if err == nil {
				_ = tx.Rollback()
			}
			return err
		}},
	}
	describe := func(db *sql.DB, run func(*sql.Conn) error) string {
		c, err := db.Conn(ctx)
		if err != nil {
			return "conn: " + err.Error()
		}
		defer c.Close()
		var pid int
		if err := c.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			return "pid: " + err.Error()
		}
		if _, err := plain.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			return "terminate: " + err.Error()
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			var n int
			if err := plain.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil || n == 0 {
				break
			}
		}
		err = run(c)
		var pe *pgconn.PgError
		switch {
		case err == nil:
			return "ok"
		case errors.As(err, &pe):
			return fmt.Sprintf("server %s %s", pe.Severity, pe.Code)
		case errors.Is(err, driver.ErrBadConn):
			return "driver: bad connection"
		default:
			return fmt.Sprintf("%T", err)
		}
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			want := describe(plain, k.run)
			got := describe(wrapped, k.run)
			if got != want {
				t.Errorf("first statement after the server ended the session: pgx %q, wtcache %q", want, got)
			}
			// Both pools recover.
			for _, db := range []*sql.DB{plain, wrapped} {
				var n int
				if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
					t.Errorf("pool does not recover: %v", err)
				}
			}
		})
	}
}

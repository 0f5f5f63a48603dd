package wtcache_test

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// Benchmarks come in pairs, <name>/pgx and <name>/wtcache, measured in the
// same run on the same database; `make bench` prints the ratios of each
// pair. A claim in the README is such a ratio, never an absolute time.

func benchDBs(b *testing.B) (plain, wrapped *sql.DB) {
	b.Helper()
	env := requireIntegration(b)
	plain = openDB(b, "pgx", env.DatabaseURL)
	wrapped = openDB(b, "wtcache", wtcacheDSN(b, env.DatabaseURL, env.RedisURL))
	ctx := context.Background()
	for _, db := range []*sql.DB{plain, wrapped} {
		// One connection: the loop measures the statement, not the pool.
		db.SetMaxOpenConns(1)
		if err := db.PingContext(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := plain.ExecContext(ctx, `
		DROP TABLE IF EXISTS wt_bench_pass;
		CREATE TABLE wt_bench_pass (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL);
		INSERT INTO wt_bench_pass SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 1000) g`); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = plain.ExecContext(ctx, "DROP TABLE IF EXISTS wt_bench_pass") })
	return plain, wrapped
}

// benchPair measures one operation through plain pgx and through wtcache.
// The sub-benchmarks pgx and wtcache report time and allocations of each;
// the sub-benchmark ratio runs the two alternately in the same loop, so that
// drift of the machine hits both alike, and reports wtcache's time over
// pgx's as the metric "wtcache/pgx".
func benchPair(b *testing.B, op func(db *sql.DB) error) {
	plain, wrapped := benchDBs(b)
	for _, bc := range []struct {
		name string
		db   *sql.DB
	}{{"pgx", plain}, {"wtcache", wrapped}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := op(bc.db); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("ratio", func(b *testing.B) {
		var tPlain, tWrapped time.Duration
		i := 0
		for b.Loop() {
			first, second, tFirst, tSecond := plain, wrapped, &tPlain, &tWrapped
			if i%2 == 1 {
				first, second, tFirst, tSecond = wrapped, plain, &tWrapped, &tPlain
			}
			i++
			start := time.Now()
			if err := op(first); err != nil {
				b.Fatal(err)
			}
			mid := time.Now()
			if err := op(second); err != nil {
				b.Fatal(err)
			}
			*tFirst += mid.Sub(start)
			*tSecond += time.Since(mid)
		}
		b.ReportMetric(float64(tWrapped)/float64(tPlain), "wtcache/pgx")
	})
}

// BenchmarkPassThroughQuery is a statement that no cache serves (a range
// scan), read through Query and Scan.
func BenchmarkPassThroughQuery(b *testing.B) {
	ctx := context.Background()
	benchPair(b, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, "SELECT id, owner FROM wt_bench_pass WHERE id BETWEEN $1 AND $2 ORDER BY id", 10, 12)
		if err != nil {
			return err
		}
		var n int64
		var owner string
		for rows.Next() {
			if err := rows.Scan(&n, &owner); err != nil {
				return err
			}
		}
		return rows.Close()
	})
}

// BenchmarkPassThroughExec is a statement through Exec.
func BenchmarkPassThroughExec(b *testing.B) {
	ctx := context.Background()
	benchPair(b, func(db *sql.DB) error {
		_, err := db.ExecContext(ctx, "SELECT pg_catalog.set_config('application_name', $1, false)", "bench")
		return err
	})
}

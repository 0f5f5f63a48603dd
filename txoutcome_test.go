package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// The outcome of a transaction is the server's: generated sequences of
// transaction control (BEGIN, COMMIT, ROLLBACK, AND CHAIN, SAVEPOINT,
// RELEASE, ROLLBACK TO, failing statements, PREPARE TRANSACTION with
// COMMIT/ROLLBACK PREPARED), sent as separate statements, as one string,
// or split at random, through one wtcache connection. After every call,
// another wtcache handle sharing the Redis (its cache warmed, so that a
// stale entry would be served) must read exactly what plain pgx reads: no
// rolled-back or uncommitted value is ever served, and a committed one is
// served at once.

type txStep struct {
	sql   string
	write bool
}

func txAlphabet(prepared bool) []func(rng *rand.Rand, n *int64, table string) txStep {
	upd := func(id int) func(rng *rand.Rand, n *int64, table string) txStep {
		return func(_ *rand.Rand, n *int64, table string) txStep {
			*n++
			return txStep{sql: fmt.Sprintf("UPDATE %s SET v = %d WHERE id = %d", table, *n, id), write: true}
		}
	}
	fixed := func(s string) func(*rand.Rand, *int64, string) txStep {
		return func(*rand.Rand, *int64, string) txStep { return txStep{sql: s} }
	}
	a := []func(*rand.Rand, *int64, string) txStep{
		fixed("BEGIN"), fixed("BEGIN"), fixed("COMMIT"), fixed("COMMIT"), fixed("END"), fixed("ROLLBACK"),
		fixed("COMMIT AND CHAIN"), fixed("ROLLBACK AND CHAIN"), fixed("SAVEPOINT s"), fixed("RELEASE SAVEPOINT s"),
		fixed("ROLLBACK TO SAVEPOINT s"), fixed("SELECT 1/0"), fixed("START TRANSACTION"), fixed("ABORT"),
		upd(1), upd(1), upd(2), upd(2), upd(1),
		func(_ *rand.Rand, n *int64, table string) txStep {
			*n++
			return txStep{sql: fmt.Sprintf("UPDATE %s SET v = %d WHERE v >= 0", table, *n), write: true} // table-wide
		},
	}
	if prepared {
		a = append(a, fixed("PREPARE TRANSACTION 'wtc_gen'"), fixed("COMMIT PREPARED 'wtc_gen'"), fixed("ROLLBACK PREPARED 'wtc_gen'"))
	}
	return a
}

func TestTxOutcomes(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	var maxPrepared int
	if err := p.QueryRow(`SELECT current_setting('max_prepared_transactions')::int`).Scan(&maxPrepared); err != nil {
		t.Fatal(err)
	}
	if maxPrepared == 0 {
		msg := "max_prepared_transactions is 0: two-phase commit is left out of the sequences (.ci/run sets it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Log(msg)
	}
	table := fmt.Sprintf("tx_gen_%d", os.Getpid())
	mustExec(t, p, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO `+table+` VALUES (1, 0), (2, 0)`)
	t.Cleanup(func() {
		_, _ = p.Exec(`ROLLBACK PREPARED 'wtc_gen'`)
		mustExec(t, p, `DROP TABLE IF EXISTS `+table)
	})
	prefix := fmt.Sprintf("txgen%d-%d", os.Getpid(), prefixSeq.Add(1))
	// A prepared transaction keeps its row locks: a later write to the
	// row would wait for ever; it fails after lock_timeout instead.
	dbA, _ := e.open(t, prefix, "cache_tables="+table, "lock_timeout=200")
	dbB, cB := e.open(t, prefix, "cache_tables="+table)
	alphabet := txAlphabet(maxPrepared > 0)
	seed := uint64(os.Getpid())
	rng := rand.New(rand.NewPCG(seed, 11))
	var counter int64
	sequences := 400
	if testing.Short() {
		sequences = 100
	}
	read := func(db *sql.DB, id int) int64 {
		var v int64
		if err := db.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	check := func(history []string) {
		t.Helper()
		cB.settle()
		for id := 1; id <= 2; id++ {
			got, want := read(dbB, id), read(p, id)
			if got != want {
				t.Fatalf("seed %d: after\n  %s\nanother handle reads row %d = %d, PostgreSQL has %d", seed, strings.Join(history, "\n  "), id, got, want)
			}
		}
	}
	hits := int64(0)
	for range sequences {
		// Warm the other handle's cache.
		for range 2 {
			read(dbB, 1)
			read(dbB, 2)
		}
		before := rpStats(cB).Hits
		conn, err := dbA.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		steps := make([]txStep, 1+rng.IntN(8))
		for i := range steps {
			steps[i] = alphabet[rng.IntN(len(alphabet))](rng, &counter, table)
		}
		mode := rng.IntN(3) // 0 separate, 1 one string, 2 random splits
		var calls [][]txStep
		switch mode {
		case 0:
			for _, s := range steps {
				calls = append(calls, []txStep{s})
			}
		case 1:
			calls = [][]txStep{steps}
		default:
			for i := 0; i < len(steps); {
				n := 1 + rng.IntN(len(steps)-i)
				calls = append(calls, steps[i:i+n])
				i += n
			}
		}
		var history []string
		for _, call := range calls {
			parts := make([]string, len(call))
			for i, s := range call {
				parts[i] = s.sql
			}
			q := strings.Join(parts, "; ")
			_, err := conn.ExecContext(ctx, q)
			history = append(history, fmt.Sprintf("%s  -> %v", q, err))
			check(history)
		}
		// End whatever is open, through wtcache as an application would.
		_, err = conn.ExecContext(ctx, "ROLLBACK")
		history = append(history, fmt.Sprintf("ROLLBACK  -> %v", err))
		check(history)
		if maxPrepared > 0 {
			var prepared int
			_ = p.QueryRow(`SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'wtc_gen'`).Scan(&prepared)
			if prepared > 0 {
				// Finish it from another wtcache session, at random.
				q := "COMMIT PREPARED 'wtc_gen'"
				if rng.IntN(2) == 0 {
					q = "ROLLBACK PREPARED 'wtc_gen'"
				}
				_, err := dbA.ExecContext(ctx, q)
				history = append(history, fmt.Sprintf("(another session) %s  -> %v", q, err))
				check(history)
			}
		}
		_ = conn.Close()
		hits += rpStats(cB).Hits - before
	}
	t.Logf("%d sequences (seed %d); the checking handle served %d reads from Redis", sequences, seed, hits)
	if hits == 0 {
		t.Error("no read was served from Redis: the check proves nothing")
	}
}

// TestTxEndThenWriteInOneString: inside an open transaction, a string that
// ends it and then writes (ROLLBACK; UPDATE ..., ABORT; ..., COMMIT; ...)
// commits the write on its own; another handle must read it at once,
// whether or not the transaction had written before.
func TestTxEndThenWriteInOneString(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	table := fmt.Sprintf("txend_%d", os.Getpid())
	mustExec(t, p, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO `+table+` VALUES (1, 0)`)
	t.Cleanup(func() { mustExec(t, p, `DROP TABLE IF EXISTS `+table) })
	prefix := fmt.Sprintf("txend%d-%d", os.Getpid(), prefixSeq.Add(1))
	dbA, _ := e.open(t, prefix)
	dbB, cB := e.open(t, prefix)
	read := func(db *sql.DB) (v int64) {
		if err := db.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	n := int64(0)
	for _, end := range []string{"ROLLBACK", "ABORT", "COMMIT", "END", "ROLLBACK; BEGIN; COMMIT", "COMMIT AND CHAIN; COMMIT"} {
		for _, wroteBefore := range []bool{false, true} {
			read(dbB)
			cB.settle()
			read(dbB)
			conn, err := dbA.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{"START TRANSACTION", "UPDATE " + table + " SET v = v WHERE id = 1"} {
				if q != "START TRANSACTION" && !wroteBefore {
					continue
				}
				if _, err := conn.ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			n++
			q := fmt.Sprintf("%s; UPDATE %s SET v = %d WHERE id = 1", end, table, n)
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close()
			cB.settle()
			if got, want := read(dbB), read(p); got != want {
				t.Errorf("%q (a write before: %v): another handle reads %d, PostgreSQL %d", q, wroteBefore, got, want)
			}
		}
	}
}

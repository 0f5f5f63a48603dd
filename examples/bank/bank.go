package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wtcache/wtcache"
)

// handle is one *sql.DB opened through wtcache. The program opens two, as
// two application servers would, sharing one Redis.
type handle struct {
	name string
	db   *sql.DB
	conn driver.Connector // kept for wtcache.StatsOf
}

func (h *handle) stats() wtcache.Stats {
	s, _ := wtcache.StatsOf(h.conn)
	return s
}

// openHandles opens two handles with the given failure policy.
func (e *env) openHandles(policy wtcache.FailurePolicy) ([]*handle, error) {
	var hs []*handle
	for _, name := range []string{"A", "B"} {
		conn, err := wtcache.NewConnector(stdlib.GetConnector(*e.pgcfg), e.rdb,
			wtcache.WithFailurePolicy(policy),
			wtcache.WithTracerProvider(e.tel.tp),
			wtcache.WithMeterProvider(e.tel.mp),
		)
		if err != nil {
			closeHandles(hs)
			return nil, err
		}
		db := sql.OpenDB(conn)
		db.SetMaxIdleConns(e.cfg.Workers)
		hs = append(hs, &handle{name: name, db: db, conn: conn})
	}
	return hs, nil
}

func closeHandles(hs []*handle) {
	for _, h := range hs {
		_ = h.db.Close()
	}
}

// createAccounts (re)creates the table with cfg.Accounts accounts of
// initialBalance each. It goes through wtcache, so that the TRUNCATE also
// invalidates whatever the cache still holds from an earlier run.
func (e *env) createAccounts(ctx context.Context, db *sql.DB) error {
	t := e.cfg.Table
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS ` + t + ` (
			id      bigint PRIMARY KEY,
			owner   text   NOT NULL,
			balance bigint NOT NULL CHECK (balance >= 0)
		)`,
		`TRUNCATE ` + t,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	_, err := db.ExecContext(ctx, `INSERT INTO `+t+` (id, owner, balance)
		SELECT i, 'customer ' || i, $2 FROM generate_series(1, $1::bigint) AS i`,
		e.cfg.Accounts, initialBalance)
	return err
}

// readBalance is the hot path: a lookup by primary key, which wtcache
// serves from Redis when it can.
func (e *env) readBalance(ctx context.Context, db *sql.DB, id int64) (int64, error) {
	var balance int64
	err := db.QueryRowContext(ctx, `SELECT balance FROM `+e.cfg.Table+` WHERE id = $1`, id).Scan(&balance)
	return balance, err
}

// transfer moves amount between two accounts in one transaction, retrying
// serialization failures and deadlocks. committed is false when the source
// account had too little money (nothing changed).
func (e *env) transfer(ctx context.Context, db *sql.DB, from, to, amount int64) (committed bool, retries int, err error) {
	ctx, span := e.tel.tracer.Start(ctx, transferSpanName, trace.WithAttributes(
		attribute.Int64("bank.from", from), attribute.Int64("bank.to", to), attribute.Int64("bank.amount", amount)))
	defer span.End()
	for attempt := 1; ; attempt++ {
		committed, err = e.transferOnce(ctx, db, from, to, amount)
		if err != nil && retryable(err) && attempt < 5 {
			retries++
			continue
		}
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		return committed, retries, err
	}
}

func (e *env) transferOnce(ctx context.Context, db *sql.DB, from, to, amount int64) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() // a no-op after Commit

	// Lock both rows in id order: two transfers between the same accounts
	// in opposite directions then never wait for each other in a cycle.
	t := e.cfg.Table
	balances := map[int64]int64{}
	for _, id := range []int64{min(from, to), max(from, to)} {
		var b int64
		if err := tx.QueryRowContext(ctx, `SELECT balance FROM `+t+` WHERE id = $1 FOR UPDATE`, id).Scan(&b); err != nil {
			return false, err
		}
		balances[id] = b
	}
	if balances[from] < amount {
		return false, nil // declined; the deferred Rollback releases the locks
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+t+` SET balance = balance - $1 WHERE id = $2`, amount, from); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+t+` SET balance = balance + $1 WHERE id = $2`, amount, to); err != nil {
		return false, err
	}
	// wtcache places its intents in Redis here, commits, then mirrors the
	// two updated rows into Redis. Under FailClosed with Redis unreachable,
	// Commit rolls back and returns an error wrapping ErrCacheUnavailable.
	return true, tx.Commit()
}

// retryable reports a serialization failure or a deadlock.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// traffic counts what the workers of one run did.
type traffic struct {
	reads, transfers, declined, retries, refused, errs atomic.Int64
	// operations that ran while the cache server was down (from start to end)
	readsDown, readsDownTime, transfersDown, refusedDown atomic.Int64
	// per handle, in the order of the handles
	readsBy, transfersBy []atomic.Int64

	errMu     sync.Mutex
	firstErrs []string
}

func (t *traffic) unexpected(err error) {
	t.errs.Add(1)
	t.errMu.Lock()
	if len(t.firstErrs) < 3 {
		t.firstErrs = append(t.firstErrs, err.Error())
	}
	t.errMu.Unlock()
}

// worker runs the mix until stop: 90% balance reads, 10% transfers, on
// random accounts, through one handle.
func (e *env) worker(ctx context.Context, seed uint64, hi int, h *handle, stop *atomic.Bool, tr *traffic) {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	n := int64(e.cfg.Accounts)
	for !stop.Load() && ctx.Err() == nil {
		down := e.proxy.IsDown()
		if rng.IntN(10) != 0 {
			start := time.Now()
			if _, err := e.readBalance(ctx, h.db, 1+rng.Int64N(n)); err != nil {
				tr.unexpected(fmt.Errorf("read via %s: %w", h.name, err))
				continue
			}
			tr.reads.Add(1)
			tr.readsBy[hi].Add(1)
			if down && e.proxy.IsDown() {
				tr.readsDown.Add(1)
				tr.readsDownTime.Add(int64(time.Since(start)))
			}
			continue
		}
		from := 1 + rng.Int64N(n)
		to := 1 + rng.Int64N(n-1)
		if to >= from {
			to++ // a different account
		}
		committed, retries, err := e.transfer(ctx, h.db, from, to, 1+rng.Int64N(maxAmount))
		tr.retries.Add(int64(retries))
		down = down && e.proxy.IsDown() // the whole transfer ran while the cache was down
		switch {
		case errors.Is(err, wtcache.ErrCacheUnavailable):
			tr.refused.Add(1)
			if down {
				tr.refusedDown.Add(1)
			}
		case err != nil:
			tr.unexpected(fmt.Errorf("transfer via %s: %w", h.name, err))
		case !committed:
			tr.declined.Add(1)
		default:
			tr.transfers.Add(1)
			tr.transfersBy[hi].Add(1)
			if down {
				tr.transfersDown.Add(1)
			}
		}
	}
}

// checker proves, while the workers run, that money is neither created
// nor destroyed: it reads every account through plain pgx (not wtcache) in
// a REPEATABLE READ transaction, that is in one consistent snapshot, and
// compares the sum with the initial total.
type checker struct {
	checks, failures atomic.Int64
	mu               sync.Mutex
	firstFailure     string
}

func (e *env) runChecker(ctx context.Context, stop <-chan struct{}, c *checker) {
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		count, sum, err := e.snapshotTotal(ctx)
		c.checks.Add(1)
		if err == nil && count == int64(e.cfg.Accounts) && sum == e.total {
			continue
		}
		c.failures.Add(1)
		c.mu.Lock()
		if c.firstFailure == "" {
			if err != nil {
				c.firstFailure = err.Error()
			} else {
				c.firstFailure = fmt.Sprintf("%d accounts totalling %d", count, sum)
			}
		}
		c.mu.Unlock()
	}
}

func (e *env) snapshotTotal(ctx context.Context) (count, sum int64, err error) {
	tx, err := e.pg.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT balance FROM `+e.cfg.Table)
	if err != nil {
		return 0, 0, err
	}
	for rows.Next() {
		var b int64
		if err := rows.Scan(&b); err != nil {
			return 0, 0, err
		}
		count++
		sum += b
	}
	return count, sum, rows.Err()
}

// outage takes the cache server down at start+after for at least length,
// then lets traffic run for recovery more. The cache stays down until
// shown reports that a write has met the outage (at most 10 s more), so
// that every run shows what the failure policy does with writes: while the
// cache is down, each operation that asks Redis waits for cache_timeout,
// so few operations run and, by chance, none of them may be a transfer.
type outage struct {
	after, length, recovery time.Duration
	shown                   func(*traffic) bool

	downAt, upAt time.Duration // when it happened; 0 before
}

// dirtyWatch follows StatsOf(...).DirtyTables of each handle over a run.
type dirtyWatch struct {
	max    []int64
	events []string // "handle A: 1 dirty table(s) at 1.52s", "handle A: clean again at 3.71s"
}

// runTraffic runs the workers with the checker alongside, for d or, with
// an outage, until its recovery time is over. It prints a progress line
// every second.
func (e *env) runTraffic(ctx context.Context, label string, hs []*handle, d time.Duration, o *outage) (*traffic, *checker, *dirtyWatch) {
	tr := &traffic{readsBy: make([]atomic.Int64, len(hs)), transfersBy: make([]atomic.Int64, len(hs))}
	chk := &checker{}
	dw := &dirtyWatch{max: make([]int64, len(hs))}
	start := time.Now()

	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range e.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.worker(ctx, uint64(i), i%len(hs), hs[i%len(hs)], &stop, tr)
		}()
	}
	stopChecker := make(chan struct{})
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() { defer cwg.Done(); e.runChecker(ctx, stopChecker, chk) }()

	// The conductor: outage schedule, dirty-table watch, progress line.
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastDirty := make([]int64, len(hs))
	nextPrint := start.Add(time.Second)
	for running := true; running; {
		select {
		case <-workersDone:
			running = false
		case <-tick.C:
		}
		now := time.Now()
		el := now.Sub(start)
		switch {
		case o == nil:
			if el >= d {
				stop.Store(true)
			}
		case o.downAt == 0 && el >= o.after:
			e.proxy.Down()
			o.downAt = el
			e.progress.event(fmt.Sprintf("%s  %4.1fs  cache server DOWN", label, el.Seconds()))
		case o.downAt > 0 && o.upAt == 0 && el >= o.downAt+o.length &&
			(o.shown(tr) || el >= o.downAt+o.length+10*time.Second):
			e.proxy.Up()
			o.upAt = el
			note := ""
			if el > o.downAt+o.length+100*time.Millisecond {
				note = " (kept down until a transfer met the outage)"
			}
			e.progress.event(fmt.Sprintf("%s  %4.1fs  cache server back UP%s", label, el.Seconds(), note))
		case o.upAt > 0 && el >= o.upAt+o.recovery:
			stop.Store(true)
		}
		for i, h := range hs {
			n := h.stats().DirtyTables
			dw.max[i] = max(dw.max[i], n)
			if n != lastDirty[i] {
				state := fmt.Sprintf("%d dirty table(s)", n)
				if n == 0 {
					state = "clean again"
				}
				dw.events = append(dw.events, fmt.Sprintf("handle %s: %s at %.2fs", h.name, state, el.Seconds()))
				lastDirty[i] = n
			}
		}
		if now.After(nextPrint) || !running {
			nextPrint = nextPrint.Add(time.Second)
			cache := "cache up  "
			if e.proxy.IsDown() {
				cache = "cache DOWN"
			}
			line := fmt.Sprintf("%s  %4.1fs  %s  reads %7d  transfers %6d  refused %4d  errors %d  dirty A=%d B=%d  checks %3d (%d bad)",
				label, el.Seconds(), cache, tr.reads.Load(), tr.transfers.Load(), tr.refused.Load(), tr.errs.Load(),
				lastDirty[0], lastDirty[len(lastDirty)-1], chk.checks.Load(), chk.failures.Load())
			e.progress.line(line)
		}
	}
	e.proxy.Up() // in case the run was interrupted
	close(stopChecker)
	cwg.Wait()
	e.progress.done()
	return tr, chk, dw
}

// verify checks, once the workers have stopped, that the total is intact
// through plain pgx and that every account read through each handle (from
// Redis where cached) equals PostgreSQL: the cache has converged.
func (e *env) verify(ctx context.Context, hs []*handle, v *verdicts) error {
	// A handle that wrote while Redis was unreachable (FallBack) reads
	// from PostgreSQL until it has invalidated the tables in Redis again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		dirty := int64(0)
		for _, h := range hs {
			dirty += h.stats().DirtyTables
		}
		if dirty == 0 || time.Now().After(deadline) {
			v.check(dirty == 0, "every handle repaired: DirtyTables back to 0")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	truth := map[int64]int64{}
	var sum int64
	rows, err := e.pg.Query(ctx, `SELECT id, balance FROM `+e.cfg.Table)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, b int64
		if err := rows.Scan(&id, &b); err != nil {
			return err
		}
		truth[id] = b
		sum += b
	}
	if err := rows.Err(); err != nil {
		return err
	}
	v.check(len(truth) == e.cfg.Accounts && sum == e.total,
		"through plain pgx: %d accounts totalling %d (want %d)", len(truth), sum, e.total)

	for _, h := range hs {
		before := h.stats()
		var wsum int64
		var differ []string
		for id := int64(1); id <= int64(e.cfg.Accounts); id++ {
			b, err := e.readBalance(ctx, h.db, id)
			if err != nil {
				return fmt.Errorf("reading account %d through handle %s: %w", id, h.name, err)
			}
			wsum += b
			if b != truth[id] {
				if len(differ) < 3 {
					differ = append(differ, fmt.Sprintf("account %d: wtcache %d, PostgreSQL %d", id, b, truth[id]))
				} else if len(differ) == 3 {
					differ = append(differ, "...")
				}
			}
		}
		hits := h.stats().Hits - before.Hits
		v.check(len(differ) == 0 && wsum == e.total,
			"through wtcache, handle %s: every account equals PostgreSQL, total %d (%d of %d reads from Redis)",
			h.name, wsum, hits, e.cfg.Accounts)
		for _, d := range differ {
			fmt.Fprintf(e.cfg.Out, "         %s\n", d)
		}
	}
	return nil
}

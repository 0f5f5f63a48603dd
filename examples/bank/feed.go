package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/wtcache/wtcache"
)

// feedMaxLag is the bound the demo asks of the change feed.
const feedMaxLag = time.Second

// feedPhase is phase 3: a support engineer fixes two balances in psql (a
// transfer made with plain pgx, not through wtcache). A handle with the
// change feed (cache_feed=on) serves the new balances within milliseconds;
// a handle without it keeps serving the old ones until their TTL. It needs
// a server with wal_level=logical; elsewhere it says so and is skipped.
func (e *env) feedPhase(ctx context.Context, v *verdicts) error {
	out := e.cfg.Out
	section(out, "Phase 3: a balance fixed in psql, outside wtcache (the change feed)")
	var level string
	if err := e.pg.QueryRow(ctx, `SHOW wal_level`).Scan(&level); err != nil {
		return err
	}
	if level != "logical" {
		fmt.Fprintf(out, "  skipped: the change feed reads PostgreSQL's log, which needs wal_level=logical (this server: %s)\n", level)
		return nil
	}
	plain := sql.OpenDB(stdlib.GetConnector(*e.pgcfg))
	defer plain.Close()
	if err := wtcache.SetupFeed(ctx, plain, ""); err != nil {
		fmt.Fprintf(out, "  skipped: setting up the change feed needs a superuser: %v\n", err)
		return nil
	}
	open := func(feed bool) (*sql.DB, *handle, error) {
		// The handle without the feed keeps its entries under a key prefix
		// of its own, as a deployment without the feed would: sharing the
		// Redis keys of a follower, it would get its invalidations too.
		prefix := "bank-feed"
		if !feed {
			prefix = "bank-nofeed"
		}
		conn, err := wtcache.NewConnector(stdlib.GetConnector(*e.pgcfg), e.rdb,
			wtcache.WithFeed(feed), wtcache.WithFeedMaxLag(feedMaxLag), wtcache.WithKeyPrefix(prefix),
			wtcache.WithMeterProvider(e.tel.mp))
		if err != nil {
			return nil, nil, err
		}
		db := sql.OpenDB(conn)
		name := "without feed"
		if feed {
			name = "with feed"
		}
		return db, &handle{name: name, db: db, conn: conn}, nil
	}
	fed, hf, err := open(true)
	if err != nil {
		return err
	}
	defer fed.Close()
	unfed, hu, err := open(false)
	if err != nil {
		return err
	}
	defer unfed.Close()
	if err := fed.PingContext(ctx); err != nil {
		if errors.Is(err, wtcache.ErrFeedUnavailable) {
			fmt.Fprintf(out, "  skipped: %v\n", err)
			return nil
		}
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if s, _ := wtcache.FeedStatsOf(hf.conn); s.Fresh {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the change feed did not start within 10 s")
		}
	}

	// The handle without the feed may hold entries of an earlier run under
	// its prefix (the table was refilled since): it starts clean.
	if err := wtcache.Invalidate(ctx, unfed, e.cfg.Table); err != nil {
		return err
	}
	const from, to, amount = int64(3), int64(4), int64(10)
	before := map[*handle]int64{}
	for _, h := range []*handle{hf, hu} {
		for range 3 { // cached, then served from Redis
			b, err := e.readBalance(ctx, h.db, from)
			if err != nil {
				return err
			}
			before[h] = b
		}
	}
	fmt.Fprintf(out, "  both handles serve account %d from Redis: %d\n", from, before[hf])
	fmt.Fprintf(out, "  psql> BEGIN; UPDATE %s SET balance = balance - %d WHERE id = %d; ... + %d WHERE id = %d; COMMIT;\n",
		e.cfg.Table, amount, from, amount, to)
	tx, err := e.pg.Begin(ctx)
	if err != nil {
		return err
	}
	for _, q := range []struct{ id, delta int64 }{{from, -amount}, {to, amount}} {
		if _, err := tx.Exec(ctx, `UPDATE `+e.cfg.Table+` SET balance = balance + $2 WHERE id = $1`, q.id, q.delta); err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	committed := time.Now()
	want := before[hf] - amount
	var seen time.Duration
	for {
		b, err := e.readBalance(ctx, fed, from)
		if err != nil {
			return err
		}
		if b == want {
			seen = time.Since(committed)
			break
		}
		if time.Since(committed) > 5*time.Second {
			break
		}
		time.Sleep(time.Millisecond)
	}
	s, _ := wtcache.FeedStatsOf(hf.conn)
	fmt.Fprintf(out, "  with cache_feed=on:  %d after %v (follower lag at its last heartbeat %v)\n", want, seen.Round(100*time.Microsecond), s.Lag.Round(100*time.Microsecond))
	v.check(seen > 0 && seen <= feedMaxLag, "the fix made in psql reached the cache within cache_feed_max_lag (%v): %v", feedMaxLag, seen.Round(100*time.Microsecond))
	time.Sleep(feedMaxLag)
	stale, err := e.readBalance(ctx, unfed, from)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  with cache_feed=off: %d, %v after the commit, and until the entry's TTL (cache_ttl, 10m by default)\n",
		stale, time.Since(committed).Round(time.Millisecond))
	v.check(stale == before[hu], "without the feed the old balance is still served (%d): what the feed is for", stale)
	// Put the handle without the feed right, as an application without it
	// would have to.
	if err := wtcache.Invalidate(ctx, unfed, e.cfg.Table, from, to); err != nil {
		return err
	}
	return e.verify(ctx, []*handle{hf, hu}, v)
}

package wtcache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Change-feed tests besides the checker: the first connection's checks,
// the echo of wtcache's own writes, catalog changes made elsewhere, and a
// takeover inside one process.

// feedOpen opens a wtcache handle with the feed on, as user (the URL's own
// when ""), with extra parameters.
func feedOpen(t *testing.T, e itEnv, prefix, user string, extra ...string) (*sql.DB, *connector) {
	t.Helper()
	env := e
	if user != "" {
		u, err := url.Parse(e.dbURL)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.User(user)
		env.dbURL = u.String()
	}
	return env.open(t, prefix, append([]string{"cache_feed=on", "cache_feed_max_lag=" + feedTestLag.String()}, extra...)...)
}

func waitFresh(t *testing.T, c *connector) {
	t.Helper()
	waitFor(t, 10*time.Second, "the feed to be fresh", func() bool { s, _ := FeedStatsOf(c); return s.Fresh })
}

// TestFeedFirstConnection: a server or role that cannot give the feed is a
// clear error at the first connection, and at every one after it; never a
// silent downgrade.
func TestFeedFirstConnection(t *testing.T) {
	e := feedServices(t)
	p := e.plain(t)
	ctx := context.Background()
	mustExec(t, p, `DROP ROLE IF EXISTS wtc_norepl; CREATE ROLE wtc_norepl LOGIN`)
	mustExec(t, p, `DROP PUBLICATION IF EXISTS wtc_some; DROP TABLE IF EXISTS wtc_pub_one; CREATE TABLE wtc_pub_one (id int PRIMARY KEY); CREATE PUBLICATION wtc_some FOR TABLE wtc_pub_one`)
	t.Cleanup(func() {
		mustExec(t, p, `DROP PUBLICATION IF EXISTS wtc_some; DROP TABLE IF EXISTS wtc_pub_one; DROP ROLE IF EXISTS wtc_norepl; ALTER EVENT TRIGGER wtcache_ddl ENABLE ALWAYS`)
	})
	for _, tc := range []struct {
		name, user string
		extra      []string
		before     string
		want       string
	}{
		{name: "role without REPLICATION", user: "wtc_norepl", want: `role "wtc_norepl" has neither the REPLICATION attribute nor superuser`},
		{name: "no publication", extra: []string{"cache_feed_publication=wtc_none"}, want: `no publication "wtc_none"`},
		{name: "publication of some tables", extra: []string{"cache_feed_publication=wtc_some"}, want: `publication "wtc_some" does not give every change`},
		{name: "event trigger disabled", before: `ALTER EVENT TRIGGER wtcache_ddl DISABLE`, want: "no event trigger wtcache_ddl enabled ALWAYS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != "" {
				mustExec(t, p, tc.before)
				defer mustExec(t, p, `ALTER EVENT TRIGGER wtcache_ddl ENABLE ALWAYS`)
			}
			db, _ := feedOpen(t, e, "", tc.user, tc.extra...)
			for i := range 2 {
				err := db.PingContext(ctx)
				if !errors.Is(err, ErrFeedUnavailable) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("connection %d: %v, want ErrFeedUnavailable saying %q", i+1, err, tc.want)
				}
			}
		})
	}
}

// TestFeedKeepsOwnWritesHits: a write through wtcache mirrors its row, and
// its echo in the feed keeps the image: reading the row back after the echo
// has arrived is still a hit, about as often as without the feed.
func TestFeedKeepsOwnWritesHits(t *testing.T) {
	e := feedServices(t)
	p := e.plain(t)
	table := fmt.Sprintf("feed_echo_%d", os.Getpid())
	mustExec(t, p, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO `+table+` SELECT g, 0 FROM generate_series(1, 10) g`)
	t.Cleanup(func() { mustExec(t, p, `DROP TABLE IF EXISTS `+table) })
	rate := func(feed bool) float64 {
		var db *sql.DB
		var c *connector
		if feed {
			db, c = feedOpen(t, e, "", "", "cache_tables="+table)
			if err := db.Ping(); err != nil {
				t.Fatal(err)
			}
			waitFresh(t, c)
		} else {
			db, c = e.open(t, "", "cache_tables="+table)
		}
		const n = 100
		hits := 0
		for i := range n {
			id := 1 + i%10
			if _, err := db.Exec(`UPDATE `+table+` SET v = v + 1 WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
			time.Sleep(15 * time.Millisecond) // the echo comes back meanwhile
			before := rpStats(c).Hits
			var v int64
			if err := db.QueryRow(`SELECT v FROM `+table+` WHERE id = $1`, id).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if rpStats(c).Hits > before {
				hits++
			}
		}
		if feed {
			s, _ := FeedStatsOf(c)
			t.Logf("feed stats: %+v", s)
		}
		return float64(hits) / n
	}
	off, on := rate(false), rate(true)
	t.Logf("read after write through wtcache: hit rate %.2f without the feed, %.2f with it", off, on)
	if on < 0.9 || on < off-0.05 {
		t.Errorf("with the feed, reads after wtcache's own writes hit %.2f of the time (%.2f without): the echo turns mirrored rows into misses", on, off)
	}
}

// TestFeedCatalogElsewhere: privilege, security and schema changes made
// outside wtcache (psql, a migration) reach a process within the bound:
// from then on PostgreSQL answers the role, not the cache.
func TestFeedCatalogElsewhere(t *testing.T) {
	e := feedServices(t)
	p := e.plain(t)
	table := fmt.Sprintf("feed_cat_%d", os.Getpid())
	setup := `DROP TABLE IF EXISTS ` + table + `;
		DROP ROLE IF EXISTS wtc_feedrole; DROP ROLE IF EXISTS wtc_feedgrp;
		CREATE ROLE wtc_feedgrp; CREATE ROLE wtc_feedrole LOGIN REPLICATION IN ROLE wtc_feedgrp;
		CREATE TABLE ` + table + ` (id bigint PRIMARY KEY, v bigint NOT NULL);
		INSERT INTO ` + table + ` SELECT g, g FROM generate_series(1, 5) g;
		GRANT SELECT, UPDATE ON ` + table + ` TO wtc_feedgrp;`
	t.Cleanup(func() {
		mustExec(t, p, `DROP TABLE IF EXISTS `+table+`; DROP OWNED BY wtc_feedrole; DROP OWNED BY wtc_feedgrp; DROP ROLE IF EXISTS wtc_feedrole; DROP ROLE IF EXISTS wtc_feedgrp`)
	})
	for _, tc := range []struct {
		name   string
		change string
		// gone reports whether the read shows the change: PostgreSQL's
		// answer, not the cached row.
		gone func(vals []any, err error) bool
	}{
		{"REVOKE on the table", `REVOKE SELECT ON ` + table + ` FROM wtc_feedgrp`, func(_ []any, err error) bool { return isPermissionDenied(err) }},
		{"role membership revoked", `REVOKE wtc_feedgrp FROM wtc_feedrole`, func(_ []any, err error) bool { return isPermissionDenied(err) }},
		{"row-level security enabled", `ALTER TABLE ` + table + ` ENABLE ROW LEVEL SECURITY`, func(_ []any, err error) bool { return errors.Is(err, sql.ErrNoRows) }},
		{"column added", `ALTER TABLE ` + table + ` ADD COLUMN extra int DEFAULT 7`, func(vals []any, err error) bool { return err == nil && len(vals) == 3 }},
		{"column type changed", `ALTER TABLE ` + table + ` ALTER COLUMN v TYPE text`, func(vals []any, err error) bool {
			_, isText := vals[1].(string)
			return err == nil && isText
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustExec(t, p, setup)
			db, c := feedOpen(t, e, "", "wtc_feedrole", "cache_tables="+table)
			read := func() ([]any, error) {
				rows, err := db.Query(`SELECT * FROM `+table+` WHERE id = $1`, 2)
				if err != nil {
					return nil, err
				}
				defer rows.Close()
				cols, _ := rows.Columns()
				if !rows.Next() {
					if err := rows.Err(); err != nil {
						return nil, err
					}
					return nil, sql.ErrNoRows
				}
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				err = rows.Scan(ptrs...)
				return vals, err
			}
			if _, err := read(); err != nil {
				t.Fatal(err)
			}
			waitFresh(t, c)
			for range 3 {
				read()
			}
			c.settle()
			before := rpStats(c).Hits
			if _, err := read(); err != nil || rpStats(c).Hits == before {
				t.Fatalf("warm-up: %v, hits %d -> %d", err, before, rpStats(c).Hits)
			}
			mustExec(t, p, tc.change)
			start := time.Now()
			for {
				vals, err := read()
				if tc.gone(vals, err) {
					break
				}
				if time.Since(start) > 5*time.Second {
					t.Fatalf("the change has not reached the process after 5 s: %v, %v", vals, err)
				}
				time.Sleep(2 * time.Millisecond)
			}
			took := time.Since(start)
			t.Logf("%s: reached the process after %v (bound %v)", tc.name, took.Round(time.Millisecond), feedTestLag)
			if took > feedTestLag+100*time.Millisecond {
				t.Errorf("%s reached the process after %v, want within cache_feed_max_lag (%v)", tc.name, took, feedTestLag)
			}
		})
	}
}

func isPermissionDenied(err error) bool {
	return err != nil && strings.Contains(err.Error(), "42501")
}

// TestFeedTakeover: two handles in one process share the feed; when the
// follower's handle closes, the other takes over within the lease and hits
// come back.
func TestFeedTakeover(t *testing.T) {
	e := feedServices(t)
	p := e.plain(t)
	table := fmt.Sprintf("feed_take_%d", os.Getpid())
	mustExec(t, p, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO `+table+` SELECT g, 0 FROM generate_series(1, 5) g`)
	t.Cleanup(func() { mustExec(t, p, `DROP TABLE IF EXISTS `+table) })
	prefix := fmt.Sprintf("take%d-%d", time.Now().UnixNano()%1e9, prefixSeq.Add(1))
	db1, c1 := feedOpen(t, e, prefix, "", "cache_tables="+table)
	db2, c2 := feedOpen(t, e, prefix, "", "cache_tables="+table)
	for _, db := range []*sql.DB{db1, db2} {
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
	}
	waitFresh(t, c1)
	waitFresh(t, c2)
	leader, other, otherDB := c1, c2, db2
	if s, _ := FeedStatsOf(c2); s.Leader {
		leader, other, otherDB = c2, c1, db1
	} else if s, _ := FeedStatsOf(c1); !s.Leader {
		t.Fatal("neither handle follows the log")
	}
	closed := time.Now()
	_ = leader.Close()
	waitFor(t, feedLease+2*time.Second, "the other handle to take over", func() bool { s, _ := FeedStatsOf(other); return s.Leader && s.Fresh })
	took := time.Since(closed)
	t.Logf("takeover and a fresh claim %v after the follower's handle closed (lease %v)", took.Round(time.Millisecond), feedLease)
	mustExec(t, p, `UPDATE `+table+` SET v = 9 WHERE id = 1`)
	waitFor(t, feedTestLag, "the new follower to apply an outside write", func() bool {
		var v int64
		return otherDB.QueryRow(`SELECT v FROM `+table+` WHERE id = $1`, 1).Scan(&v) == nil && v == 9
	})
	var slots int
	if err := p.QueryRow(`SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'wtcache\_%' AND NOT active`).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if slots != 0 {
		t.Errorf("%d inactive wtcache slots after the takeover", slots)
	}
}

// BenchmarkFeedHeartbeat times the follower's heartbeat statement (a
// message written into the log and the role-membership fingerprint)
// against a bare SELECT 1 in the same loop: the catalog check on a timer
// that stands in for an event trigger on role changes.
func BenchmarkFeedHeartbeat(b *testing.B) {
	e := feedServices(b)
	p := e.plain(b)
	p.SetMaxOpenConns(1)
	ctx := context.Background()
	var tHB, tBase time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		var lsn, fp string
		if err := p.QueryRowContext(ctx, `SELECT pg_logical_emit_message(false, 'wtcache.bench', $1::text)::text, `+roleFingerprint, "x").Scan(&lsn, &fp); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		var one int
		if err := p.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
			b.Fatal(err)
		}
		tHB, tBase = tHB+t1.Sub(t0), tBase+time.Since(t1)
	}
	b.ReportMetric(float64(tHB)/float64(tBase), "heartbeat/select1")
}

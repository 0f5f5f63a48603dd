package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9/push"

	"github.com/wtcache/wtcache/internal/faultproxy"
	"github.com/wtcache/wtcache/internal/proto"
	"github.com/wtcache/wtcache/internal/rowcodec"
)

// nearOpen opens a handle with the near cache on for wt_accounts and waits
// until its tracking connection serves.
func nearOpen(t testing.TB, e itEnv, prefix string, extra ...string) (*sql.DB, *connector) {
	t.Helper()
	return nearOpenWith(t, e, prefix, nil, extra...)
}

func nearOpenWith(t testing.TB, e itEnv, prefix string, opts []Option, extra ...string) (*sql.DB, *connector) {
	t.Helper()
	db, c := e.openWith(t, prefix, opts, append([]string{"cache_local=on", "cache_local_tables=wt_accounts"}, extra...)...)
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitNearServing(t, c)
	return db, c
}

func waitNearServing(t testing.TB, c *connector) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.near == nil || !c.near.fresh(c.near.now()) {
		if time.Now().After(deadline) {
			t.Fatal("the near cache never started serving")
		}
		c.near.want(c.near.now())
		time.Sleep(time.Millisecond)
	}
}

// nearHits reads row id until the near cache answers it (a fill, a Redis
// hit that stores it, then near hits), and fails if it never does.
func nearWarm(t testing.TB, db *sql.DB, c *connector, id int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		h := c.near.hits.Load()
		var b int64
		if err := db.QueryRow("SELECT balance FROM wt_accounts WHERE id = $1", id).Scan(&b); err != nil {
			t.Fatal(err)
		}
		if c.near.hits.Load() > h {
			return
		}
		c.settle()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("row %d never served from the near cache", id)
}

// TestNearServesAndWritesDrop: rows are served from the process's memory,
// and a write through any handle of the process is read back at once by
// every handle (G1 within the process), for every kind of write.
func TestNearServesAndWritesDrop(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	// The tracking connections are slow (30 ms each way) and the bound
	// loose: only the drops a write makes before it returns can keep the
	// other handle from serving the old row.
	px, err := faultproxy.Start(e.rdb.Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	px.SetLatency(30 * time.Millisecond)
	slow := []Option{func(c *config) { c.localAddr = px.Addr() }}
	prefix := fmt.Sprintf("near%d", time.Now().UnixNano())
	a, ca := nearOpenWith(t, e, prefix, slow, "cache_local_max_stale=2s")
	b, cb := nearOpenWith(t, e, prefix, slow, "cache_local_max_stale=2s")
	ctx := context.Background()
	writes := []func(id int, v int64) error{
		func(id int, v int64) error {
			_, err := a.ExecContext(ctx, "UPDATE wt_accounts SET balance = $1 WHERE id = $2", v, id)
			return err
		},
		func(id int, v int64) error { // not by key: widened
			_, err := a.ExecContext(ctx, "UPDATE wt_accounts SET balance = $1 WHERE owner = $2", v, fmt.Sprintf("owner %d", id))
			return err
		},
		func(id int, v int64) error {
			tx, err := a.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = $1 WHERE id = $2", v, id); err != nil {
				return err
			}
			return tx.Commit()
		},
		func(id int, v int64) error { // Invalidate after a write the cache did not see
			if _, err := e.plain(t).ExecContext(ctx, "UPDATE wt_accounts SET balance = $1 WHERE id = $2", v, id); err != nil {
				return err
			}
			return Invalidate(ctx, a, "wt_accounts", id)
		},
	}
	v := int64(1000)
	for round := 0; round < 3; round++ {
		for wi, w := range writes {
			id := 1 + wi
			nearWarm(t, a, ca, id)
			nearWarm(t, b, cb, id)
			v++
			if err := w(id, v); err != nil {
				t.Fatal(err)
			}
			for name, db := range map[string]*sql.DB{"a": a, "b": b} {
				if got := balance(t, db, id); got != v {
					t.Fatalf("round %d, write %d: handle %s read %d after the write of %d returned", round, wi, name, got, v)
				}
			}
		}
	}
	if s := ca.near.stats(); s.Hits == 0 || s.Stored == 0 {
		t.Fatalf("near stats %+v", s)
	}
}

// TestNearInvalidatedByRedis: a change to a row's entry made by another
// process (here, straight in Redis) removes it from the near cache, and so
// does FLUSHDB.
func TestNearInvalidatedByRedis(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	prefix := fmt.Sprintf("neari%d", time.Now().UnixNano())
	a, ca := nearOpen(t, e, prefix)
	ctx := context.Background()
	rows := func() int { return ca.near.stats().Rows }
	// On a loaded machine a late heartbeat may empty the near cache
	// between the warming hit and the count (the fence doing its work):
	// warm again then.
	for try := 0; try < 20 && (try == 0 || rows() == 0); try++ {
		nearWarm(t, a, ca, 1)
	}
	keys, err := e.rdb.Keys(ctx, "{"+prefix+":*}:v:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no image keys: %v %v", keys, err)
	}
	if rows() == 0 {
		t.Fatal("nothing in the near cache")
	}
	e.rdb.Del(ctx, keys...)
	waitFor(t, time.Second, "the invalidation", func() bool { return rows() == 0 })
	inv := ca.near.invalidations.Load()
	if inv == 0 {
		t.Fatal("no invalidation counted")
	}
}

// TestNearFenceSilence: when the tracking connection goes silent, the
// near cache stops serving within cache_local_max_stale, and serves again
// once it answers.
func TestNearFenceSilence(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	px, err := faultproxy.Start(e.rdb.Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	prefix := fmt.Sprintf("nearf%d", time.Now().UnixNano())
	a, ca := e.openWith(t, prefix, []Option{func(c *config) { c.localAddr = px.Addr() }},
		"cache_local=on", "cache_local_tables=wt_accounts", "cache_local_max_stale=20ms")
	if err := a.Ping(); err != nil {
		t.Fatal(err)
	}
	waitNearServing(t, ca)
	nearWarm(t, a, ca, 1)
	px.Hang()
	began := time.Now()
	waitFor(t, time.Second, "the fence", func() bool { return !ca.near.fresh(ca.near.now()) })
	if d := time.Since(began); d > 20*time.Millisecond+10*time.Millisecond {
		t.Errorf("stopped serving %v after the silence began (max stale 20ms)", d)
	}
	h := ca.near.hits.Load()
	balance(t, a, 1)
	if ca.near.hits.Load() != h {
		t.Fatal("a near hit was served while the tracking connection was silent")
	}
	px.Up()
	waitNearServing(t, ca)
	nearWarm(t, a, ca, 1)
}

// TestNearClosesEverything: Close leaves no goroutine of the near cache.
func TestNearClosesEverything(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		prefix := fmt.Sprintf("nearc%d", time.Now().UnixNano())
		db, c := nearOpen(t, e, prefix)
		nearWarm(t, db, c, 1)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*time.Second, "goroutines to end", func() bool {
		return runtime.NumGoroutine() <= before
	})
	buf := make([]byte, 1<<20)
	if s := string(buf[:runtime.Stack(buf, true)]); strings.Contains(s, "nearCache") {
		t.Fatalf("a near cache goroutine outlived Close:\n%s", s)
	}
}

// TestNearReservations: a fetch stores its rows only if nothing touched
// them between the reservation (before the MGET) and the reply: a local
// write, an invalidation from Redis, a new tracking connection.
func TestNearReservations(t *testing.T) {
	const state, k = "{p:d:s.t}:g", "{p:d:s.t}:r:1"
	row := &rowcodec.Row{}
	pr := func() *proto.PeekResult {
		return &proto.PeekResult{Gen: "g1", Incarnation: "i", Seq: "1", Rows: []proto.PeekRow{{Hit: true, Image: "img"}}}
	}
	cases := map[string]func(n *nearCache){
		"nothing":           func(*nearCache) {},
		"local write":       func(n *nearCache) { nearDrop([]string{k}) },
		"invalidated image": func(n *nearCache) { n.invalidate("{p:d:s.t}:v:1") },
		"invalidated state": func(n *nearCache) { n.invalidate(state) },
		"FLUSHDB": func(n *nearCache) {
			_ = invalidateHandler{n}.HandlePushNotification(context.Background(), push.NotificationHandlerContext{}, []any{"invalidate", nil})
		},
		"new connection":      func(n *nearCache) { n.connGen.Add(1); n.lose("test"); n.answered(n.connGen.Load(), n.now()) },
		"table-wide local op": func(n *nearCache) { nearDrop(nil, state) },
	}
	for name, between := range cases {
		t.Run(name, func(t *testing.T) {
			n := newNearCache("p", 1<<20, time.Second, func(s string) string { return s })
			nearRegister(n)
			defer nearUnregister(n)
			n.connGen.Store(1)
			n.answered(1, n.now())
			tok, sess := n.reserve(state, []string{k})
			if tok == 0 {
				t.Fatal("no reservation while serving")
			}
			between(n)
			n.fulfill(tok, sess, state, []string{k}, pr(), []*rowcodec.Row{row}, true)
			_, got := n.peek(state, "", []string{k}, nil, make([]*rowcodec.Row, 1), n.now())
			if _, byBytes := n.peek(state, "", nil, []byte(k), make([]*rowcodec.Row, 1), n.now()); byBytes != got {
				t.Fatalf("the key as bytes: served %v, as a string %v", byBytes, got)
			}
			if want := name == "nothing"; got != want {
				t.Fatalf("served %v, want %v", got, want)
			}
			for i := range n.shards {
				if len(n.shards[i].pend) != 0 {
					t.Fatalf("a reservation outlived its fetch")
				}
			}
		})
	}
}

// TestNearEntryLifetime: an entry is served only under the generation and
// epoch it was a hit under, only while the fence holds, and the cache stays
// within its size.
func TestNearEntryLifetime(t *testing.T) {
	const state = "{p:d:s.t}:g"
	n := newNearCache("p", 16*4096, 20*time.Millisecond, func(s string) string { return s })
	n.connGen.Store(1)
	n.answered(1, n.now())
	store := func(k, gen, epoch string) {
		tok, sess := n.reserve(state, []string{k})
		p := &proto.PeekResult{Gen: gen, Epoch: epoch, Rows: []proto.PeekRow{{Hit: true, Image: strings.Repeat("x", 1000)}}}
		n.fulfill(tok, sess, state, []string{k}, p, []*rowcodec.Row{{}}, true)
	}
	serves := func(k, epoch string) bool {
		_, ok := n.peek(state, epoch, []string{k}, nil, make([]*rowcodec.Row, 1), n.now())
		if _, byBytes := n.peek(state, epoch, nil, []byte(k), make([]*rowcodec.Row, 1), n.now()); byBytes != ok {
			t.Fatalf("%s as bytes: served %v, as a string %v", k, byBytes, ok)
		}
		return ok
	}
	// A heartbeat before each check: a slow run (the race detector, a
	// loaded machine) must not lapse the 20 ms fence before the sleep
	// below means it to.
	beat := func() { n.answered(n.connGen.Load(), n.now()) }
	beat()
	store("{p:d:s.t}:r:1", "g1", "e1")
	beat()
	if !serves("{p:d:s.t}:r:1", "e1") || serves("{p:d:s.t}:r:1", "e2") {
		t.Fatal("epoch not respected")
	}
	beat()
	store("{p:d:s.t}:r:2", "g2", "e1") // the table's generation moved
	beat()
	if serves("{p:d:s.t}:r:1", "e1") || !serves("{p:d:s.t}:r:2", "e1") {
		t.Fatal("generation not respected")
	}
	time.Sleep(30 * time.Millisecond) // no heartbeat answered since
	if serves("{p:d:s.t}:r:2", "e1") {
		t.Fatal("served after the fence lapsed")
	}
	// The answer that ends the silence empties the cache; the next one
	// serves again.
	n.answered(n.connGen.Load(), n.now())
	if n.stats().Rows != 0 || n.fresh(n.now()) {
		t.Fatal("a silence longer than the bound did not empty the cache")
	}
	n.answered(n.connGen.Load(), n.now())
	for i := 0; i < 2000; i++ {
		n.answered(n.connGen.Load(), n.now())
		store(fmt.Sprintf("{p:d:s.t}:r:%d", i), "g2", "e1")
	}
	if s := n.stats(); s.Bytes > 16*4096 || s.Evicted == 0 {
		t.Fatalf("size not bounded: %+v", s)
	}
}

// TestNearTelemetry: a near hit is an outcome of its own on the
// operation's span and in wtcache.operations; the near cache's counters
// are metrics.
func TestNearTelemetry(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	r := newRig()
	db, c := e.openWith(t, "", r.opts, "cache_local=on", "cache_local_tables=wt_accounts")
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	waitNearServing(t, c)
	nearWarm(t, db, c, 1)
	r.reset()
	balance(t, db, 1)
	if got := r.tree(t, "SELECT wt_accounts", attrOutcome); !strings.Contains(got, "wtcache.outcome=near_hit") || strings.Contains(got, SpanCacheLookup) {
		t.Fatalf("span of a near hit:\n%s", got)
	}
	if n := r.counter(t, "wtcache.operations", map[string]string{"wtcache.outcome": "near_hit"}); n < 2 {
		t.Fatalf("wtcache.operations near_hit = %d", n)
	}
	if n := r.counter(t, "wtcache.near.hits", nil); n < 2 {
		t.Fatalf("wtcache.near.hits = %d", n)
	}
	keys, _ := e.rdb.Keys(context.Background(), "{"+c.cfg.prefix+":*").Result()
	e.rdb.Del(context.Background(), keys...)
	waitFor(t, time.Second, "the flush", func() bool { return r.counter(t, "wtcache.near.invalidations", nil) > 0 })
}

// TestLookupRowsStayOwn: a lookup's rows are the caller's until it closes
// them: lookups answered on the same connection meanwhile (near and Redis
// hits, one after another on one *sql.Conn) never change rows still open,
// and rows closed early are not read again.
func TestLookupRowsStayOwn(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	mustExec(t, e.plain(t), "UPDATE wt_accounts SET balance = id * 7")
	for _, near := range []bool{false, true} {
		t.Run(fmt.Sprintf("near=%v", near), func(t *testing.T) {
			var db *sql.DB
			var c *connector
			if near {
				db, c = nearOpen(t, e, "")
				for id := 1; id <= 10; id++ {
					nearWarm(t, db, c, id)
				}
			} else {
				db, c = e.open(t, "")
				for id := 1; id <= 10; id++ {
					warm(t, db, c, id)
				}
			}
			ctx := context.Background()
			cn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer cn.Close()
			h0 := c.hits.Load()
			// Open rows for ids 1..10 on one connection, each left open
			// while the next lookups run; then read them all.
			var open []*sql.Rows
			defer func() { // before the connection closes, even on a failure
				for _, rows := range open {
					rows.Close()
				}
			}()
			for id := 1; id <= 10; id++ {
				rows, err := cn.QueryContext(ctx, "SELECT id, balance FROM wt_accounts WHERE id = $1", id)
				if err != nil {
					t.Fatal(err)
				}
				open = append(open, rows)
				if id%3 == 0 {
					// Closed at once: its rows may serve the next lookup.
					closed := open[len(open)-1]
					open = open[:len(open)-1]
					if err := closed.Close(); err != nil {
						t.Fatal(err)
					}
					if closed.Next() {
						t.Fatal("closed rows gave a row")
					}
				}
			}
			if c.hits.Load()-h0 != 10 {
				t.Fatalf("%d hits, want 10 (the lookups must be answered by the cache)", c.hits.Load()-h0)
			}
			for _, rows := range open {
				var id, b int64
				if !rows.Next() {
					t.Fatal("an open lookup lost its row")
				}
				if err := rows.Scan(&id, &b); err != nil {
					t.Fatal(err)
				}
				if b != id*7 {
					t.Fatalf("row %d read %d, want %d: another lookup's answer", id, b, id*7)
				}
				if rows.Next() {
					t.Fatal("a second row")
				}
				if err := rows.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

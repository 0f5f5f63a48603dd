package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/faultproxy"
	"github.com/wtcache/wtcache/internal/rowcodec"
)

// The consistency checker (design/consistency.md, "How to test it").
//
// Writers, transferers and readers work on a few hot rows through several
// *sql.DB handles that share one Redis, while faults are injected: Redis
// behind a fault proxy cut and slowed beyond cache_timeout, the test's own
// redis-server killed with SIGKILL and restarted empty, FLUSHALL/FLUSHDB,
// PostgreSQL backends terminated, PostgreSQL behind a fault proxy cut.
// Every operation is recorded with its call and return times; afterwards
//
//   - every write stores a unique op id in its row, and a trigger logs each
//     committed change (op id, value left) in a table wtcache does not
//     cache: the log settles writes whose outcome the client could not
//     know (lost connection), gives every write its exact new value, and
//     checks G3 (a write reported successful is in the log; one refused
//     with ErrCacheUnavailable or rolled back is not);
//   - each row's history must be linearizable (G1, G2), checked with
//     porcupine against a register changed by additions; a write whose
//     outcome the log cannot settle may or may not have taken effect, and
//     one cut off by a network error may take effect at any later time;
//   - the final value of every row, read from PostgreSQL, ends each
//     history, and the transfers must keep the total balance (G3);
//   - once the writers are quiet, the faults healed and the intent lifetime
//     passed, every reachable image in Redis must decode to the row in
//     PostgreSQL, and a fresh read through every handle must return it (G4).
//
// The short form runs in go test (about a minute); WTCACHE_CHAOS_LONG=1
// runs the long form (make chaos). WTCACHE_CHAOS_OUT names a directory for
// the visualizations of failed checks (default: a new temporary directory,
// kept on failure).

// chaosHandleSpec says how one handle reaches Redis and PostgreSQL.
type chaosHandleSpec struct {
	redisProxied bool // through the Redis fault proxy (else straight to the server)
	pgProxied    bool // through the PostgreSQL fault proxy
}

type chaosOptions struct {
	failure      string // cache_failure: fail or fallback
	handles      []chaosHandleSpec
	counters     int
	accounts     int
	writers      int // counter incrementers
	transferers  int
	readers      int
	faults       []string // fault phases, in order; each lasts phaseDur
	phaseDur     time.Duration
	checkTimeout time.Duration
	broken       bool // BreakProtocol on every connector
	brokenFills  bool // breakFills on every connector
	feed         bool // cache_feed=on on every handle
}

const (
	chaosBalance        = 1000
	chaosIntentLifetime = 2 * time.Second
	chaosRedisTimeout   = 200 * time.Millisecond
)

var chaosAllFaults = []string{
	"redis-proxy-flap", "redis-proxy-latency", "redis-kill", "redis-flush",
	"pg-terminate", "pg-proxy-flap",
}

func chaosLong() bool { return os.Getenv("WTCACHE_CHAOS_LONG") == "1" }

func chaosOptionsFor(failure string) chaosOptions {
	o := chaosOptions{
		failure:      failure,
		counters:     3,
		accounts:     4,
		writers:      4,
		transferers:  2,
		readers:      6,
		faults:       append([]string{"calm"}, chaosAllFaults...),
		phaseDur:     3 * time.Second,
		checkTimeout: time.Minute,
	}
	if failure == "fail" {
		// Under fail, linearizability must hold across handles: one
		// reaches both servers directly, one reaches Redis through the
		// proxy, one reaches both through proxies.
		o.handles = []chaosHandleSpec{{}, {redisProxied: true}, {redisProxied: true, pgProxied: true}}
	} else {
		// Under fallback, the design lets other handles serve a row that
		// a write could not invalidate until the TTL: only one handle's
		// history is linearizable. It goes through both proxies.
		o.handles = []chaosHandleSpec{{redisProxied: true, pgProxied: true}}
	}
	if chaosLong() {
		o.counters, o.accounts = 6, 6
		o.writers, o.transferers, o.readers = 8, 3, 10
		o.phaseDur = 15 * time.Second
		o.faults = append(append(append([]string{"calm"}, chaosAllFaults...), "mixed", "mixed", "mixed"), chaosAllFaults...)
		o.checkTimeout = 5 * time.Minute
	}
	return o
}

// chaosHandle is one *sql.DB through wtcache.
type chaosHandle struct {
	name string
	spec chaosHandleSpec
	db   *sql.DB
	c    *connector
}

type chaosRun struct {
	t       *testing.T
	o       chaosOptions
	rs      *redisServer
	rdb     *redis.Client // the test's redis-server, directly
	redisPx *faultproxy.Proxy
	pgPx    *faultproxy.Proxy
	plain   *sql.DB // PostgreSQL directly, for setup and checks
	killer  *sql.DB // PostgreSQL directly, for pg_terminate_backend
	prefix  string
	app     string // application_name of the handles' backends
	ct, at  string // this run's tables: counters and accounts
	lt, lf  string // the write log and its trigger function
	handles []*chaosHandle
	rec     *chaosRecorder
	inits   map[string]int64

	logMu     sync.Mutex
	faultLog  []string
	anomalies []string
}

var chaosSeq int

func newChaosRun(t *testing.T, o chaosOptions) *chaosRun {
	t.Helper()
	e := needServices(t)
	r := &chaosRun{t: t, o: o, rec: newChaosRecorder(), inits: map[string]int64{}}
	r.rs = startRedisServer(t)
	r.rdb = redis.NewClient(&redis.Options{Addr: r.rs.addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = r.rdb.Close() })
	var err error
	if r.redisPx, err = faultproxy.Start(r.rs.addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.redisPx.Close)
	pgu, err := url.Parse(e.dbURL)
	if err != nil || pgu.Hostname() == "" {
		t.Fatalf("the chaos test needs WTCACHE_TEST_DATABASE as a postgres:// URL with a host, to put a proxy in front of it")
	}
	pgHost := pgu.Host
	if pgu.Port() == "" {
		pgHost += ":5432"
	}
	if r.pgPx, err = faultproxy.Start(pgHost); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.pgPx.Close)
	r.plain, r.killer = e.plain(t), e.plain(t)

	ctx := context.Background()
	// Tables of this run only: runs of the test in other processes may
	// share the database.
	chaosSeq++
	suffix := fmt.Sprintf("%d_%d", os.Getpid(), chaosSeq)
	r.ct, r.at = "chaos_counters_"+suffix, "chaos_accounts_"+suffix
	// Every write sets the row's op column to a unique id; a trigger logs
	// each committed change with that id and the value it left, in a
	// table wtcache does not cache. The log settles the outcome of every
	// write whose error left it unknown.
	r.lt, r.lf = "chaos_log_"+suffix, "chaos_log_fn_"+suffix
	mustExec(t, r.plain, `DROP TABLE IF EXISTS `+r.ct+`, `+r.at+`, `+r.lt)
	mustExec(t, r.plain, `CREATE TABLE `+r.ct+` (id bigint PRIMARY KEY, n bigint NOT NULL, op bigint NOT NULL DEFAULT 0)`)
	mustExec(t, r.plain, `CREATE TABLE `+r.at+` (id bigint PRIMARY KEY, balance bigint NOT NULL, op bigint NOT NULL DEFAULT 0)`)
	mustExec(t, r.plain, `CREATE TABLE `+r.lt+` (tab text NOT NULL, id bigint NOT NULL, op bigint NOT NULL, val bigint NOT NULL)`)
	// A run killed before its cleanup leaves this table behind: with a
	// replica identity it does not stop the change feed's setup of later
	// runs (a publication FOR ALL TABLES needs one on every table).
	mustExec(t, r.plain, `ALTER TABLE `+r.lt+` REPLICA IDENTITY FULL`)
	mustExec(t, r.plain, `CREATE FUNCTION `+r.lf+`() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		  INSERT INTO `+r.lt+` VALUES (TG_TABLE_NAME, NEW.id, NEW.op, (to_jsonb(NEW) ->> TG_ARGV[0])::bigint);
		  RETURN NULL;
		END $$`)
	mustExec(t, r.plain, `CREATE TRIGGER log AFTER UPDATE ON `+r.ct+` FOR EACH ROW EXECUTE FUNCTION `+r.lf+`('n')`)
	mustExec(t, r.plain, `CREATE TRIGGER log AFTER UPDATE ON `+r.at+` FOR EACH ROW EXECUTE FUNCTION `+r.lf+`('balance')`)
	mustExec(t, r.plain, `INSERT INTO `+r.ct+` SELECT g, 0 FROM generate_series(1, $1::int) g`, o.counters)
	mustExec(t, r.plain, `INSERT INTO `+r.at+` SELECT g, $2::bigint FROM generate_series(1, $1::int) g`, o.accounts, chaosBalance)
	t.Cleanup(func() {
		_, _ = r.plain.ExecContext(ctx, `DROP TABLE IF EXISTS `+r.ct+`, `+r.at+`, `+r.lt)
		_, _ = r.plain.ExecContext(ctx, `DROP FUNCTION IF EXISTS `+r.lf)
	})
	for i := 1; i <= o.counters; i++ {
		r.inits[counterRow(i)] = 0
	}
	for i := 1; i <= o.accounts; i++ {
		r.inits[accountRow(i)] = chaosBalance
	}

	r.app = "chaos_wt_" + suffix
	r.prefix = fmt.Sprintf("chaos%d-%d", time.Now().UnixNano()%1e9, prefixSeq.Add(1))
	for i, spec := range o.handles {
		dbURL := e.dbURL
		if spec.pgProxied {
			u := *pgu
			u.Host = r.pgPx.Addr()
			dbURL = u.String()
		}
		redisURL := r.rs.url()
		if spec.redisProxied {
			redisURL = "redis://" + r.redisPx.Addr() + "/0?max_retries=-1"
		}
		env := itEnv{dbURL: dbURL, redisURL: redisURL, rdb: r.rdb}
		params := []string{
			"cache_timeout=" + chaosRedisTimeout.String(),
			"cache_intent_lifetime=" + chaosIntentLifetime.String(),
			"cache_failure=" + o.failure,
			"cache_tables=" + r.ct + "," + r.at,
			// The logging triggers write only the log table.
			"cache_trust_triggers=" + r.ct + "," + r.at,
			"application_name=" + r.app,
		}
		if o.feed {
			params = append(params, "cache_feed=on", "cache_feed_max_lag="+feedTestLag.String())
		}
		db, c := env.open(t, r.prefix, params...)
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
		if o.broken {
			BreakProtocol(c)
		}
		if o.brokenFills {
			c.brokenFills.Store(true)
		}
		if i%2 == 1 {
			// Every other handle reads a lookup's images alone and its
			// misses' versions after, as lookups of many keys do.
			c.splitAt.Store(1)
		}
		name := fmt.Sprintf("h%d", i)
		switch {
		case spec.redisProxied && spec.pgProxied:
			name += "(redis+pg proxied)"
		case spec.redisProxied:
			name += "(redis proxied)"
		case spec.pgProxied:
			name += "(pg proxied)"
		default:
			name += "(direct)"
		}
		r.handles = append(r.handles, &chaosHandle{name: name, spec: spec, db: db, c: c})
	}
	return r
}

func counterRow(id int) string { return "counter/" + strconv.Itoa(id) }
func accountRow(id int) string { return "account/" + strconv.Itoa(id) }

func (r *chaosRun) ms() string { return fmt.Sprintf("%9.3fms", float64(r.rec.now())/1e6) }

// faultTime reads back the time of a fault log line.
func faultTime(line string) (int64, bool) {
	f, _, _ := strings.Cut(strings.TrimSpace(line), "ms ")
	x, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return 0, false
	}
	return int64(x * 1e6), true
}

func (r *chaosRun) logFault(format string, args ...any) {
	r.logMu.Lock()
	r.faultLog = append(r.faultLog, r.ms()+" "+fmt.Sprintf(format, args...))
	r.logMu.Unlock()
}

func (r *chaosRun) anomaly(format string, args ...any) {
	r.logMu.Lock()
	r.anomalies = append(r.anomalies, r.ms()+" "+fmt.Sprintf(format, args...))
	r.logMu.Unlock()
}

// opCtx bounds one operation of the workload. The workload's own context
// is never passed down: cancelling it would turn operations in flight
// into operations of unknown outcome for no reason.
func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// pause slows a worker down after an error, so that a worker whose writes
// are refused does not spin.
func pause(err error) {
	if err != nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Workers.

// increment adds 1 to a counter: through Exec (wtcache mirrors the image
// that RETURNING hands back) or through Query with RETURNING n (the row is
// invalidated; the new value is known).
func (r *chaosRun) increment(client int, rng *rand.Rand) {
	h := r.handles[rng.IntN(len(r.handles))]
	id := 1 + rng.IntN(r.o.counters)
	ctx, cancel := opCtx()
	defer cancel()
	var n int64
	var err error
	known := false
	how := "exec"
	op := r.rec.opID()
	call := r.rec.now()
	if rng.IntN(2) == 0 {
		how = "query-returning"
		err = h.db.QueryRowContext(ctx, "UPDATE "+r.ct+" SET n = n + 1, op = $2 WHERE id = $1 RETURNING n", id, op).Scan(&n)
		known = true
	} else {
		var res sql.Result
		res, err = h.db.ExecContext(ctx, "UPDATE "+r.ct+" SET n = n + 1, op = $2 WHERE id = $1", id, op)
		if err == nil {
			if ra, _ := res.RowsAffected(); ra != 1 {
				r.anomaly("%s: UPDATE of counter %d affected %d rows", h.name, id, ra)
			}
		}
	}
	ret := r.rec.now()
	r.rec.write(counterRow(id), client, op, 1, known, n, call, ret, err, fmt.Sprintf("%s %s op %d", h.name, how, op))
	pause(err)
	// Leave the rows alone now and then, so that reads also hit.
	time.Sleep(time.Duration(rng.IntN(6)) * time.Millisecond)
}

// transfer moves an amount between two accounts in one transaction,
// updating them in key order (no deadlocks). Half of the transfers learn
// the new balances through RETURNING.
func (r *chaosRun) transfer(client int, rng *rand.Rand) {
	h := r.handles[rng.IntN(len(r.handles))]
	a := 1 + rng.IntN(r.o.accounts)
	b := 1 + rng.IntN(r.o.accounts-1)
	if b >= a {
		b++
	}
	amount := int64(1 + rng.IntN(10))
	ids := []int{a, b}
	deltas := map[int]int64{a: -amount, b: amount}
	sort.Ints(ids)
	returning := rng.IntN(2) == 0
	ctx, cancel := opCtx()
	defer cancel()
	op := r.rec.opID()
	call := r.rec.now()
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		r.rec.notApplied.Add(1)
		r.rec.countError(err)
		pause(err)
		return
	}
	values := map[int]int64{}
	for _, id := range ids {
		if returning {
			var v int64
			err = tx.QueryRowContext(ctx, "UPDATE "+r.at+" SET balance = balance + $1, op = $3 WHERE id = $2 RETURNING balance", deltas[id], id, op).Scan(&v)
			values[id] = v
		} else {
			_, err = tx.ExecContext(ctx, "UPDATE "+r.at+" SET balance = balance + $1, op = $3 WHERE id = $2", deltas[id], id, op)
		}
		if err != nil {
			// Never committed: COMMIT was not sent.
			_ = tx.Rollback()
			r.rec.notApplied.Add(1)
			r.rec.countError(err)
			for _, id := range ids {
				r.rec.notCommittedOp(accountRow(id), op)
			}
			pause(err)
			return
		}
	}
	err = tx.Commit()
	ret := r.rec.now()
	how := "tx"
	if returning {
		how = "tx-returning"
	}
	for _, id := range ids {
		r.rec.write(accountRow(id), client, op, deltas[id], returning, values[id], call, ret, err,
			fmt.Sprintf("%s %s %d->%d op %d", h.name, how, a, b, op))
	}
	pause(err)
	time.Sleep(time.Duration(rng.IntN(6)) * time.Millisecond)
}

// lookup reads one row by primary key: the statement wtcache serves from
// Redis.
func (r *chaosRun) lookup(client int, rng *rand.Rand) {
	h := r.handles[rng.IntN(len(r.handles))]
	table, row, max := r.ct, counterRow, r.o.counters
	if rng.IntN(10) < 3 {
		table, row, max = r.at, accountRow, r.o.accounts
	}
	id := 1 + rng.IntN(max)
	ctx, cancel := opCtx()
	defer cancel()
	var gotID, v, op int64
	call := r.rec.now()
	err := h.db.QueryRowContext(ctx, "SELECT * FROM "+table+" WHERE id = $1", id).Scan(&gotID, &v, &op)
	ret := r.rec.now()
	if err != nil {
		r.rec.readErrors.Add(1)
		r.rec.countError(err)
		pause(err)
		return
	}
	if gotID != int64(id) {
		r.anomaly("%s: lookup of %s %d returned id %d", h.name, table, id, gotID)
	}
	r.rec.read(row(id), client, v, call, ret, fmt.Sprintf("%s (op %d)", h.name, op))
}

// ---------------------------------------------------------------------------
// Faults.

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func randDur(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// fault runs one fault phase until ctx ends, and heals what it broke.
func (r *chaosRun) fault(ctx context.Context, name string, rng *rand.Rand) {
	switch name {
	case "calm":
		<-ctx.Done()
	case "redis-proxy-flap":
		defer r.redisPx.Up()
		for {
			r.redisPx.Down()
			r.logFault("redis proxy down (connections reset)")
			if !sleepCtx(ctx, randDur(rng, 150*time.Millisecond, 500*time.Millisecond)) {
				return
			}
			r.redisPx.Up()
			r.logFault("redis proxy up")
			if !sleepCtx(ctx, randDur(rng, 200*time.Millisecond, 600*time.Millisecond)) {
				return
			}
		}
	case "redis-proxy-latency":
		defer r.redisPx.SetLatency(0)
		// Per direction: 100ms makes a round trip about the timeout,
		// the others exceed it.
		lats := []time.Duration{300 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 0}
		for {
			lat := lats[rng.IntN(len(lats))]
			r.redisPx.SetLatency(lat)
			r.logFault("redis proxy latency %v per direction (cache_timeout %v)", lat, chaosRedisTimeout)
			if !sleepCtx(ctx, randDur(rng, 300*time.Millisecond, 900*time.Millisecond)) {
				return
			}
		}
	case "redis-kill":
		defer r.ensureRedis()
		for {
			r.rs.kill()
			r.logFault("redis-server killed (SIGKILL)")
			if !sleepCtx(ctx, randDur(rng, 100*time.Millisecond, 500*time.Millisecond)) {
				return
			}
			r.ensureRedis()
			if !sleepCtx(ctx, randDur(rng, 300*time.Millisecond, 900*time.Millisecond)) {
				return
			}
		}
	case "redis-flush":
		for {
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			var err error
			what := ""
			switch rng.IntN(3) {
			case 0:
				what, err = "FLUSHALL", r.rdb.FlushAll(fctx).Err()
			case 1:
				what, err = "FLUSHALL ASYNC", r.rdb.FlushAllAsync(fctx).Err()
			default:
				what, err = "FLUSHDB", r.rdb.FlushDB(fctx).Err()
			}
			cancel()
			r.logFault("%s: %v", what, err)
			if !sleepCtx(ctx, randDur(rng, 50*time.Millisecond, 350*time.Millisecond)) {
				return
			}
		}
	case "pg-terminate":
		for {
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			var n int
			err := r.killer.QueryRowContext(fctx, `
				SELECT count(*) FROM (
				  SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				  WHERE datname = current_database() AND pid <> pg_backend_pid()
				    AND application_name = $1 AND query LIKE '%chaos_%'
				  ORDER BY random() LIMIT $2) x`, r.app, 1+rng.IntN(3)).Scan(&n)
			cancel()
			r.logFault("pg_terminate_backend of %d backends: %v", n, err)
			if !sleepCtx(ctx, randDur(rng, 100*time.Millisecond, 400*time.Millisecond)) {
				return
			}
		}
	case "pg-proxy-flap":
		defer r.pgPx.Up()
		for {
			r.pgPx.Down()
			r.logFault("postgres proxy down")
			if !sleepCtx(ctx, randDur(rng, 100*time.Millisecond, 300*time.Millisecond)) {
				return
			}
			r.pgPx.Up()
			r.logFault("postgres proxy up")
			if !sleepCtx(ctx, randDur(rng, 300*time.Millisecond, 800*time.Millisecond)) {
				return
			}
		}
	case "mixed":
		// Two or three faults at once.
		picked := rng.Perm(len(chaosAllFaults))[:2+rng.IntN(2)]
		var wg sync.WaitGroup
		for _, i := range picked {
			name := chaosAllFaults[i]
			seed := rng.Uint64()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.fault(ctx, name, rand.New(rand.NewPCG(seed, 1)))
			}()
		}
		wg.Wait()
	default:
		r.t.Fatalf("unknown fault %q", name)
	}
}

// ensureRedis restarts the test's redis-server if it is not running.
func (r *chaosRun) ensureRedis() {
	r.rs.mu.Lock()
	running := r.rs.cmd != nil
	r.rs.mu.Unlock()
	if running {
		return
	}
	if err := r.rs.restart(); err != nil {
		r.t.Errorf("restarting redis-server: %v", err)
		return
	}
	r.logFault("redis-server restarted (empty)")
}

// heal ends every fault.
func (r *chaosRun) heal() {
	r.redisPx.SetLatency(0)
	r.redisPx.Up()
	r.pgPx.Up()
	r.ensureRedis()
}

// ---------------------------------------------------------------------------
// The run.

// chaosResult is what one run saw.
type chaosResult struct {
	violations []chaosViolation
	stats      string
}

// run runs the workload under the fault phases, then checks everything.
func (r *chaosRun) run(seed uint64) chaosResult {
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := 0
	startWorkers := func(n int, op func(int, *rand.Rand)) {
		for i := 0; i < n; i++ {
			c := client
			client++
			rng := rand.New(rand.NewPCG(seed, uint64(c)+1))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					op(c, rng)
				}
			}()
		}
	}
	startWorkers(r.o.writers, r.increment)
	startWorkers(r.o.transferers, r.transfer)
	startWorkers(r.o.readers, r.lookup)

	frng := rand.New(rand.NewPCG(seed, 0))
	for _, f := range r.o.faults {
		r.logFault("phase %s begins", f)
		pctx, cancel := context.WithTimeout(context.Background(), r.o.phaseDur)
		r.fault(pctx, f, frng)
		cancel()
		r.heal()
	}
	// A calm tail with the workload still running: the histories include
	// the recovery.
	r.logFault("phase calm tail begins")
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	r.logFault("workload stopped")
	return r.check(client)
}

// check runs the end-of-run checks. firstClient is the first client id
// free for the final reads.
func (r *chaosRun) check(firstClient int) chaosResult {
	t := r.t
	ctx := context.Background()
	var vs []chaosViolation
	r.heal()
	for _, h := range r.handles {
		h.c.settle()
	}
	// Intents of releases that failed expire within the intent lifetime.
	time.Sleep(chaosIntentLifetime + 500*time.Millisecond)
	if r.o.failure == "fallback" {
		deadline := time.Now().Add(15 * time.Second)
		for _, h := range r.handles {
			for h.c.dirtyN.Load() > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := h.c.dirtyN.Load(); n > 0 {
				vs = append(vs, chaosViolation{Guarantee: "G5", Row: h.name,
					Detail: fmt.Sprintf("%d tables still dirty (not repaired) 15s after Redis came back", n)})
			}
		}
	}
	for _, h := range r.handles {
		h.c.settle()
	}

	db, err := r.dbRows(ctx)
	if err != nil {
		t.Fatalf("reading the final rows from PostgreSQL: %v", err)
	}
	vs = append(vs, r.compareRedis(ctx, db, "before the final reads")...)

	// The database's final values end every history: a committed write
	// that went missing, or a refused one that was applied, fails the
	// linearizability check.
	now := r.rec.now()
	for row, v := range db {
		r.rec.read(row, firstClient, v, now, now, "final value in PostgreSQL")
	}
	// Fresh reads through every handle, twice (a miss that fills, then a
	// hit), must return the database's row.
	rows := make([]string, 0, len(db))
	for row := range db {
		rows = append(rows, row)
	}
	sort.Strings(rows)
	for round := 0; round < 2; round++ {
		for hi, h := range r.handles {
			for _, row := range rows {
				kind, idText, _ := strings.Cut(row, "/")
				id, _ := strconv.Atoi(idText)
				table := r.ct
				if kind == "account" {
					table = r.at
				}
				var gotID, v, op int64
				call := r.rec.now()
				err := h.db.QueryRowContext(ctx, "SELECT * FROM "+table+" WHERE id = $1", id).Scan(&gotID, &v, &op)
				ret := r.rec.now()
				if err != nil {
					vs = append(vs, chaosViolation{Guarantee: "G4", Row: row, Detail: fmt.Sprintf("final read through %s failed: %v", h.name, err)})
					continue
				}
				r.rec.read(row, firstClient+1+hi, v, call, ret, h.name+" final read")
				if v != db[row] {
					vs = append(vs, chaosViolation{Guarantee: "G4", Row: row,
						Detail: fmt.Sprintf("final read %d through %s returned %d; PostgreSQL has %d", round+1, h.name, v, db[row])})
				}
			}
			h.c.settle()
		}
	}
	vs = append(vs, r.compareRedis(ctx, db, "after the final reads")...)

	// G3: the transfers keep the total.
	var total int64
	for i := 1; i <= r.o.accounts; i++ {
		total += db[accountRow(i)]
	}
	if want := int64(r.o.accounts * chaosBalance); total != want {
		vs = append(vs, chaosViolation{Guarantee: "G3", Row: "accounts",
			Detail: fmt.Sprintf("total balance in PostgreSQL is %d, want %d", total, want)})
	}
	for _, a := range r.anomalies {
		vs = append(vs, chaosViolation{Guarantee: "G3", Row: "-", Detail: a})
	}

	// G3: the write log settles every write.
	wlog, err := r.writeLog(ctx)
	if err != nil {
		t.Fatalf("reading the write log: %v", err)
	}
	histories, lv := r.rec.resolve(wlog)
	vs = append(vs, lv...)

	// G1, G2: every row's history is linearizable.
	outDir := ""
	counts := make([]string, 0, len(histories))
	for _, row := range rows {
		ops := histories[row]
		counts = append(counts, fmt.Sprintf("%s=%d", row, len(ops)))
		start := time.Now()
		if v := checkLinearizable(row, r.inits[row], ops, r.o.checkTimeout, ""); v != nil {
			if outDir == "" {
				outDir = chaosOutDir(r.t)
			}
			v = checkLinearizable(row, r.inits[row], ops, r.o.checkTimeout, outDir)
			if v != nil {
				vs = append(vs, *v)
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			r.t.Logf("checking %s (%d operations) took %v", row, len(ops), d)
		}
	}

	var st strings.Builder
	fmt.Fprintf(&st, "reads %d, additions %d (applied %d, outcome unknown %d decided before the error + %d open-ended, refused %d), transactions not committed %d, failed reads %d\n",
		r.rec.reads.Load(), r.rec.adds.Load()+r.rec.maybeAdds.Load()+r.rec.neverAdds.Load(), r.rec.adds.Load(),
		r.rec.maybeAdds.Load(), r.rec.neverAdds.Load(), r.rec.refused.Load(), r.rec.notApplied.Load(), r.rec.readErrors.Load())
	fmt.Fprintf(&st, "operations per row: %s\n", strings.Join(counts, " "))
	var hits int64
	for _, h := range r.handles {
		hh, m, b := h.c.hits.Load(), h.c.misses.Load(), h.c.bypasses.Load()
		hits += hh
		fmt.Fprintf(&st, "%s: hits %d, misses %d, bypasses %d, corrupt %d, releases left to expire %d\n",
			h.name, hh, m, b, h.c.corrupt.Load(), h.c.releaseFailures.Load())
	}
	var kinds []string
	r.rec.errorKinds.Range(func(k, v any) bool {
		kinds = append(kinds, fmt.Sprintf("%6d  %s", v.(*atomic.Int64).Load(), k))
		return true
	})
	sort.Sort(sort.Reverse(sort.StringSlice(kinds)))
	if len(kinds) > 0 {
		fmt.Fprintf(&st, "errors seen by the workload:\n  %s\n", strings.Join(kinds[:min(len(kinds), 12)], "\n  "))
	}
	if hits == 0 {
		vs = append(vs, chaosViolation{Guarantee: "-", Row: "-", Detail: "no read was served from Redis: the cache was not exercised"})
	}
	return chaosResult{violations: vs, stats: st.String()}
}

// chaosOutDir is where the visualizations of failed checks go. It is kept
// after the test, unlike t.TempDir, so that they can be opened.
func chaosOutDir(t *testing.T) string {
	if d := os.Getenv("WTCACHE_CHAOS_OUT"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	d, err := os.MkdirTemp("", "wtcache-chaos-")
	if err != nil {
		t.Logf("no directory for visualizations: %v", err)
		return ""
	}
	return d
}

// dbRows reads every row's value from PostgreSQL directly.
func (r *chaosRun) dbRows(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, q := range []struct {
		sql string
		row func(int) string
	}{
		{"SELECT id, n FROM " + r.ct, counterRow},
		{"SELECT id, balance FROM " + r.at, accountRow},
	} {
		rows, err := r.plain.QueryContext(ctx, q.sql)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, v int64
			if err := rows.Scan(&id, &v); err != nil {
				rows.Close()
				return nil, err
			}
			out[q.row(int(id))] = v
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// writeLog reads the write log: row -> op id -> value left by the op.
func (r *chaosRun) writeLog(ctx context.Context) (map[string]map[int64]int64, error) {
	rows, err := r.plain.QueryContext(ctx, "SELECT tab, id, op, val FROM "+r.lt+" WHERE op <> 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[int64]int64{}
	for rows.Next() {
		var tab string
		var id, op, val int64
		if err := rows.Scan(&tab, &id, &op, &val); err != nil {
			return nil, err
		}
		row := accountRow(int(id))
		if tab == r.ct {
			row = counterRow(int(id))
		}
		if out[row] == nil {
			out[row] = map[int64]int64{}
		}
		out[row][op] = val
	}
	return out, rows.Err()
}

// compareRedis checks G4 key by key: every image in Redis that a reader
// can reach (its generation is the table's current one) decodes to the
// row PostgreSQL has.
func (r *chaosRun) compareRedis(ctx context.Context, db map[string]int64, when string) []chaosViolation {
	keys, err := r.rdb.Keys(ctx, "{"+r.prefix+":*").Result()
	if err != nil {
		return []chaosViolation{{Guarantee: "G4", Row: "-", Detail: "listing Redis keys: " + err.Error()}}
	}
	gens := map[string]string{}
	for _, k := range keys {
		if tag, ok := strings.CutSuffix(k, ":g"); ok {
			st, _ := r.rdb.Get(ctx, k).Result()
			gens[tag], _, _ = strings.Cut(st, " ")
			if r.o.feed {
				// Images are stored under the feed's epoch: only those of
				// the current one are reachable.
				status, _ := r.rdb.Get(ctx, r.feedStatusKey(ctx)).Result()
				epoch, _, _, _, _ := parseFeedStatus(status)
				gens[tag] += "/" + epoch
			}
		}
	}
	var vs []chaosViolation
	for _, k := range keys {
		i := strings.LastIndex(k, "}:v:")
		if i < 0 {
			continue
		}
		tag, idText := k[:i+1], k[i+4:]
		stored, err := r.rdb.Get(ctx, k).Result()
		if err != nil || stored == "" {
			continue
		}
		gen, image, _ := strings.Cut(stored, " ")
		if gens[tag] == "" || gen != gens[tag] {
			continue // an old generation: no reader can reach it
		}
		var row string
		switch {
		case strings.HasSuffix(tag, "."+r.ct+"}"):
			row = "counter/" + idText
		case strings.HasSuffix(tag, "."+r.at+"}"):
			row = "account/" + idText
		default:
			continue
		}
		img, err := rowcodec.DecodeString(image)
		if err != nil || len(img.Values) != 3 {
			vs = append(vs, chaosViolation{Guarantee: "G4", Row: row, Detail: fmt.Sprintf("%s: image does not decode: %v", when, err)})
			continue
		}
		v, _ := img.Values[1].(int64)
		want, ok := db[row]
		if !ok || v != want || fmt.Sprint(img.Values[0]) != idText {
			rowKey := tag + ":r:" + idText
			h, _ := r.rdb.HGetAll(ctx, rowKey).Result()
			fields := make([]string, 0, len(h)+1)
			for f, x := range h {
				fields = append(fields, f+"="+x)
			}
			n, _ := r.rdb.Get(ctx, tag+":n:"+idText).Result()
			fields = append(fields, "n="+n)
			sort.Strings(fields)
			pttl, _ := r.rdb.PTTL(ctx, k).Result()
			vs = append(vs, chaosViolation{Guarantee: "G4", Row: row,
				Detail: fmt.Sprintf("%s: Redis holds %v (fields %s, ttl %v), PostgreSQL has %d", when, img.Values, strings.Join(fields, " "), pttl, want)})
		}
	}
	return vs
}

// feedStatusKey is the change feed's status key of the run's database.
func (r *chaosRun) feedStatusKey(ctx context.Context) string {
	var database string
	_ = r.plain.QueryRowContext(ctx, `SELECT current_database()`).Scan(&database)
	return "{" + r.prefix + ":" + database + "}:feed:status"
}

// report fails the test with every violation, the fault log and the
// statistics.
func (r *chaosRun) report(res chaosResult) {
	r.t.Helper()
	r.t.Logf("faults: %s", strings.Join(r.o.faults, ", "))
	r.t.Logf("%s", res.stats)
	if len(res.violations) == 0 {
		return
	}
	var b strings.Builder
	r.logMu.Lock()
	faults := slices.Clone(r.faultLog)
	r.logMu.Unlock()
	for _, v := range res.violations {
		b.WriteString(v.String() + "\n")
		if v.At > 0 {
			b.WriteString("    faults within 300ms before and 50ms after its first unlinearizable operation:\n")
			for _, f := range faults {
				if at, ok := faultTime(f); ok && at >= v.At-int64(300*time.Millisecond) && at <= v.At+int64(50*time.Millisecond) {
					b.WriteString("    " + f + "\n")
				}
			}
		}
	}
	log := strings.Join(faults, "\n")
	r.t.Fatalf("%d consistency violations:\n%s\nfault log:\n%s", len(res.violations), b.String(), log)
}

// ---------------------------------------------------------------------------
// Tests.

// TestChaos runs the checker under both failure policies.
//
// Under fail, three handles share the Redis and every row's history across
// all of them must be linearizable. Under fallback, the design allows
// other handles to serve a row that a write could not invalidate until its
// TTL, so the workload runs through one handle, whose history must be
// linearizable, and G4 is checked at the end as under fail.
func TestChaos(t *testing.T) {
	for _, v := range []struct {
		failure string
		feed    bool
	}{{"fail", false}, {"fallback", false}, {"fail", true}} {
		name := v.failure
		if v.feed {
			name += "+feed"
		}
		t.Run(name, func(t *testing.T) {
			o := chaosOptionsFor(v.failure)
			if v.feed {
				feedServices(t)
				o.feed = true
				if !chaosLong() {
					// The faults that matter to the feed: Redis lost (the
					// lease and the status with it), PostgreSQL cut.
					o.faults = []string{"calm", "redis-kill", "pg-terminate", "pg-proxy-flap"}
				}
			}
			r := newChaosRun(t, o)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			r.report(r.run(seed))
		})
	}
}

// TestChaosCheckerCatchesBrokenProtocol proves that the checker can fail:
// with BreakProtocol the connectors mirror writes after commit without
// intents, as naive write-through caches do, and racing mirrors and fills
// leave stale rows. The checker must report a violation within the bound.
func TestChaosCheckerCatchesBrokenProtocol(t *testing.T) {
	needServices(t)
	for _, v := range []struct {
		name        string
		intents     bool // mirror without intents (naive write-through)
		fills       bool // fill without checking that nothing moved
		description string
	}{
		{"mirroring without intents", true, false, "a protocol without intents"},
		{"filling without conditions", false, true, "fills that do not check what moved since the read"},
	} {
		t.Run(v.name, func(t *testing.T) {
			deadline := time.Now().Add(20 * time.Second)
			for round := 1; time.Now().Before(deadline); round++ {
				var res chaosResult
				var caught []chaosViolation
				t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
					o := chaosOptions{
						failure:      "fail",
						handles:      []chaosHandleSpec{{}, {}},
						counters:     2,
						accounts:     2,
						writers:      4,
						transferers:  2,
						readers:      4,
						faults:       []string{"calm"},
						phaseDur:     2 * time.Second,
						checkTimeout: 30 * time.Second,
						broken:       v.intents,
						brokenFills:  v.fills,
					}
					r := newChaosRun(t, o)
					res = r.run(uint64(time.Now().UnixNano()))
					t.Logf("%s", res.stats)
					for _, v := range res.violations {
						if !strings.Contains(v.Detail, "inconclusive") && v.Guarantee != "-" {
							caught = append(caught, v)
						}
					}
				})
				if len(caught) > 0 {
					t.Logf("round %d: the checker caught %s (%d violations); the first:\n%s", round, v.description, len(caught), caught[0])
					return
				}
				t.Logf("round %d: no violation found yet", round)
			}
			t.Fatalf("the checker found no violation in 20s of %s: it cannot fail", v.description)
		})
	}
}

// TestChaosIntentLostWithRedisState replays, step by step, the interleaving
// the checker found in the redis-flush and redis-kill phases: Redis loses
// its memory (FLUSHALL, or a restart without persistence) while a write
// holds an intent and has not committed yet. The next reader finds no
// intent, reads the old row from PostgreSQL and fills it;
// the write then commits and returns, and the old row is served as a hit
// (G1). When the writer's release does not reach Redis either (its
// connection is cut), nothing ever removes the old row: it stays until its
// TTL (G4).
func TestChaosIntentLostWithRedisState(t *testing.T) {
	for _, loss := range []string{"FLUSHALL", "restart"} {
		// A warm reader read the row before Redis lost it; a cold one
		// (another process, or one that just started) reads it for the
		// first time after.
		for _, which := range []string{"warm reader", "cold reader"} {
			t.Run(loss+"/"+which, func(t *testing.T) {
				intentLostWithRedisState(t, loss, which == "cold reader")
			})
		}
	}
}

func intentLostWithRedisState(t *testing.T, loss string, cold bool) {
	o := chaosOptionsFor("fail")
	o.counters, o.accounts = 1, 2
	// The writer reaches Redis through the proxy, the readers directly.
	o.handles = []chaosHandleSpec{{redisProxied: true}, {}, {}}
	r := newChaosRun(t, o)
	writer, warm := r.handles[0], r.handles[1]
	reader := warm
	if cold {
		reader = r.handles[2]
	}
	ctx := context.Background()
	readVia := func(h *chaosHandle) int64 { return r.readCounter1(t, h) }
	readVia(warm)
	readVia(warm)

	lock := r.lockCounter1(t)
	done := r.incrementCounter1(writer)
	waitForLockWait(t, r)

	switch loss {
	case "FLUSHALL":
		if err := r.rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	case "restart":
		r.rs.kill()
		if err := r.rs.restart(); err != nil {
			t.Fatal(err)
		}
		// Let the readers' clients reconnect, so that their next reads
		// reach the new server.
		for _, h := range r.handles[1:] {
			for i := 0; i < 10 && h.c.cfg.redis.Ping(ctx).Err() != nil; i++ {
			}
		}
	}
	// A reader during the write: PostgreSQL still has 0.
	if n := readVia(reader); n != 0 {
		t.Fatalf("read during the write: %d", n)
	}
	// The writer's Redis connection is cut; the write commits.
	r.redisPx.Down()
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the write failed: %v", err)
	}
	writer.c.settle()
	for _, h := range r.handles[1:] {
		n := readVia(h)
		switch {
		case n == 1:
		case cold:
			// Known limitation (README, "Limitations"): Redis lost the
			// write's intent, a reader that had never seen the table
			// filled the old row, and the writer could not reach Redis
			// after its commit to remove it. Nothing in Redis tells the
			// cold reader; convergence (below) waits for the writer.
			t.Logf("known limitation: after a lost intent and a writer cut from Redis, %s served %d until the writer's repair", h.name, n)
		default:
			t.Errorf("G1: the write returned, and a read through %s then returned %d, want 1", h.name, n)
		}
	}
	time.Sleep(chaosIntentLifetime + 500*time.Millisecond)
	r.redisPx.Up()
	// G4: once the writer reaches Redis again it repairs what it could
	// not release (it moves the table's generation).
	deadline := time.Now().Add(5 * time.Second)
	for _, h := range r.handles[1:] {
		for {
			n := readVia(h)
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("G4: the writers are quiet, Redis answers, the intent lifetime has passed, and %s still serves %d, want 1", h.name, n)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// readCounter1 reads counter 1 through h and waits for the fill it queued.
func (r *chaosRun) readCounter1(t *testing.T, h *chaosHandle) int64 {
	t.Helper()
	var id, n, op int64
	if err := h.db.QueryRowContext(context.Background(), "SELECT * FROM "+r.ct+" WHERE id = $1", 1).Scan(&id, &n, &op); err != nil {
		t.Fatal(err)
	}
	h.c.settle()
	return n
}

// lockCounter1 holds counter 1's row lock in a plain transaction (rolled
// back at the end of the test at the latest), so that a write of it stops
// between its intent and its commit.
func (r *chaosRun) lockCounter1(t *testing.T) *sql.Tx {
	t.Helper()
	lock, err := r.plain.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lock.Rollback() })
	if _, err := lock.Exec("SELECT n FROM " + r.ct + " WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	return lock
}

// incrementCounter1 starts an autocommit increment of counter 1 through h;
// its error arrives on the channel.
func (r *chaosRun) incrementCounter1(h *chaosHandle) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := h.db.ExecContext(context.Background(), "UPDATE "+r.ct+" SET n = n + 1 WHERE id = $1", 1)
		done <- err
	}()
	return done
}

// waitForLockWait waits until a backend of the run waits for a row lock.
func waitForLockWait(t *testing.T, r *chaosRun) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := r.plain.QueryRowContext(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, r.app).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the write never waited for the row lock")
}

// TestChaosFallBackRepairBeforeCommit replays an interleaving of the
// fallback policy that the checker's review found: a write cannot place its
// intent (Redis unreachable), so the handle marks the table dirty and
// starts repairing it at once. Redis answers again while the write is
// still running (here: waiting for a row lock), the repair moves the
// generation and the handle serves the table from Redis again; a read then
// fills the row PostgreSQL still has and the write commits. Unless the
// table is repaired again after the write ended, the writing handle itself
// serves the old row (G1, G5: "this handle stops serving the touched keys
// until it has invalidated them") until the TTL (G4).
func TestChaosFallBackRepairBeforeCommit(t *testing.T) {
	o := chaosOptionsFor("fallback")
	o.counters, o.accounts = 1, 2
	r := newChaosRun(t, o)
	h := r.handles[0]
	read := func() int64 { return r.readCounter1(t, h) }
	read()
	read()

	lock := r.lockCounter1(t)
	r.redisPx.Down()
	done := r.incrementCounter1(h)
	waitForLockWait(t, r)
	if h.c.dirtyN.Load() == 0 {
		t.Fatal("the write under fallback did not mark the table dirty")
	}
	r.redisPx.Up()
	// Give the repair loop time to reach Redis (its backoff starts at
	// 50ms); a correct repair waits for the write to finish.
	deadline := time.Now().Add(2 * time.Second)
	for h.c.dirtyN.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	repairedEarly := h.c.dirtyN.Load() == 0
	// The write has not committed: 0 is right here.
	if n := read(); n != 0 {
		t.Fatalf("read during the write: %d", n)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the write failed: %v", err)
	}
	h.c.settle()
	if n := read(); n != 1 {
		t.Errorf("G1/G5: the write returned, then the same handle read %d, want 1 (table repaired before the write committed: %v)", n, repairedEarly)
	}
	time.Sleep(chaosIntentLifetime + 500*time.Millisecond)
	if n := read(); n != 1 {
		t.Errorf("G4: the writers are quiet, Redis answers, the intent lifetime has passed, and the cache still serves %d, want 1", n)
	}
}

// TestChaosLostConnectionLateCommit replays an interleaving of a lost
// connection to PostgreSQL: the write's statement has reached the server
// and waits there (for a row lock) when the client's connection is cut.
// The client gets an error at once and wtcache releases the write's
// intents; the server does not notice the lost client while it waits, and
// commits the statement when the lock is freed. A reader between the
// release and that commit fills the old row, which then stays in Redis
// until the TTL (G4: "after ... lost connection to Postgres
// mid-transaction ... every cached entry equals its database row, or is
// absent, within the intent lifetime").
func TestChaosLostConnectionLateCommit(t *testing.T) {
	o := chaosOptionsFor("fail")
	o.counters, o.accounts = 1, 2
	o.handles = []chaosHandleSpec{{pgProxied: true}, {}}
	r := newChaosRun(t, o)
	writer, reader := r.handles[0], r.handles[1]
	ctx := context.Background()
	read := func() int64 { return r.readCounter1(t, reader) }
	read()
	read()

	lock := r.lockCounter1(t)
	done := r.incrementCounter1(writer)
	waitForLockWait(t, r)
	r.pgPx.Down()
	werr := <-done
	if werr == nil {
		t.Fatal("the write succeeded although its connection was cut")
	}
	writer.c.settle()
	// The outcome is unknown to the client; PostgreSQL has 0 for now.
	if n := read(); n != 0 {
		t.Fatalf("read after the lost connection: %d", n)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	// The server commits the orphaned statement.
	var inDB int64
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := r.plain.QueryRowContext(ctx, "SELECT n FROM "+r.ct+" WHERE id = 1").Scan(&inDB); err != nil {
			t.Fatal(err)
		}
		if inDB == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if inDB != 1 {
		t.Skipf("the server did not commit the orphaned statement (n = %d): nothing to check", inDB)
	}
	r.pgPx.Up()
	time.Sleep(chaosIntentLifetime + 500*time.Millisecond)
	if n := read(); n != 1 {
		t.Errorf("G4: the write failed with %q but committed on the server; the writers are quiet and the intent lifetime has passed, and the cache still serves %d, PostgreSQL has 1", werr, n)
	}
}

// Command bank is the tour of wtcache: a small bank whose accounts live in
// PostgreSQL and are read through wtcache's write-through cache in Redis,
// under load, with the cache server taken down in the middle.
//
// It needs only PostgreSQL. From this directory:
//
//	go run .                 # or "make demo" at the repository root
//	go run . -duration 30s   # a longer first phase
//
// Environment:
//
//	DATABASE_URL  PostgreSQL, URL or keyword/value form
//	              (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
//	REDIS_URL     the Redis to use as the cache, e.g. redis://127.0.0.1:6379/14
//	              (default: an in-process miniredis)
//
// What it does:
//
//  1. creates the table bank_accounts with -accounts accounts of 1000 each;
//  2. phase 1: -workers goroutines run, for -duration, a read-heavy mix
//     (90% balance reads by primary key, 10% transfers between two random
//     accounts in a transaction) through two *sql.DB handles opened with
//     wtcache.NewConnector that share one Redis, as two application
//     servers would. A checker reads all accounts through plain pgx in a
//     REPEATABLE READ transaction ten times a second and proves the total
//     never changes. It then prints counts and latency percentiles by path
//     (cache hit, cache miss, transfer), the span tree of one transfer and
//     wtcache's OpenTelemetry metrics;
//  3. phase 2, once per failure policy (fail, then fallback): the same
//     traffic, with the cache server taken down for -outage in the middle
//     (the program reaches Redis through its own TCP proxy and cuts it),
//     and what the policy did about it;
//  4. phase 3, on a server with wal_level=logical: a support engineer
//     moves money between two accounts in psql (plain pgx), and a handle
//     with the change feed (cache_feed=on) serves the new balance within
//     milliseconds, while one without it serves the old one until its TTL.
//
// After each phase it checks that the total is intact through plain pgx and
// through wtcache, and that every account read through each handle equals
// PostgreSQL (the cache converged). It exits with status 1 if any check
// fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wtcache/wtcache"
)

const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	initialBalance     = 1000 // per account
	maxAmount          = 100  // of one transfer
)

// config is everything a run depends on; main fills it from flags and the
// environment, the test with small numbers.
type config struct {
	DatabaseURL string
	RedisURL    string // empty: an in-process miniredis
	Table       string
	Accounts    int
	Workers     int
	Duration    time.Duration // of phase 1
	Outage      time.Duration // how long the cache server is down in phase 2
	Out         io.Writer
	Live        bool // Out is a terminal: redraw the progress line in place
}

func main() {
	cfg := config{
		DatabaseURL: getenv("DATABASE_URL", defaultDatabaseURL),
		RedisURL:    os.Getenv("REDIS_URL"),
		Table:       "bank_accounts",
		Out:         os.Stdout,
		Live:        isTerminal(os.Stdout),
	}
	flag.IntVar(&cfg.Accounts, "accounts", 1000, "number of accounts")
	flag.IntVar(&cfg.Workers, "workers", 8, "concurrent workers")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of phase 1")
	flag.DurationVar(&cfg.Outage, "outage", 2*time.Second, "how long the cache server is down in phase 2")
	flag.Parse()
	if cfg.Accounts < 2 || cfg.Workers < 1 || cfg.Duration <= 0 || cfg.Outage <= 0 {
		fmt.Fprintln(os.Stderr, "bank: -accounts must be at least 2, -workers at least 1, durations positive")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

// run is the whole program. It returns an error when the services cannot
// be used or when an invariant failed.
func run(ctx context.Context, cfg config) error {
	e, err := openEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.close()
	out := cfg.Out
	v := &verdicts{out: out}

	fmt.Fprintf(out, "wtcache bank demo\n")
	fmt.Fprintf(out, "  PostgreSQL  %s\n", e.pgDesc)
	fmt.Fprintf(out, "  Redis       %s, reached through the program's proxy at %s\n", e.redisDesc, e.proxy.Addr())
	fmt.Fprintf(out, "  %d accounts of %d (total %d), %d workers, 2 handles (*sql.DB) sharing that Redis\n",
		cfg.Accounts, initialBalance, e.total, cfg.Workers)

	if err := e.steadyPhase(ctx, v); err != nil {
		return err
	}

	// Phase 2: the cache server goes away mid-run, once per policy.
	for _, policy := range []wtcache.FailurePolicy{wtcache.FailClosed, wtcache.FallBack} {
		if err := e.outagePhase(ctx, policy, v); err != nil {
			return err
		}
	}

	// Phase 3: a write made outside wtcache, with and without the feed.
	if err := e.feedPhase(ctx, v); err != nil {
		return err
	}

	section(out, "Summary")
	if len(v.failed) > 0 {
		for _, f := range v.failed {
			fmt.Fprintf(out, "  FAILED: %s\n", f)
		}
		return fmt.Errorf("%d check(s) failed", len(v.failed))
	}
	fmt.Fprintf(out, "  all %d checks passed: no money was created or lost, and the cache always converged\n", v.passed)
	return nil
}

// steadyPhase creates the accounts, runs phase 1 and reports it, with the
// span trees of one transfer and one read, and wtcache's metrics.
func (e *env) steadyPhase(ctx context.Context, v *verdicts) error {
	out := e.cfg.Out
	hs, err := e.openHandles(wtcache.FailClosed)
	if err != nil {
		return err
	}
	defer closeHandles(hs)
	if err := e.createAccounts(ctx, hs[0].db); err != nil {
		return fmt.Errorf("creating %s: %w", e.cfg.Table, err)
	}

	section(out, fmt.Sprintf("Phase 1: %s of traffic, 90%% reads / 10%% transfers, policy fail (the default)", e.cfg.Duration))
	before := snapshot(hs)
	lat := e.tel.lat.measure()
	tr, chk, _ := e.runTraffic(ctx, "phase 1", hs, e.cfg.Duration, nil)
	e.tel.lat.stop()
	printPhase1(out, hs, before, tr, lat)
	checkTraffic(v, tr, chk, e.total)
	if err := e.verify(ctx, hs, v); err != nil {
		return err
	}

	if err := e.traceOne(ctx, hs[0]); err != nil {
		return err
	}
	section(out, "wtcache's OpenTelemetry metrics so far (manual reader, both handles)")
	return printMetrics(out, e.tel.metrics)
}

// printPhase1 prints the counts and the latency table of phase 1.
func printPhase1(out io.Writer, hs []*handle, before []wtcache.Stats, tr *traffic, lat *latencies) {
	fmt.Fprintf(out, "\n  %-8s %9s %10s %9s %9s %9s\n", "handle", "reads", "transfers", "hits", "misses", "bypasses")
	var total wtcache.Stats
	for i, h := range hs {
		st := minus(h.stats(), before[i])
		total = add(total, st)
		fmt.Fprintf(out, "  %-8s %9d %10d %9d %9d %9d\n", h.name, tr.readsBy[i].Load(), tr.transfersBy[i].Load(), st.Hits, st.Misses, st.Bypasses)
	}
	fmt.Fprintf(out, "  %-8s %9d %10d %9d %9d %9d\n", "total", tr.reads.Load(), tr.transfers.Load(), total.Hits, total.Misses, total.Bypasses)
	fmt.Fprintf(out, "  transfers: committed transactions of two UPDATEs each (%d more declined for lack of funds, %d retries\n"+
		"             after a serialization failure or deadlock)\n", tr.declined.Load(), tr.retries.Load())
	fmt.Fprintf(out, "  hits, misses, bypasses: rows, from wtcache.StatsOf(connector) of each handle\n")

	fmt.Fprintf(out, "\n  %-12s %9s %9s %9s %9s   latency, from the spans\n", "path", "count", "p50", "p90", "p99")
	for _, path := range []string{"hit read", "miss read", "bypass read", "unknown read", "transfer"} {
		n, p50, p90, p99 := lat.percentiles(path)
		if n == 0 && path != "hit read" && path != "miss read" && path != "transfer" {
			continue
		}
		fmt.Fprintf(out, "  %-12s %9d %9s %9s %9s\n", path, n, ms(p50), ms(p90), ms(p99))
	}
	fmt.Fprintln(out)
}

// checkTraffic records the checks every run of traffic must pass.
func checkTraffic(v *verdicts, tr *traffic, chk *checker, total int64) {
	v.check(tr.errs.Load() == 0, "no unexpected error (%d)", tr.errs.Load())
	for _, msg := range tr.firstErrs {
		fmt.Fprintf(v.out, "         %s\n", msg)
	}
	v.check(chk.checks.Load() > 0 && chk.failures.Load() == 0,
		"during the run: %d snapshots through plain pgx (REPEATABLE READ), all totalling %d", chk.checks.Load(), total)
	if chk.firstFailure != "" {
		fmt.Fprintf(v.out, "         first bad snapshot: %s\n", chk.firstFailure)
	}
}

// traceOne runs one transfer and one balance read with their traces sampled,
// and prints the span trees.
func (e *env) traceOne(ctx context.Context, h *handle) error {
	out := e.cfg.Out
	from, to, amount := int64(1), int64(2), int64(25)

	section(out, fmt.Sprintf("One transfer (account %d -> %d, %d) as traced through wtcache", from, to, amount))
	e.tel.spans.Reset()
	e.tel.sampler.sampleNext(transferSpanName)
	if _, _, err := e.transfer(ctx, h.db, from, to, amount); err != nil {
		return fmt.Errorf("traced transfer: %w", err)
	}
	// The intents are released in the background once COMMIT returned;
	// wait for that span too.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if hasSpan(e.tel.spans.GetSpans(), "wtcache.cache.release") {
			break
		}
	}
	printSpanTree(out, e.tel.spans.GetSpans())

	section(out, fmt.Sprintf("Reading account %d right after (the transfer mirrored the row into Redis)", from))
	e.tel.spans.Reset()
	e.tel.sampler.sampleNext("SELECT " + e.cfg.Table)
	if _, err := e.readBalance(ctx, h.db, from); err != nil {
		return err
	}
	printSpanTree(out, e.tel.spans.GetSpans())
	e.tel.spans.Reset()
	return nil
}

func hasSpan(spans tracetest.SpanStubs, name string) bool {
	for _, s := range spans {
		if s.Name == name {
			return true
		}
	}
	return false
}

// outagePhase runs traffic under one failure policy with the cache server
// down in the middle, reports what the policy did, and checks the result.
func (e *env) outagePhase(ctx context.Context, policy wtcache.FailurePolicy, v *verdicts) error {
	out := e.cfg.Out
	o := &outage{after: time.Second + e.cfg.Outage/2, length: e.cfg.Outage, recovery: 2*time.Second + e.cfg.Outage/2}
	if policy == wtcache.FailClosed {
		o.shown = func(tr *traffic) bool { return tr.refused.Load() > 0 }
	} else {
		o.shown = func(tr *traffic) bool { return tr.transfersDown.Load() > 0 }
	}
	section(out, fmt.Sprintf("Phase 2, policy %s: traffic, with the cache server down at %.1fs for %s, then %s more",
		policy, o.after.Seconds(), o.length, o.recovery))

	hs, err := e.openHandles(policy)
	if err != nil {
		return err
	}
	defer closeHandles(hs)
	before := snapshot(hs)
	label := fmt.Sprintf("%-8s", policy)
	tr, chk, dw := e.runTraffic(ctx, label, hs, 0, o)
	var st wtcache.Stats
	for i, h := range hs {
		st = add(st, minus(h.stats(), before[i]))
	}

	fmt.Fprintf(out, "\n  reads      %6d, %d of them while the cache was down, served by PostgreSQL", tr.reads.Load(), tr.readsDown.Load())
	if n := tr.readsDown.Load(); n > 0 {
		fmt.Fprintf(out, " in %s on average\n             (a handle that is not dirty asks Redis first and waits up to cache_timeout, 500ms by default)",
			ms(time.Duration(tr.readsDownTime.Load()/n)))
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "  transfers  %6d committed, %d of them while the cache was down\n", tr.transfers.Load(), tr.transfersDown.Load())
	fmt.Fprintf(out, "             %6d refused with ErrCacheUnavailable (%d while down), %d declined, %d retried\n",
		tr.refused.Load(), tr.refusedDown.Load(), tr.declined.Load(), tr.retries.Load())
	fmt.Fprintf(out, "  cache rows hits %d, misses %d, bypasses %d, release failures %d (StatsOf, both handles)\n",
		st.Hits, st.Misses, st.Bypasses, st.ReleaseFailures)
	for _, ev := range dw.events {
		fmt.Fprintf(out, "  %s\n", ev)
	}
	fmt.Fprintln(out)

	maxDirty := slices.Max(dw.max)
	switch policy {
	case wtcache.FailClosed:
		v.check(tr.refused.Load() > 0, "fail: writes were refused with ErrCacheUnavailable (%d)", tr.refused.Load())
		v.check(tr.transfersDown.Load() == 0, "fail: no transfer committed while the cache was down (%d)", tr.transfersDown.Load())
		// A transfer that committed just as the cache went down could not
		// release its intents: its handle marks the table dirty and
		// repairs it when the cache is back (checked below with the other
		// invariants), so a dirty table is allowed here, not required.
		_ = maxDirty
	case wtcache.FallBack:
		v.check(tr.refused.Load() == 0, "fallback: no write was refused (%d)", tr.refused.Load())
		v.check(tr.transfersDown.Load() > 0, "fallback: transfers went on while the cache was down (%d)", tr.transfersDown.Load())
		v.check(maxDirty > 0, "fallback: the handles marked the table dirty and served it from PostgreSQL (max DirtyTables %d)", maxDirty)
	}
	checkTraffic(v, tr, chk, e.total)
	return e.verify(ctx, hs, v)
}

// env holds the services a run uses.
type env struct {
	cfg       config
	pgcfg     *pgx.ConnConfig
	pg        *pgxpool.Pool // plain pgx, for the checks
	mini      *miniredis.Miniredis
	proxy     *cacheProxy
	rdb       *redis.Client // through the proxy; shared by every handle
	tel       *telemetry
	progress  *progress
	total     int64
	pgDesc    string
	redisDesc string
}

func openEnv(ctx context.Context, cfg config) (e *env, err error) {
	e = &env{cfg: cfg, tel: newTelemetry(cfg.Table), progress: &progress{out: cfg.Out, live: cfg.Live},
		total: int64(cfg.Accounts) * initialBalance}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.pgcfg, err = pgx.ParseConfig(cfg.DatabaseURL); err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	e.pgDesc = fmt.Sprintf("%s:%d/%s as %s", e.pgcfg.Host, e.pgcfg.Port, e.pgcfg.Database, e.pgcfg.User)
	if e.pg, err = pgxpool.New(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	if err = e.pg.Ping(ctx); err != nil {
		return nil, fmt.Errorf("PostgreSQL at %s: %w", e.pgDesc, err)
	}

	var opts *redis.Options
	if cfg.RedisURL != "" {
		if opts, err = redis.ParseURL(cfg.RedisURL); err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		e.redisDesc = fmt.Sprintf("%s db %d (REDIS_URL)", opts.Addr, opts.DB)
	} else {
		e.mini = miniredis.NewMiniRedis()
		if err = e.mini.Start(); err != nil {
			return nil, err
		}
		opts = &redis.Options{Addr: e.mini.Addr()}
		e.redisDesc = "in-process miniredis (set REDIS_URL to use a real Redis)"
	}
	network := opts.Network
	if network == "" {
		network = "tcp"
	}
	if e.proxy, err = startProxy(network, opts.Addr); err != nil {
		return nil, err
	}
	opts.Network, opts.Addr = "tcp", e.proxy.Addr()
	e.rdb = redis.NewClient(opts)
	if err = e.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("Redis at %s: %w", e.redisDesc, err)
	}
	return e, nil
}

func (e *env) close() {
	if e.rdb != nil {
		_ = e.rdb.Close()
	}
	if e.proxy != nil {
		e.proxy.Close()
	}
	if e.mini != nil {
		e.mini.Close()
	}
	if e.pg != nil {
		e.pg.Close()
	}
	e.tel.shutdown()
}

// snapshot returns the StatsOf counters of each handle.
func snapshot(hs []*handle) []wtcache.Stats {
	out := make([]wtcache.Stats, len(hs))
	for i, h := range hs {
		out[i] = h.stats()
	}
	return out
}

// minus returns the counters of s that accrued since o.
func minus(s, o wtcache.Stats) wtcache.Stats {
	return wtcache.Stats{
		Hits: s.Hits - o.Hits, Misses: s.Misses - o.Misses, Bypasses: s.Bypasses - o.Bypasses,
		Corrupt: s.Corrupt - o.Corrupt, ReleaseFailures: s.ReleaseFailures - o.ReleaseFailures,
		DirtyTables: s.DirtyTables,
	}
}

func add(s, o wtcache.Stats) wtcache.Stats {
	return wtcache.Stats{
		Hits: s.Hits + o.Hits, Misses: s.Misses + o.Misses, Bypasses: s.Bypasses + o.Bypasses,
		Corrupt: s.Corrupt + o.Corrupt, ReleaseFailures: s.ReleaseFailures + o.ReleaseFailures,
		DirtyTables: s.DirtyTables + o.DirtyTables,
	}
}

// verdicts prints each check as it is made and remembers the failures.
type verdicts struct {
	out    io.Writer
	passed int
	failed []string
}

func (v *verdicts) check(ok bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	mark := "ok  "
	if ok {
		v.passed++
	} else {
		mark = "FAIL"
		v.failed = append(v.failed, msg)
	}
	fmt.Fprintf(v.out, "  [%s] %s\n", mark, msg)
}

// progress prints the progress line: redrawn in place on a terminal, one
// line per second otherwise.
type progress struct {
	out     io.Writer
	live    bool
	pending bool // a live line is on screen without its newline
}

func (p *progress) line(s string) {
	if p.live {
		fmt.Fprintf(p.out, "\r%s\x1b[K", s)
		p.pending = true
		return
	}
	fmt.Fprintln(p.out, s)
}

// event prints a line that stays, above the progress line.
func (p *progress) event(s string) {
	if p.live {
		fmt.Fprintf(p.out, "\r%s\x1b[K\n", s)
		p.pending = false
		return
	}
	fmt.Fprintln(p.out, s)
}

func (p *progress) done() {
	if p.pending {
		fmt.Fprintln(p.out)
		p.pending = false
	}
}

func section(out io.Writer, title string) {
	fmt.Fprintf(out, "\n== %s\n", title)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func getenv(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}

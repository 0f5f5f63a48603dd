package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
)

// The change feed: writes made anywhere (another service on plain pgx, a
// migration, psql, COPY, triggers and functions) reach the cache from
// PostgreSQL's own log. One process per database (elected through a lease
// in Redis) follows the log through a temporary logical replication slot
// and the pgoutput plugin, and applies every committed row change to Redis
// (the row's image goes, its version moves) and every TRUNCATE or schema
// change to the table's generation (follower.go).
//
// The fence. The follower publishes, in Redis, a status key whose life
// (PTTL) is how long its claim holds: "every write committed up to
// cache_feed_max_lag before the key expires has been applied". It renews
// the key only after a heartbeat it wrote into the log has come back
// through the stream (so everything committed before the heartbeat was
// applied first). Every process polls the key; a lookup serves hits only
// while the key was alive when the lookup looked (otherwise it reads
// PostgreSQL). So a write made anywhere is never served stale more than
// cache_feed_max_lag after its commit, even when the follower is gone.
//
// Epochs. Each stream the follower starts has an epoch of its own,
// published with the status: images are stored under the epoch their
// reader or writer knew, and a hit needs the current one. A new stream
// (a takeover, a restart after a PostgreSQL or network failure) starts
// where the log is now, so the changes committed since the previous one
// stopped are never seen: its new epoch retires every image stored before
// it, in O(1), without knowing which tables are cached. The status also
// carries a catalog token that changes with every DDL, GRANT or REVOKE (an
// event trigger puts a message into the log: SetupFeed), every change of
// role membership (a fingerprint checked with each heartbeat) and every new
// stream: processes forget their schema knowledge and their sessions'
// privileges when it changes.

// Defaults of the change feed.
const (
	DefaultFeedMaxLag      = time.Second
	DefaultFeedPublication = "wtcache"
	// feedLease is how long a follower's lease lives; it renews it every
	// quarter, and another process takes over within this time when it
	// dies.
	feedLease = 2 * time.Second
)

// WithFeed turns the change feed on or off (cache_feed). Default: off,
// because it needs a server with wal_level=logical, a role with the
// REPLICATION attribute and the publication and event trigger SetupFeed
// makes; with it on, a server or role without them is an error at the
// first connection, never a silent downgrade.
func WithFeed(on bool) Option {
	return func(c *config) { c.feed = on }
}

// WithFeedMaxLag bounds how long after its commit a write made anywhere
// may still be served from the cache (cache_feed_max_lag): beyond it,
// lookups read PostgreSQL until the follower has caught up. Default:
// DefaultFeedMaxLag (1s).
func WithFeedMaxLag(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.feedMaxLag = d
		}
	}
}

func init() {
	params["cache_feed"] = func(c *config, v string) error {
		switch v {
		case "on":
			c.feed = true
		case "off":
			c.feed = false
		default:
			return fmt.Errorf("%q is neither on nor off", v)
		}
		return nil
	}
	params["cache_feed_max_lag"] = func(c *config, v string) (err error) {
		c.feedMaxLag, err = parseDuration(v)
		if err == nil && c.feedMaxLag < 20*time.Millisecond {
			err = fmt.Errorf("%q is below the least the feed can keep (20ms)", v)
		}
		return err
	}
	params["cache_feed_publication"] = func(c *config, v string) error {
		if v == "" || strings.ContainsAny(v, "'\"\\") {
			return fmt.Errorf("%q is not a plain publication name", v)
		}
		c.feedPublication = v
		return nil
	}
}

// ErrFeedUnavailable is wrapped by the error of a connection made with the
// change feed on when the server or role cannot give it: wal_level is not
// logical, the role lacks REPLICATION, the publication or the event
// trigger SetupFeed makes is missing, or the inner driver is not pgx.
var ErrFeedUnavailable = errors.New("wtcache: change feed unavailable")

// feedView is what this process knows of the change feed: the current
// stream epoch and catalog token, and until when (unix ns, this process's
// clock) the follower's claim holds.
type feedView struct {
	epoch, catalog string
	freshUntil     time.Time // with the monotonic reading
}

// fresh reports whether hits may be served at now (unix ns).
func (v *feedView) fresh(now time.Time) bool {
	return v != nil && v.epoch != "" && now.Before(v.freshUntil)
}

// feedState is a connector's part in the change feed.
type feedState struct {
	checkMu  sync.Mutex
	checked  bool
	checkErr error
	view     atomic.Pointer[feedView]

	leader       atomic.Bool
	takeovers    atomic.Int64
	applied      atomic.Int64 // row invalidations applied by this process's follower
	bumps        atomic.Int64 // table generations moved by it
	lagNs        atomic.Int64 // the follower's lag at its last heartbeat
	lagBytes     atomic.Int64
	heartbeats   atomic.Int64
	staleLookups atomic.Int64
}

// feedKeys are the keys of the change feed of one database: a hash tag of
// its own, so that they live together on Redis Cluster.
type feedKeys struct{ lease, status string }

func (cn *connector) feedKeys(database string) feedKeys {
	var b strings.Builder
	b.WriteByte('{')
	escapeKeyPart(&b, cn.cfg.prefix)
	b.WriteByte(':')
	escapeKeyPart(&b, database)
	b.WriteString("}:feed:")
	tag := b.String()
	return feedKeys{lease: tag + "lease", status: tag + "status"}
}

// feedConnect runs, once per connector with the feed on, the checks of the
// first connection and starts the feed. A server or role that cannot give
// the feed fails every connection with the same error; a transient error
// (the check's query failed) fails this one and the next tries again.
func (cn *connector) feedConnect(ctx context.Context, c *conn) error {
	f := &cn.feed
	f.checkMu.Lock()
	defer f.checkMu.Unlock()
	if f.checked {
		return f.checkErr
	}
	database, err := feedCheck(ctx, c, cn.cfg.feedPublication)
	if err != nil {
		if errors.Is(err, ErrFeedUnavailable) {
			f.checked, f.checkErr = true, err
		}
		return err
	}
	f.checked = true
	keys := cn.feedKeys(database)
	cn.rep.Add(2)
	go cn.pollFeed(keys)
	go cn.runFollower(keys, database, c.inner.(*stdlib.Conn).Conn().Config().Copy())
	return nil
}

// feedCheck asks the server whether it can give the feed.
func feedCheck(ctx context.Context, c *conn, publication string) (database string, err error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: %s", ErrFeedUnavailable, fmt.Sprintf(format, args...))
	}
	if _, ok := c.inner.(*stdlib.Conn); !ok {
		return fail("cache_feed=on needs the pgx driver (cache_driver=pgx); this connection is a %T", c.inner)
	}
	return feedFacts(ctx, c, publication)
}

// feedFactsQuery is feedFacts' one round trip.
const feedFactsQuery = `SELECT pg_catalog.current_setting('wal_level'), pg_catalog.current_database()::pg_catalog.text, current_user::pg_catalog.text,
  (SELECT rolreplication OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user),
  (SELECT puballtables AND pubinsert AND pubupdate AND pubdelete AND pubtruncate AND NOT pubviaroot
   FROM pg_catalog.pg_publication WHERE pubname = $1),
  EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'wtcache_ddl' AND evtenabled = 'A')`

// feedFacts reads what the feed needs from the server and says what is
// missing.
func feedFacts(ctx context.Context, c *conn, publication string) (database string, err error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: %s", ErrFeedUnavailable, fmt.Sprintf(format, args...))
	}
	rows, err := c.innerQuery(ctx, feedFactsSQL, publication)
	if err != nil {
		return "", err
	}
	r := rows[0]
	switch {
	case asString(r[0]) != "logical":
		return fail("the server's wal_level is %s; logical decoding needs wal_level=logical (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)", asString(r[0]))
	case !asBool(r[3]):
		return fail("role %q has neither the REPLICATION attribute nor superuser (ALTER ROLE %s REPLICATION)", asString(r[2]), quoteIdent(asString(r[2])))
	case r[4] == nil:
		return fail("no publication %q: run the setup once (go run github.com/wtcache/wtcache/cmd/wtcache setup DSN, or wtcache.SetupFeed)", publication)
	case !asBool(r[4]):
		return fail("publication %q does not give every change: it must be FOR ALL TABLES, publish insert, update, delete and truncate, and not publish via the partition root", publication)
	case !asBool(r[5]):
		return fail("no event trigger wtcache_ddl enabled ALWAYS (so that it fires under session_replication_role=replica too): run the setup once (go run github.com/wtcache/wtcache/cmd/wtcache setup DSN, or wtcache.SetupFeed)")
	}
	return asString(r[1]), nil
}

// SetupFeed makes what the change feed needs in the database of db, once,
// as a role that may (a superuser): the publication (FOR ALL TABLES,
// named publication, "" for DefaultFeedPublication) and an event trigger,
// wtcache_ddl, that writes a message into the log at the end of every DDL
// command, GRANT and REVOKE, so that every process learns of them from the
// feed. It is idempotent. The server must run with wal_level=logical.
func SetupFeed(ctx context.Context, db *sql.DB, publication string) error {
	if publication == "" {
		publication = DefaultFeedPublication
	}
	if strings.ContainsAny(publication, "'\"\\") {
		return fmt.Errorf("%w: publication %q", ErrInvalidParameter, publication)
	}
	// A publication FOR ALL TABLES refuses UPDATE and DELETE on a table
	// without a replica identity (no primary key, REPLICA IDENTITY
	// DEFAULT or NOTHING): before making it, say which, rather than break
	// them.
	var exists bool
	if err := db.QueryRowContext(ctx, catalogSQL(`SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)`), publication).Scan(&exists); err != nil {
		return fmt.Errorf("wtcache: setting up the change feed: %w", err)
	}
	rows, err := db.QueryContext(ctx, catalogSQL(`SELECT c.oid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
		  AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS
		       (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
		  AND NOT $1
		ORDER BY 1`), exists)
	if err != nil {
		return fmt.Errorf("wtcache: setting up the change feed: %w", err)
	}
	var keyless []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		keyless = append(keyless, name)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if len(keyless) > 0 {
		return fmt.Errorf("%w: a publication FOR ALL TABLES would make UPDATE and DELETE fail on tables without a replica identity: %s (give each a primary key or ALTER TABLE ... REPLICA IDENTITY FULL, then run the setup again)",
			ErrFeedUnavailable, strings.Join(keyless, ", "))
	}
	stmts := []string{
		`DO $$ BEGIN
		   IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname OPERATOR(pg_catalog.=) '` + publication + `') THEN
		     CREATE PUBLICATION "` + publication + `" FOR ALL TABLES;
		   END IF;
		 END $$`,
		`CREATE OR REPLACE FUNCTION public.wtcache_ddl_message() RETURNS event_trigger
		 LANGUAGE plpgsql AS $$
		 BEGIN
		   PERFORM pg_catalog.pg_logical_emit_message(true, 'wtcache.ddl', tg_tag);
		 END $$`,
		`DO $$ BEGIN
		   IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname OPERATOR(pg_catalog.=) 'wtcache_ddl') THEN
		     CREATE EVENT TRIGGER wtcache_ddl ON ddl_command_end EXECUTE FUNCTION public.wtcache_ddl_message();
		   END IF;
		 END $$`,
		// Also under session_replication_role=replica (pg_restore's
		// --disable-triggers, replication tools).
		`ALTER EVENT TRIGGER wtcache_ddl ENABLE ALWAYS`,
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("wtcache: setting up the change feed: %w", err)
		}
	}
	return nil
}

// pollFeed reads the follower's status every quarter of the maximum lag
// (at most every 250 ms) and keeps this process's view of it.
func (cn *connector) pollFeed(keys feedKeys) {
	defer cn.rep.Done()
	every := min(cn.cfg.feedMaxLag/4, 250*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cn.pollFeedOnce(keys)
		select {
		case <-cn.closed:
			return
		case <-t.C:
		}
	}
}

func (cn *connector) pollFeedOnce(keys feedKeys) {
	f := &cn.feed
	if cn.cacheDown() {
		return // the breaker's probe will tell; the view expires by itself
	}
	sent := time.Now()
	ctx, cancel := cn.redisCtxFrom(context.Background(), sent)
	defer cancel()
	// The status carries the end of its claim on Redis's clock; TIME,
	// read after it, says how much of it is left. (Not the key's PTTL:
	// Redis computes that from a clock it caches, which lags under load.)
	pipe := cn.cfg.redis.Pipeline()
	get := pipe.Get(ctx, keys.status)
	now := pipe.Time(ctx)
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		cn.redisErr(nil, err)
		return
	}
	val, _ := get.Result()
	epoch, catalog, theirs, until, ok := parseFeedStatus(val)
	left := time.Duration(until-now.Val().UnixMilli()) * time.Millisecond
	if theirs > cn.cfg.feedMaxLag {
		// A follower that keeps a longer lag than this process asks for:
		// its claim holds for this process that much less.
		left -= theirs - cn.cfg.feedMaxLag
	}
	if !ok || left <= 0 {
		return // no follower's claim holds now: the view expires by itself
	}
	prev := f.view.Load()
	if prev == nil || prev.catalog != catalog {
		// A DDL, GRANT, REVOKE or role change, a new stream, or the first
		// claim this process sees (what it learnt before may predate a
		// change the feed reported): forget what it knows of the catalog.
		cn.schema.forget()
		cn.catalogs.Add(1)
	}
	f.view.Store(&feedView{epoch: epoch, catalog: catalog, freshUntil: sent.Add(left)})
}

// feedNow returns the view a lookup or write works under: nil without a
// feed.
func (cn *connector) feedNow() *feedView {
	if !cn.cfg.feed {
		return nil
	}
	if v := cn.feed.view.Load(); v != nil {
		return v
	}
	return &feedView{}
}

// feedStatus renders the status a follower publishes: its stream's epoch,
// the catalog token, its lag at the heartbeat, the maximum lag it keeps (in
// ms), and the end of its claim on Redis's clock (unix ms).
func feedStatus(epoch, catalog string, lag, maxLag time.Duration, until int64) string {
	return epoch + " " + catalog + " " + strconv.FormatInt(lag.Milliseconds(), 10) + " " +
		strconv.FormatInt(maxLag.Milliseconds(), 10) + " " + strconv.FormatInt(until, 10)
}

// parseFeedStatus reads a status; ok is false for anything else.
func parseFeedStatus(s string) (epoch, catalog string, maxLag time.Duration, until int64, ok bool) {
	f := strings.Fields(s)
	if len(f) != 5 || f[0] == "" || f[1] == "" {
		return "", "", 0, 0, false
	}
	ms, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil || ms <= 0 {
		return "", "", 0, 0, false
	}
	until, err = strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return "", "", 0, 0, false
	}
	return f[0], f[1], time.Duration(ms) * time.Millisecond, until, true
}

// FeedStats are the counters of a connector's part in the change feed.
type FeedStats struct {
	Fresh         bool          // hits may be served now (the follower's claim holds)
	Leader        bool          // this process follows the log now
	Takeovers     int64         // times this process became the follower
	Invalidations int64         // row changes its follower applied
	TableBumps    int64         // table generations its follower moved (TRUNCATE, schema changes, bulk changes)
	Heartbeats    int64         // heartbeats its follower saw come back through the log
	Lag           time.Duration // its follower's lag at the last heartbeat
	StaleLookups  int64         // lookups that went to PostgreSQL because no claim held
}

// FeedStatsOf returns the change-feed counters of a connector made by
// NewConnector (ok false for any other).
func FeedStatsOf(c driver.Connector) (s FeedStats, ok bool) {
	cn, ok := c.(*connector)
	if !ok {
		return FeedStats{}, false
	}
	f := &cn.feed
	return FeedStats{
		Fresh:         f.view.Load().fresh(time.Now()),
		Leader:        f.leader.Load(),
		Takeovers:     f.takeovers.Load(),
		Invalidations: f.applied.Load(),
		TableBumps:    f.bumps.Load(),
		Heartbeats:    f.heartbeats.Load(),
		Lag:           time.Duration(f.lagNs.Load()),
		StaleLookups:  f.staleLookups.Load(),
	}, true
}

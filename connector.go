package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/proto"
)

// NewConnector wraps inner, any driver.Connector (for example pgx's
// stdlib.GetConnector(config)), so that the connections it makes go through
// wtcache with rdb as the cache. rdb stays the caller's: closing the
// connector (or the *sql.DB built on it) closes inner when inner is an
// io.Closer, never rdb. rdb keeps its own options: wtcache bounds each Redis
// call by the Redis timeout (WithRedisTimeout) through a context deadline,
// which go-redis honours only with ContextTimeoutEnabled; with MaxRetries -1
// and DialerRetries 1 as well, no retry or its backoff comes on top.
func NewConnector(inner driver.Connector, rdb redis.UniversalClient, opts ...Option) (driver.Connector, error) {
	if inner == nil {
		return nil, fmt.Errorf("%w: NewConnector needs an inner connector", ErrNilArgument)
	}
	if rdb == nil {
		return nil, fmt.Errorf("%w: NewConnector needs a Redis client", ErrNilArgument)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	cfg.redis, cfg.ownRedis = rdb, false
	if err := cfg.checkLocal(); err != nil {
		return nil, err
	}
	if err := cfg.buildSealer(); err != nil {
		return nil, err
	}
	if err := cfg.checkLocalClient(); err != nil {
		return nil, err
	}
	return newConnector(inner, &wtDriver{inner: inner.Driver(), opts: opts}, cfg), nil
}

// OpenDB is sql.OpenDB(NewConnector(inner, rdb, opts...)). It panics only
// where NewConnector would return an error, that is on a nil argument.
func OpenDB(inner driver.Connector, rdb redis.UniversalClient, opts ...Option) *sql.DB {
	c, err := NewConnector(inner, rdb, opts...)
	if err != nil {
		panic(err)
	}
	return sql.OpenDB(c)
}

// connector is wtcache's driver.Connector. It always implements io.Closer
// (database/sql calls it from DB.Close), forwarding to the inner connector
// when that is a Closer too.
type connector struct {
	inner driver.Connector
	drv   *wtDriver
	cfg   config

	tel     *telemetry
	incs    sync.Map // table hash tag -> *incarnation
	schema  schemaCache
	plans   planCache
	flights flights
	fills   fillQueue
	memo    *decodeMemo
	// innerSecrets are the passwords of the inner DSN, removed from the
	// inner driver's errors (dsnSecrets).
	innerSecrets []string
	near         *nearCache // cache_local=on; nil otherwise
	nearOnce     sync.Once
	checked      atomic.Bool               // cache_check passed once
	nearPtr      atomic.Pointer[nearCache] // near, for readers not ordered after the first connection (stats)
	bg           sync.WaitGroup            // fills and other work that outlives a call
	rep          sync.WaitGroup            // the repair loop

	hits            atomic.Int64 // rows served from Redis
	misses          atomic.Int64 // rows of a lookup read from PostgreSQL
	bypasses        atomic.Int64 // lookups that went through to PostgreSQL whole
	corrupt         atomic.Int64 // entries rejected as corrupt
	reasons         reasonCounts // bypasses and misses by reason
	large           tooLarge     // rows whose images exceed cache_max_entry
	hazards         readHazardState
	catConn         catalogConn  // catalog reads for sessions inside a snapshot transaction
	releaseFailures atomic.Int64 // intents left to expire

	brk   breaker
	log   *rateLog
	feed  feedState
	fence dbFence
	// fenceDirty: a database-wide write ran under fallback without telling
	// Redis; nothing is served until the epoch has moved (markDBDirty).
	fenceDirty atomic.Bool
	// catalogs counts the catalog changes this process learned of (the
	// database fence, the change feed): sessions loaded before one reload.
	catalogs atomic.Int64

	// brokenNoIntents switches the write path to the naive, broken
	// protocol; only tests set it, to prove the checker can fail.
	brokenNoIntents atomic.Bool
	// brokenFills makes fills store their rows unconditionally (the naive
	// read-through); only tests set it, to prove the checker can fail.
	brokenFills atomic.Bool
	// splitAt, when set, replaces splitVersionsAt (tests: 1 makes every
	// lookup read its misses' versions apart, read.go).
	splitAt atomic.Int32

	dirtyMu   sync.Mutex
	dirtyN    atomic.Int32
	dirtyTabs map[uint32]dirtyMark // table OID -> what to bump
	dirtySeq  uint64
	repairing bool
	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var (
	_ driver.Connector = (*connector)(nil)
	_ io.Closer        = (*connector)(nil)
)

func newConnector(inner driver.Connector, drv *wtDriver, cfg config) *connector {
	c := &connector{inner: inner, drv: drv, cfg: cfg, closed: make(chan struct{}), memo: newDecodeMemo()}
	c.plans.max = cfg.planCache
	c.catConn.owner = c
	c.tel = newTelemetry(&c.cfg, c)
	c.log = newRateLog(cfg.logger)
	return c
}

// redisCtx bounds a Redis operation by the Redis timeout. A client built
// from cache_redis honours a deadline for every wait of a call (see
// newRedisFromURL), so the deadline costs no timer (boundCtx); a client
// passed in gets a context with a timeout, which go-redis honours when the
// client has ContextTimeoutEnabled.
func (c *connector) redisCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return c.redisCtxFrom(parent, time.Now())
}

// redisCtxFrom is redisCtx for a call that started at start.
func (c *connector) redisCtxFrom(parent context.Context, start time.Time) (context.Context, context.CancelFunc) {
	if c.cfg.ownRedis {
		return &boundCtx{Context: parent, deadline: start.Add(c.cfg.timeout)}, noCancel
	}
	return context.WithDeadline(parent, start.Add(c.cfg.timeout))
}

func noCancel() {}

// dirtyMark is one table to repair; seq tells marks apart, so that a
// repair clears only the mark it served.
type dirtyMark struct {
	meta string
	seq  uint64
}

// dirty reports whether this handle must not serve table oid from Redis:
// a write under FallBack could not invalidate it and it is not repaired.
func (c *connector) dirty(oid uint32) bool {
	if c.dirtyN.Load() == 0 {
		return false
	}
	c.dirtyMu.Lock()
	defer c.dirtyMu.Unlock()
	_, ok := c.dirtyTabs[oid]
	return ok
}

// markDirty records that ti may be stale in Redis and starts the repair
// loop, which moves the table's generation as soon as Redis answers.
func (c *connector) markDirty(ti *tableInfo, tag string) {
	c.dirtyMu.Lock()
	defer c.dirtyMu.Unlock()
	if c.dirtyTabs == nil {
		c.dirtyTabs = map[uint32]dirtyMark{}
	}
	if _, ok := c.dirtyTabs[ti.oid]; !ok {
		c.dirtyN.Add(1)
	}
	c.dirtySeq++
	c.dirtyTabs[ti.oid] = dirtyMark{meta: metaKey(tag), seq: c.dirtySeq}
	if !c.repairing {
		c.repairing = true
		c.rep.Add(1)
		go c.repair()
	}
}

// repair bumps the generation of every dirty table until none is left.
func (c *connector) repair() {
	defer c.rep.Done()
	backoff := 50 * time.Millisecond
	for {
		c.dirtyMu.Lock()
		work := make(map[uint32]dirtyMark, len(c.dirtyTabs))
		for k, v := range c.dirtyTabs {
			work[k] = v
		}
		if len(work) == 0 {
			c.repairing = false
			c.dirtyMu.Unlock()
			return
		}
		c.dirtyMu.Unlock()
		if up := c.redisUp(); up != nil {
			// Redis is down: wait for the probe's first answer.
			select {
			case <-up:
			case <-c.closed:
				c.dirtyMu.Lock()
				c.repairing = false
				c.dirtyMu.Unlock()
				return
			}
			backoff = 50 * time.Millisecond
		}
		for oid, mark := range work {
			ctx, cancel := c.redisCtx(context.Background())
			_, err := proto.Release(ctx, c.cfg.redis, mark.meta, nil, proto.NewToken(), "", 0, true, true, nil)
			cancel()
			nearDrop(nil, proto.StateKey(mark.meta))
			c.redisErr(nil, err)
			if err == nil {
				c.dirtyMu.Lock()
				// Cleared only if nobody marked it again meanwhile: a
				// write that ends after this bump needs another one.
				if c.dirtyTabs[oid] == mark {
					delete(c.dirtyTabs, oid)
					c.dirtyN.Add(-1)
				}
				c.dirtyMu.Unlock()
			}
		}
		select {
		case <-c.closed:
			c.dirtyMu.Lock()
			c.repairing = false
			c.dirtyMu.Unlock()
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Connect returns the inner connection wrapped. Errors from the inner
// connector (driver.ErrBadConn included) come back unchanged.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	ic, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, redactInner(err, c.innerSecrets)
	}
	if c.cfg.check && !c.checked.Load() {
		if err := c.checkRedis(ctx); err != nil {
			_ = ic.Close()
			return nil, err
		}
		c.checked.Store(true)
	}
	c.nearOnce.Do(c.startNear)
	cn := newConn(ic, c)
	if c.cfg.feed {
		if err := c.feedConnect(ctx, cn); err != nil {
			_ = ic.Close()
			return nil, err
		}
	}
	return cn, nil
}

// Driver returns the wtcache driver that made this connector.
func (c *connector) Driver() driver.Driver { return c.drv }

// Close closes the inner connector when it is an io.Closer and the Redis
// client when wtcache built it from the DSN. It is safe to call twice.
func (c *connector) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.bg.Wait()
		c.rep.Wait()
		c.stopNear()
		catErr := c.catConn.close()
		if c.tel.registered != nil {
			_ = c.tel.registered.Unregister()
		}
		errs := []error{catErr}
		if cl, ok := c.inner.(io.Closer); ok {
			errs = append(errs, cl.Close())
		}
		if c.cfg.ownRedis && c.cfg.redis != nil {
			if err := c.cfg.redis.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
				errs = append(errs, fmt.Errorf("wtcache: closing Redis client: %w", err))
			}
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

func closeQuietly(c driver.Connector) {
	if cl, ok := c.(io.Closer); ok {
		_ = cl.Close()
	}
}

func (c *connector) countCorrupt(ctx context.Context) {
	c.corrupt.Add(1)
	c.tel.corrupt.Add(ctx, 1)
}

// incarnation is what a connector knows of one table's state in Redis.
// When the state is found recreated (Redis lost its data: FLUSHALL, a
// restart, eviction), a write may hold an intent that was lost with it, so
// for one intent lifetime this connector fills nothing and serves nothing
// of that table from Redis. (A release stores its image only if it finds
// its own intent, which a loss would have taken.)
type incarnation struct {
	mu    sync.Mutex
	inc   atomic.Pointer[string]
	until atomic.Int64 // unix ns; 0: never quarantined
}

func (st *incarnation) inQuarantine() bool {
	u := st.until.Load()
	return u != 0 && time.Now().UnixNano() < u
}

// incState returns the incarnation state of tag (made on first use).
func (c *connector) incState(tag string) *incarnation {
	if v, ok := c.incs.Load(tag); ok {
		return v.(*incarnation)
	}
	v, _ := c.incs.LoadOrStore(tag, &incarnation{})
	return v.(*incarnation)
}

// observe records the incarnation inc seen for the table of st and reports
// whether the table is in quarantine. Seeing the known incarnation costs
// no lock.
func (c *connector) observe(st *incarnation, inc string) bool {
	if inc == "" {
		return st.inQuarantine()
	}
	if cur := st.inc.Load(); cur != nil && *cur == inc {
		return st.inQuarantine()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	switch cur := st.inc.Load(); {
	case cur == nil:
		first := inc // first sight: nothing was known to be lost
		st.inc.Store(&first)
	case *cur != inc:
		seen := inc
		st.inc.Store(&seen)
		st.until.Store(time.Now().Add(c.cfg.intentLifetime).UnixNano())
	}
	return st.inQuarantine()
}

// redisName names the Redis server in messages, password redacted.
func (c *connector) redisName() string {
	if c.cfg.redisAddr != "" {
		return c.cfg.redisAddr
	}
	return "redis"
}

// checkLocalClient refuses the near cache with a client that has no single
// server to track.
func (c *config) checkLocalClient() error {
	if !c.local {
		return nil
	}
	if _, ok := c.redis.(*redis.Client); !ok {
		return fmt.Errorf("%w: %w", ErrInvalidParameter, errNearClient)
	}
	return nil
}

// startNear starts the near cache at the first connection. The tracking
// connection comes up in the background; until its first heartbeat is
// answered, lookups go to Redis.
func (c *connector) startNear() {
	if !c.cfg.local {
		return
	}
	n := newNearCache(c.cfg.prefix, c.cfg.localSize, c.cfg.localMaxStale, c.redact)
	n.onTrip = func(reason string) {
		c.log.info("near_fence", "wtcache: the near cache stopped serving until its tracking connection answers again", "reason", reason)
	}
	if err := n.start(c.cfg.redis, c.cfg.localAddr); err != nil {
		c.log.warn("near_start", "wtcache: the near cache could not start; lookups go to Redis", "error", c.redact(err.Error()))
		return
	}
	c.near = n
	c.nearPtr.Store(n)
}

// nearNow returns the near cache once the first connection started it.
func (c *connector) nearNow() *nearCache { return c.nearPtr.Load() }

func (c *connector) stopNear() {
	c.nearOnce.Do(func() {}) // a connector closed before its first connection starts nothing
	if c.near != nil {
		c.near.close()
	}
}

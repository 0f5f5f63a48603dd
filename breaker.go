package wtcache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/proto"
)

// The circuit breaker. When a Redis call fails because Redis cannot be
// reached (refused, reset, timed out, loading its data), the connector marks
// Redis down and stops calling it on its callers' paths: lookups pass
// through to PostgreSQL as if the cache did not exist, writes to cached
// tables are refused at once under FailClosed or go on under FallBack
// (their tables marked dirty on this handle), fills are dropped. One
// goroutine probes Redis in the background; its first answer closes the
// breaker, and the next lookup reads Redis again. What the protocol needs
// after an outage is kept by the protocol itself: a table whose state Redis
// lost is quarantined for an intent lifetime (see incarnation), dirty tables
// are repaired before this handle serves them, and an intent left behind by
// a write cut off from Redis expires and moves its rows on.

// probeInterval is the pause between two probes of a Redis that is down.
const probeInterval = 100 * time.Millisecond

type breaker struct {
	down  atomic.Bool
	trips atomic.Int64

	mu      sync.Mutex
	since   time.Time     // when it last opened
	upAt    time.Time     // when it last closed (tests)
	probing bool          // the probe goroutine runs
	up      chan struct{} // closed (and replaced) each time Redis answers again
}

// cacheDown reports whether Redis is known to be unreachable: callers skip it.
func (cn *connector) cacheDown() bool { return cn.brk.down.Load() }

// errCacheDown is what a Redis step returns, without calling Redis, while
// the breaker is open.
var errCacheDown = errors.New("redis is unreachable (circuit open, probing in the background)")

// redisErr notes the outcome of a Redis call made under parent: an error
// that shows Redis unreachable opens the breaker. It returns err.
func (cn *connector) redisErr(parent context.Context, err error) error {
	if err != nil && unreachable(parent, err) {
		cn.trip(err)
	}
	return err
}

// unreachable reports whether err, from a Redis call made under parent,
// shows that Redis cannot be reached (as opposed to an answer Redis gave, a
// reply wtcache does not expect, or the caller giving up).
func unreachable(parent context.Context, err error) bool {
	if parent != nil && parent.Err() != nil {
		return false // the caller's own cancellation or deadline
	}
	var re redis.Error
	switch {
	case errors.Is(err, errCacheDown):
		return false // already open
	case errors.Is(err, redis.ErrClosed):
		return false // the connector is closing
	case errors.Is(err, proto.ErrProtocol):
		return false
	case errors.As(err, &re):
		// Redis answered. Replies that mean it cannot serve now count as
		// down; every other reply (a script error, WRONGTYPE) is an answer.
		msg := re.Error()
		// A wrong password or a missing permission (NOAUTH, WRONGPASS,
		// NOPERM) is a cache this process cannot use: down too, so that
		// the metric, the span and the log say so (the probe keeps asking).
		for _, p := range []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOAUTH", "WRONGPASS", "NOPERM"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		// A script's command refused by the ACL.
		return strings.Contains(msg, "can't run this command")
	}
	return true // network errors, timeouts, EOF, pool timeouts
}

// trip opens the breaker and starts the probe.
func (cn *connector) trip(cause error) {
	b := &cn.brk
	b.mu.Lock()
	defer b.mu.Unlock()
	if cn.isClosed() {
		return
	}
	if !b.down.Load() {
		b.down.Store(true)
		b.since = time.Now()
		b.trips.Add(1)
		cn.log.warn("redis_down", "wtcache: Redis unreachable; reads go to PostgreSQL, writes to cached tables follow cache_failure until it answers",
			"redis", cn.redisName(), "policy", cn.cfg.failure.String(), "error", cn.redact(cause.Error()))
	}
	if !b.probing {
		b.probing = true
		cn.rep.Add(1)
		go cn.probe()
	}
}

// probe pings Redis until it answers, then closes the breaker.
func (cn *connector) probe() {
	defer cn.rep.Done()
	b := &cn.brk
	for {
		ctx, cancel := cn.redisCtx(context.Background())
		err := cn.cfg.redis.Ping(ctx).Err()
		cancel()
		if err == nil || !unreachable(nil, err) {
			b.mu.Lock()
			b.probing = false
			down := time.Since(b.since)
			b.upAt = time.Now()
			b.down.Store(false)
			if b.up != nil {
				close(b.up)
				b.up = nil
			}
			b.mu.Unlock()
			cn.log.info("redis_up", "wtcache: Redis answers again; reads use the cache",
				"redis", cn.redisName(), "down_for", down.Round(time.Millisecond).String())
			return
		}
		select {
		case <-cn.closed:
			b.mu.Lock()
			b.probing = false
			b.mu.Unlock()
			return
		case <-time.After(probeInterval):
		}
	}
}

// redisUp returns a channel that is closed when Redis next answers after
// an outage; nil when the breaker is closed now.
func (cn *connector) redisUp() <-chan struct{} {
	b := &cn.brk
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.down.Load() {
		return nil
	}
	if b.up == nil {
		b.up = make(chan struct{})
	}
	return b.up
}

func (cn *connector) isClosed() bool {
	select {
	case <-cn.closed:
		return true
	default:
		return false
	}
}

// boundCtx bounds the Redis calls made under it by a deadline without a
// timer: clients that wtcache builds honour context deadlines for their
// dials, reads and writes (ContextTimeoutEnabled), never retry, and wait for
// a pooled connection at most the Redis timeout, so a deadline reported by
// Deadline bounds every wait of a call. Done and Err are the parent's.
type boundCtx struct {
	context.Context
	deadline time.Time
}

func (b *boundCtx) Deadline() (time.Time, bool) {
	if d, ok := b.Context.Deadline(); ok && d.Before(b.deadline) {
		return d, true
	}
	return b.deadline, true
}

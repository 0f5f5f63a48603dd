package wtcache

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wtcache/wtcache/internal/proto"
)

// The database fence: what every process must learn before a statement
// returns, in O(1), whatever tables it has loaded. A statement whose reach
// cannot be bounded (a function, DO, CALL, a table with triggers or rules,
// a view, a text the recognizer cannot attribute, two-phase commit) may
// change any cached row of the database, and a DDL, GRANT or REVOKE may
// change what any row means or who may read it. Such a statement places a
// database-wide intent in Redis, waits until every process must have seen
// it, runs, and moves the database epoch (and, for DDL, the catalog token).
//
// Every process polls the database's state every dbFencePoll and serves a
// hit only while its last poll is younger than dbFenceWait, shows no
// database-wide intent, and the image was stored under the epoch the poll
// saw. So once a database-wide intent is placed, no process serves or fills
// anything after dbFenceWait; after the release, images stored before are
// misses everywhere, and processes that see a new catalog token forget
// their schema knowledge and their sessions' privileges.

const (
	dbFencePoll = 25 * time.Millisecond
	dbFenceWait = 100 * time.Millisecond
)

// dbView is a process's view of the database's state.
type dbView struct {
	epoch, catalog string
	locked         bool
	freshUntil     time.Time // with the monotonic reading: a wall-clock step does not stretch it
}

// serves reports whether hits may be served at now (unix ns).
func (v *dbView) serves(now time.Time) bool {
	return v != nil && !v.locked && now.Before(v.freshUntil)
}

type dbFence struct {
	mu        sync.Mutex
	key       string // {prefix:database}:db, set at the first session
	started   bool
	view      atomic.Pointer[dbView]
	count     atomic.Int64 // the poll counter last seen
	pollMu    sync.Mutex
	dirtySeq  uint64
	repairing bool
}

func (cn *connector) dbKey(database string) string {
	var b strings.Builder
	b.WriteByte('{')
	escapeKeyPart(&b, cn.cfg.prefix)
	b.WriteByte(':')
	escapeKeyPart(&b, database)
	b.WriteString("}:db")
	return b.String()
}

// startDBFence starts polling the state of database (once per connector:
// the first database it sees). The first poll runs before it returns, so
// that the first lookups may be served.
func (cn *connector) startDBFence(database string) {
	f := &cn.fence
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return
	}
	f.started, f.key = true, cn.dbKey(database)
	f.mu.Unlock()
	cn.pollDB()
	cn.rep.Add(1)
	go func() {
		defer cn.rep.Done()
		t := time.NewTicker(dbFencePoll)
		defer t.Stop()
		for {
			select {
			case <-cn.closed:
				return
			case <-t.C:
			}
			cn.pollDB()
		}
	}()
}

func (cn *connector) pollDB() {
	f := &cn.fence
	if cn.cacheDown() || f.key == "" {
		return
	}
	// One poll at a time: the counter must be seen in the order it moved.
	f.pollMu.Lock()
	defer f.pollMu.Unlock()
	if cn.cacheDown() {
		return // found unreachable by the poll this one waited for
	}
	sent := time.Now()
	ctx, cancel := cn.redisCtxFrom(context.Background(), sent)
	st, err := proto.DBPoll(ctx, cn.cfg.redis, f.key)
	cancel()
	if err != nil {
		cn.redisErr(nil, err)
		return
	}
	if last := f.count.Load(); st.Count <= last && last > 0 {
		// The counter went back: Redis lost writes it had acknowledged
		// (restarted from a snapshot, or failed over to a replica that
		// lagged). Images it kept may predate changes applied since:
		// move the epoch before serving anything.
		f.count.Store(0)
		f.view.Store(nil)
		token := proto.NewToken()
		rctx, rcancel := cn.redisCtx(context.Background())
		err := proto.DBRelease(rctx, cn.cfg.redis, f.key, token, true)
		rcancel()
		if cn.redisErr(nil, err); err == nil {
			cn.log.warn("redis_rollback", "wtcache: Redis went back in time (restored from a snapshot, or a lagging replica promoted); every cached row was retired",
				"redis", cn.redisName())
		}
		return
	}
	f.count.Store(st.Count)
	prev := f.view.Load()
	if prev != nil && prev.catalog != st.Catalog {
		// A DDL, GRANT or REVOKE went through wtcache somewhere: forget
		// what this process knows of the catalog.
		cn.schema.forget()
		cn.catalogs.Add(1)
	}
	f.view.Store(&dbView{epoch: st.Epoch, catalog: st.Catalog, locked: st.Locked, freshUntil: sent.Add(dbFenceWait)})
}

// dbNow is the database view a lookup or write works under (nil before the
// first poll).
func (cn *connector) dbNow() *dbView { return cn.fence.view.Load() }

// imageEpoch is the epoch images are stored and served under: the
// database's, with the change feed's stream epoch when the feed is on. ok
// is false when it is not known (no poll yet, or the feed not started).
func (cn *connector) imageEpoch(dv *dbView, fv *feedView) (string, bool) {
	if dv == nil || dv.epoch == "" {
		return "", false
	}
	if fv == nil {
		return dv.epoch, true
	}
	if fv.epoch == "" {
		return "", false
	}
	return dv.epoch + "~" + fv.epoch, true
}

// dbLock places a database-wide intent and waits until every process must
// have seen it. It returns the token to release with.
func (cn *connector) dbLock(ctx context.Context) (string, error) {
	key := cn.fence.key
	if key == "" {
		return "", nil // no session yet: nothing of this database is served by this process
	}
	if cn.cacheDown() {
		return "", errCacheDown
	}
	token := proto.NewToken()
	rctx, cancel := cn.redisCtx(ctx)
	err := proto.DBLock(rctx, cn.cfg.redis, key, token, cn.cfg.intentLifetime.Milliseconds())
	cancel()
	if err != nil {
		return "", cn.redisErr(ctx, err)
	}
	select {
	case <-time.After(dbFenceWait):
	case <-ctx.Done():
		cn.dbRelease(ctx, token, false)
		return "", ctx.Err()
	}
	return token, nil
}

// dbRelease ends a database-wide intent: the epoch moves (every image of
// the database becomes a miss everywhere), and with catalog the catalog
// token too. On failure this process serves nothing until a later release
// succeeds (the intent expires by itself and moves the epoch then).
func (cn *connector) dbRelease(parent context.Context, token string, catalog bool) {
	key := cn.fence.key
	if key == "" {
		return
	}
	if token == "" {
		token = proto.NewToken()
	}
	ctx, cancel := cn.redisCtx(context.WithoutCancel(parent))
	defer cancel()
	err := proto.DBRelease(ctx, cn.cfg.redis, key, token, catalog)
	if cn.redisErr(nil, err); err != nil {
		cn.releaseFailures.Add(1)
		cn.fence.view.Store(nil) // nothing served until the next poll
		return
	}
	cn.pollDB() // this process knows the new epoch before the write returns
	if catalog {
		cn.schema.forget()
		cn.catalogs.Add(1)
	}
}

// markDBDirty records that a write with the database's reach ran while
// Redis could not be told (cache_failure=fallback): this process serves
// nothing from Redis until it has moved the database epoch, which a repair
// does as soon as Redis answers.
func (cn *connector) markDBDirty() {
	f := &cn.fence
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirtySeq++
	cn.fenceDirty.Store(true)
	if f.repairing {
		return
	}
	f.repairing = true
	cn.rep.Add(1)
	go func() {
		defer cn.rep.Done()
		backoff := 50 * time.Millisecond
		for {
			if up := cn.redisUp(); up != nil {
				select {
				case <-up:
				case <-cn.closed:
				}
			}
			f.mu.Lock()
			seq := f.dirtySeq
			f.mu.Unlock()
			ctx, cancel := cn.redisCtx(context.Background())
			err := proto.DBRelease(ctx, cn.cfg.redis, f.key, proto.NewToken(), true)
			cancel()
			cn.redisErr(nil, err)
			f.mu.Lock()
			if err == nil && seq == f.dirtySeq {
				cn.fenceDirty.Store(false)
				f.repairing = false
				f.mu.Unlock()
				cn.pollDB()
				return
			}
			f.mu.Unlock()
			select {
			case <-cn.closed:
				f.mu.Lock()
				f.repairing = false
				f.mu.Unlock()
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}()
}

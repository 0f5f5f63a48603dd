package wtcache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/push"

	"github.com/wtcache/wtcache/internal/proto"
	"github.com/wtcache/wtcache/internal/rowcodec"
)

// The near cache (cache_local=on): row images of chosen tables kept in the
// process, in front of Redis, and kept coherent by Redis itself through
// server-assisted client-side caching. One dedicated RESP3 connection per
// connector runs CLIENT TRACKING ON BCAST PREFIX {prefix: : from then on
// Redis pushes an "invalidate" message on it for every key of the namespace
// that changes (written, deleted, expired, evicted, flushed). go-redis
// reads those pushes (its RESP3 push-notification support) and hands them to
// the near cache, which drops what they name.
//
// What a near entry is: the part of one Peek (proto.PeekInto) that decided
// a hit, the row's image and the table's state, kept until Redis says
// either key changed. A near hit is therefore a Redis hit replayed: the
// lookup still runs every process-local check (the database fence, the
// change feed, the session's privileges, the schema), and only the MGET is
// skipped.
//
// Why it cannot serve a row older than allowed:
//
//   - Redis sends the pushes of a connection in order with its replies, so
//     when the answer to a heartbeat (a PING carrying its send time) comes
//     back on the tracking connection, every change Redis made before it
//     received that PING has been applied here. A near hit is served only
//     while the last answered heartbeat was sent less than maxStale ago:
//     any write whose intent reached Redis more than maxStale ago (and an
//     intent reaches Redis before the write commits in PostgreSQL) has
//     removed its rows from every near cache that still serves.
//   - A fetch can race its own invalidation (the reply and the push travel
//     on different connections). Before the MGET is sent, its keys are
//     reserved; an invalidation or a local drop cancels the reservation, and
//     the reply is stored only if its reservation is intact and the tracking
//     connection is the one it was taken under.
//   - A new tracking connection (a reconnect, even one go-redis makes by
//     itself) empties the cache before it is used: invalidations may have
//     been lost with the old one. Silence (no heartbeat answer within
//     maxStale) stops serving; an error on the connection empties it.
//   - A write through this process (any handle) drops its rows from every
//     near cache of the process after its intents are placed and again
//     after its release, before it returns: read-your-writes and per-row
//     linearizability hold within a process exactly as without the near
//     cache. Across processes, the bound is maxStale.

const (
	nearShards = 16
	// nearIdleBeat is the heartbeat period while no lookup wants the near
	// cache (it still proves the connection alive).
	nearIdleBeat = time.Second
	// nearDemandWindow: lookups within it keep the heartbeat at its fast
	// period.
	nearDemandWindow = time.Second
	// nearEntryOverhead approximates the memory of an entry beyond its
	// image and key (map slot, structs, the decoded values' headers).
	nearEntryOverhead = 160
)

// nearAll lists the near caches of the process: a write drops its rows
// from every one of them before it returns.
var nearAll struct {
	sync.RWMutex
	list []*nearCache
}

// nearCount is len(nearAll.list): writes skip the drops without taking
// the lock when the process has no near cache.
var nearCount atomic.Int32

func nearRegister(n *nearCache) {
	nearAll.Lock()
	nearAll.list = append(nearAll.list, n)
	nearCount.Store(int32(len(nearAll.list)))
	nearAll.Unlock()
}

func nearUnregister(n *nearCache) {
	nearAll.Lock()
	defer nearAll.Unlock()
	for i, x := range nearAll.list {
		if x == n {
			nearAll.list = append(nearAll.list[:i], nearAll.list[i+1:]...)
			nearCount.Store(int32(len(nearAll.list)))
			return
		}
	}
}

// nearDrop removes rows (row keys) and table states (state keys) from every
// near cache of the process, and cancels the fetches of them in flight.
func nearDrop(rowKeys []string, stateKeys ...string) {
	if nearCount.Load() == 0 {
		return
	}
	nearAll.RLock()
	defer nearAll.RUnlock()
	for _, n := range nearAll.list {
		for _, k := range rowKeys {
			n.dropRow(k)
		}
		for _, k := range stateKeys {
			n.dropState(k)
		}
	}
}

type nearCache struct {
	maxStale time.Duration
	beat     time.Duration
	prefix   string // the BCAST prefix: every key of the namespace
	shardMax int64
	seed     maphash.Seed
	base     time.Time // monotonic origin of the ns clocks below
	shards   [nearShards]nearShard

	// smu orders session changes: a heartbeat's answer must not revive a
	// connection that a reconnect has replaced meanwhile.
	smu     sync.Mutex
	connGen atomic.Uint64 // the epoch: moves at every new tracking connection and every loss
	session atomic.Uint64 // connGen while the tracking connection is known good; 0 otherwise
	acked   atomic.Int64  // ns since base at which the last answered heartbeat was sent
	tok     atomic.Uint64
	demand  atomic.Int64 // ns since base of the last lookup that wanted the near cache

	// brokenFence serves without the heartbeat's proof; only tests set
	// it, to show that the checker catches a near cache without a fence.
	brokenFence atomic.Bool

	hits, invalidations, trips, stored, evicted atomic.Int64
	beatRTT                                     atomic.Int64 // ns, last heartbeat round trip

	client *redis.Client
	ps     atomic.Pointer[redis.PubSub]
	redact func(string) string
	stop   chan struct{}
	wake   chan struct{}
	wg     sync.WaitGroup
	onTrip func(reason string)
}

type nearShard struct {
	mu     sync.RWMutex
	rows   map[string]*nearRow   // row key -> entry
	states map[string]*nearState // state key -> entry
	pend   map[string]uint64     // row or state key -> reservation of a fetch in flight
	bytes  int64
}

type nearRow struct {
	gen, epoch string // the table generation and epoch the image was a hit under
	image      string
	row        *rowcodec.Row // decoded, checked to hold its key; never modified
	size       int64
}

type nearState struct{ gen, inc, seq string }

func newNearCache(prefix string, size int64, maxStale time.Duration, redact func(string) string) *nearCache {
	var b strings.Builder
	b.WriteByte('{')
	escapeKeyPart(&b, prefix)
	b.WriteByte(':')
	n := &nearCache{
		maxStale: maxStale,
		beat:     max(maxStale/4, 200*time.Microsecond),
		prefix:   b.String(),
		shardMax: max(size/nearShards, 1),
		seed:     maphash.MakeSeed(),
		base:     time.Now(),
		redact:   redact,
		stop:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
	for i := range n.shards {
		s := &n.shards[i]
		s.rows, s.states, s.pend = map[string]*nearRow{}, map[string]*nearState{}, map[string]uint64{}
	}
	return n
}

func (n *nearCache) shard(key string) *nearShard {
	return &n.shards[maphash.String(n.seed, key)%nearShards]
}

func (n *nearCache) now() int64 { return int64(time.Since(n.base)) }

// since is now() for a time read already.
func (n *nearCache) since(t time.Time) int64 { return int64(t.Sub(n.base)) }

// fresh reports whether near hits may be served now: the tracking
// connection is known good and answered a heartbeat sent within maxStale.
func (n *nearCache) fresh(now int64) bool {
	if n.brokenFence.Load() {
		return true
	}
	return n.session.Load() != 0 && now-n.acked.Load() <= int64(n.maxStale)
}

// want records that a lookup wanted the near cache (the heartbeat runs at
// its fast period while lookups do); it writes the shared word at most
// once a millisecond.
func (n *nearCache) want(now int64) {
	if now-n.demand.Load() > int64(time.Millisecond) {
		if n.demand.Swap(now) < now-int64(nearDemandWindow) {
			select { // idle until now: beat at once
			case n.wake <- struct{}{}:
			default:
			}
		}
	}
}

// peek answers a lookup of keys of the table whose state key is state
// from the near cache: all of them or none. It sets rows to the decoded
// images (shared, never modified) and returns the table's incarnation.
// With one, the lookup is of that single key, not yet made a string (keys
// is then not read).
func (n *nearCache) peek(state, epoch string, keys []string, one []byte, rows []*rowcodec.Row, now int64) (inc string, ok bool) {
	n.want(now)
	if !n.fresh(now) {
		return "", false
	}
	sh := n.shard(state)
	sh.mu.RLock()
	st := sh.states[state]
	sh.mu.RUnlock()
	if st == nil {
		return "", false
	}
	if one != nil {
		// maphash.Bytes of a key's bytes is maphash.String of the key.
		sh := &n.shards[maphash.Bytes(n.seed, one)%nearShards]
		sh.mu.RLock()
		e := sh.rows[string(one)]
		sh.mu.RUnlock()
		if !e.serves(st, epoch) {
			return "", false
		}
		rows[0] = e.row
		return st.inc, true
	}
	for i, k := range keys {
		sh := n.shard(k)
		sh.mu.RLock()
		e := sh.rows[k]
		sh.mu.RUnlock()
		if !e.serves(st, epoch) {
			clear(rows[:i])
			return "", false
		}
		rows[i] = e.row
	}
	return st.inc, true
}

// serves reports whether e holds an image of the table's state st, under
// epoch.
func (e *nearRow) serves(st *nearState, epoch string) bool {
	return e != nil && e.gen == st.gen && e.epoch == epoch
}

// reserve marks keys and the state as being fetched, before the MGET is
// sent. It returns 0 when nothing fetched now may be stored.
func (n *nearCache) reserve(state string, keys []string) (tok, sess uint64) {
	sess = n.session.Load()
	if sess == 0 {
		return 0, 0
	}
	tok = n.tok.Add(1)
	n.mark(state, tok)
	for _, k := range keys {
		n.mark(k, tok)
	}
	return tok, sess
}

func (n *nearCache) mark(k string, tok uint64) {
	sh := n.shard(k)
	sh.mu.Lock()
	sh.pend[k] = tok
	sh.mu.Unlock()
}

// claim removes k's reservation and reports whether it was tok's.
func (sh *nearShard) claim(k string, tok uint64) bool {
	if sh.pend[k] != tok {
		return false
	}
	delete(sh.pend, k)
	return true
}

// fulfill stores what a Peek reserved under tok found: the table's state
// and the hits it served (rows[i] non-nil). Keys whose reservation was
// cancelled meanwhile (an invalidation, a local write, a reconnect) are not
// stored.
//
// With store false it only releases the reservations that are still tok's.
func (n *nearCache) fulfill(tok, sess uint64, state string, keys []string, pr *proto.PeekResult, rows []*rowcodec.Row, store bool) {
	if tok == 0 {
		return
	}
	ok := store && n.session.Load() == sess
	sh := n.shard(state)
	sh.mu.Lock()
	if sh.claim(state, tok) && ok && pr.Gen != "" {
		sh.states[state] = &nearState{gen: pr.Gen, inc: pr.Incarnation, seq: pr.Seq}
	}
	sh.mu.Unlock()
	for i, k := range keys {
		sh := n.shard(k)
		sh.mu.Lock()
		if sh.claim(k, tok) && ok && rows != nil && rows[i] != nil && pr.Rows[i].Hit {
			e := &nearRow{gen: pr.Gen, epoch: pr.Epoch, image: pr.Rows[i].Image, row: rows[i]}
			e.size = int64(len(k)+2*len(e.image)) + nearEntryOverhead
			if old := sh.rows[k]; old != nil {
				sh.bytes -= old.size
			}
			sh.rows[k] = e
			sh.bytes += e.size
			n.stored.Add(1)
			n.evictLocked(sh)
		}
		sh.mu.Unlock()
	}
	// A reconnect between the check above and the stores flushed the
	// shards first or after: if after, nothing stored survives; if first,
	// the stores may have landed in an emptied cache, so check again.
	if ok && n.session.Load() != sess {
		n.flush()
	}
}

// evictLocked drops entries (the map's iteration order: about random)
// until the shard is within its share of the size.
func (n *nearCache) evictLocked(sh *nearShard) {
	for k, e := range sh.rows {
		if sh.bytes <= n.shardMax {
			return
		}
		delete(sh.rows, k)
		sh.bytes -= e.size
		n.evicted.Add(1)
	}
}

func (n *nearCache) dropRow(k string) {
	sh := n.shard(k)
	sh.mu.Lock()
	if e := sh.rows[k]; e != nil {
		delete(sh.rows, k)
		sh.bytes -= e.size
	}
	delete(sh.pend, k)
	sh.mu.Unlock()
}

func (n *nearCache) dropState(k string) {
	sh := n.shard(k)
	sh.mu.Lock()
	delete(sh.states, k)
	delete(sh.pend, k)
	sh.mu.Unlock()
}

// flush empties the cache and cancels every reservation.
func (n *nearCache) flush() {
	for i := range n.shards {
		sh := &n.shards[i]
		sh.mu.Lock()
		clear(sh.rows)
		clear(sh.states)
		clear(sh.pend)
		sh.bytes = 0
		sh.mu.Unlock()
	}
}

// invalidate applies one key Redis reported changed.
func (n *nearCache) invalidate(key string) {
	i := strings.IndexByte(key, '}')
	if i < 0 || len(key) < i+3 || key[i+1] != ':' {
		return // not a key of a table (the database fence's, say)
	}
	switch rest := key[i+2:]; {
	case rest == "g":
		n.dropState(key)
	case strings.HasPrefix(rest, "v:"):
		n.dropRow(key[:i+2] + "r" + rest[1:])
	}
}

// lose ends the current tracking session: nothing is served or stored
// until a heartbeat sent after it comes back.
func (n *nearCache) lose(reason string) {
	n.smu.Lock()
	was := n.loseLocked()
	n.smu.Unlock()
	n.tripped(was, reason)
}

// loseLocked empties the cache and starts a new epoch: heartbeats sent
// before are ignored, and fetches reserved before store nothing.
func (n *nearCache) loseLocked() (was uint64) {
	n.connGen.Add(1)
	was = n.session.Swap(0)
	n.acked.Store(0)
	n.flush()
	return was
}

func (n *nearCache) tripped(was uint64, reason string) {
	if was != 0 {
		n.trips.Add(1)
		if n.onTrip != nil {
			n.onTrip(reason)
		}
	}
}

// answered records a heartbeat's answer: gen is the tracking connection
// it was sent on, sent its send time.
//
// An answer that ends a silence longer than maxStale ends the session
// instead: whatever Redis said meanwhile may not have arrived (a connection
// that went silent and came back), so everything is dropped, and the next
// heartbeat's answer starts serving again.
func (n *nearCache) answered(gen uint64, sent int64) {
	n.smu.Lock()
	if gen != n.connGen.Load() {
		n.smu.Unlock()
		return // sent before the connection was replaced or the cache emptied
	}
	if n.session.Load() != 0 && n.now()-n.acked.Load() > int64(n.maxStale) {
		was := n.loseLocked()
		n.smu.Unlock()
		if n.now()-n.demand.Load() < int64(nearDemandWindow) {
			// Not counted while nothing wanted the near cache: the
			// heartbeat is slow then, and every answer ends a "silence".
			n.tripped(was, "tracking connection silent for longer than cache_local_max_stale")
		}
		return
	}
	defer n.smu.Unlock()
	n.session.Store(gen)
	if sent > n.acked.Load() {
		n.acked.Store(sent)
	}
	n.beatRTT.Store(n.now() - sent)
}

// invalidateHandler receives go-redis's "invalidate" pushes.
type invalidateHandler struct{ n *nearCache }

func (h invalidateHandler) HandlePushNotification(_ context.Context, _ push.NotificationHandlerContext, msg []any) error {
	n := h.n
	if len(msg) < 2 || msg[1] == nil {
		// FLUSHALL, FLUSHDB, or a key table Redis had to give up on.
		n.invalidations.Add(1)
		n.flush()
		return nil
	}
	keys, ok := msg[1].([]any)
	if !ok {
		n.lose("malformed invalidation")
		return fmt.Errorf("wtcache: unexpected invalidation %T", msg[1])
	}
	n.invalidations.Add(int64(len(keys)))
	for _, k := range keys {
		if s, ok := k.(string); ok {
			n.invalidate(s)
		}
	}
	return nil
}

// dropNear removes the target's rows (or, table-wide, the table's state)
// from every near cache of the process.
func (t *target) dropNear() {
	if nearCount.Load() == 0 || t.ti == nil {
		return
	}
	if t.tableWide {
		nearDrop(nil, proto.StateKey(metaKey(t.tag)))
		return
	}
	keys := make([]string, 0, len(t.keys))
	for k := range t.keys {
		keys = append(keys, k)
	}
	nearDrop(keys)
}

// errNearClient is returned for cache_local with a Redis client that is
// not a single server (or a Sentinel failover client).
var errNearClient = errors.New("wtcache: cache_local needs a single Redis server or a Sentinel failover client (not a cluster or ring): one tracking connection must see every key")

// start opens the tracking connection (a client of its own, RESP3, made
// with rdb's options) and the goroutines that read it and beat on it.
func (n *nearCache) start(rdb redis.UniversalClient, addr string) error {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return errNearClient
	}
	o := *c.Options()
	o.Protocol = 3
	if addr != "" {
		o.Addr = addr
	}
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 1, 0, 1, 0
	o.ClientSideCacheConfig, o.ClientSideCache = nil, nil
	o.PushNotificationProcessor = nil
	o.DisableIdentity = true
	user := o.OnConnect
	o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if user != nil {
			if err := user(ctx, cn); err != nil {
				return err
			}
		}
		// A new connection: what the old one would have said is lost.
		n.lose("tracking connection replaced")
		hello, err := cn.Do(ctx, "hello").Result()
		if err != nil {
			return err
		}
		if m, ok := hello.(map[any]any); !ok || fmt.Sprint(m["proto"]) != "3" {
			return errors.New("wtcache: cache_local needs RESP3 (Redis 6 or later)")
		}
		return cn.Do(ctx, "client", "tracking", "on", "bcast", "prefix", n.prefix).Err()
	}
	n.client = redis.NewClient(&o)
	if err := n.client.RegisterPushNotificationHandler("invalidate", invalidateHandler{n}, false); err != nil {
		_ = n.client.Close()
		return err
	}
	ps := n.client.Subscribe(context.Background())
	n.ps.Store(ps)
	n.wg.Add(2)
	go n.receive(ps)
	go n.beatLoop(ps)
	nearRegister(n)
	return nil
}

// close stops the goroutines and the tracking connection.
func (n *nearCache) close() {
	if n.client == nil {
		return
	}
	nearUnregister(n)
	close(n.stop)
	if ps := n.ps.Load(); ps != nil {
		_ = ps.Close()
	}
	n.wg.Wait()
	_ = n.client.Close()
	n.lose("closed")
}

func (n *nearCache) stopped() bool {
	select {
	case <-n.stop:
		return true
	default:
		return false
	}
}

// receive reads the tracking connection: go-redis applies the
// invalidation pushes (invalidateHandler) while it waits for the next
// reply, which is a heartbeat's answer.
func (n *nearCache) receive(ps *redis.PubSub) {
	defer n.wg.Done()
	ctx := context.Background()
	for !n.stopped() {
		msg, err := ps.ReceiveTimeout(ctx, 3*nearIdleBeat)
		if err != nil {
			if n.stopped() {
				return
			}
			// Closed, refused, silent: stop serving until a heartbeat
			// comes back on a new connection (go-redis reconnects).
			n.lose("tracking connection: " + n.redact(err.Error()))
			select {
			case <-n.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if p, ok := msg.(*redis.Pong); ok {
			gen, sent, ok := parseBeat(p.Payload)
			if ok {
				n.answered(gen, sent)
			}
		}
	}
}

// beatLoop sends the heartbeats: every beat while lookups want the near
// cache, every nearIdleBeat otherwise.
func (n *nearCache) beatLoop(ps *redis.PubSub) {
	defer n.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		case <-n.wake:
		}
		now := n.now()
		payload := strconv.FormatUint(n.connGen.Load(), 10) + ":" + strconv.FormatInt(now, 10)
		ctx, cancel := context.WithTimeout(context.Background(), nearIdleBeat)
		err := ps.Ping(ctx, payload)
		cancel()
		if err != nil && !n.stopped() {
			n.lose("heartbeat: " + n.redact(err.Error()))
		}
		d := n.beat
		if n.now()-n.demand.Load() > int64(nearDemandWindow) {
			d = nearIdleBeat
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(d)
	}
}

func parseBeat(s string) (gen uint64, sent int64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	g, err1 := strconv.ParseUint(a, 10, 64)
	t, err2 := strconv.ParseInt(b, 10, 64)
	return g, t, err1 == nil && err2 == nil
}

// NearStats is what a handle's near cache did (DBStats).
type NearStats struct {
	Serving       bool  // the fence holds: near hits may be served now
	Hits          int64 // rows served from the process's memory
	Stored        int64 // rows stored after a Redis hit
	Evicted       int64 // rows dropped to stay within cache_local_size
	Invalidations int64 // keys Redis reported changed
	FenceTrips    int64 // times the tracking connection was lost or replaced
	Bytes         int64 // estimated memory held
	Rows          int   // rows held
}

func (n *nearCache) stats() NearStats {
	s := NearStats{
		Serving: n.fresh(n.now()), Hits: n.hits.Load(), Stored: n.stored.Load(), Evicted: n.evicted.Load(),
		Invalidations: n.invalidations.Load(), FenceTrips: n.trips.Load(),
	}
	for i := range n.shards {
		sh := &n.shards[i]
		sh.mu.RLock()
		s.Bytes += sh.bytes
		s.Rows += len(sh.rows)
		sh.mu.RUnlock()
	}
	return s
}

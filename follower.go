package wtcache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"

	"github.com/wtcache/wtcache/internal/proto"
	"github.com/wtcache/wtcache/internal/recognize"
)

// The follower: one process per database reads PostgreSQL's log and
// applies it to Redis (see feed.go for the guarantees).
//
// The slot is TEMPORARY: PostgreSQL drops it when the follower's session
// ends, however it ends (a crash, a kill, a cut connection), so no slot is
// ever left holding WAL. The price is that a new stream starts at the log's
// current end and never sees what committed while no stream ran; a new
// stream epoch retires every image stored before it instead.

// feedTrace, when set (tests), hears what the follower applies and claims.
var feedTrace func(format string, args ...any)

// maxKeysPerTable is the most rows of one table a transaction may change
// before the follower moves the table's generation instead of invalidating
// each row.
const maxKeysPerTable = 10000

// leaseScript renews (1) or releases (2) the follower's lease if it is
// still the holder's. ARGV: token, mode, ms.
var leaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '1' then return redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return redis.call('DEL', KEYS[1])
`)

// runFollower competes for the lease and, while it holds it, follows the
// log; it stops with the connector.
func (cn *connector) runFollower(keys feedKeys, database string, pgcfg *pgx.ConnConfig) {
	defer cn.rep.Done()
	token := proto.NewToken()
	backoff := 100 * time.Millisecond
	for {
		if cn.isClosed() {
			return
		}
		if cn.tryLease(keys, token) {
			cn.feed.leader.Store(true)
			cn.feed.takeovers.Add(1)
			cn.log.info("feed_leader", "wtcache: this process follows PostgreSQL's log for the cache", "database", database)
			err := cn.follow(keys, database, pgcfg, token)
			cn.feed.leader.Store(false)
			ctx, cancel := cn.redisCtx(context.Background())
			_ = leaseScript.Run(ctx, cn.cfg.redis, []string{keys.lease}, token, "2", 0).Err()
			cancel()
			if err != nil && !cn.isClosed() {
				cn.log.warn("feed_stopped", "wtcache: the change feed stopped; lookups read PostgreSQL until a follower catches up",
					"database", database, "error", cn.redact(err.Error()))
			}
		} else {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-cn.closed:
			return
		case <-time.After(min(backoff, feedLease/4)):
		}
		backoff = min(2*backoff, feedLease/2)
	}
}

func (cn *connector) tryLease(keys feedKeys, token string) bool {
	if cn.cacheDown() {
		return false
	}
	ctx, cancel := cn.redisCtx(context.Background())
	defer cancel()
	ok, err := cn.cfg.redis.SetNX(ctx, keys.lease, token, feedLease).Result()
	cn.redisErr(nil, err)
	return err == nil && ok
}

// feedRel is what the follower knows of one relation of the stream.
type feedRel struct {
	msg  *pglogrepl.RelationMessage
	tag  string
	pk   []int         // indexes into msg.Columns, in key order
	cols []*columnInfo // the key columns, for normalising values
	keep bool          // changes to it may concern the cache
}

// feedTx collects one transaction's changes until its commit.
type feedTx struct {
	xid   string
	keys  map[uint32]map[string]struct{} // by relation: row keys
	bump  map[uint32]bool
	ddl   bool
	count int
}

// follower is one stream's state.
type follower struct {
	cn       *connector
	keys     feedKeys
	database string
	rconn    *pgconn.PgConn // the replication connection
	catMu    sync.Mutex     // cat is used by the stream and the heartbeats
	cat      *conn          // a plain connection: heartbeats and the catalog

	rels    map[uint32]*feedRel
	tx      *feedTx
	applied pglogrepl.LSN
	walEnd  pglogrepl.LSN

	epoch, catalog string
	snapXmin       uint32 // the xmin of the last snapshot taken (low 32 bits)

	mu      sync.Mutex
	pending map[string]heartbeat // heartbeats in flight, by token
	roles   string               // the role-membership fingerprint last seen
}

type heartbeat struct {
	sent  time.Time
	until int64 // Redis's clock (ms): the claim's end, cache_feed_max_lag after the heartbeat was sent
	roles string
}

// follow runs one stream until an error, the loss of the lease or Close.
func (cn *connector) follow(keys feedKeys, database string, pgcfg *pgx.ConnConfig, token string) error {
	ctx, cancel := context.WithCancelCause(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
	}()
	wg.Add(1)
	go func() { // the lease: renewed, or the stream stops
		defer wg.Done()
		t := time.NewTicker(feedLease / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-cn.closed:
				cancel(errors.New("closed"))
				return
			case <-t.C:
			}
			rctx, rcancel := cn.redisCtx(ctx)
			n, err := leaseScript.Run(rctx, cn.cfg.redis, []string{keys.lease}, token, "1", feedLease.Milliseconds()).Int()
			rcancel()
			cn.redisErr(nil, err)
			if err != nil || n != 1 {
				cancel(fmt.Errorf("lease lost (%v)", err))
				return
			}
		}
	}()

	rcfg := pgcfg.Config.Copy()
	if rcfg.RuntimeParams == nil {
		rcfg.RuntimeParams = map[string]string{}
	}
	rcfg.RuntimeParams["replication"] = "database"
	rconn, err := pgconn.ConnectConfig(ctx, rcfg)
	if err != nil {
		return fmt.Errorf("replication connection: %w", redactInner(err, cn.innerSecrets))
	}
	defer rconn.Close(context.Background())
	ic, err := cn.inner.Connect(ctx)
	if err != nil {
		return fmt.Errorf("catalog connection: %w", redactInner(err, cn.innerSecrets))
	}
	cat := newConn(ic, cn)
	// The goroutines end before the connections close.
	defer func() {
		cancel(nil)
		wg.Wait()
		_ = cat.inner.Close()
	}()

	f := &follower{cn: cn, keys: keys, database: database, rconn: rconn, cat: cat,
		rels: map[uint32]*feedRel{}, pending: map[string]heartbeat{},
		epoch: proto.NewToken(), catalog: proto.NewToken()}
	slot := "wtcache_" + token + "_" + proto.NewToken()
	res, err := pglogrepl.CreateReplicationSlot(ctx, rconn, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		return fmt.Errorf("creating the temporary slot: %w", err)
	}
	start, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return err
	}
	f.applied = start
	if err := pglogrepl.StartReplication(ctx, rconn, slot, start, pglogrepl.StartReplicationOptions{PluginArgs: []string{
		"proto_version '1'",
		"publication_names '" + cn.cfg.feedPublication + "'",
		"messages 'true'",
	}}); err != nil {
		return fmt.Errorf("starting replication: %w", err)
	}
	if rctx, rcancel := cn.redisCtx(ctx); true {
		err := proto.LoadScripts(rctx, cn.cfg.redis)
		rcancel()
		if err != nil {
			return cn.redisErr(nil, err)
		}
	}

	wg.Add(1)
	go func() { // heartbeats through the log
		defer wg.Done()
		every := max(cn.cfg.feedMaxLag/5, 5*time.Millisecond)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if err := f.sendHeartbeat(ctx); err != nil {
				cancel(fmt.Errorf("heartbeat: %w", err))
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return f.receive(ctx)
}

// roleFingerprint changes with any change of role membership, of the role
// attributes that decide what a role may read, and of the owners,
// privileges and row-level security of relations: what the event trigger
// cannot see (role changes are not per-database DDL; REASSIGN OWNED fires
// no event trigger).
const roleFingerprint = `(SELECT pg_catalog.md5(coalesce(pg_catalog.string_agg(x, ',' ORDER BY x), '')) FROM (
	SELECT pg_catalog.concat(roleid, ':', member, ':', admin_option) AS x FROM pg_catalog.pg_auth_members
	UNION ALL
	SELECT pg_catalog.concat(oid, ':', rolsuper, rolinherit, rolbypassrls) FROM pg_catalog.pg_roles
	UNION ALL
	SELECT pg_catalog.concat(oid, ':', relowner, ':', relacl, relrowsecurity, relforcerowsecurity)
	FROM pg_catalog.pg_class WHERE relkind IN ('r', 'p', 'v', 'm', 'f')
	UNION ALL
	SELECT pg_catalog.concat(oid, ':', polrelid) FROM pg_catalog.pg_policy) r)`

// feedSetupOK is true while the publication publishes every kind of change
// of every table under its own name and the event trigger fires always:
// checked with every heartbeat, as at the first connection.
const feedSetupOK = `(SELECT coalesce(pg_catalog.bool_and(puballtables AND pubinsert AND pubupdate AND pubdelete AND pubtruncate AND NOT pubviaroot), false)
	FROM pg_catalog.pg_publication WHERE pubname = $2)
	AND EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'wtcache_ddl' AND evtenabled = 'A')`

// sendHeartbeat writes a heartbeat into the log (a non-transactional
// logical message, decoded at once) and reads the role fingerprint in the
// same statement.
func (f *follower) sendHeartbeat(ctx context.Context) error {
	tok := proto.NewToken()
	sent := time.Now()
	// The claim ends cache_feed_max_lag after this instant on Redis's own
	// clock, read before the heartbeat is written: however late the
	// status is set, it cannot outlive the bound.
	rctx, cancel := f.cn.redisCtx(ctx)
	now, err := f.cn.cfg.redis.Time(rctx).Result()
	cancel()
	if err != nil {
		return f.cn.redisErr(nil, err)
	}
	f.mu.Lock()
	f.pending[tok] = heartbeat{sent: sent, until: now.Add(f.cn.cfg.feedMaxLag).UnixMilli()}
	f.mu.Unlock()
	f.catMu.Lock()
	rows, err := f.cat.innerQuery(ctx, heartbeatSQL, tok, f.cn.cfg.feedPublication)
	f.catMu.Unlock()
	if err != nil {
		return err
	}
	if !asBool(rows[0][2]) {
		// The publication or the event trigger changed under the feed: it
		// stops (no claim, so no hit anywhere) until both are right again.
		return errors.New("the publication or the event trigger wtcache_ddl no longer gives every change (see SetupFeed)")
	}
	f.mu.Lock()
	if hb, ok := f.pending[tok]; ok {
		hb.roles = asString(rows[0][1])
		f.pending[tok] = hb
	}
	f.mu.Unlock()
	return nil
}

// receive reads the stream until an error or ctx ends.
func (f *follower) receive(ctx context.Context) error {
	statusEvery := time.Second
	next := time.Now().Add(statusEvery)
	for {
		if time.Now().After(next) {
			if err := f.standbyStatus(ctx); err != nil {
				return err
			}
			next = time.Now().Add(statusEvery)
		}
		rctx, rcancel := context.WithDeadline(ctx, next)
		raw, err := f.rconn.ReceiveMessage(rctx)
		rcancel()
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if pgconn.Timeout(err) {
				continue
			}
			return err
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return err
				}
				f.walEnd = max(f.walEnd, pkm.ServerWALEnd)
				if f.tx == nil {
					// Everything before it was sent and applied: the slot
					// may let that WAL go.
					f.applied = max(f.applied, pkm.ServerWALEnd)
				}
				if pkm.ReplyRequested {
					next = time.Time{}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return err
				}
				f.walEnd = max(f.walEnd, xld.ServerWALEnd)
				msg, err := pglogrepl.Parse(xld.WALData)
				if err != nil {
					return fmt.Errorf("decoding pgoutput: %w", err)
				}
				if err := f.handle(ctx, msg); err != nil {
					return err
				}
			}
		}
	}
}

func (f *follower) standbyStatus(ctx context.Context) error {
	return pglogrepl.SendStandbyStatusUpdate(ctx, f.rconn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: f.applied, WALFlushPosition: f.applied, WALApplyPosition: f.applied})
}

// handle applies one pgoutput message.
func (f *follower) handle(ctx context.Context, msg pglogrepl.Message) error {
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return f.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		f.tx = &feedTx{xid: strconv.FormatUint(uint64(m.Xid), 10),
			keys: map[uint32]map[string]struct{}{}, bump: map[uint32]bool{}}
	case *pglogrepl.InsertMessage:
		// A new row: no image of it can exist (absent rows are never
		// cached; a row deleted or re-keyed before was invalidated then).
	case *pglogrepl.UpdateMessage:
		f.change(m.RelationID, m.NewTuple)
		if m.OldTuple != nil {
			f.change(m.RelationID, m.OldTuple)
		}
	case *pglogrepl.DeleteMessage:
		f.change(m.RelationID, m.OldTuple)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			f.markBump(id)
		}
	case *pglogrepl.LogicalDecodingMessage:
		switch m.Prefix {
		case "wtcache.tick":
			if !m.Transactional {
				if f.tx == nil {
					f.applied = max(f.applied, m.LSN)
				}
				return f.heartbeatBack(ctx, string(m.Content))
			}
		case "wtcache.ddl":
			if f.tx != nil {
				f.tx.ddl = true
			}
		}
	case *pglogrepl.CommitMessage:
		err := f.commit(ctx)
		f.applied = max(f.applied, m.TransactionEndLSN)
		return err
	}
	return nil
}

// relation records a relation of the stream; a relation seen before with
// other columns changed its schema: its generation moves.
func (f *follower) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	prev := f.rels[m.RelationID]
	r := &feedRel{msg: m, tag: tableTag(f.cn.cfg.prefix, f.database, recognize.Table{Schema: m.Namespace, Name: m.RelationName})}
	f.catMu.Lock()
	ti, err := f.cat.loadTable(ctx, m.RelationID)
	f.catMu.Unlock()
	if err != nil {
		return fmt.Errorf("loading relation %d: %w", m.RelationID, err)
	}
	if ti != nil && len(ti.pk) > 0 {
		r.keep = true
		for _, ci := range ti.pk {
			col := &ti.cols[ci]
			idx := slices.IndexFunc(m.Columns, func(c *pglogrepl.RelationMessageColumn) bool { return c.Name == col.name })
			if idx < 0 || col.keyKind == keyUnsupported {
				r.pk = nil // keys cannot be read from the stream: every change moves the generation
				break
			}
			r.pk, r.cols = append(r.pk, idx), append(r.cols, col)
		}
	}
	f.rels[m.RelationID] = r
	if prev != nil && !sameColumns(prev.msg, m) {
		if f.tx == nil {
			f.tx = &feedTx{keys: map[uint32]map[string]struct{}{}, bump: map[uint32]bool{}}
		}
		f.markBump(m.RelationID)
	}
	return nil
}

func sameColumns(a, b *pglogrepl.RelationMessage) bool {
	if a.Namespace != b.Namespace || a.RelationName != b.RelationName || len(a.Columns) != len(b.Columns) {
		return false
	}
	for i, c := range a.Columns {
		d := b.Columns[i]
		if c.Name != d.Name || c.DataType != d.DataType || c.TypeModifier != d.TypeModifier || c.Flags != d.Flags {
			return false
		}
	}
	return true
}

func (f *follower) markBump(rel uint32) {
	if f.tx == nil {
		f.tx = &feedTx{keys: map[uint32]map[string]struct{}{}, bump: map[uint32]bool{}}
	}
	f.tx.bump[rel] = true
	delete(f.tx.keys, rel)
}

// change records the row of tuple (a new row's values, or an old key) for
// invalidation at commit.
func (f *follower) change(rel uint32, tuple *pglogrepl.TupleData) {
	r := f.rels[rel]
	if f.tx == nil || r == nil || !r.keep || f.tx.bump[rel] {
		return
	}
	if tuple == nil || r.pk == nil {
		f.markBump(rel)
		return
	}
	if id := r.msg.ReplicaIdentity; id != 'd' && id != 'f' {
		// REPLICA IDENTITY USING INDEX or NOTHING: the old key of an
		// UPDATE or DELETE is not in the log (or not the primary key's).
		f.markBump(rel)
		return
	}
	parts := make([]string, len(r.pk))
	for i, idx := range r.pk {
		if idx >= len(tuple.Columns) || tuple.Columns[idx].DataType != pglogrepl.TupleDataTypeText {
			// NULL in a key tuple (a replica identity other than the
			// primary key), an unchanged TOASTed key: not known.
			f.markBump(rel)
			return
		}
		s, ok := normalizeKey(r.cols[i], string(tuple.Columns[idx].Data))
		if !ok {
			f.markBump(rel)
			return
		}
		parts[i] = s
	}
	ks := f.tx.keys[rel]
	if ks == nil {
		ks = map[string]struct{}{}
		f.tx.keys[rel] = ks
	}
	ks[rowKey(r.tag, parts)] = struct{}{}
	if len(ks) > maxKeysPerTable {
		f.markBump(rel)
	}
}

// commit applies a transaction's changes to Redis, in one pipelined round
// trip, before anything later in the stream is read.
func (f *follower) commit(ctx context.Context) error {
	tx := f.tx
	f.tx = nil
	if tx == nil {
		return nil
	}
	if tx.ddl {
		// DDL, GRANT or REVOKE committed: processes forget their catalog
		// knowledge, and every image stored before goes (a DDL may change
		// what a stored value means: a type, a rule, a trigger).
		f.epoch, f.catalog = proto.NewToken(), proto.NewToken()
	}
	if len(tx.keys) == 0 && len(tx.bump) == 0 {
		return nil
	}
	cn := f.cn
	// A commit is in the log before it is visible: the committing
	// backend may not yet have left the running transactions. A reader
	// that looked after the invalidation and read the database before the
	// change became visible would fill the old row, and nothing would
	// remove it. So the change is applied only once a fresh snapshot shows
	// the transaction finished.
	if err := f.awaitVisible(ctx, tx.xid); err != nil {
		return err
	}
	return cn.step(ctx, SpanFeedApply, func(sctx context.Context) error {
		rctx, cancel := cn.redisCtx(sctx)
		defer cancel()
		var forgets, bumps []*redis.Cmd
		run := func() error {
			forgets, bumps = forgets[:0], bumps[:0]
			pipe := cn.cfg.redis.Pipeline()
			for rel := range tx.bump {
				if r := f.rels[rel]; r != nil {
					bumps = append(bumps, proto.BumpCmd(rctx, pipe, metaKey(r.tag)))
				}
			}
			for rel, ks := range tx.keys {
				r := f.rels[rel]
				keys := make([]string, 0, len(ks))
				for k := range ks {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for len(keys) > 0 {
					n := min(len(keys), 500)
					forgets = append(forgets, proto.ForgetCmd(rctx, pipe, metaKey(r.tag), keys[:n], tx.xid))
					keys = keys[n:]
				}
			}
			_, err := pipe.Exec(rctx)
			return err
		}
		err := run()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err = proto.LoadScripts(rctx, cn.cfg.redis); err == nil {
				err = run()
			}
		}
		if err != nil {
			return cn.redisErr(nil, err)
		}
		for _, c := range forgets {
			n, _ := c.Int64()
			cn.feed.applied.Add(n)
			if feedTrace != nil {
				feedTrace("forget epoch=%s xid=%s keys=%v n=%d", f.epoch, tx.xid, c.Args()[3:], n)
			}
		}
		for _, c := range bumps {
			n, _ := c.Int64()
			cn.feed.bumps.Add(n)
		}
		return nil
	}, attribute.Int("wtcache.feed.tables", len(tx.keys)+len(tx.bump)), attribute.Int("wtcache.feed.bumps", len(tx.bump)))
}

// heartbeatBack handles a heartbeat read back from the stream: everything
// committed before it was written has been applied, so the claim is
// renewed, for cache_feed_max_lag after the heartbeat was sent.
func (f *follower) heartbeatBack(ctx context.Context, tok string) error {
	f.mu.Lock()
	hb, ok := f.pending[tok]
	delete(f.pending, tok)
	for t, old := range f.pending {
		if old.sent.Before(hb.sent) {
			delete(f.pending, t) // lost with an earlier statement's error
		}
	}
	f.mu.Unlock()
	if !ok {
		return nil // another stream's, or one whose statement failed
	}
	if hb.roles != "" && hb.roles != f.roles {
		if f.roles != "" {
			f.catalog = proto.NewToken() // role membership changed
		}
		f.roles = hb.roles
	}
	cn := f.cn
	lag := time.Since(hb.sent)
	cn.feed.lagNs.Store(int64(lag))
	cn.feed.lagBytes.Store(int64(f.walEnd) - int64(f.applied))
	cn.feed.heartbeats.Add(1)
	if lag >= cn.cfg.feedMaxLag {
		return nil // too late to claim anything: readers go to PostgreSQL
	}
	rctx, cancel := cn.redisCtx(ctx)
	defer cancel()
	// PXAT on Redis's clock: a SET delayed on its way cannot extend the
	// claim (one already past its end only deletes the key).
	err := cn.cfg.redis.Do(rctx, "set", f.keys.status, feedStatus(f.epoch, f.catalog, lag, cn.cfg.feedMaxLag, hb.until), "pxat", hb.until).Err()
	if feedTrace != nil {
		feedTrace("claim epoch=%s until=%d sent=%d lag=%v err=%v", f.epoch, hb.until, hb.sent.UnixNano(), lag, err)
	}
	return cn.redisErr(nil, err)
}

// awaitVisible waits until transaction xid (32-bit, as the log's BEGIN
// gives it) is visible to new snapshots: below the xmin of the last
// snapshot seen, or, in a fresh one, neither running nor at or past its
// xmax.
func (f *follower) awaitVisible(ctx context.Context, xid string) error {
	x64, err := strconv.ParseUint(xid, 10, 32)
	if err != nil {
		return nil // no BEGIN seen (a relation change alone): nothing to wait for
	}
	x := uint32(x64)
	if f.snapXmin != 0 && int32(x-f.snapXmin) < 0 {
		return nil // older than every transaction running at the last snapshot
	}
	for {
		f.catMu.Lock()
		rows, err := f.cat.innerQuery(ctx, `SELECT pg_catalog.pg_current_snapshot()::pg_catalog.text`)
		f.catMu.Unlock()
		if err != nil {
			return err
		}
		xmin, xmax, running, ok := parseSnapshot(asString(rows[0][0]))
		if !ok {
			return fmt.Errorf("unexpected snapshot %q", asString(rows[0][0]))
		}
		f.snapXmin = xmin
		if int32(x-xmin) < 0 || (int32(x-xmax) < 0 && !slices.Contains(running, x)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(time.Millisecond):
		}
	}
}

// parseSnapshot reads "xmin:xmax:xip,..." (64-bit ids) into their low 32
// bits, the form the log's transaction ids take.
func parseSnapshot(s string) (xmin, xmax uint32, running []uint32, ok bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, 0, nil, false
	}
	lo := func(v string) (uint32, bool) {
		n, err := strconv.ParseUint(v, 10, 64)
		return uint32(n), err == nil
	}
	var ok1, ok2 bool
	xmin, ok1 = lo(parts[0])
	xmax, ok2 = lo(parts[1])
	if !ok1 || !ok2 {
		return 0, 0, nil, false
	}
	if parts[2] != "" {
		for _, v := range strings.Split(parts[2], ",") {
			n, ok := lo(v)
			if !ok {
				return 0, 0, nil, false
			}
			running = append(running, n)
		}
	}
	return xmin, xmax, running, true
}

package wtcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/wtcache/wtcache/internal/proto"
	"github.com/wtcache/wtcache/internal/recognize"
	"github.com/wtcache/wtcache/internal/rowcodec"
)

// The write path. Every statement that may change a cached table is
// covered by intents placed in Redis before its changes can commit, and
// released after:
//
//   - autocommit: intents before the statement, release after it;
//   - in a transaction: the targets are collected as statements run, the
//     intents are placed just before COMMIT, released after it; a rollback
//     releases nothing because nothing was placed.
//
// While an intent is live every reader of its rows goes to the database and
// nobody fills them, so a write is visible to every handle as soon as it
// commits (read-your-writes), and a slow reader cannot store the row it read
// before the write (the intent moved the row's version). A row intent is
// released by storing the image RETURNING gave or deleting the row's image:
// the next reader fills it from the database.
// A table-wide intent, used when the rows are unknown (no key in the WHERE,
// TRUNCATE, DDL, cascades, multi-statement strings), is released by moving
// the table's generation, which makes every cached row of the table a miss
// in O(1).

// target is what one table needs for a write.
type target struct {
	ti        *tableInfo // nil for the database-wide target (dbTarget)
	tag       string
	tableWide bool
	keys      map[string]struct{}
	// images are the row images RETURNING gave for keys, to mirror after
	// commit; a key without an image is invalidated instead.
	images map[string][]byte
	// catalog: the database-wide target changes the catalog.
	catalog bool
	// xid is the writing transaction's 32-bit id, when RETURNING gave it
	// (with a change feed): the images are tagged with it, so that the
	// transaction's echo in the feed keeps them.
	xid string
}

// mirror describes a statement that runs with RETURNING added, so that the
// rows PostgreSQL stored are mirrored into Redis after commit.
type mirror struct {
	t    *target
	text string // the statement with RETURNING <target>.* appended
	// xidCol: RETURNING ends with the transaction's id (with a change
	// feed), which tags the images.
	xidCol bool
}

type targets map[uint32]*target

// dbTarget is the key of the database-wide target: a statement whose reach
// cannot be bounded, or a catalog change (see dbfence.go). No table has
// OID 0.
const dbTarget = 0

// database marks the write as reaching the whole database; with catalog,
// it changes the catalog (DDL, GRANT, REVOKE) too.
//
// Every database-wide write is taken to change the catalog too: user code
// (a function, a trigger, DO, CALL, a prepared transaction) may run DDL,
// GRANT or REVOKE, so every process forgets its schema knowledge and its
// sessions' privileges before the statement returns.
func (ts targets) database(catalog bool) {
	t := ts[dbTarget]
	if t == nil {
		t = &target{tableWide: true, keys: map[string]struct{}{}}
		ts[dbTarget] = t
	}
	t.catalog = t.catalog || catalog
}

func (ts targets) table(ti *tableInfo, tag string) *target {
	t := ts[ti.oid]
	if t == nil {
		t = &target{ti: ti, tag: tag, keys: map[string]struct{}{}}
		ts[ti.oid] = t
	}
	return t
}

// merge adds the targets of a later statement to ts. A later statement's
// image of a key replaces an earlier one; a later write of a key without
// an image drops the earlier image.
func (ts targets) merge(o targets) {
	if o[dbTarget] != nil {
		// Something in the transaction may have changed any row, those
		// written before included: mirror nothing.
		ts.dropImages()
	}
	for oid, t := range o {
		if oid == dbTarget {
			ts.database(t.catalog)
			continue
		}
		if ts[dbTarget] != nil {
			// After a database-wide statement in the transaction, no image
			// is known to be what commits.
			ts.table(t.ti, t.tag).tableWide = true
			continue
		}
		mine := ts.table(t.ti, t.tag)
		mine.tableWide = mine.tableWide || t.tableWide
		if t.xid != "" {
			mine.xid = t.xid
		}
		for k := range t.keys {
			mine.keys[k] = struct{}{}
			if img, ok := t.images[k]; ok {
				if mine.images == nil {
					mine.images = map[string][]byte{}
				}
				mine.images[k] = img
			} else {
				delete(mine.images, k)
			}
		}
		ts[oid] = mine
	}
}

// dropImages forgets every collected image (ROLLBACK TO SAVEPOINT): the
// keys are still invalidated at commit.
func (ts targets) dropImages() {
	for _, t := range ts {
		t.images = nil
	}
}

// inTx reports whether the session is inside a transaction, whether begun
// through database/sql or by a BEGIN statement. With pgx it is what the
// server last reported.
func (c *conn) inTx() bool {
	if s := c.txStatus(); s != 0 {
		return s != 'I'
	}
	return c.tx != nil || c.manualTx
}

// txStatus is the transaction status the server reported with its last
// ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' in a failed
// transaction; 0 when the inner driver does not tell (not pgx).
func (c *conn) txStatus() byte {
	switch ic := c.inner.(type) {
	case *stdlib.Conn:
		return ic.Conn().PgConn().TxStatus()
	case txStatusReporter:
		return ic.wtcacheTxStatus()
	}
	return 0
}

// txStatusReporter is implemented by the unit tests' scripted inner
// drivers, which know what their server would report. No other driver
// than pgx can: wtcache serves reads and mirrors writes only through a
// connection whose transaction status it reads from the server
// (statusKnown).
type txStatusReporter interface{ wtcacheTxStatus() byte }

// statusKnown reports whether the inner connection says, from the server,
// whether a transaction is open. Without it (lib/pq, any driver but pgx)
// wtcache cannot tell a committed write from one a ROLLBACK will undo, nor
// which Go types its rows scan into: it serves nothing and mirrors nothing
// through that connection, and its writes to cached tables still place
// intents and invalidate.
func (c *conn) statusKnown() bool { return c.txStatus() != 0 }

// resolveTargets lists the cached tables (and rows) a statement may change.
func (c *conn) resolveTargets(ctx context.Context, p *plan, args []driver.NamedValue) (targets, error) {
	ts := targets{}
	if err := c.ensureSession(ctx); err != nil {
		return nil, err
	}
	if c.fx.dbWide {
		// A volatile user function, or a text the lexer cannot follow
		// under the session's settings: any table may change.
		ts.database(true)
	}
	sessionChanged := false
	for i := range p.class.Statements {
		s := &p.class.Statements[i]
		if sessionChanged && (s.Kind == recognize.KindWrite || s.Kind == recognize.KindDDL) {
			// SET search_path ...; UPDATE accounts ...: the names after
			// the SET resolve with a path this session does not know yet.
			ts.database(true)
		}
		if s.Kind == recognize.KindSession || s.Kind == recognize.KindUnknown {
			sessionChanged = true
		}
		if s.Kind == recognize.KindTx && s.AllTables {
			// COMMIT PREPARED: the writes of a transaction prepared
			// anywhere commit now; nothing says which.
			ts.database(true)
			continue
		}
		if s.Kind != recognize.KindWrite && s.Kind != recognize.KindDDL && s.Kind != recognize.KindUnknown {
			continue
		}
		if s.Kind == recognize.KindDDL {
			// Schema, privileges, security: every process forgets what it
			// knows of the catalog before the statement returns, and every
			// image may mean something else now.
			ts.database(true)
		}
		if s.AllTables || s.Kind == recognize.KindUnknown {
			ts.database(true) // reach not bounded
		}
		for _, name := range s.Tables {
			ti, err := c.table(ctx, name)
			if errors.Is(err, errCatalogConn) {
				// What the table's writes reach is not known now: all.
				ts.database(true)
				continue
			}
			if err != nil {
				return nil, err
			}
			if ti == nil {
				continue // not a relation: the statement fails, or creates it
			}
			if ti.view || ti.userCode {
				// A view (its base tables, its INSTEAD OF triggers and
				// rules), or a table with triggers or rules: what the
				// statement changes is not bounded by what it names.
				ts.database(true)
				continue
			}
			c.addTarget(ctx, ts, ti, s, args, len(p.class.Statements) == 1)
		}
	}
	if ts[dbTarget] != nil {
		// The epoch's move retires every image: the tables' own intents
		// would add nothing.
		for oid := range ts {
			if oid != dbTarget {
				delete(ts, oid)
			}
		}
	}
	return ts, nil
}

// tagKeys are a table's hash tag and meta key in one session's namespace.
type tagKeys struct {
	tag, meta, state string
	inc              *incarnation // the table's incarnation state on this connector
}

// tag is the hash tag of ti's keys in this session's namespace.
func (c *conn) tag(ti *tableInfo) string { return c.tagKeys(ti).tag }

func (c *conn) tagKeys(ti *tableInfo) tagKeys {
	if t, ok := c.sess.tags[ti]; ok {
		return t
	}
	tag := tableTag(c.c.cfg.prefix, c.sess.database, ti.ident)
	t := tagKeys{tag: tag, meta: metaKey(tag)}
	t.state = proto.StateKey(t.meta)
	t.inc = c.c.incState(tag)
	if len(c.sess.tags) > 1024 {
		clear(c.sess.tags)
	}
	c.sess.tags[ti] = t
	return t
}

// addTarget adds ti, and every table its write may reach through
// inheritance, partitions and cascading foreign keys: the closure is
// computed as a fixed point over a visited set, so self-references, cycles
// and long chains end in time linear in the tables reached.
func (c *conn) addTarget(ctx context.Context, ts targets, ti *tableInfo, s *recognize.Statement, args []driver.NamedValue, single bool) {
	if ti.cacheable {
		t := ts.table(ti, c.tag(ti))
		keys, ok := c.writeKeys(ti, s, args, single)
		if ok {
			for _, k := range keys {
				t.keys[rowKey(t.tag, k)] = struct{}{}
			}
		} else {
			t.tableWide = true
		}
	}
	visited := map[uint32]bool{ti.oid: true}
	type step struct {
		ti    *tableInfo
		first bool // the statement's own table: its cascades depend on what it does
	}
	queue := []step{{ti, true}}
	reach := func(oid uint32) {
		if visited[oid] {
			// Reached again (a self-reference, a cycle): its rows change
			// beyond the keys the statement names.
			if t := ts[oid]; t != nil {
				t.tableWide = true
			}
			return
		}
		visited[oid] = true
		dti := c.loadKnown(ctx, oid)
		if dti == nil {
			// Not known: what its rows' changes do is not known either.
			ts.database(true)
			return
		}
		if dti.userCode {
			// A child changed by a foreign-key action fires its own
			// triggers and rules: the reach is no longer bounded.
			ts.database(true)
		}
		if dti.cacheable {
			ts.table(dti, c.tag(dti)).tableWide = true
		}
		queue = append(queue, step{dti, false})
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		// A write through an inheritance parent or a partitioned table
		// changes rows of its children.
		for _, d := range cur.ti.descendants {
			reach(d)
		}
		for _, cs := range cur.ti.cascades {
			// The statement's own table fires an action only for what it
			// does; a table reached by an action may fire any of its own.
			if cur.first && !cascades(cs, s) {
				continue
			}
			reach(cs.child)
		}
	}
}

// loadKnown returns the schema knowledge of a table known by OID, loading
// it when needed; nil when it cannot be loaded.
func (c *conn) loadKnown(ctx context.Context, oid uint32) *tableInfo {
	if ti := c.c.schema.get(oid, c.c.cfg.schemaRefresh, time.Now()); ti != nil {
		return ti
	}
	ti, err := c.loadTable(ctx, oid)
	if err != nil || ti == nil {
		return nil
	}
	c.c.schema.put(ti)
	return ti
}

// cascades reports whether statement s on the parent table may fire the
// foreign-key action cs on the child table. An INSERT never does; an UPDATE
// does only when it assigns a referenced column; a DELETE, TRUNCATE, MERGE
// or anything not understood may.
func cascades(cs cascade, s *recognize.Statement) bool {
	w := s.Write
	if w == nil {
		return true
	}
	switch w.Op {
	case "INSERT":
		return w.OnConflict && cs.onUpdate
	case "UPDATE":
		if !cs.onUpdate {
			return false
		}
		if len(w.SetCols) == 0 {
			return true
		}
		for _, set := range w.SetCols {
			for _, ref := range cs.refCols {
				if quoteIdentPG(set) == ref {
					return true
				}
			}
		}
		return false
	case "DELETE":
		return cs.onDelete
	}
	return true
}

// quoteIdentPG quotes an identifier as PostgreSQL's quote_ident does: only
// when it is not a plain lower-case identifier.
func quoteIdentPG(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || (i > 0 && r >= '0' && r <= '9')) {
			plain = false
		}
	}
	if plain {
		return s
	}
	return quoteIdent(s)
}

// writeKeys returns the keys a write touches when they are known before it
// runs: an UPDATE or DELETE whose WHERE fixes every primary-key column by
// equality and which does not change the key itself. A plain INSERT adds
// rows that no reader can have cached (misses are never cached), so it
// needs no intent at all; every other write is table-wide.
func (c *conn) writeKeys(ti *tableInfo, s *recognize.Statement, args []driver.NamedValue, single bool) ([][]string, bool) {
	w := s.Write
	if !single || w == nil || s.Kind != recognize.KindWrite || ti.userEquality {
		// (userEquality: "WHERE id = 5" may not name the row it changes.)
		return nil, false
	}
	args, ok := statementArgs(args)
	if !ok {
		return nil, false // pgx rewrites the statement (NamedArgs): which row is not known
	}
	if w.Op == "INSERT" {
		if w.OnConflict {
			return nil, false
		}
		return nil, true
	}
	if w.Op != "UPDATE" && w.Op != "DELETE" || len(w.Preds) == 0 {
		return nil, false
	}
	for _, sc := range w.SetCols {
		if ci, ok := ti.colIdx[sc]; !ok || containsInt(ti.pk, ci) {
			return nil, false // the key changes: the old and new keys are not both known
		}
	}
	for _, a := range args {
		if a.Name != "" {
			return nil, false
		}
	}
	l := &recognize.Lookup{Table: w.Table, Star: true, Preds: w.Preds}
	if lookupCasts(l) && !c.sess.builtinTypes {
		// A type name of a cast ($1::int8) may mean another type here (a
		// domain int8 over numeric(20,-3) before pg_catalog): the row the
		// WHERE reaches is not known.
		return nil, false
	}
	b, _ := bind(l, ti)
	if b == nil {
		return nil, false
	}
	// The statement may use more parameters than its WHERE (SET a = $1).
	b.maxParam = len(args)
	keys, ok := b.keys(l, args)
	return keys, ok
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// placeIntents places the intents of ts with one script per table. It
// returns the generations the intents saw, by table.
func (c *conn) placeIntents(parent context.Context, ts targets, token string) (map[uint32]string, error) {
	cn := c.c
	ctx, cancel := cn.redisCtx(parent)
	defer cancel()
	gens := make(map[uint32]string, len(ts))
	for _, oid := range sortedOIDs(ts) {
		t := ts[oid]
		if oid == dbTarget || !t.tableWide && len(t.keys) == 0 {
			continue // the database-wide target is guarded by guard itself
		}
		var gen string
		t.dropNear()
		err := cn.step(ctx, SpanCacheIntents, func(ctx context.Context) error {
			if cn.cacheDown() {
				return errCacheDown
			}
			var err error
			gen, err = proto.Intent(ctx, cn.cfg.redis, metaKey(t.tag), keyList(t.keys), token, cn.cfg.intentLifetime.Milliseconds(), t.tableWide)
			return cn.redisErr(parent, err)
		}, attrDBCollection.String(t.ti.ident.Name), attrKeys.Int(len(t.keys)), attribute.Bool("wtcache.table_wide", t.tableWide))
		// Again now that the intent is in Redis: a fetch that read the old
		// image before it cannot store it in a near cache (near.go).
		t.dropNear()
		if err != nil {
			return gens, err
		}
		gens[oid] = gen
	}
	return gens, nil
}

// release ends the intents of ts after the write finished (its outcome
// known), before the write returns to its caller.
//
// epoch is the change feed's epoch the write knew when it placed its
// intents: its images are stored under it.
func (c *conn) release(parent context.Context, ts targets, token string, gens map[uint32]string, ok bool, epoch string) {
	cn := c.c
	if !ok {
		ts.dropImages()
	}
	// The release runs before the write returns to its caller: if Redis
	// lost the intent meanwhile (FLUSHALL, a restart), a reader may have
	// filled the old row; the release removes it before anyone can learn
	// that the write completed.
	// The caller's cancellation does not stop it: the write has ended, and
	// its intents must go (or its rows be mirrored) whatever the caller
	// does next.
	ctx, cancel := cn.redisCtx(context.WithoutCancel(parent))
	defer cancel()
	func(ctx context.Context) {
		for oid, gen := range gens {
			t := ts[oid]
			if oid == dbTarget {
				continue
			}
			cn.step(ctx, SpanCacheRelease, func(ctx context.Context) error {
				ttl := cn.cfg.ttlFor(t.ti.ident).Milliseconds()
				var err error
				if cn.cacheDown() {
					err = errCacheDown
				} else if t.tableWide {
					_, err = proto.Release(ctx, cn.cfg.redis, metaKey(t.tag), nil, token, gen, ttl, true, true, nil)
				} else {
					keys := keyList(t.keys)
					var images [][]byte
					tagged := epoch
					if t.ti.rendered {
						// The writer's own rendering settings.
						var ok bool
						if tagged, ok = c.renderedEpoch(epoch); !ok {
							t.images = nil
						}
					}
					if len(t.images) > 0 {
						images = make([][]byte, len(keys))
						for i, k := range keys {
							images[i] = t.images[k]
						}
					}
					_, err = proto.ReleaseTagged(ctx, cn.cfg.redis, metaKey(t.tag), keys, token, gen, ttl, false, false, images, t.xid, tagged)
				}
				cn.redisErr(nil, err)
				if err != nil {
					// The intents expire by themselves; a dead table intent
					// moves the generation, a dead row intent leaves the
					// row a miss. But if Redis lost the intent (FLUSHALL,
					// a restart) a reader may have filled the old row: this
					// handle stops serving the table and moves its
					// generation as soon as Redis answers again.
					cn.releaseFailures.Add(1)
					cn.tel.relFail.Add(ctx, 1)
					cn.markDirty(t.ti, t.tag)
					cn.log.warn("release_failed", "wtcache: a write's intents could not be released; this handle serves the table from PostgreSQL until it has invalidated it",
						"table", quoteTable(t.ti.ident), "redis", cn.redisName(), "error", cn.redact(err.Error()))
				}
				return err
			}, attrDBCollection.String(t.ti.ident.Name), attrKeys.Int(len(t.keys)), attrBumps.Int(boolInt(t.tableWide)))
			t.dropNear()
		}
	}(ctx)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedOIDs(ts targets) []uint32 {
	oids := make([]uint32, 0, len(ts))
	for oid := range ts {
		oids = append(oids, oid)
	}
	sort.Slice(oids, func(i, j int) bool { return oids[i] < oids[j] })
	return oids
}

func keyList(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// beforeWrite runs before a statement that is not passive. It returns a
// function to call once the statement has finished (nil when there is
// nothing to do), or an error that refuses the statement.
//
// With a non-nil mirror, the caller runs mirror.text instead of the
// statement, with the same arguments, and hands the rows to collect before
// calling after.
func (c *conn) beforeWrite(ctx context.Context, p *plan, args []driver.NamedValue) (after func(ok bool), m *mirror, err error) {
	if c.c.cfg.redis == nil {
		return nil, nil, nil
	}
	ts, err := c.resolveTargets(ctx, p, args)
	if err != nil {
		// The catalog could not be read (the connection may be broken):
		// the statement will most likely fail the same way. Refuse it
		// rather than write without intents.
		return nil, nil, err
	}
	m = c.mirrorFor(p, ts, args)
	status := c.txStatus()
	// Transaction control inside a string of several statements
	// (ROLLBACK; UPDATE ...) may end the transaction before a write that
	// then commits on its own: such a string is guarded now, never left
	// pending.
	endsInside := p.txControl && len(p.class.Statements) > 1
	// Without the server's status a transaction may have ended where
	// neither database/sql nor the text shows it (a COMMIT sent inside a
	// database/sql transaction, a failed string): writes are guarded now
	// and invalidated after the statement, and again at the COMMIT.
	textOnly := status == 0
	if c.inTx() && !p.commits && !endsInside && !textOnly {
		if c.pending == nil {
			c.pending = targets{}
		}
		if m != nil {
			// Merge after the statement ran, with its images.
			pending := c.pending
			return func(bool) { pending.merge(ts) }, m, nil
		}
		c.pending.merge(ts)
		return nil, nil, nil
	}
	// What committed is decided by the server's facts, never by the text:
	// images are stored only for a statement that ran on its own in
	// autocommit, or for a plain COMMIT of a transaction the server
	// reported healthy. A COMMIT of a failed transaction rolls back;
	// chained, prepared (two-phase) and in-string transaction control
	// commit what nobody can see here: their rows are invalidated instead.
	images := status != 0
	if p.commits {
		if status == 'E' {
			// The server answers ROLLBACK: nothing commits.
			c.pending = nil
			return nil, m, nil
		}
		images = images && p.txOp == recognize.TxCommit && status == 'T'
	}
	if p.txControl && len(p.class.Statements) > 1 {
		images = false
	}
	if c.pending != nil {
		pending := c.pending
		c.pending = nil
		pending.merge(ts)
		ts = pending
	}
	release, err := c.guard(ctx, ts)
	if err != nil {
		return nil, nil, err
	}
	if release == nil {
		return nil, m, nil
	}
	after = func(ok bool) {
		if s := c.txStatus(); s == 'T' || s == 'E' || (s == 0 && c.inTx()) {
			// The statement left a transaction open (BEGIN sent in the
			// same string): its writes commit later. Invalidate them now
			// and guard them again at that commit.
			release(false)
			if c.pending == nil {
				c.pending = targets{}
			}
			ts.dropImages()
			c.pending.merge(ts)
			return
		}
		release(ok && images)
	}
	return after, m, nil
}

// mirrorFor decides whether the statement runs with RETURNING added: a
// single UPDATE by key on a cacheable table, without a RETURNING of its
// own. Everything else invalidates instead of mirroring.
func (c *conn) mirrorFor(p *plan, ts targets, args []driver.NamedValue) *mirror {
	if len(p.class.Statements) != 1 || p.text == "" || !c.statusKnown() {
		return nil
	}
	w := p.class.Statements[0].Write
	if w == nil || w.Op != "UPDATE" || w.Returning {
		return nil
	}
	var t *target
	for _, x := range ts {
		if !x.tableWide && len(x.keys) > 0 {
			if t != nil {
				return nil
			}
			t = x
		}
	}
	if t == nil || !t.ti.cacheable || !c.sess.canSelect[t.ti.oid] {
		return nil // RETURNING t.* needs SELECT on every column
	}
	text := strings.TrimRight(p.text, " \t\r\n")
	text = strings.TrimSuffix(text, ";")
	if strings.Contains(text, ";") {
		return nil // a semicolon in a string or comment: keep it simple
	}
	qual := w.Alias
	if qual == "" {
		qual = t.ti.ident.Name
	}
	t.images = map[string][]byte{}
	m := &mirror{t: t, text: text + "\nRETURNING " + quoteIdent(qual) + ".*"}
	if c.c.cfg.feed {
		m.text += ", pg_catalog.pg_current_xact_id()::pg_catalog.text"
		m.xidCol = true
	}
	return m
}

// collect drains the rows of a mirrored statement: it records the image of
// every row under its key and returns the number of rows, which is the
// statement's rows affected.
func (m *mirror) collect(rows driver.Rows, maxEntry int, seal *sealer) (int64, error) {
	ti := m.t.ti
	cols := captureColumns(rows, ti)
	width := len(cols)
	if m.xidCol {
		width--
	}
	var n int64
	for {
		dest := make([]driver.Value, len(cols))
		err := rows.Next(dest)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		n++
		if width != len(ti.cols) {
			continue
		}
		if m.xidCol {
			// The 32-bit xid the log's BEGIN carries: the low half of the
			// 64-bit one.
			if x, err := strconv.ParseUint(asString(dest[width]), 10, 64); err == nil {
				m.t.xid = strconv.FormatUint(x&0xffffffff, 10)
			}
			dest = dest[:width]
		}
		parts := make([]string, len(ti.pk))
		ok := true
		for pos, ci := range ti.pk {
			if parts[pos], ok = normalizeKey(&ti.cols[ci], dest[ci]); !ok {
				break
			}
		}
		if !ok {
			continue
		}
		vals := make([]any, len(dest))
		for i, v := range dest {
			vals[i] = v
		}
		img, err := rowcodec.EncodeShaped(nil, ti.shape, cols[:width], vals)
		if err != nil {
			continue
		}
		key := rowKey(m.t.tag, parts)
		if img = seal.seal(key, img); img == nil || len(img) > maxEntry {
			continue
		}
		if _, asked := m.t.keys[key]; asked {
			m.t.images[key] = img
		}
	}
	return n, nil
}

// guard places the intents for ts and returns the release to run after
// the write ends. Under FailClosed a Redis failure refuses the write; under
// FallBack the write goes on and the tables are marked dirty on this handle.
//
// The release takes whether the write is known to have succeeded: the
// images of a failed write (or a commit with an unknown outcome) are never
// stored; its keys are invalidated instead.
func (c *conn) guard(ctx context.Context, ts targets) (func(ok bool), error) {
	if len(ts) == 0 {
		return nil, nil
	}
	if c.c.brokenNoIntents.Load() {
		return func(ok bool) { c.naiveRelease(ts, ok) }, nil
	}
	cn := c.c
	token := proto.NewToken()
	// The images are stored under the epoch known now, before the write
	// runs: if the database's epoch or the change feed's stream moves
	// before the release, they are misses. Without a known epoch they
	// could never be served: they are dropped at the release (ok false
	// drops them).
	epoch, keep := cn.imageEpoch(cn.dbNow(), cn.feedNow())
	var dbToken string
	db := ts[dbTarget]
	var err error
	var gens map[uint32]string
	if db != nil {
		dbToken, err = cn.dbLock(ctx)
	}
	if err == nil {
		gens, err = c.placeIntents(ctx, ts, token)
	}
	release := func(ok bool) {
		c.release(ctx, ts, token, gens, ok, epoch)
		if db != nil {
			cn.dbRelease(ctx, dbToken, db.catalog)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			release(false)
			return nil, ctx.Err()
		}
		span := trace.SpanFromContext(ctx)
		if cn.cfg.failure == FailClosed {
			release(false)
			span.SetAttributes(attrPolicy.String("fail"), attrDecision.String("refused"))
			return nil, fmt.Errorf("%w: %s: %v", ErrCacheUnavailable, cn.redisName(), err)
		}
		span.SetAttributes(attrPolicy.String("fallback"), attrDecision.String("fallback"))
		mark := func() {
			for oid, t := range ts {
				if oid == dbTarget {
					cn.markDBDirty()
				} else {
					cn.markDirty(t.ti, t.tag)
				}
			}
		}
		mark()
		return func(ok bool) {
			// Mark again now that the write has ended: a repair that ran
			// before the commit moved the generation too early (a reader
			// may have filled the old row since).
			mark()
			release(ok && keep)
		}, nil
	}
	return func(ok bool) { release(ok && keep) }, nil
}

// afterStatement updates what the connection knows after any statement.
func (c *conn) afterStatement(p *plan) {
	if p.ddl {
		c.c.schema.forget()
	}
	if p.session || c.fx.session {
		// It may have moved the search path or the role (SET, a user
		// function that calls set_config or SET ROLE): what names resolve
		// to and what the role may read are asked again.
		c.sess.reset()
	}
	c.fx = stmtFacts{}
	if p.txControl && len(p.class.Statements) > 1 {
		// ROLLBACK, ROLLBACK TO, BEGIN inside one string: which writes
		// survive is not known; their rows are invalidated at commit, none
		// mirrored. Without the server's status, a BEGIN anywhere in it
		// may have left a transaction open.
		if c.pending != nil {
			c.pending.dropImages()
		}
		c.sess.reset()
		if c.txStatus() == 0 {
			// The transaction is as the last transaction control of the
			// string left it: open after BEGIN, closed after COMMIT or
			// ROLLBACK, open (the safe guess) after a chained or
			// prepared one.
			for _, s := range p.class.Statements {
				if s.Kind == recognize.KindTx {
					switch s.Tx {
					case recognize.TxBegin, recognize.TxOther:
						c.manualTx = true
					case recognize.TxCommit, recognize.TxRollback:
						c.manualTx = false
					}
				}
			}
		}
	}
	if c.txStatus() == 'I' {
		// The server says no transaction is open: whatever was pending
		// either committed under its intents (a COMMIT guarded it) or
		// rolled back.
		c.pending, c.manualTx = nil, false
	}
	switch p.txOp {
	case recognize.TxRollbackTo:
		if c.pending != nil {
			c.pending.dropImages()
		}
		c.sess.reset() // it may undo a SET LOCAL role or search_path
	case recognize.TxBegin:
		c.manualTx = true
	case recognize.TxCommit, recognize.TxRollback:
		c.manualTx = false
		if p.txOp == recognize.TxRollback {
			c.pending = nil
		}
	}
}

// naiveRelease is the deliberately broken variant (tests only): mirror
// after commit without intents.
func (c *conn) naiveRelease(ts targets, ok bool) {
	cn := c.c
	if !ok {
		ts.dropImages()
	}
	cn.background(context.Background(), func(ctx context.Context) {
		for _, t := range ts {
			keys := keyList(t.keys)
			images := make([][]byte, len(keys))
			for i, k := range keys {
				images[i] = t.images[k]
			}
			_ = proto.NaiveMirror(ctx, cn.cfg.redis, metaKey(t.tag), keys, cn.cfg.ttlFor(t.ti.ident).Milliseconds(), images)
		}
	})
}

// statementArgs returns the arguments the statement's $n take: pgx takes
// leading arguments of its option types (a QueryExecMode, result formats)
// for itself. ok is false when one of them rewrites the statement (a
// QueryRewriter such as pgx.NamedArgs): the binding is then not known.
func statementArgs(args []driver.NamedValue) ([]driver.NamedValue, bool) {
	for len(args) > 0 {
		switch args[0].Value.(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
			args = args[1:]
		case pgx.QueryRewriter:
			return nil, false
		default:
			return args, true
		}
	}
	return args, true
}

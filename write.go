package wtcache

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/wtcache/wtcache/internal/proto"
	"github.com/wtcache/wtcache/internal/recognize"
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
// before the write (the intent removed its lease). A row intent is released
// by deleting the row's image: the next reader fills it from the database.
// A table-wide intent, used when the rows are unknown (no key in the WHERE,
// TRUNCATE, DDL, cascades, multi-statement strings), is released by moving
// the table's generation, which makes every cached row of the table a miss
// in O(1).

// target is what one table needs for a write.
type target struct {
	ti        *tableInfo
	tag       string
	tableWide bool
	keys      map[string]struct{}
}

type targets map[uint32]*target

func (ts targets) table(ti *tableInfo, tag string) *target {
	t := ts[ti.oid]
	if t == nil {
		t = &target{ti: ti, tag: tag, keys: map[string]struct{}{}}
		ts[ti.oid] = t
	}
	return t
}

func (ts targets) merge(o targets) {
	for oid, t := range o {
		mine := ts.table(t.ti, t.tag)
		mine.tableWide = mine.tableWide || t.tableWide
		for k := range t.keys {
			mine.keys[k] = struct{}{}
		}
		ts[oid] = mine
	}
}

// inTx reports whether the session is inside a transaction, whether begun
// through database/sql or by a BEGIN statement.
func (c *conn) inTx() bool {
	if c.tx != nil || c.manualTx {
		return true
	}
	if sc, ok := c.inner.(*stdlib.Conn); ok {
		return sc.Conn().PgConn().TxStatus() != 'I'
	}
	return false
}

// resolveTargets lists the cached tables (and rows) a statement may change.
func (c *conn) resolveTargets(ctx context.Context, p *plan, args []driver.NamedValue) (targets, error) {
	ts := targets{}
	if err := c.ensureSession(ctx); err != nil {
		return nil, err
	}
	all := false
	for i := range p.class.Statements {
		s := &p.class.Statements[i]
		if s.Kind != recognize.KindWrite && s.Kind != recognize.KindDDL && s.Kind != recognize.KindUnknown {
			continue
		}
		if s.AllTables || s.Kind == recognize.KindUnknown {
			all = true
		}
		for _, name := range s.Tables {
			ti, err := c.table(ctx, name)
			if err != nil {
				return nil, err
			}
			if ti == nil {
				continue // not a relation: the statement fails, or creates it
			}
			if !ti.cacheable && ti.reason == "not an ordinary table (view, partitioned table, foreign table...)" {
				all = true // a write through a view changes its base tables
				continue
			}
			c.addTarget(ctx, ts, ti, s, args, len(p.class.Statements) == 1)
		}
	}
	if all {
		for _, ti := range c.c.schema.cacheable() {
			ts.table(ti, c.tag(ti)).tableWide = true
		}
	}
	return ts, nil
}

func (c *conn) tag(ti *tableInfo) string {
	return tableTag(c.c.cfg.prefix, c.sess.database, c.sess.role, ti.ident)
}

// addTarget adds ti (and, through cascading foreign keys, its children).
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
	if s.Write != nil && s.Write.Op == "INSERT" && !s.Write.OnConflict {
		return // an insert cascades nothing
	}
	for _, child := range ti.cascades {
		if _, seen := ts[child]; seen {
			continue
		}
		cti := c.c.schema.get(child, c.c.cfg.schemaRefresh)
		if cti == nil {
			var err error
			if cti, err = c.loadTable(ctx, child); err != nil || cti == nil {
				continue
			}
			c.c.schema.put(cti)
		}
		if cti.cacheable {
			ts.table(cti, c.tag(cti)).tableWide = true
		}
		c.addTarget(ctx, ts, cti, &recognize.Statement{Kind: recognize.KindWrite}, nil, false)
	}
}

// writeKeys returns the keys a write touches when they are known before it
// runs: an UPDATE or DELETE whose WHERE fixes every primary-key column by
// equality and which does not change the key itself. A plain INSERT adds
// rows that no reader can have cached (misses are never cached), so it
// needs no intent at all; every other write is table-wide.
func (c *conn) writeKeys(ti *tableInfo, s *recognize.Statement, args []driver.NamedValue, single bool) ([][]string, bool) {
	w := s.Write
	if !single || w == nil || s.Kind != recognize.KindWrite {
		return nil, false
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
	b := bind(l, ti)
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
func (c *conn) placeIntents(ctx context.Context, ts targets, token string) (map[uint32]string, error) {
	cn := c.c
	ctx, cancel := context.WithTimeout(ctx, cn.cfg.timeout)
	defer cancel()
	gens := make(map[uint32]string, len(ts))
	for _, oid := range sortedOIDs(ts) {
		t := ts[oid]
		if !t.tableWide && len(t.keys) == 0 {
			continue
		}
		gen, err := proto.Intent(ctx, cn.cfg.redis, metaKey(t.tag), keyList(t.keys), token, cn.cfg.intentLifetime.Milliseconds(), t.tableWide)
		if err != nil {
			return gens, err
		}
		gens[oid] = gen
	}
	return gens, nil
}

// release ends the intents of ts after the write finished, whatever its
// outcome, without making the caller wait.
func (c *conn) release(ts targets, token string, gens map[uint32]string) {
	cn := c.c
	cn.background(func(ctx context.Context) {
		for oid, gen := range gens {
			t := ts[oid]
			ttl := cn.cfg.ttlFor(t.ti.ident).Milliseconds()
			var err error
			if t.tableWide {
				_, err = proto.Release(ctx, cn.cfg.redis, metaKey(t.tag), nil, token, gen, ttl, true, true, nil)
			} else {
				_, err = proto.Release(ctx, cn.cfg.redis, metaKey(t.tag), keyList(t.keys), token, gen, ttl, false, false, nil)
			}
			if err != nil {
				// The intents expire by themselves; a dead table intent
				// moves the generation, a dead row intent leaves the row
				// a miss. Count it.
				cn.releaseFailures.Add(1)
			}
		}
	})
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
func (c *conn) beforeWrite(ctx context.Context, p *plan, args []driver.NamedValue) (after func(), err error) {
	if c.c.cfg.redis == nil {
		return nil, nil
	}
	ts, err := c.resolveTargets(ctx, p, args)
	if err != nil {
		// The catalog could not be read (the connection may be broken):
		// the statement will most likely fail the same way. Refuse it
		// rather than write without intents.
		return nil, err
	}
	if c.inTx() && !p.commits {
		if c.pending == nil {
			c.pending = targets{}
		}
		c.pending.merge(ts)
		return nil, nil
	}
	if c.pending != nil {
		ts.merge(c.pending)
		c.pending = nil
	}
	return c.guard(ctx, ts)
}

// guard places the intents for ts and returns the release to run after
// the write ends. Under FailClosed a Redis failure refuses the write; under
// FallBack the write goes on and the tables are marked dirty on this handle.
func (c *conn) guard(ctx context.Context, ts targets) (func(), error) {
	if len(ts) == 0 {
		return nil, nil
	}
	token := proto.NewToken()
	gens, err := c.placeIntents(ctx, ts, token)
	if err != nil {
		if ctx.Err() != nil {
			c.release(ts, token, gens)
			return nil, ctx.Err()
		}
		if c.c.cfg.failure == FailClosed {
			c.release(ts, token, gens)
			return nil, fmt.Errorf("%w: %v", ErrCacheUnavailable, err)
		}
		for _, t := range ts {
			c.c.markDirty(t.ti, t.tag)
		}
		return func() { c.release(ts, token, gens) }, nil
	}
	return func() { c.release(ts, token, gens) }, nil
}

// afterStatement updates what the connection knows after any statement.
func (c *conn) afterStatement(p *plan) {
	if p.ddl {
		c.c.schema.forget()
	}
	if p.session {
		c.sess.reset()
	}
	switch p.txOp {
	case recognize.TxBegin:
		c.manualTx = true
	case recognize.TxCommit, recognize.TxRollback:
		c.manualTx = false
		if p.txOp == recognize.TxRollback {
			c.pending = nil
		}
	}
}

package wtcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/trace"

	"github.com/wtcache/wtcache/internal/proto"
	"github.com/wtcache/wtcache/internal/recognize"
	"github.com/wtcache/wtcache/internal/rowcodec"
)

// The read path: a statement that is exactly a primary-key lookup on a
// cached table, outside a transaction, is answered from Redis; misses are
// read from PostgreSQL in one statement and filled after the rows are
// handed to the caller, only if no write moved them in Redis meanwhile
// (internal/proto).

// boundLookup is a lookup checked against one table's real primary key and
// columns.
type boundLookup struct {
	ti       *tableInfo
	eq       []int // per primary-key position: index of its Eq predicate, -1 for the multi one
	multi    int   // primary-key position fed by IN/ANY, -1 if none
	nullCols []int // columns that must be NULL
	proj     []int // column indexes returned, in order
	star     bool  // proj is every column in table order (names may differ)
	names    []string
	order    int // 0 none, 1 ascending, -1 descending on the multi column
	maxParam int
}

// bind checks l against ti. It returns nil when the lookup cannot be
// served exactly from a cached row, with the reason.
func bind(l *recognize.Lookup, ti *tableInfo) (*boundLookup, string) {
	b := &boundLookup{ti: ti, multi: -1, eq: make([]int, len(ti.pk))}
	for i := range b.eq {
		b.eq[i] = -2
	}
	pkPos := func(col int) int { return slices.Index(ti.pk, col) }
	note := func(v recognize.Value) {
		b.maxParam = max(b.maxParam, v.Param)
	}
	for i, p := range l.Preds {
		col, ok := ti.colIdx[p.Column]
		if !ok {
			return nil, reasonShape
		}
		pos := pkPos(col)
		switch p.Kind {
		case recognize.PredIsNull:
			if pos >= 0 {
				return nil, reasonShape
			}
			b.nullCols = append(b.nullCols, col)
		case recognize.PredEq:
			if pos < 0 || b.eq[pos] != -2 {
				return nil, reasonShape
			}
			b.eq[pos] = i
			note(p.Value)
		case recognize.PredIn, recognize.PredAny:
			if pos < 0 || b.eq[pos] != -2 || b.multi >= 0 {
				return nil, reasonShape
			}
			b.eq[pos], b.multi = -1, pos
			note(p.Value)
			for _, v := range p.List {
				note(v)
			}
		default:
			return nil, reasonShape
		}
	}
	for _, e := range b.eq {
		if e == -2 {
			return nil, reasonShape // a key column without a predicate
		}
	}
	if l.Star {
		for i, c := range ti.cols {
			b.proj = append(b.proj, i)
			b.names = append(b.names, c.name)
		}
		b.star = true
	} else {
		for _, oc := range l.Columns {
			col, ok := ti.colIdx[oc.Column]
			if !ok {
				return nil, reasonShape
			}
			if oc.Cast != "" && !sameType(ti.cols[col].typeOID, oc.Cast) {
				// balance::text: the value as PostgreSQL renders it in
				// another type, which the image does not hold.
				return nil, reasonSelectCast
			}
			b.proj = append(b.proj, col)
			b.names = append(b.names, oc.As)
		}
		// Every column in table order (under any names): the decoded
		// rows serve as they are, as for *.
		b.star = len(b.proj) == len(ti.cols)
		for i, col := range b.proj {
			b.star = b.star && col == i
		}
	}
	for _, o := range l.OrderBy {
		col, ok := ti.colIdx[o.Column]
		if !ok {
			return nil, reasonShape
		}
		pos := pkPos(col)
		switch {
		case pos >= 0 && pos != b.multi:
			// constant within the result: no effect
		case pos >= 0 && pos == b.multi && b.order == 0:
			if ti.cols[col].keyKind == keyText {
				return nil, reasonShape // collation order: leave it to PostgreSQL
			}
			b.order = 1
			if o.Desc {
				b.order = -1
			}
		default:
			return nil, reasonShape
		}
	}
	for _, v := range []*recognize.Value{l.Limit, l.Offset} {
		if v != nil {
			note(*v)
		}
	}
	return b, ""
}

// bindFor returns the plan's binding to ti, computing it once per table
// version.
func (p *plan) bindFor(ti *tableInfo) (*boundLookup, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.bound[ti.oid]; ok && e.ti == ti {
		return e.b, e.why
	}
	if p.bound == nil {
		p.bound = make(map[uint32]bindEntry)
	}
	b, why := bind(p.lookup, ti)
	p.bound[ti.oid] = bindEntry{ti: ti, b: b, why: why}
	return b, why
}

// bindEntry is a plan's binding (nil: cannot be served) to one version of
// a table's schema knowledge.
type bindEntry struct {
	ti  *tableInfo
	b   *boundLookup
	why string // the bypass reason when b is nil
}

// valueOf resolves a recognised value to a Go value.
func valueOf(v recognize.Value, args []driver.NamedValue) (any, bool) {
	if v.Param > 0 {
		if v.Param > len(args) {
			return nil, false
		}
		return args[v.Param-1].Value, true
	}
	return v.Literal, true
}

func keyPart(col *columnInfo, v recognize.Value, args []driver.NamedValue) (string, bool) {
	x, ok := valueOf(v, args)
	if !ok {
		return "", false
	}
	if v.Param == 0 && !v.String && col.keyKind != keyInt {
		return "", false // a number compared with text or uuid: an error in PostgreSQL
	}
	s, ok := normalizeKey(col, x)
	if !ok || v.Cast == "" {
		return s, ok
	}
	return s, castKeeps(col, v.Cast, s)
}

// castKeeps reports whether casting the key value s to the named type
// leaves the comparison with the key column what it was without the cast
// ($1::bigint, '...'::uuid): a type of the key's own family that holds the
// value. Any other cast, or a value the cast type cannot hold (PostgreSQL
// answers that with an error), is not served.
func castKeeps(col *columnInfo, cast, s string) bool {
	switch col.keyKind {
	case keyInt:
		bits := map[string]int{"int2": 16, "smallint": 16, "int4": 32, "int": 32, "integer": 32, "int8": 64, "bigint": 64}[cast]
		if bits == 0 {
			return false
		}
		_, err := strconv.ParseInt(s, 10, bits)
		return err == nil
	case keyUUID:
		return cast == "uuid"
	case keyText:
		return cast == "text" || cast == "varchar" || cast == "character varying"
	}
	return false
}

// sameType reports whether cast names the type typeOID itself, for the
// built-in types without a type modifier: the cast then changes neither
// the value nor the column's type (id::bigint on a bigint column). Any
// other cast in the select list is not served.
func sameType(typeOID uint32, cast string) bool {
	switch typeOID {
	case 16:
		return cast == "bool" || cast == "boolean"
	case 17:
		return cast == "bytea"
	case 20:
		return cast == "int8" || cast == "bigint"
	case 21:
		return cast == "int2" || cast == "smallint"
	case 23:
		return cast == "int4" || cast == "int" || cast == "integer"
	case 25:
		return cast == "text"
	case 700:
		return cast == "float4" || cast == "real"
	case 701:
		return cast == "float8" || cast == "double precision"
	case 1082:
		return cast == "date"
	case 2950:
		return cast == "uuid"
	case 3802:
		return cast == "jsonb"
	}
	return false
}

// keys computes the distinct keys a lookup asks for, in argument order.
func (b *boundLookup) keys(l *recognize.Lookup, args []driver.NamedValue) ([][]string, bool) {
	if len(args) != b.maxParam {
		return nil, false // extra pgx arguments (QueryExecMode, NamedArgs...) or missing ones
	}
	for _, a := range args {
		if a.Name != "" {
			return nil, false
		}
	}
	var base []string
	var one [][]string
	if b.multi < 0 && len(b.ti.pk) <= 4 {
		// One key (the common lookup): its parts and the slice that
		// holds them in one allocation.
		kb := &struct {
			outer [1][]string
			parts [4]string
		}{}
		base = kb.parts[:len(b.ti.pk)]
		kb.outer[0] = base
		one = kb.outer[:]
	} else {
		base = make([]string, len(b.ti.pk))
	}
	for pos, pi := range b.eq {
		if pi < 0 {
			continue
		}
		s, ok := keyPart(&b.ti.cols[b.ti.pk[pos]], l.Preds[pi].Value, args)
		if !ok {
			return nil, false
		}
		base[pos] = s
	}
	if b.multi < 0 {
		if one != nil {
			return one, true
		}
		return [][]string{base}, true
	}
	var pred *recognize.Pred
	for i := range l.Preds {
		if l.Preds[i].Kind == recognize.PredIn || l.Preds[i].Kind == recognize.PredAny {
			pred = &l.Preds[i]
		}
	}
	col := &b.ti.cols[b.ti.pk[b.multi]]
	var parts []string
	if pred.Kind == recognize.PredIn {
		for _, v := range pred.List {
			s, ok := keyPart(col, v, args)
			if !ok {
				return nil, false
			}
			parts = append(parts, s)
		}
	} else {
		x, ok := valueOf(pred.Value, args)
		if !ok || pred.Value.Param == 0 {
			return nil, false
		}
		elemCast, isArray := strings.CutSuffix(pred.Value.Cast, "[]")
		if pred.Value.Cast != "" && !isArray {
			return nil, false
		}
		if parts, ok = arrayKeyParts(col, x, elemCast); !ok {
			return nil, false
		}
	}
	seen := make(map[string]struct{}, len(parts))
	out := make([][]string, 0, len(parts))
	// Every key's parts in one backing array.
	flat := make([]string, 0, len(parts)*len(base))
	for _, s := range parts {
		if _, dup := seen[s]; dup {
			continue
		}
		seen[s] = struct{}{}
		at := len(flat)
		flat = append(flat, base...)
		k := flat[at:len(flat):len(flat)]
		k[b.multi] = s
		out = append(out, k)
	}
	return out, true
}

// arrayKeyParts returns the normalised key of each element of an array
// argument x of the key column col (NULL elements match nothing and are
// left out), as normalizeKey does for each: ok is false when one is not a
// key the column compares equal in exactly one way, or elemCast may change
// it. The common argument, an []int64 for an integer key, is read without
// boxing each element.
func arrayKeyParts(col *columnInfo, x any, elemCast string) ([]string, bool) {
	if vr, ok := x.(driver.Valuer); ok {
		// pgx sends what Value returns (a list type of the
		// application's own): read the keys from that.
		if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return nil, false
		}
		v, err := vr.Value()
		if err != nil {
			return nil, false // pgx reports it
		}
		if _, again := v.(driver.Valuer); again || v == nil {
			return nil, false
		}
		x = v
	}
	var parts []string
	if ns, ok := x.([]int64); ok && col.keyKind == keyInt {
		// Every key's text in one string: the parts are slices of it
		// (they live as long as the lookup; row keys are made apart).
		var sb strings.Builder
		sb.Grow(len(ns) * 8)
		ends := make([]int, len(ns))
		var buf [20]byte
		for i, n := range ns {
			if !intFits(n, col.intBits) {
				return nil, false
			}
			sb.Write(strconv.AppendInt(buf[:0], n, 10))
			ends[i] = sb.Len()
		}
		all := sb.String()
		parts = make([]string, len(ns))
		start := 0
		for i, end := range ends {
			parts[i], start = all[start:end], end
		}
	} else {
		elems, ok := sliceElems(x)
		if !ok {
			return nil, false
		}
		parts = make([]string, 0, len(elems))
		for _, e := range elems {
			if e == nil {
				continue // NULL matches nothing
			}
			s, ok := normalizeKey(col, e)
			if !ok {
				return nil, false
			}
			parts = append(parts, s)
		}
	}
	if elemCast != "" {
		for _, s := range parts {
			if !castKeeps(col, elemCast, s) {
				return nil, false
			}
		}
	}
	if len(parts) == 0 && !emptyListServes(col, x, elemCast) {
		// No element to prove that PostgreSQL takes the argument (an
		// array cast or element type the key column does not compare
		// with is an error, not an empty result): let it answer.
		return nil, false
	}
	return parts, true
}

// emptyListServes reports whether a key list x with no element but NULLs
// is the empty result it looks like: its cast, if any, is of the key
// column's family, and its elements are of a kind normalizeKey takes for
// the column.
func emptyListServes(col *columnInfo, x any, elemCast string) bool {
	if elemCast != "" && !castKeeps(col, elemCast, castProbe[col.keyKind]) {
		return false
	}
	et := reflect.TypeOf(x).Elem()
	if et.Kind() == reflect.Pointer {
		et = et.Elem()
	}
	switch col.keyKind {
	case keyInt:
		switch et.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return true
		}
	case keyText:
		return et.Kind() == reflect.String
	}
	return false
}

// castProbe is a key value every type of the key kind's family holds.
var castProbe = map[keyKind]string{keyInt: "0", keyText: "", keyUUID: "00000000-0000-0000-0000-000000000000"}

// sliceElems returns the elements of a Go slice argument of basic values.
func sliceElems(x any) ([]any, bool) {
	rv := reflect.ValueOf(x)
	if rv.Kind() != reflect.Slice || rv.Type().Elem().Kind() == reflect.Uint8 {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		e := rv.Index(i)
		if e.Kind() == reflect.Pointer || e.Kind() == reflect.Interface {
			if e.IsNil() {
				continue
			}
			if _, ok := e.Interface().(driver.Valuer); ok {
				// Its Value may be on the pointer: normalizeKey calls
				// it, as pgx does.
				out[i] = e.Interface()
				continue
			}
			e = e.Elem()
		}
		out[i] = e.Interface()
	}
	return out, true
}

func intArg(v *recognize.Value, args []driver.NamedValue) (int64, bool) {
	if v == nil {
		return -1, true
	}
	x, ok := valueOf(*v, args)
	if !ok {
		return 0, false
	}
	s, ok := normalizeInt(basicValue(x))
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// lookup serves a lookup. handled is false when it must pass through.
func (c *conn) lookup(ctx context.Context, p *plan, args []driver.NamedValue, o *op) (rows driver.Rows, handled bool, err error) {
	rows, reason, err := c.lookup1(ctx, p, args, o)
	if reason != "" {
		c.bypass(ctx, o, reason)
		return nil, false, nil
	}
	return rows, true, err
}

func (c *conn) lookup1(ctx context.Context, p *plan, args []driver.NamedValue, o *op) (driver.Rows, string, error) {
	cn := c.c
	if cn.cacheDown() {
		// Redis is known unreachable: straight to PostgreSQL, as if the
		// cache did not exist (the breaker probes in the background).
		return nil, reasonCacheDown, nil
	}
	ti, err := c.table(ctx, p.lookup.Table)
	switch {
	case cn.cacheDown():
		// Found unreachable since the lookup began (the database
		// fence's first poll, say): no second wait.
		return nil, reasonCacheDown, nil
	case err != nil:
		return nil, reasonCatalog, nil
	case ti == nil || !ti.cacheable:
		if ti != nil && o.span.IsRecording() {
			o.span.SetAttributes(attrBypassDetail.String(ti.reason))
		}
		return nil, reasonNotCacheable, nil
	case ti.userEquality:
		return nil, reasonUserOperator, nil
	case cn.dirty(ti.oid):
		return nil, reasonDirty, nil
	case !c.sess.canSelect[ti.oid]:
		return nil, reasonPrivileges, nil
	case p.casts && !c.sess.builtinTypes:
		// A type name of the cast may mean another type here.
		return nil, reasonShape, nil
	}
	b, why := p.bindFor(ti)
	if b == nil {
		return nil, why, nil
	}
	keyParts, ok := b.keys(p.lookup, args)
	if !ok {
		return nil, reasonArguments, nil
	}
	limit, ok1 := intArg(p.lookup.Limit, args)
	offset, ok2 := intArg(p.lookup.Offset, args)
	if !ok1 || !ok2 {
		return nil, reasonArguments, nil
	}

	tk := c.tagKeys(ti)
	// One string per key, not slices of a shared one: the memo, the near
	// cache and the large-row set keep keys, and a slice would keep the
	// whole lookup's text alive.
	keys := make([]string, len(keyParts))
	var one []byte
	if len(keyParts) == 1 && ti.near && cn.near != nil {
		// A near hit needs no key string: the near cache looks the key up
		// as bytes, and readThrough makes it a string if the lookup goes
		// on to Redis.
		c.keyBuf = appendRowKey(c.keyBuf[:0], tk.tag, keyParts[0])
		one = c.keyBuf
	} else {
		for i, kp := range keyParts {
			keys[i] = rowKey(tk.tag, kp)
		}
	}
	found := make([]*rowcodec.Row, len(keys))
	hits := 0
	if len(keys) > 0 {
		var why string
		if hits, why = c.readThrough(ctx, ti, tk, keys, one, keyParts, found, &p.missed); why != "" {
			return nil, why, nil
		}
	}
	r := b.result(c.newRows(), found, limit, offset)
	if r == nil {
		// No row and no column metadata known yet: let PostgreSQL answer.
		return nil, reasonNoMetadata, nil
	}
	outcome, why := "hit", ""
	if c.nearHit {
		outcome, c.nearHit = outcomeNearHit, false
	}
	switch {
	case hits == 0 && len(keys) > 0:
		outcome, why = "miss", c.missWhy
	case hits < len(keys):
		outcome, why = "partial", c.missWhy
	}
	c.missWhy = ""
	if o.span.IsRecording() {
		o.outcome(ctx, outcome, why, attrKeys.Int(len(keys)), attrHits.Int(hits), attrMisses.Int(len(keys)-hits))
	} else {
		o.outcome(ctx, outcome, why) // no attribute slice to build
	}
	return r, "", nil
}

// splitVersionsAt is the number of keys from which a lookup reads the
// images alone and the misses' versions after (proto.PeekImagesInto): with
// few keys the versions cost little in the one round trip; with many they
// are half of it, and hits do not need them. A statement whose last such
// lookup had misses reads them together again (plan.missed): misses would
// pay a second round trip.
const splitVersionsAt = 8

// readThrough fills found[i] for every key, from Redis or PostgreSQL. It
// returns false when the database read failed: the caller then passes the
// original statement through, so that the error is PostgreSQL's own answer
// to it.
//
// One pipelined Redis round trip (Peek) answers the hits and records what
// the misses looked like; the misses are read from PostgreSQL in one
// statement and handed to the caller, and a fill stores them afterwards
// only if nothing moved in Redis since the Peek (see internal/proto).
//
// With one, keys holds a single key not made a string yet: one holds it.
//
// missed records whether the statement's last lookup of many keys had
// misses: while they do not, such a lookup reads only the images in its
// first round trip (splitVersionsAt).
func (c *conn) readThrough(ctx context.Context, ti *tableInfo, tk tagKeys, keys []string, one []byte, keyParts [][]string, found []*rowcodec.Row, missed *atomic.Bool) (hits int, bypass string) {
	cn := c.c
	c.nearHit = false
	dv, fv := cn.dbNow(), cn.feedNow() // fv nil without a change feed
	// The time now, not the lookup's clock (conn.now): the fences below
	// allow milliseconds, and a stall since the statement began (a
	// collection, the fence's first poll) must count.
	start := time.Now()
	if !dv.serves(start) || c.sess.catalogs != cn.catalogs.Load() {
		// A database-wide write is under way or has just ended (a DDL
		// among them, perhaps), or this process has not heard from
		// Redis lately: what it knows of the table may be old, and a
		// miss read with it could have other columns than the
		// application's statement. PostgreSQL answers the statement.
		return 0, reasonNotCurrent
	}
	epoch, epochKnown := cn.imageEpoch(dv, fv)
	if ti.rendered {
		// Images of this table hold values rendered under the session's
		// settings: kept apart by them.
		var ok bool
		epoch, ok = c.renderedEpoch(epoch)
		epochKnown = epochKnown && ok
	}
	var nc *nearCache
	if ti.near {
		nc = cn.near
	}
	if nc != nil {
		// The near cache answers the whole lookup or none of it
		// (near.go), under the same conditions as a Redis hit below.
		if inc, ok := nc.peek(tk.state, epoch, keys, one, found, nc.since(start)); ok {
			ok = dv.serves(start) && !cn.fenceDirty.Load() && (fv == nil || fv.fresh(start)) &&
				epochKnown && !dv.locked && !cn.observe(tk.inc, inc)
			for i := 0; ok && i < len(keys); i++ {
				ok = imageMatches(found[i], ti)
			}
			if ok {
				nc.hits.Add(int64(len(keys)))
				cn.hits.Add(int64(len(keys)))
				c.nearHit = true
				return len(keys), ""
			}
			clear(found) // asked of Redis, which says why
		}
	}
	if one != nil {
		keys[0] = string(one)
	}
	pr := proto.PeekResult{Epoch: epoch, Rows: make([]proto.PeekRow, len(keys))}
	var storeNear func()
	var err error
	looked := start
	{
		var tok, sess uint64
		if nc != nil {
			tok, sess = nc.reserve(tk.state, keys) // before the MGET is sent
		}
		rctx, cancel := cn.redisCtxFrom(ctx, start)
		o := cn.tel
		peek := proto.PeekInto
		split := int(cn.splitAt.Load())
		if split == 0 {
			split = splitVersionsAt
			if missed.Load() {
				split = len(keys) + 1 // misses expected: no second round trip
			}
		}
		if len(keys) >= split {
			// Many keys: the images alone, the misses' versions after
			// (proto.ReadVersions), when there are misses to fill.
			peek = proto.PeekImagesInto
		}
		if o.stepSpans(ctx) {
			err = cn.step(rctx, SpanCacheLookup, func(ctx context.Context) error {
				return peek(ctx, cn.cfg.redis, tk.state, keys, &pr)
			}, attrKeys.Int(len(keys)))
		} else {
			err = peek(rctx, cn.cfg.redis, tk.state, keys, &pr)
		}
		looked = time.Now()
		if !o.stepSpans(ctx) {
			o.recordStep(ctx, SpanCacheLookup, looked.Sub(start))
		}
		if err == nil && pr.Gen == "" {
			// No table state (first use of the table, or Redis lost it): make
			// one, so that the fills of these misses have a generation.
			err = proto.InitMeta(rctx, cn.cfg.redis, tk.meta, &pr)
		}
		cancel()
		cn.redisErr(ctx, err)
		if tok != 0 {
			// Stores what this Peek served, once the loop below has
			// decided it (found then holds exactly the hits).
			defer nc.fulfill(tok, sess, tk.state, keys, &pr, nil, false) // releases the reservation if not stored
			storeNear = func() { nc.fulfill(tok, sess, tk.state, keys, &pr, found, err == nil) }
		}
	}
	// A fill may store only what this Peek saw: not after a Redis error,
	// nor while the table is in quarantine (Redis lost its state lately).
	canFill := err == nil && !cn.observe(tk.inc, pr.Incarnation)
	// With a change feed, hits are served only while the follower's claim
	// held when Redis was read (a write made anywhere more than
	// cache_feed_max_lag ago has been applied), and fills need the epoch
	// they are stored under.
	//
	// The database fence: hits only while this process's view of the
	// database is fresh and no database-wide write is under way, images
	// only under the epoch it knows (dbfence.go).
	now := looked
	serve := dv.serves(now) && !cn.fenceDirty.Load()
	canFill = canFill && epochKnown && dv != nil && !dv.locked
	if fv != nil && !fv.fresh(now) {
		serve = false
		cn.feed.staleLookups.Add(1)
	}
	var missing []int
	why := ""
	for i := range keys {
		r := &pr.Rows[i]
		reason := missAbsent
		switch {
		case err != nil:
			reason = missCacheError
		case !serve || !canFill:
			// Not answering from Redis now: a database-wide write, an old
			// view of the fence or the feed, a quarantine.
			reason = missNotFresh
		case r.Hit:
			// An image of another row under this key (an entry edited or
			// copied in Redis) is corrupt.
			parts := keyParts[i]
			row, derr := cn.memo.decode(keys[i], r.Image, cn.cfg.seal, func(r *rowcodec.Row) bool { return imageHasKey(r, ti, parts) })
			if derr == nil && imageMatches(row, ti) {
				found[i] = row
				hits++
				continue
			}
			// An image from before a schema change, or one that does not
			// decode: a miss, which the fill overwrites.
			reason = missStaleSchema
			if derr != nil {
				cn.countCorrupt(ctx)
				reason = missCorrupt
				if derr == errUnauthentic {
					reason = missUnauthentic
				}
			}
		case cn.large.has(keys[i]):
			reason = missTooLarge
		}
		cn.reasons.addMiss(reason, 1)
		if why == "" {
			why = reason
		}
		missing = append(missing, i)
	}
	if storeNear != nil {
		storeNear()
	}
	cn.hits.Add(int64(hits))
	if len(keys) >= splitVersionsAt && err == nil && missed.Load() != (len(missing) > 0) {
		missed.Store(len(missing) > 0)
	}
	if len(missing) == 0 {
		return hits, ""
	}
	c.missWhy = why
	cn.misses.Add(int64(len(missing)))

	// Concurrent misses of one key in this process share one database
	// read: a reader joins only a read that began after it started, made
	// with the same table description (see flights).
	var lead, waitIdx []int
	var mine, waits []*flight
	for _, i := range missing {
		f, leader := cn.flights.startOrJoin(keys[i], ti, start)
		if !leader {
			waits, waitIdx = append(waits, f), append(waitIdx, i)
			continue
		}
		mine, lead = append(mine, f), append(lead, i)
	}
	if len(lead) > 0 && canFill && !pr.VersionsRead {
		// Before the database read: what the fills will compare.
		rctx, cancel := cn.redisCtx(ctx)
		err := proto.ReadVersions(rctx, cn.cfg.redis, keys, lead, &pr)
		cancel()
		if cn.redisErr(ctx, err) != nil {
			canFill = false
		}
	}
	if len(lead) > 0 {
		var rows map[int]*rowcodec.Row
		err := errLeaderGone
		func() {
			// Joiners must hear of the end of this read whatever happens
			// to it, a panic included.
			defer func() {
				for j, f := range mine {
					var row *rowcodec.Row
					if err == nil {
						row = rows[lead[j]]
					}
					cn.flights.finish(keys[lead[j]], f, row, err)
				}
			}()
			err = cn.step(ctx, SpanDBQuery, func(ctx context.Context) error {
				var err error
				rows, err = c.readRows(ctx, ti, keyParts, lead)
				return err
			}, attrKeys.Int(len(lead)))
		}()
		if err != nil {
			return hits, reasonDBError
		}
		for _, i := range lead {
			found[i] = rows[i]
		}
		if canFill {
			c.fill(ctx, ti, tk, keys, lead, &pr, rows)
		}
	}
	var again []int
	for j, f := range waits {
		row, err := f.wait(ctx)
		if err != nil {
			// The leader failed (its context, its connection): read
			// ourselves, so that its error does not become ours.
			again = append(again, waitIdx[j])
			continue
		}
		found[waitIdx[j]] = row
	}
	if len(again) > 0 {
		rows, err := c.readRows(ctx, ti, keyParts, again)
		if err != nil {
			return hits, reasonDBError
		}
		for _, i := range again {
			found[i] = rows[i]
		}
	}
	return hits, ""
}

var errWrongKey = errors.New("wtcache: the image holds another key")

// imageHasKey reports whether the image's primary-key values are parts.
func imageHasKey(r *rowcodec.Row, ti *tableInfo, parts []string) bool {
	if len(r.Values) != len(ti.cols) {
		return true // another shape: imageMatches decides
	}
	for pos, ci := range ti.pk {
		if !keyIs(&ti.cols[ci], r.Values[ci], parts[pos]) {
			return false
		}
	}
	return true
}

// imageMatches reports whether a cached image has the table's current
// columns; an image from before a schema change is a miss.
func imageMatches(r *rowcodec.Row, ti *tableInfo) bool {
	if r.Shape != ti.shape || len(r.Columns) != len(ti.cols) {
		return false
	}
	if len(r.Columns) == 0 {
		return true
	}
	if &r.Columns[0] == ti.matched.Load() {
		return true // the header compared last time, shared by its rows
	}
	for i, c := range r.Columns {
		if c.Name != ti.cols[i].name || c.TypeOID != ti.cols[i].typeOID {
			return false
		}
	}
	ti.matched.Store(&r.Columns[0])
	return true
}

// readRows reads the rows at idx of keyParts from PostgreSQL in one
// statement. The result is indexed like keyParts; absent rows are nil.
func (c *conn) readRows(ctx context.Context, ti *tableInfo, keyParts [][]string, idx []int) (map[int]*rowcodec.Row, error) {
	if err := c.takeLost(); err != nil {
		return nil, err
	}
	qc, ok := c.inner.(driver.QueryerContext)
	if !ok {
		return nil, errNoQueryer
	}
	query := ti.selectAll
	nv := make([]driver.NamedValue, len(ti.pk))
	if len(idx) == 1 {
		// One key: a plain equality, as cheap for PostgreSQL as the
		// application's own lookup.
		query = ti.selectOne
		for pos := range ti.pk {
			nv[pos] = driver.NamedValue{Ordinal: pos + 1, Value: keyParts[idx[0]][pos]}
		}
	} else {
		arrays := make([][]string, len(ti.pk))
		for _, i := range idx {
			for pos := range ti.pk {
				arrays[pos] = append(arrays[pos], keyParts[i][pos])
			}
		}
		for i, a := range arrays {
			nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
	}
	rows, err := qc.QueryContext(ctx, query, nv)
	if err != nil && staleStatement(err) {
		// pgx prepared and cached this statement before DISCARD ALL or a
		// change of the table's column types; it forgets the statement
		// on this error, and the next call prepares it again.
		rows, err = qc.QueryContext(ctx, query, nv)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := captureColumns(rows, ti)
	if last := ti.lastCols.Load(); last != nil && slices.Equal(*last, cols) {
		cols = *last // one shared header per table version
	} else {
		ti.lastCols.Store(&cols)
	}
	byKey := make(map[string]*rowcodec.Row, len(idx))
	for {
		dest := make([]driver.Value, len(ti.cols))
		if err := rows.Next(dest); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		vals := make([]any, len(dest))
		for i, v := range dest {
			if bs, ok := v.([]byte); ok {
				v = slices.Clone(bs)
			}
			vals[i] = v
		}
		parts := make([]string, len(ti.pk))
		for pos, ci := range ti.pk {
			s, ok := normalizeKey(&ti.cols[ci], vals[ci])
			if !ok {
				return nil, errors.New("wtcache: primary key value read back does not normalise")
			}
			parts[pos] = s
		}
		byKey[strings.Join(parts, "\x00")] = &rowcodec.Row{Columns: cols, Values: vals, Shape: ti.shape}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	out := make(map[int]*rowcodec.Row, len(idx))
	for _, i := range idx {
		out[i] = byKey[strings.Join(keyParts[i], "\x00")]
	}
	return out, nil
}

// staleStatement reports the errors PostgreSQL answers a statement that
// pgx prepared before DISCARD ALL or DEALLOCATE (26000) or before its
// result type changed (0A000, "cached plan must not change result type").
func staleStatement(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "26000" || pe.Code == "0A000" && strings.Contains(pe.Message, "cached plan must not change result type")
}

// captureColumns records the column metadata the inner driver reports.
func captureColumns(inner driver.Rows, ti *tableInfo) []rowcodec.Column {
	// The forwarding wrapper answers for a driver without the optional
	// interfaces exactly as database/sql would.
	w := &rows{inner: inner}
	names := inner.Columns()
	cols := make([]rowcodec.Column, len(names))
	for i, n := range names {
		c := &cols[i]
		c.Name = n
		if i < len(ti.cols) {
			c.TypeOID = ti.cols[i].typeOID
		}
		c.DatabaseType = w.ColumnTypeDatabaseTypeName(i)
		c.ScanType = w.ColumnTypeScanType(i)
		c.Length, c.HasLength = w.ColumnTypeLength(i)
		c.Precision, c.Scale, c.HasDecimal = w.ColumnTypePrecisionScale(i)
		c.Nullable, c.HasNullable = w.ColumnTypeNullable(i)
	}
	return cols
}

// fill stores the rows read after a miss, after the caller has them, under
// the condition that nothing moved in Redis since the Peek pr. With a
// traced operation the fill runs at once, as its own span; otherwise it
// joins the batch of fills (fillq.go).
func (c *conn) fill(ctx context.Context, ti *tableInfo, tk tagKeys, keys []string, idx []int, pr *proto.PeekResult, rows map[int]*rowcodec.Row) {
	cn := c.c
	j := &fillJob{
		FillJob: proto.FillJob{
			Meta:     tk.meta,
			Keys:     make([]string, len(idx)),
			Gen:      pr.Gen,
			Seq:      pr.Seq,
			Versions: make([]string, len(idx)),
			TTLMs:    cn.cfg.ttlFor(ti.ident).Milliseconds(),
			Epoch:    pr.Epoch,
		},
		rows: make([]*rowcodec.Row, len(idx)),
	}
	for k, i := range idx {
		j.Keys[k] = keys[i]
		j.Versions[k] = pr.Rows[i].Version
		j.rows[k] = ownBytes(rows[i])
	}
	if !cn.tel.stepSpans(ctx) {
		cn.queueFill(j)
		return
	}
	cn.background(detach(ctx), func(ctx context.Context) {
		_ = cn.step(ctx, SpanCacheFill, func(ctx context.Context) error {
			cn.runFills(ctx, []*fillJob{j})
			if span := trace.SpanFromContext(ctx); span.IsRecording() {
				span.SetAttributes(attrStored.Int(j.Stored))
			}
			return j.Err
		}, attrKeys.Int(len(j.Keys)))
	})
}

// ownBytes returns r, or a copy of it whose []byte values are the fill's
// own: the caller may scan a value into a sql.RawBytes, which shares the
// bytes, and modify it while the fill encodes them later.
func ownBytes(r *rowcodec.Row) *rowcodec.Row {
	if r == nil {
		return nil
	}
	var vals []any
	for i, v := range r.Values {
		if b, ok := v.([]byte); ok {
			if vals == nil {
				vals = slices.Clone(r.Values)
			}
			vals[i] = slices.Clone(b)
		}
	}
	if vals == nil {
		return r
	}
	return &rowcodec.Row{Columns: r.Columns, Values: vals, Shape: r.Shape}
}

// result builds the rows the caller sees. It returns nil when no row was
// found and the columns' metadata is not known yet: filtered by the IS NULL
// predicates, ordered, limited and projected.
func (b *boundLookup) result(cr *cachedRows, found []*rowcodec.Row, limit, offset int64) *cachedRows {
	cr.names = b.names
	sel := cr.sel[:0]
	for _, r := range found {
		if r == nil {
			continue
		}
		keep := true
		for _, ci := range b.nullCols {
			if r.Values[ci] != nil {
				keep = false
			}
		}
		if keep {
			sel = append(sel, r)
		}
	}
	if b.order != 0 && len(sel) > 1 {
		ci := b.ti.pk[b.multi]
		kind := b.ti.cols[ci].keyKind
		slices.SortStableFunc(sel, func(x, y *rowcodec.Row) int {
			return b.order * compareKey(kind, x.Values[ci], y.Values[ci])
		})
	}
	if offset > 0 {
		sel = sel[min(int64(len(sel)), offset):]
	}
	if limit >= 0 && int64(len(sel)) > limit {
		sel = sel[:limit]
	}
	meta := b.ti.lastCols.Load()
	for _, r := range found {
		if r != nil {
			meta = &r.Columns
			break
		}
	}
	if meta == nil {
		return nil
	}
	if b.star {
		// Every column in table order: the decoded rows serve as they
		// are; only the names (b.names) may differ.
		cr.cols = *meta
		cr.rows = cr.one[:0]
		if len(sel) > 1 {
			cr.rows = make([][]any, len(sel))
		} else {
			cr.rows = cr.one[:len(sel)]
		}
		for i, r := range sel {
			cr.rows[i] = r.Values
		}
		return cr
	}
	cr.cols = make([]rowcodec.Column, len(b.proj))
	for i, ci := range b.proj {
		cr.cols[i] = (*meta)[ci]
	}
	cr.rows = make([][]any, len(sel))
	for i, r := range sel {
		vals := make([]any, len(b.proj))
		for j, ci := range b.proj {
			vals[j] = r.Values[ci]
		}
		cr.rows[i] = vals
	}
	return cr
}

func compareKey(kind keyKind, x, y any) int {
	if kind == keyInt {
		a, _ := x.(int64)
		b, _ := y.(int64)
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	return strings.Compare(asString(x), asString(y))
}

// flights lets concurrent misses of one key in one process share one
// database read. A reader joins only a flight that was started after the
// reader itself started (its lookup began): the leader's database read,
// issued after that, sees every write committed before the joiner started,
// which is all that linearizability asks of the joiner's answer. The rule
// rests on the clock alone, not on what Redis showed: a write becomes
// visible in PostgreSQL at its commit, while Redis shows the same state
// from its intent to its release (a row intent, a table intent), and a
// plain INSERT shows nothing, so equal observations in Redis do not make
// two reads equivalent. A reader that comes later starts its own flight,
// which readers after it may join.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	ti      *tableInfo // the table description the leader reads with
	started time.Time  // before the leader's database read was sent
	done    chan struct{}
	row     *rowcodec.Row
	err     error
}

// errLeaderGone is what joiners hear from a leader whose read ended
// without an answer (it panicked).
var errLeaderGone = errors.New("wtcache: the shared read ended without an answer")

// startOrJoin returns the flight for key that a reader which started at
// began, reading with ti, may share (leader false), or a new one for it to
// lead. Readers with different descriptions of the table (one loaded
// before a schema change, one after) never share: the row's columns would
// not be the ones the joiner expects.
func (fs *flights) startOrJoin(key string, ti *tableInfo, began time.Time) (f *flight, leader bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[key]; f != nil && f.ti == ti && f.started.After(began) {
		return f, false
	}
	f = &flight{ti: ti, started: time.Now(), done: make(chan struct{})}
	if fs.m == nil {
		fs.m = make(map[string]*flight)
	}
	fs.m[key] = f
	return f, true
}

func (fs *flights) finish(key string, f *flight, row *rowcodec.Row, err error) {
	f.row, f.err = row, err
	close(f.done)
	fs.mu.Lock()
	if fs.m[key] == f {
		delete(fs.m, key)
	}
	fs.mu.Unlock()
}

func (f *flight) wait(ctx context.Context) (*rowcodec.Row, error) {
	select {
	case <-f.done:
		return f.row, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// background runs a Redis operation that the caller does not wait for,
// bounded by the Redis timeout.
func (cn *connector) background(parent context.Context, fn func(ctx context.Context)) {
	cn.bg.Add(1)
	go func() {
		defer cn.bg.Done()
		ctx, cancel := cn.redisCtx(parent)
		defer cancel()
		fn(ctx)
	}()
}

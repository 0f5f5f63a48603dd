package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"time"

	"github.com/wtcache/wtcache/internal/proto"
	"github.com/wtcache/wtcache/internal/recognize"
	"github.com/wtcache/wtcache/internal/rowcodec"
)

// AuditOptions tune Audit.
type AuditOptions struct {
	// Sample is the fraction of the entries checked, in (0, 1]; 0 means 1
	// (every entry).
	Sample float64
	// Recheck is how long Audit waits before it checks a difference again
	// (a write in flight is not a difference); 0 means 50ms.
	Recheck time.Duration
}

// AuditDiff is one entry that a reader could be served and that differs
// from its row in PostgreSQL.
type AuditDiff struct {
	Table  string // schema.table
	Key    string // the primary-key values, as wtcache keys them
	Detail string // what differs
}

// AuditReport is what Audit found.
type AuditReport struct {
	Entries int // entries found in Redis under the handle's prefix and database
	Checked int // servable entries compared with PostgreSQL
	Skipped int // entries no reader of this session could be served (another generation or epoch, other rendering settings, a table not cached)
	Diffs   []AuditDiff
}

// Audit compares the entries in Redis that a reader on db could be served
// with their rows in PostgreSQL and reports every difference (table, key,
// what differs). A difference is checked again after opts.Recheck, so a
// write in flight is not reported; run it while writers are quiet to
// measure staleness exactly. db must be a wtcache handle; its session (its
// role, search path and rendering settings) is the one whose view of the
// cache is audited. The command `go run github.com/wtcache/wtcache/cmd/wtcache
// audit DSN` prints the report.
func Audit(ctx context.Context, db *sql.DB, opts AuditOptions) (AuditReport, error) {
	if opts.Sample <= 0 || opts.Sample > 1 {
		opts.Sample = 1
	}
	if opts.Recheck <= 0 {
		opts.Recheck = 50 * time.Millisecond
	}
	var rep AuditReport
	err := withConn(ctx, db, func(c *conn) error {
		var err error
		rep, err = c.audit(ctx, opts)
		return err
	})
	return rep, err
}

func (c *conn) audit(ctx context.Context, opts AuditOptions) (AuditReport, error) {
	var rep AuditReport
	cn := c.c
	c.sess.reset() // the session as it is now
	if err := c.ensureSession(ctx); err != nil {
		return rep, err
	}
	var pat strings.Builder
	pat.WriteByte('{')
	escapeKeyPart(&pat, cn.cfg.prefix)
	pat.WriteByte(':')
	escapeKeyPart(&pat, c.sess.database)
	pat.WriteByte(':')
	match := globEscape(pat.String()) + "*}:v:*"
	var keys []string
	iter := cn.cfg.redis.Scan(ctx, 0, match, 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return rep, err
	}
	rep.Entries = len(keys)
	tables := map[string]*tableInfo{}
	cn.pollDB()
	for _, k := range keys {
		if opts.Sample < 1 && rand.Float64() >= opts.Sample {
			continue
		}
		diff, checked, err := c.auditKey(ctx, k, tables)
		if err != nil {
			return rep, err
		}
		if !checked {
			rep.Skipped++
			continue
		}
		rep.Checked++
		if diff == nil {
			continue
		}
		time.Sleep(opts.Recheck)
		cn.pollDB()
		if diff, checked, err = c.auditKey(ctx, k, tables); err != nil {
			return rep, err
		}
		if checked && diff != nil {
			rep.Diffs = append(rep.Diffs, *diff)
		}
	}
	return rep, nil
}

// globEscape escapes what SCAN MATCH reads as a pattern in a literal.
func globEscape(literal string) string {
	var b strings.Builder
	for i := 0; i < len(literal); i++ {
		switch c := literal[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// auditKey checks one image key. checked is false when no reader of this
// session could be served the entry.
func (c *conn) auditKey(ctx context.Context, imageKey string, tables map[string]*tableInfo) (*AuditDiff, bool, error) {
	cn := c.c
	i := strings.LastIndex(imageKey, "}:v:")
	if i < 0 {
		return nil, false, nil
	}
	tag := imageKey[:i+1]
	rowKey := tag + ":r:" + imageKey[i+4:]
	ti, err := c.auditTable(ctx, tag, tables)
	if err != nil || ti == nil || !ti.cacheable {
		return nil, false, err
	}
	tk := c.tagKeys(ti)
	// The view a reader would have now: fresh, not locked (polled once
	// per audit, and again for a recheck).
	dv := cn.dbNow()
	if !dv.serves(time.Now()) {
		cn.pollDB()
		dv = cn.dbNow()
	}
	if !dv.serves(time.Now()) || cn.fenceDirty.Load() {
		return nil, false, nil
	}
	if fv := cn.feedNow(); fv != nil && !fv.fresh(time.Now()) {
		return nil, false, nil
	}
	epoch, ok := cn.imageEpoch(dv, cn.feedNow())
	if ti.rendered {
		epoch, ok = c.renderedEpoch(epoch)
	}
	if !ok {
		return nil, false, nil
	}
	pr := proto.PeekResult{Epoch: epoch, Rows: make([]proto.PeekRow, 1)}
	rctx, cancel := cn.redisCtx(ctx)
	err = proto.PeekInto(rctx, cn.cfg.redis, tk.state, []string{rowKey}, &pr)
	cancel()
	if err != nil {
		return nil, false, err
	}
	if !pr.Rows[0].Hit {
		return nil, false, nil
	}
	parts, ok := splitRowKey(rowKey, tag, len(ti.pk))
	if !ok {
		return &AuditDiff{Table: quoteTable(ti.ident), Key: imageKey, Detail: "the key does not read as the table's primary key"}, true, nil
	}
	d := &AuditDiff{Table: ti.ident.Schema + "." + ti.ident.Name, Key: strings.Join(parts, ",")}
	plain, err := cn.cfg.seal.open(rowKey, pr.Rows[0].Image)
	if err != nil {
		d.Detail = "the entry is not sealed by the entry key for this row"
		return d, true, nil
	}
	img, err := rowcodec.DecodeString(plain)
	if err != nil {
		d.Detail = "the image does not decode: " + err.Error()
		return d, true, nil
	}
	rows, err := c.readRows(ctx, ti, [][]string{parts}, []int{0})
	if err != nil {
		return nil, false, err
	}
	db := rows[0]
	switch {
	case db == nil:
		d.Detail = fmt.Sprintf("Redis holds %v; PostgreSQL has no such row", img.Values)
	case !imageMatches(&img, ti):
		return nil, false, nil // from before a schema change: a miss for every reader
	case !valuesEqual(img.Values, db.Values):
		d.Detail = fmt.Sprintf("Redis holds %v; PostgreSQL has %v", img.Values, db.Values)
	default:
		return nil, true, nil
	}
	return d, true, nil
}

// auditTable returns what the session knows of the table whose hash tag
// is tag.
func (c *conn) auditTable(ctx context.Context, tag string, tables map[string]*tableInfo) (*tableInfo, error) {
	if ti, ok := tables[tag]; ok {
		return ti, nil
	}
	// {prefix:database:schema.table}: the components are escaped, so the
	// last ':' and the last '.' split them.
	inner := strings.TrimSuffix(strings.TrimPrefix(tag, "{"), "}")
	j := strings.LastIndexByte(inner, ':')
	if j < 0 {
		return nil, nil
	}
	name := inner[j+1:]
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return nil, nil
	}
	schema, table := unescapeKeyPart(name[:dot]), unescapeKeyPart(name[dot+1:])
	ti, err := c.table(ctx, recognize.Table{Schema: schema, Name: table})
	if err != nil {
		return nil, err
	}
	if ti != nil && (c.tag(ti) != tag || !c.sess.canSelect[ti.oid]) {
		ti = nil // another table now, or one this role may not read: not audited here
	}
	if ti != nil {
		// What the catalog says now, not what this process last loaded:
		// a process with older knowledge would serve an image of the old
		// columns.
		fresh, err := c.loadTable(ctx, ti.oid)
		if err != nil {
			return nil, err
		}
		c.c.schema.put(fresh)
		ti = fresh
	}
	tables[tag] = ti
	return ti, nil
}

// splitRowKey returns the key parts of a row key T:r:p1:p2....
func splitRowKey(rowKey, tag string, n int) ([]string, bool) {
	rest, ok := strings.CutPrefix(rowKey, tag+":r:")
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != n {
		return nil, false
	}
	for i, p := range parts {
		parts[i] = unescapeKeyPart(p)
	}
	return parts, true
}

// unescapeKeyPart reverses escapeKeyPart.
func unescapeKeyPart(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+3], "%02X", &v); err == nil {
				b.WriteByte(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// valuesEqual compares row values as a reader sees them: times by instant
// and location name, bytes by content, the rest by value.
func valuesEqual(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		switch x := a[i].(type) {
		case time.Time:
			y, ok := b[i].(time.Time)
			if !ok || !x.Equal(y) || x.Location().String() != y.Location().String() {
				return false
			}
		case []byte:
			y, ok := b[i].([]byte)
			if !ok || string(x) != string(y) {
				return false
			}
		default:
			if !reflect.DeepEqual(a[i], b[i]) {
				return false
			}
		}
	}
	return true
}

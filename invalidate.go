package wtcache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wtcache/wtcache/internal/proto"
)

// ErrNotWtcache is returned by Invalidate for a *sql.DB whose driver is
// not wtcache.
var ErrNotWtcache = errors.New("wtcache: the database handle does not use the wtcache driver")

// Invalidate makes cached rows of table misses, for writes wtcache cannot
// see: other programs, triggers that write other tables, functions. With no
// keys the whole table is invalidated (its generation moves, O(1)); with
// keys, only those rows (each key is the primary-key value, or for a
// composite key a []any of the values in key order). table is "name" or
// "schema.name", resolved through the session's search_path. The next read
// of an invalidated row goes to PostgreSQL.
func Invalidate(ctx context.Context, db *sql.DB, table string, keys ...any) error {
	return withConn(ctx, db, func(c *conn) error { return c.invalidate(ctx, table, keys) })
}

// withConn runs f on one of db's wtcache connections, held for the call
// (opened if none is idle); ErrNotWtcache when db is not a wtcache handle.
func withConn(ctx context.Context, db *sql.DB, f func(*conn) error) error {
	sc, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer sc.Close()
	return sc.Raw(func(dc any) error {
		c, ok := dc.(*conn)
		if !ok {
			return ErrNotWtcache
		}
		return f(c)
	})
}

func (c *conn) invalidate(ctx context.Context, table string, keys []any) error {
	names, err := parseTableList(table)
	if err != nil || len(names) != 1 {
		return fmt.Errorf("%w: table %q", ErrInvalidParameter, table)
	}
	ti, err := c.table(ctx, names[0])
	if err != nil {
		return err
	}
	if ti == nil {
		return fmt.Errorf("%w: no table %q", ErrInvalidParameter, table)
	}
	if !ti.cacheable {
		return nil // nothing of it is cached
	}
	tag := c.tag(ti)
	cn := c.c
	if cn.cacheDown() {
		return fmt.Errorf("%w: %s: %v", ErrCacheUnavailable, cn.redisName(), errCacheDown)
	}
	rctx, cancel := cn.redisCtx(ctx)
	defer cancel()
	if len(keys) == 0 {
		_, err := proto.Release(rctx, cn.cfg.redis, metaKey(tag), nil, proto.NewToken(), "", 0, true, true, nil)
		nearDrop(nil, proto.StateKey(metaKey(tag)))
		return cn.redisErr(ctx, err)
	}
	rowKeys := make([]string, 0, len(keys))
	for _, k := range keys {
		vals, ok := k.([]any)
		if !ok {
			vals = []any{k}
		}
		if len(vals) != len(ti.pk) {
			return fmt.Errorf("%w: key %v has %d values, the primary key of %s has %d columns", ErrInvalidParameter, k, len(vals), table, len(ti.pk))
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			s, ok := normalizeKey(&ti.cols[ti.pk[i]], v)
			if !ok {
				return fmt.Errorf("%w: key value %v does not fit column %s", ErrInvalidParameter, v, ti.cols[ti.pk[i]].name)
			}
			parts[i] = s
		}
		rowKeys = append(rowKeys, rowKey(tag, parts))
	}
	// An intent and its release without an image: the rows are deleted and
	// any fill in flight is defeated.
	token := proto.NewToken()
	gen, err := proto.Intent(rctx, cn.cfg.redis, metaKey(tag), rowKeys, token, cn.cfg.intentLifetime.Milliseconds(), false)
	if err != nil {
		return cn.redisErr(ctx, err)
	}
	nearDrop(rowKeys)
	_, err = proto.Release(rctx, cn.cfg.redis, metaKey(tag), rowKeys, token, gen, 0, false, false, nil)
	nearDrop(rowKeys)
	return cn.redisErr(ctx, err)
}

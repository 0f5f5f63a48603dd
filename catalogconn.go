package wtcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
)

// catalogConn is a connection of the connector's own, on which catalog
// reads made for a session inside a REPEATABLE READ or SERIALIZABLE
// transaction run.
//
// Such a transaction reads pg_class, pg_operator and the rest as they were
// at its first statement, while the server resolves names and operators and
// fires triggers by the catalog as it is: a table's description read there
// can miss an operator, a trigger or a cascade made since, and the
// connector keeps what it reads for every session. Outside a transaction
// block, and in a READ COMMITTED one, every statement reads the current
// catalog and the session is used (it sees its own temporary objects and
// its transaction's DDL). A snapshot transaction's own DDL, which this
// connection does not see, is a database-wide write whose end moves the
// epoch (every image of the database retires).
type catalogConn struct {
	owner *connector
	mu    sync.Mutex
	c     *conn // nil until first needed, and after an error
}

// errCatalogConn: the catalog could not be read outside the session's
// snapshot (no connection to be had: a connection limit, a server going
// away). A write then reaches the whole database rather than fail.
var errCatalogConn = errors.New("wtcache: the catalog connection failed")

// catalogRead runs a catalog query whose answer the connector keeps.
func (c *conn) catalogRead(ctx context.Context, query string, args ...any) ([][]driver.Value, error) {
	if !c.inTx() {
		return c.innerQuery(ctx, query, args...)
	}
	iso, err := c.innerQuery(ctx, `SELECT pg_catalog.current_setting('transaction_isolation')`)
	if err != nil {
		return nil, err
	}
	if asString(iso[0][0]) == "read committed" {
		return c.innerQuery(ctx, query, args...)
	}
	rows, err := c.c.catConn.query(ctx, query, args)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCatalogConn, err)
	}
	return rows, nil
}

// query runs query on the connection, opening it when there is none, and
// once more on a new one when it fails (it may have been closed by the
// server while idle: idle_session_timeout, a restart).
func (cc *catalogConn) query(ctx context.Context, query string, args []any) ([][]driver.Value, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if cc.c == nil {
			if err = cc.open(ctx); err != nil {
				continue
			}
		}
		var rows [][]driver.Value
		if rows, err = cc.c.innerQuery(ctx, query, args...); err == nil {
			return rows, nil
		}
		_ = cc.c.inner.Close()
		cc.c = nil
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// open connects, with bounds on lock waits and statements: a session
// holding a lock on a catalog table (a superuser's LOCK pg_class) makes
// the read fail, and the write widen, rather than wait for it.
func (cc *catalogConn) open(ctx context.Context) error {
	cn := cc.owner
	select {
	case <-cn.closed:
		return errors.New("connector closed")
	default:
	}
	ic, err := cn.inner.Connect(ctx)
	if err != nil {
		return redactInner(err, cn.innerSecrets)
	}
	c := newConn(ic, cn)
	if _, err := c.innerQuery(ctx, `SELECT pg_catalog.set_config('lock_timeout', '2s', false), pg_catalog.set_config('statement_timeout', '10s', false)`); err != nil {
		_ = ic.Close()
		return err
	}
	cc.c = c
	return nil
}

// close closes the connection, if any (the connector's Close).
func (cc *catalogConn) close() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.c == nil {
		return nil
	}
	err := cc.c.inner.Close()
	cc.c = nil
	return err
}

package wtcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
)

// catalogConn is a connection of the connector's own, on which catalog
// reads made for a session inside a transaction block run.
//
// A REPEATABLE READ or SERIALIZABLE transaction reads pg_class, pg_operator
// and the rest as they were at its first statement, while the server
// resolves names, operators and triggers against the catalog as it is: a
// table's description read there can miss an operator, a trigger or a
// cascade made since, and the connector keeps what it reads for every
// session. Outside a transaction block every statement reads the current
// catalog, and the session is used (it sees its own temporary objects).
// Inside one, the catalog committed now is what the server acts on, with
// one exception: the transaction's own DDL, which is a database-wide write
// whose end moves the epoch (every image of the database retires).
type catalogConn struct {
	mu sync.Mutex
	c  *conn // nil until first needed, and after an error
}

// catalogRead runs a catalog query whose answer the connector keeps.
func (c *conn) catalogRead(ctx context.Context, query string, args ...any) ([][]driver.Value, error) {
	if !c.inTx() {
		return c.innerQuery(ctx, query, args...)
	}
	cn := c.c
	cc := &cn.catConn
	cc.mu.Lock()
	defer cc.mu.Unlock()
	select {
	case <-cn.closed:
		return nil, errors.New("wtcache: connector closed")
	default:
	}
	if cc.c == nil {
		ic, err := cn.inner.Connect(ctx)
		if err != nil {
			return nil, redactInner(err, cn.innerSecrets)
		}
		cc.c = newConn(ic, cn)
	}
	rows, err := cc.c.innerQuery(ctx, query, args...)
	if err != nil {
		// Whatever it was, the next read starts on a new connection.
		_ = cc.c.inner.Close()
		cc.c = nil
	}
	return rows, err
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

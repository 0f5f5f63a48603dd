package wtcache

import "database/sql/driver"

// tx wraps an inner transaction. It is where the write path learns that a
// transaction committed or rolled back.
type tx struct {
	inner driver.Tx
	c     *conn
}

var _ driver.Tx = (*tx)(nil)

func newTx(inner driver.Tx, c *conn) *tx { return &tx{inner: inner, c: c} }

// Commit commits the inner transaction; its error comes back unchanged.
func (t *tx) Commit() error { return t.inner.Commit() }

// Rollback rolls the inner transaction back; its error comes back unchanged.
func (t *tx) Rollback() error { return t.inner.Rollback() }

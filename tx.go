package wtcache

import (
	"context"
	"database/sql/driver"
)

// tx wraps an inner transaction. Its writes were collected as they ran;
// Commit places their intents just before committing and releases them
// after. A rollback mirrors nothing: no intent was placed.
type tx struct {
	inner driver.Tx
	c     *conn
}

var _ driver.Tx = (*tx)(nil)

func newTx(inner driver.Tx, c *conn) *tx {
	t := &tx{inner: inner, c: c}
	c.tx = t
	c.pending = nil
	return t
}

// Commit places the transaction's intents, commits, and releases them. If
// the intents cannot be placed under FailClosed, the transaction is rolled
// back and the error wraps ErrCacheUnavailable: nothing was committed.
func (t *tx) Commit() error {
	c := t.c
	ts := c.pending
	c.pending, c.tx = nil, nil
	after, err := c.guard(context.Background(), ts)
	if err != nil {
		_ = t.inner.Rollback()
		return err
	}
	err = t.inner.Commit()
	if after != nil {
		after(err == nil)
	}
	return err
}

// Rollback rolls the inner transaction back; its error comes back unchanged.
func (t *tx) Rollback() error {
	t.c.pending, t.c.tx = nil, nil
	return t.inner.Rollback()
}

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
	ctx   context.Context // BeginTx's context: the parent of the commit's spans
}

var _ driver.Tx = (*tx)(nil)

var (
	commitPlan   = &plan{operation: "COMMIT", passive: true}
	rollbackPlan = &plan{operation: "ROLLBACK", passive: true}
)

func newTx(ctx context.Context, inner driver.Tx, c *conn) *tx {
	t := &tx{inner: inner, c: c, ctx: detach(ctx)}
	c.tx = t
	c.pending = nil
	return t
}

// Commit places the transaction's intents, commits, and releases them. If
// the intents cannot be placed under FailClosed, the transaction is rolled
// back and the error wraps ErrCacheUnavailable: nothing was committed.
func (t *tx) Commit() (err error) {
	c := t.c
	var o op
	ctx := c.startOp(t.ctx, commitPlan, "COMMIT", &o)
	defer func() { o.end(err) }()
	ts := c.pending
	c.pending, c.tx = nil, nil
	status := c.txStatus()
	if status == 'E' {
		// The transaction failed: the server answers COMMIT with ROLLBACK,
		// so nothing is guarded, mirrored or invalidated.
		ts = nil
	}
	if len(ts) > 0 {
		o.outcome(ctx, "write", "")
	} else {
		o.outcome(ctx, "bypass", "no_writes")
	}
	after, err := c.guard(ctx, ts)
	if err != nil {
		_ = t.inner.Rollback()
		return err
	}
	err = c.c.step(ctx, SpanDBCommit, func(context.Context) error { return t.inner.Commit() })
	if after != nil {
		// Images only where the server reported the transaction healthy
		// before COMMIT (a driver that does not tell mirrors nothing).
		images := status == 'T'
		c.finish(func(ok bool) { after(ok && images) }, err)
	}
	return err
}

// Rollback rolls the inner transaction back; its error comes back unchanged.
func (t *tx) Rollback() (err error) {
	var o op
	ctx := t.c.startOp(t.ctx, rollbackPlan, "ROLLBACK", &o)
	defer func() { o.end(err) }()
	o.outcome(ctx, "bypass", "rollback")
	t.c.pending, t.c.tx = nil, nil
	return t.inner.Rollback()
}

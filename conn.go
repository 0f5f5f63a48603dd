package wtcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// conn wraps one inner connection. It implements every optional interface
// that database/sql consults and decides at run time, from what the inner
// connection implements, whether to forward or to give database/sql's own
// neutral answer, so that the application sees the inner driver's behaviour.
type conn struct {
	inner driver.Conn
	c     *connector
	// ownConnector is set for connections made by wtDriver.Open, which are
	// the only users of their connector.
	ownConnector *connector

	sess session
	// clock: the time a lookup began, read once for the freshness checks
	// of its session, catalog and facts (which allow seconds); zero
	// outside a lookup.
	clock time.Time
	// last: the plan of the last text run directly on this connection
	// (applications repeat theirs); plans are immutable per text.
	last *plan
	// spareRows: a lookup's rows, closed, for the next lookup (rows.go).
	spareRows *cachedRows
	keyBuf    []byte    // a lookup's key, before it is made a string (lookup1)
	fx        stmtFacts // what the statement running now may do (funcs.go)
	tx        *tx       // the database/sql transaction in progress
	manualTx  bool      // a BEGIN statement was sent (drivers other than pgx)
	pending   targets   // writes of the transaction in progress
	missWhy   string    // the reason of the first miss of the lookup running now
	nearHit   bool      // the lookup running now was answered by the near cache
	// lost is the error with which a statement of wtcache's own (a
	// catalog or session query) lost the connection: the server ended the
	// session, the socket broke, a context ended mid-read. The
	// application's next statement answers it, as the statement would have
	// met it first on the plain driver, instead of the driver.ErrBadConn
	// the closed connection gives afterwards.
	lost error
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

func newConn(inner driver.Conn, c *connector) *conn {
	return &conn{inner: inner, c: c}
}

// bypass records that a lookup went to PostgreSQL whole, and why.
func (c *conn) bypass(ctx context.Context, o *op, reason string) {
	c.c.bypasses.Add(1)
	c.c.reasons.addBypass(reason)
	o.outcome(ctx, "bypass", reason)
}

// Raw returns the inner driver's connection, for use inside
// (*sql.Conn).Raw: with pgx it is a *stdlib.Conn. See [InnerConn].
func (c *conn) Raw() driver.Conn { return c.inner }

// InnerConn returns the inner driver's connection of a connection that
// (*sql.Conn).Raw handed to its callback, so that driver-specific features
// stay usable (with pgx: *stdlib.Conn, its CopyFrom and pgx types). A
// connection that is not wtcache's is returned as it is.
func InnerConn(driverConn any) any {
	if c, ok := driverConn.(interface{ Raw() driver.Conn }); ok {
		return c.Raw()
	}
	return driverConn
}

// Prepare is the legacy form of PrepareContext.
func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext prepares on the inner connection; without
// ConnPrepareContext it falls back as database/sql would.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var si driver.Stmt
	var err error
	if pc, ok := c.inner.(driver.ConnPrepareContext); ok {
		si, err = pc.PrepareContext(ctx, query)
	} else {
		si, err = c.inner.Prepare(query)
		if err == nil {
			select {
			default:
			case <-ctx.Done():
				_ = si.Close()
				return nil, ctx.Err()
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return newStmt(si, c, query), nil
}

// Close closes the inner connection (and the connector of a connection
// made by Driver.Open).
func (c *conn) Close() error {
	err := c.inner.Close()
	if c.ownConnector != nil {
		err = errors.Join(err, c.ownConnector.Close())
	}
	return err
}

// Begin is the legacy form of BeginTx.
func (c *conn) Begin() (driver.Tx, error) {
	tx, err := c.inner.Begin() //nolint:staticcheck // forwarding the legacy method as is
	if err != nil {
		return nil, err
	}
	return newTx(context.Background(), tx, c), nil
}

// BeginTx begins on the inner connection; without ConnBeginTx it refuses
// what the legacy Begin cannot do, in database/sql's own words.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	var tx driver.Tx
	var err error
	if bt, ok := c.inner.(driver.ConnBeginTx); ok {
		tx, err = bt.BeginTx(ctx, opts)
	} else {
		if opts.Isolation != driver.IsolationLevel(0) {
			return nil, errors.New("sql: driver does not support non-default isolation level")
		}
		if opts.ReadOnly {
			return nil, errors.New("sql: driver does not support read-only transactions")
		}
		tx, err = c.inner.Begin() //nolint:staticcheck // the fallback database/sql itself uses
		if err == nil {
			select {
			default:
			case <-ctx.Done():
				_ = tx.Rollback()
				return nil, ctx.Err()
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return newTx(ctx, tx, c), nil
}

// ExecContext runs a statement without preparing it. Without ExecerContext
// or Execer on the inner connection it returns driver.ErrSkip, and
// database/sql prepares the statement instead.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.exec(ctx, c.plan(query), nil, args)
}

// runExec runs the statement itself: on s when it is prepared, else
// unprepared with the plan's text.
func (c *conn) runExec(ctx context.Context, p *plan, s *stmt, args []driver.NamedValue) (driver.Result, error) {
	if err := c.takeLost(); err != nil {
		return nil, err
	}
	if s != nil {
		return s.execInner(ctx, args)
	}
	return c.execInner(ctx, p.text, args)
}

func (c *conn) runQuery(ctx context.Context, p *plan, s *stmt, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.takeLost(); err != nil {
		return nil, err
	}
	if s != nil {
		return s.queryInner(ctx, args)
	}
	return c.queryInner(ctx, p.text, args)
}

// noteLost keeps err when the statement of wtcache's own that returned it
// left the inner connection closed.
func (c *conn) noteLost(err error) {
	if c.lost != nil {
		return
	}
	// A FATAL or PANIC error ends the session; pgx closes the connection
	// when the statement's rows are.
	var pe *pgconn.PgError
	closed := errors.Is(err, driver.ErrBadConn) || errors.As(err, &pe) && (pe.Severity == "FATAL" || pe.Severity == "PANIC")
	if sc, ok := c.inner.(*stdlib.Conn); ok && sc.Conn().IsClosed() {
		closed = true
	}
	if closed {
		c.lost = err
	}
}

// takeLost returns, once, the error with which the connection was lost.
func (c *conn) takeLost() error {
	err := c.lost
	c.lost = nil
	return err
}

// afterStatementErr is afterStatement for a statement that returned err.
// A string of several statements that failed stopped at the failure: the
// transaction control after it never ran, and without the server's status
// a transaction may be open (BEGIN; SELECT 1/0; COMMIT).
func (c *conn) afterStatementErr(p *plan, err error) {
	c.afterStatement(p)
	if err != nil && p.txControl && len(p.class.Statements) > 1 && c.txStatus() == 0 {
		c.manualTx = true
	}
}

// answerLost replaces the error of a statement that failed after a
// statement of wtcache's own lost the connection by the error that lost it.
func (c *conn) answerLost(err *error) {
	if *err != nil && c.lost != nil {
		*err = c.takeLost()
	}
}

// exec is the common path of Exec on a connection and on a statement (s).
func (c *conn) exec(ctx context.Context, p *plan, s *stmt, args []driver.NamedValue) (res driver.Result, err error) {
	var o op
	ctx = c.startOp(ctx, p, "EXEC", &o)
	defer func() { o.end(err) }()
	defer c.answerLost(&err)
	c.fx = c.facts(ctx, p)
	if c.lost != nil {
		return nil, c.takeLost()
	}
	if !c.guarded(p) && !c.fx.dbWide {
		o.outcome(ctx, "bypass", reasonNotLookup)
		if o.traced() {
			err = c.c.step(ctx, SpanDBExec, func(ctx context.Context) error {
				var err error
				res, err = c.runExec(ctx, p, s, args)
				return err
			})
		} else {
			res, err = c.runExec(ctx, p, s, args)
		}
		c.afterStatementErr(p, err)
		return res, err
	}
	o.outcome(ctx, "write", "")
	after, m, err := c.beforeWrite(ctx, p, args)
	if err != nil {
		return nil, err
	}
	err = c.c.step(ctx, SpanDBExec, func(ctx context.Context) error {
		var err error
		if m != nil {
			res, err = c.execMirrored(ctx, m, p, s, args)
		} else {
			res, err = c.runExec(ctx, p, s, args)
		}
		return err
	})
	// The transaction state the statement left is known before its
	// intents are released (finish reads it), as on the Query path.
	c.afterStatementErr(p, err)
	if after != nil {
		c.finish(after, err)
	}
	return res, err
}

// finish ends a write's intents: released (mirroring the images when the
// write succeeded) when its outcome is known, or left to expire when it is
// not (the connection was lost while the statement or COMMIT was in
// flight: the server may still commit it later, and until the intents'
// lifetime has passed every reader goes to PostgreSQL).
func (c *conn) finish(after func(ok bool), err error) {
	if err == nil || outcomeKnown(err) {
		after(err == nil)
		return
	}
	c.c.releaseFailures.Add(1)
}

// outcomeKnown reports whether a failed statement surely did not commit:
// the server answered with an error, or the driver says it was never sent.
func outcomeKnown(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// FATAL and PANIC end the session: a COMMIT in flight may have
		// happened.
		return pg.Severity != "FATAL" && pg.Severity != "PANIC"
	}
	return errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err)
}

// execMirrored runs a write with RETURNING added and records the images.
// The caller sees what the statement alone gives: its rows affected, or
// its error. An error that may come from the added clause (class 42:
// syntax or privileges) makes it run the original statement instead, in
// autocommit where the failed attempt changed nothing.
func (c *conn) execMirrored(ctx context.Context, m *mirror, p *plan, s *stmt, args []driver.NamedValue) (driver.Result, error) {
	rows, err := c.queryInner(ctx, m.text, args)
	if err == nil {
		n, cerr := m.collect(rows, c.c.cfg.maxEntry, c.c.cfg.seal)
		if closeErr := rows.Close(); cerr == nil {
			cerr = closeErr
		}
		if cerr == nil {
			return driver.RowsAffected(n), nil
		}
		err = cerr
	}
	m.t.images = nil
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "42") && !c.inTx() {
		return c.runExec(ctx, p, s, args)
	}
	return nil, err
}

func (c *conn) execInner(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if ec, ok := c.inner.(driver.ExecerContext); ok {
		if err := c.checkDefault(args); err != nil {
			return nil, err
		}
		return ec.ExecContext(ctx, query, args)
	}
	if e, ok := c.inner.(driver.Execer); ok { //nolint:staticcheck // legacy fallback
		if err := c.checkDefault(args); err != nil {
			return nil, err
		}
		vals, err := namedValueToValue(args)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return e.Exec(query, vals)
	}
	return nil, driver.ErrSkip
}

// QueryContext runs a query without preparing it, with the same fallbacks
// as ExecContext.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.query(ctx, c.plan(query), nil, args)
}

// query is the common path of Query on a connection and on a statement
// (s): a lookup is served by the cache; a write is guarded by intents that
// are released when its rows are closed.
func (c *conn) query(ctx context.Context, p *plan, s *stmt, args []driver.NamedValue) (rows driver.Rows, err error) {
	var o op
	ctx = c.startOp(ctx, p, "QUERY", &o)
	defer func() {
		c.clock = time.Time{} // whatever way the statement ends
		o.end(err)
	}()
	defer c.answerLost(&err)
	if p.lookup != nil {
		// One clock read for the lookup's session, catalog and facts
		// checks, which allow seconds; the fences that allow
		// milliseconds read the time again (readThrough).
		c.clock = time.Now()
	}
	c.fx = c.facts(ctx, p)
	if c.lost != nil {
		return nil, c.takeLost()
	}
	if p.lookup != nil {
		if !c.statusKnown() {
			c.bypass(ctx, &o, reasonDriver)
		} else if c.inTx() {
			c.bypass(ctx, &o, reasonInTx)
		} else if c.fx.opaque {
			c.bypass(ctx, &o, reasonOpaque)
		} else if rows, ok, err := c.lookup(ctx, p, args, &o); ok {
			c.clock = time.Time{}
			return rows, err
		}
		c.clock = time.Time{}
	}
	var after func(bool)
	if c.guarded(p) || c.fx.dbWide {
		o.outcome(ctx, "write", "")
		var m *mirror
		var err error
		if after, m, err = c.beforeWrite(ctx, p, args); err != nil {
			return nil, err
		}
		if m != nil {
			m.t.images = nil // a write through Query is invalidated, not mirrored
		}
	}
	if p.lookup == nil {
		o.outcome(ctx, "bypass", reasonNotLookup)
	}
	if o.traced() {
		err = c.c.step(ctx, SpanDBQuery, func(ctx context.Context) error {
			var err error
			rows, err = c.runQuery(ctx, p, s, args)
			return err
		})
	} else {
		rows, err = c.runQuery(ctx, p, s, args)
	}
	c.afterStatementErr(p, err)
	if err != nil {
		if after != nil {
			c.finish(after, err)
		}
		return nil, err
	}
	if r, ok := rows.(*rowsWrap); ok && after != nil {
		r.onClose = func() { after(false) }
	} else if after != nil {
		after(false)
	}
	return rows, nil
}

func (c *conn) queryInner(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	var rows driver.Rows
	var err error
	if qc, ok := c.inner.(driver.QueryerContext); ok {
		if err := c.checkDefault(args); err != nil {
			return nil, err
		}
		rows, err = qc.QueryContext(ctx, query, args)
	} else if q, ok := c.inner.(driver.Queryer); ok { //nolint:staticcheck // legacy fallback
		if err := c.checkDefault(args); err != nil {
			return nil, err
		}
		vals, verr := namedValueToValue(args)
		if verr != nil {
			return nil, verr
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows, err = q.Query(query, vals)
	} else {
		return nil, driver.ErrSkip
	}
	if err != nil {
		return nil, err
	}
	return wrapRows(rows), nil
}

// Ping forwards to the inner connection, or reports success as database/sql
// does for a driver without Pinger.
func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// ResetSession forwards to the inner connection, or does nothing.
func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// IsValid forwards to the inner connection, or reports the connection valid.
func (c *conn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// CheckNamedValue forwards to the inner connection. Without a checker
// there, it applies database/sql's default converter where it can and
// otherwise keeps the value as it is: database/sql converts the
// arguments before it knows whether the statement runs unprepared, and a
// prepared statement of the inner driver may accept what the default
// converter refuses. An unprepared statement checks them again
// (checkDefault).
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.inner.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	if v, err := driver.DefaultParameterConverter.ConvertValue(nv.Value); err == nil {
		nv.Value = v
	}
	return nil
}

// checkDefault refuses, in database/sql's words, an argument that
// CheckNamedValue left unconverted, when the statement runs unprepared on
// an inner connection without a NamedValueChecker.
func (c *conn) checkDefault(args []driver.NamedValue) error {
	if _, ok := c.inner.(driver.NamedValueChecker); ok {
		return nil
	}
	for _, nv := range args {
		if _, err := driver.DefaultParameterConverter.ConvertValue(nv.Value); err != nil {
			what := fmt.Sprintf("$%d", nv.Ordinal)
			if nv.Name != "" {
				what = fmt.Sprintf("with name %q", nv.Name)
			}
			return fmt.Errorf("sql: converting argument %s type: %w", what, err)
		}
	}
	return nil
}

func namedValueToValue(named []driver.NamedValue) ([]driver.Value, error) {
	vals := make([]driver.Value, len(named))
	for i, nv := range named {
		if nv.Name != "" {
			return nil, errors.New("sql: driver does not support the use of Named Parameters")
		}
		vals[i] = nv.Value
	}
	return vals, nil
}

// serverAddr is the PostgreSQL host this connection talks to, when the
// inner driver can tell (pgx).
func (c *conn) serverAddr() string {
	if sc, ok := c.inner.(*stdlib.Conn); ok {
		return sc.Conn().Config().Host
	}
	return ""
}

// now is the lookup's clock inside a lookup, the time otherwise.
func (c *conn) now() time.Time {
	if !c.clock.IsZero() {
		return c.clock
	}
	return time.Now()
}

// plan returns the plan of query, from the connection's last one or the
// connector's cache.
func (c *conn) plan(query string) *plan {
	if p := c.last; p != nil && p.text == query {
		return p
	}
	p := c.c.plans.get(query)
	c.last = p
	return p
}

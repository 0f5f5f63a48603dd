package wtcache

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"
)

// stmt wraps an inner prepared statement, forwarding the optional
// interfaces with database/sql's own fallbacks.
type stmt struct {
	inner driver.Stmt
	c     *conn
	query string
	p     *plan
}

var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

func newStmt(inner driver.Stmt, c *conn, query string) *stmt {
	return &stmt{inner: inner, c: c, query: query, p: c.c.plans.get(query)}
}

func (s *stmt) Close() error  { return s.inner.Close() }
func (s *stmt) NumInput() int { return s.inner.NumInput() }

// Exec is the legacy form of ExecContext.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.inner.Exec(args) //nolint:staticcheck // forwarding the legacy method as is
}

// Query is the legacy form of QueryContext.
func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	rows, err := s.inner.Query(args) //nolint:staticcheck // forwarding the legacy method as is
	if err != nil {
		return nil, err
	}
	return wrapRows(rows), nil
}

// ExecContext forwards, or falls back to the legacy Exec as database/sql
// would.
func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.c.exec(ctx, s.p, s, args)
}

func (s *stmt) execInner(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if se, ok := s.inner.(driver.StmtExecContext); ok {
		return se.ExecContext(ctx, args)
	}
	vals, err := namedValueToValue(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.inner.Exec(vals) //nolint:staticcheck // the fallback database/sql itself uses
}

// QueryContext forwards, or falls back to the legacy Query.
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.c.query(ctx, s.p, s, args)
}

func (s *stmt) queryInner(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	var rows driver.Rows
	var err error
	if sq, ok := s.inner.(driver.StmtQueryContext); ok {
		rows, err = sq.QueryContext(ctx, args)
	} else {
		vals, verr := namedValueToValue(args)
		if verr != nil {
			return nil, verr
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows, err = s.inner.Query(vals) //nolint:staticcheck // the fallback database/sql itself uses
	}
	if err != nil {
		return nil, err
	}
	return wrapRows(rows), nil
}

// CheckNamedValue reproduces database/sql's order of checkers for the inner
// statement: the statement's NamedValueChecker, else the connection's; on
// driver.ErrSkip, the statement's ColumnConverter; then the default
// converter (signalled by returning driver.ErrSkip).
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	var check func(*driver.NamedValue) error
	if n, ok := s.inner.(driver.NamedValueChecker); ok {
		check = n.CheckNamedValue
	} else if n, ok := s.c.inner.(driver.NamedValueChecker); ok {
		check = n.CheckNamedValue
	}
	if check != nil {
		if err := check(nv); err != driver.ErrSkip {
			return err
		}
	}
	cc, ok := s.inner.(driver.ColumnConverter) //nolint:staticcheck // legacy route database/sql still honours
	if !ok {
		return driver.ErrSkip
	}
	return columnConvert(cc, s.inner.NumInput(), nv)
}

// columnConvert is database/sql's ColumnConverter route.
func columnConvert(cc driver.ColumnConverter, want int, nv *driver.NamedValue) error { //nolint:staticcheck
	index := nv.Ordinal - 1
	if want >= 0 && want <= index {
		return nil
	}
	if vr, ok := nv.Value.(driver.Valuer); ok {
		sv, err := callValuerValue(vr)
		if err != nil {
			return err
		}
		if !driver.IsValue(sv) {
			return fmt.Errorf("non-subset type %T returned from Value", sv)
		}
		nv.Value = sv
	}
	arg := nv.Value
	var err error
	nv.Value, err = cc.ColumnConverter(index).ConvertValue(arg)
	if err != nil {
		return err
	}
	if !driver.IsValue(nv.Value) {
		return fmt.Errorf("driver ColumnConverter error converted %T to unsupported type %T", arg, nv.Value)
	}
	return nil
}

// callValuerValue calls vr.Value, treating a nil pointer whose Value
// method has a value receiver as NULL, as database/sql does.
func callValuerValue(vr driver.Valuer) (driver.Value, error) {
	if rv := reflect.ValueOf(vr); rv.Kind() == reflect.Pointer && rv.IsNil() &&
		rv.Type().Elem().Implements(reflect.TypeFor[driver.Valuer]()) {
		return nil, nil
	}
	return vr.Value()
}

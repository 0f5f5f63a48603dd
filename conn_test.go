package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// diffOp is one operation of a differential test: it runs against a
// *sql.DB and describes what it saw as text, so that the same operation
// through the fake directly and through wtcache can be compared.
type diffOp struct {
	name string
	run  func(ctx context.Context, db *sql.DB) (string, error)
	// want and wantErr pin the reference (the fake used directly), so that
	// the two sides cannot agree on a wrong answer.
	want    string
	wantErr string
	// wantCalls must appear, in this order, among the inner driver's calls.
	wantCalls []string
	// refuseCalls must not appear (as prefixes) among the inner driver's
	// calls.
	refuseCalls []string
}

// runDifferential runs every op on a fresh pair of databases, the fake
// opened directly and through wtcache, and requires identical results,
// identical error texts and an identical sequence of calls on the fake.
func runDifferential(t *testing.T, driverName string, ops []diffOp) {
	t.Helper()
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			ctx := context.Background()
			direct, dst := openFakeDirect(t, driverName)
			wrapped, wst := openFakeWrapped(t, driverName)

			gotD, errD := op.run(ctx, direct)
			gotW, errW := op.run(ctx, wrapped)
			if gotD != op.want || errText(errD) != op.wantErr {
				t.Fatalf("reference (fake directly) = %q, %q; the test expects %q, %q", gotD, errText(errD), op.want, op.wantErr)
			}
			if gotW != gotD {
				t.Errorf("result through wtcache = %q, directly = %q", gotW, gotD)
			}
			if errText(errW) != errText(errD) {
				t.Errorf("error through wtcache = %q, directly = %q", errText(errW), errText(errD))
			}

			// Close both so that the final Conn.Close is in the log too.
			if err := direct.Close(); err != nil {
				t.Errorf("direct Close: %v", err)
			}
			if err := wrapped.Close(); err != nil {
				t.Errorf("wrapped Close: %v", err)
			}
			callsD, callsW := dst.Calls(), wst.Calls()
			if !slices.Equal(callsD, callsW) {
				t.Errorf("calls on the fake differ\n directly:     %q\n through wtcache: %q", callsD, callsW)
			}
			requireSubsequence(t, callsD, op.wantCalls)
			for _, bad := range op.refuseCalls {
				for _, c := range callsW {
					if strings.HasPrefix(c, bad) {
						t.Errorf("unexpected call %q through wtcache; calls: %q", c, callsW)
					}
				}
			}
		})
	}
}

// requireSubsequence fails unless want appears in calls in order.
func requireSubsequence(t testing.TB, calls, want []string) {
	t.Helper()
	i := 0
	for _, c := range calls {
		if i < len(want) && c == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("calls %q lack %q (in order)", calls, want[i:])
	}
}

// describeResult turns a sql.Result into text.
func describeResult(res sql.Result, err error) (string, error) {
	if err != nil {
		return "", err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return "", err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("lastID=%d affected=%d", id, n), nil
}

// describeRows reads every row (of every result set) and closes rows.
func describeRows(rows *sql.Rows, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(strings.Join(cols, ","))
	for {
		for rows.Next() {
			var id int64
			var name string
			var price float64
			if err := rows.Scan(&id, &name, &price); err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "|%d,%s,%g", id, name, price)
		}
		if !rows.NextResultSet() {
			break
		}
		b.WriteString("|next")
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return b.String(), rows.Close()
}

// describeColumnTypes gives every answer of (*sql.Rows).ColumnTypes.
func describeColumnTypes(rows *sql.Rows, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return "", err
	}
	return columnTypesText(cts), nil
}

// columnTypesText gives every answer of each column type.
func columnTypesText(cts []*sql.ColumnType) string {
	var parts []string
	for _, ct := range cts {
		length, lok := ct.Length()
		nullable, nok := ct.Nullable()
		prec, scale, dok := ct.DecimalSize()
		parts = append(parts, fmt.Sprintf("%s db=%q scan=%v len=%d,%t null=%t,%t dec=%d,%d,%t",
			ct.Name(), ct.DatabaseTypeName(), ct.ScanType(), length, lok, nullable, nok, prec, scale, dok))
	}
	return strings.Join(parts, " | ")
}

// cancelled returns a context that is already cancelled.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// onConn runs f on one dedicated connection of db.
func onConn(ctx context.Context, db *sql.DB, f func(c *sql.Conn) (string, error)) (string, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return f(c)
}

// TestLegacyDriverDifferential runs the same operations on the legacy fake
// (base interfaces only) directly and through wtcache: wtcache's fallbacks
// must give exactly what database/sql gives for such a driver.
func TestLegacyDriverDifferential(t *testing.T) {
	const insert1 = "SELECT fake_exec()"
	const insert2 = "SELECT fake_exec(?, ?)"
	const selectQ = "SELECT fake_rows(?)"
	ops := []diffOp{
		{
			// ExecContext returns driver.ErrSkip, so database/sql prepares.
			name: "exec without args prepares",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeResult(db.ExecContext(ctx, insert1))
			},
			want:      fmt.Sprintf("lastID=%d affected=0", len(insert1)),
			wantCalls: []string{"Driver.Open", "Conn.Prepare " + insert1, "Stmt.Exec []", "Stmt.Close", "Conn.Close"},
		},
		{
			name: "exec with args",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeResult(db.ExecContext(ctx, insert2, 7, "seven"))
			},
			want:      fmt.Sprintf("lastID=%d affected=2", len(insert2)),
			wantCalls: []string{"Conn.Prepare " + insert2, "Stmt.Exec [int64(7) string(seven)]", "Stmt.Close"},
		},
		{
			name: "exec with the wrong number of args",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeResult(db.ExecContext(ctx, insert2, 7))
			},
			wantErr:     "sql: expected 2 arguments, got 1",
			refuseCalls: []string{"Stmt.Exec"},
		},
		{
			name: "exec error of the inner driver",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeResult(db.ExecContext(ctx, "SELECT fake_fail('exec')"))
			},
			wantErr: "fake: XX000: failed: SELECT fake_fail('exec')",
		},
		{
			name: "prepare error of the inner driver",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeResult(db.ExecContext(ctx, "SELECT fake_bad_prepare()"))
			},
			wantErr: "fake: 42601: cannot prepare",
		},
		{
			name: "query",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeRows(db.QueryContext(ctx, selectQ, 0))
			},
			want:      "id,name,price|1,one,1.5|2,two,2.25",
			wantCalls: []string{"Conn.Prepare " + selectQ, "Stmt.Query [int64(0)]", "Rows.Close", "Stmt.Close"},
		},
		{
			name: "query error of the inner driver",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeRows(db.QueryContext(ctx, "SELECT fake_fail('query')"))
			},
			wantErr: "fake: XX000: failed: SELECT fake_fail('query')",
		},
		{
			name: "query row",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				var id int64
				var name string
				var price float64
				err := db.QueryRowContext(ctx, selectQ, 0).Scan(&id, &name, &price)
				return fmt.Sprintf("%d %s %g", id, name, price), err
			},
			want: "1 one 1.5",
		},
		{
			name: "prepared statement used three times",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				st, err := db.PrepareContext(ctx, insert2)
				if err != nil {
					return "", err
				}
				defer st.Close()
				var out []string
				for i := range 2 {
					s, err := describeResult(st.ExecContext(ctx, i, "x"))
					if err != nil {
						return "", err
					}
					out = append(out, s)
				}
				qs, err := db.PrepareContext(ctx, selectQ)
				if err != nil {
					return "", err
				}
				defer qs.Close()
				s, err := describeRows(qs.QueryContext(ctx, 1))
				return strings.Join(append(out, s), " ; "), err
			},
			want: fmt.Sprintf("lastID=%d affected=2 ; lastID=%d affected=2 ; id,name,price|1,one,1.5|2,two,2.25", len(insert2), len(insert2)),
			wantCalls: []string{
				"Conn.Prepare " + insert2, "Stmt.Exec [int64(0) string(x)]", "Stmt.Exec [int64(1) string(x)]",
				"Conn.Prepare " + selectQ, "Stmt.Query [int64(1)]", "Rows.Close",
			},
		},
		{
			name: "begin with a non-default isolation level",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				_, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
				return "", err
			},
			wantErr:     "sql: driver does not support non-default isolation level",
			refuseCalls: []string{"Conn.Begin"},
		},
		{
			name: "begin read-only",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				_, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
				return "", err
			},
			wantErr:     "sql: driver does not support read-only transactions",
			refuseCalls: []string{"Conn.Begin"},
		},
		{
			name: "transaction committed",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					return "", err
				}
				s, err := describeResult(tx.ExecContext(ctx, insert1))
				if err != nil {
					return "", err
				}
				return s, tx.Commit()
			},
			want:      fmt.Sprintf("lastID=%d affected=0", len(insert1)),
			wantCalls: []string{"Conn.Begin", "Conn.Prepare " + insert1, "Stmt.Exec []", "Tx.Commit"},
		},
		{
			name: "transaction rolled back",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				tx, err := db.BeginTx(ctx, &sql.TxOptions{})
				if err != nil {
					return "", err
				}
				return "", tx.Rollback()
			},
			wantCalls: []string{"Conn.Begin", "Tx.Rollback"},
		},
		{
			name: "named parameter in exec",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeResult(db.ExecContext(ctx, insert2, sql.Named("a", 1), sql.Named("b", 2)))
			},
			wantErr:     "sql: driver does not support the use of Named Parameters",
			refuseCalls: []string{"Stmt.Exec"},
		},
		{
			name: "named parameter in query",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeRows(db.QueryContext(ctx, selectQ, sql.Named("a", 1)))
			},
			wantErr:     "sql: driver does not support the use of Named Parameters",
			refuseCalls: []string{"Stmt.Query"},
		},
		{
			name: "cancelled context on exec",
			run: func(_ context.Context, db *sql.DB) (string, error) {
				return describeResult(db.ExecContext(cancelled(), insert1))
			},
			wantErr:     "context canceled",
			refuseCalls: []string{"Stmt.Exec"},
		},
		{
			// The connection exists, so the fallback's own check runs:
			// the statement is prepared, then closed.
			name: "cancelled context on a connection's prepare",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return onConn(ctx, db, func(c *sql.Conn) (string, error) {
					_, err := c.PrepareContext(cancelled(), insert1)
					return "", err
				})
			},
			wantErr:   "context canceled",
			wantCalls: []string{"Conn.Prepare " + insert1, "Stmt.Close"},
		},
		{
			name: "cancelled context on a connection's begin",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return onConn(ctx, db, func(c *sql.Conn) (string, error) {
					_, err := c.BeginTx(cancelled(), nil)
					return "", err
				})
			},
			wantErr:   "context canceled",
			wantCalls: []string{"Conn.Begin", "Tx.Rollback"},
		},
		{
			name: "cancelled context on a statement's exec and query",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return onConn(ctx, db, func(c *sql.Conn) (string, error) {
					st, err := c.PrepareContext(ctx, insert1)
					if err != nil {
						return "", err
					}
					defer st.Close()
					_, errE := st.ExecContext(cancelled())
					_, errQ := st.QueryContext(cancelled())
					return errText(errE) + " / " + errText(errQ), nil
				})
			},
			want:        "context canceled / context canceled",
			wantCalls:   []string{"Conn.Prepare " + insert1, "Stmt.Close"},
			refuseCalls: []string{"Stmt.Exec", "Stmt.Query"},
		},
		{
			name: "ping",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return "", db.PingContext(ctx)
			},
			wantCalls: []string{"Driver.Open"},
		},
		{
			name: "column types are database/sql's neutral answers",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeColumnTypes(db.QueryContext(ctx, selectQ, 0))
			},
			want: `id db="" scan=interface {} len=0,false null=false,false dec=0,0,false | ` +
				`name db="" scan=interface {} len=0,false null=false,false dec=0,0,false | ` +
				`price db="" scan=interface {} len=0,false null=false,false dec=0,0,false`,
		},
		{
			name: "no next result set",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				rows, err := db.QueryContext(ctx, selectQ, 0)
				if err != nil {
					return "", err
				}
				defer rows.Close()
				n := 0
				for rows.Next() {
					n++
				}
				next := rows.NextResultSet()
				return fmt.Sprintf("rows=%d next=%t err=%v", n, next, rows.Err()), nil
			},
			want: "rows=2 next=false err=<nil>",
		},
		{
			name: "raw connection",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return onConn(ctx, db, func(c *sql.Conn) (string, error) {
					var typ string
					err := c.Raw(func(dc any) error {
						typ = fmt.Sprintf("%T", InnerConn(dc))
						return nil
					})
					return typ, err
				})
			},
			want: "*wtcache.legacyFakeConn",
		},
	}
	runDifferential(t, legacyFakeName, ops)
}

// TestFullDriverDifferential runs operations on the full fake directly and
// through wtcache: every optional interface must be forwarded, so that the
// fake receives exactly the same calls.
func TestFullDriverDifferential(t *testing.T) {
	const insert2 = "SELECT fake_exec(?, ?)"
	const selectQ = "SELECT fake_rows(?)"
	ops := []diffOp{
		{
			name: "exec is not prepared",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeResult(db.ExecContext(ctx, insert2, 1, "a"))
			},
			want:        fmt.Sprintf("lastID=%d affected=2", len(insert2)),
			wantCalls:   []string{"Driver.OpenConnector", "Connector.Connect", "Conn.ExecContext " + insert2 + " [int64(1) string(a)]"},
			refuseCalls: []string{"Conn.Prepare", "Stmt."},
		},
		{
			name: "query is not prepared",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeRows(db.QueryContext(ctx, selectQ, 0))
			},
			want:        "id,name,price|1,one,1.5|2,two,2.25",
			wantCalls:   []string{"Conn.QueryContext " + selectQ + " [int64(0)]", "Rows.Close"},
			refuseCalls: []string{"Conn.Prepare", "Stmt."},
		},
		{
			name: "prepared statement uses the context methods",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				st, err := db.PrepareContext(ctx, insert2)
				if err != nil {
					return "", err
				}
				defer st.Close()
				return describeResult(st.ExecContext(ctx, 3, "c"))
			},
			want:        fmt.Sprintf("lastID=%d affected=2", len(insert2)),
			wantCalls:   []string{"Conn.PrepareContext " + insert2, "Stmt.ExecContext [int64(3) string(c)]", "Stmt.Close"},
			refuseCalls: []string{"Conn.Prepare ", "Stmt.Exec ", "Stmt.Query "},
		},
		{
			name: "begin passes isolation and read-only",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable, ReadOnly: true})
				if err != nil {
					return "", err
				}
				return "", tx.Commit()
			},
			wantCalls:   []string{fmt.Sprintf("Conn.BeginTx isolation=%d readonly=true", sql.LevelSerializable), "Tx.Commit"},
			refuseCalls: []string{"Conn.Begin "},
		},
		{
			name: "named parameters reach the driver",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeResult(db.ExecContext(ctx, insert2, sql.Named("a", 1), sql.Named("b", "x")))
			},
			want:      fmt.Sprintf("lastID=%d affected=2", len(insert2)),
			wantCalls: []string{"Conn.ExecContext " + insert2 + " [a=int64(1) b=string(x)]"},
		},
		{
			name: "several result sets",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeRows(db.QueryContext(ctx, "SELECT fake_rows(); SELECT fake_rows()"))
			},
			want:      "id,name,price|1,one,1.5|2,two,2.25|next|3,three,3.75",
			wantCalls: []string{"Conn.QueryContext SELECT fake_rows(); SELECT fake_rows() []", "Rows.NextResultSet", "Rows.Close"},
		},
		{
			name: "column types are forwarded",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeColumnTypes(db.QueryContext(ctx, selectQ, 0))
			},
			want: `id db="INT8" scan=int64 len=0,false null=false,true dec=0,0,false | ` +
				`name db="VARCHAR" scan=string len=255,true null=true,true dec=0,0,false | ` +
				`price db="NUMERIC" scan=float64 len=0,false null=true,true dec=10,2,true`,
		},
		{
			name: "connection checker converts unprepared args",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeResult(db.ExecContext(ctx, fakeExec1, checkedArg{"v"}))
			},
			want:        fmt.Sprintf("lastID=%d affected=1", len(fakeExec1)),
			wantCalls:   []string{"Conn.CheckNamedValue wtcache.checkedArg", "Conn.ExecContext " + fakeExec1 + " [string(conn:v)]"},
			refuseCalls: []string{"Stmt.CheckNamedValue"},
		},
		{
			name: "statement checker runs before the connection's",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				st, err := db.PrepareContext(ctx, fakeExec1)
				if err != nil {
					return "", err
				}
				defer st.Close()
				return describeResult(st.ExecContext(ctx, checkedArg{"v"}))
			},
			want:        fmt.Sprintf("lastID=%d affected=1", len(fakeExec1)),
			wantCalls:   []string{"Stmt.CheckNamedValue wtcache.checkedArg", "Stmt.ExecContext [string(stmt:v)]"},
			refuseCalls: []string{"Conn.CheckNamedValue"},
		},
		{
			name: "statement checker's ErrSkip goes to the default converter, not the connection's checker",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				st, err := db.PrepareContext(ctx, fakeExec1)
				if err != nil {
					return "", err
				}
				defer st.Close()
				return describeResult(st.ExecContext(ctx, stmtSkipArg{}))
			},
			wantErr:     "sql: converting argument $1 type: unsupported type wtcache.stmtSkipArg, a struct",
			refuseCalls: []string{"Conn.CheckNamedValue", "Stmt.ExecContext"},
		},
		{
			name: "custom type accepted by the driver passes unconverted",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				a, err := describeResult(db.ExecContext(ctx, fakeExec1, passThroughArg{7}))
				if err != nil {
					return "", err
				}
				b, err := describeRows(db.QueryContext(ctx, fakeQuery1, passThroughArg{8}))
				return a + " ; " + b, err
			},
			want: fmt.Sprintf("lastID=%d affected=1 ; id,name,price|1,one,1.5|2,two,2.25", len(fakeExec1)),
			wantCalls: []string{
				"Conn.ExecContext " + fakeExec1 + " [wtcache.passThroughArg({7})]",
				"Conn.QueryContext " + fakeQuery1 + " [wtcache.passThroughArg({8})]",
			},
		},
		{
			name: "inner error text unchanged",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return describeRows(db.QueryContext(ctx, "SELECT fake_fail('q')"))
			},
			wantErr: "fake: XX000: failed: SELECT fake_fail('q')",
		},
		{
			name: "raw connection",
			run: func(ctx context.Context, db *sql.DB) (string, error) {
				return onConn(ctx, db, func(c *sql.Conn) (string, error) {
					var typ string
					err := c.Raw(func(dc any) error {
						typ = fmt.Sprintf("%T", InnerConn(dc))
						return nil
					})
					return typ, err
				})
			},
			want: "*wtcache.fullFakeConn",
		},
	}
	runDifferential(t, fullFakeName, ops)
}

// pair is the full fake opened directly and through wtcache.
type pair struct {
	name string
	db   *sql.DB
	st   *fakeState
}

func openFullPair(t testing.TB) []pair {
	t.Helper()
	d, dst := openFakeDirect(t, fullFakeName)
	w, wst := openFakeWrapped(t, fullFakeName)
	return []pair{{"direct", d, dst}, {"wtcache", w, wst}}
}

func TestPingErrorReturnedUnchanged(t *testing.T) {
	for _, p := range openFullPair(t) {
		t.Run(p.name, func(t *testing.T) {
			pingErr := &fakeError{Code: "08006", Msg: "server gone"}
			p.st.set(func(s *fakeState) { s.pingErr = pingErr })
			err := p.db.PingContext(context.Background())
			if err != pingErr { //nolint:errorlint // the very same value is required
				t.Fatalf("Ping error = %#v, want the inner driver's %#v unchanged", err, pingErr)
			}
			if n := p.st.Count("Conn.Ping"); n != 1 {
				t.Errorf("inner Ping called %d times, want 1", n)
			}
		})
	}
}

// TestSessionResetAndValidation checks database/sql's pool protocol through
// the wrapper: ResetSession on reuse, IsValid after use, and their effect on
// which connection serves the next statement.
func TestSessionResetAndValidation(t *testing.T) {
	type counts struct{ connects, closes, resets int }
	tests := []struct {
		name    string
		setup   func(s *fakeState)
		want    counts
		wantErr bool
	}{
		// Two statements on one pooled connection: the second reuse resets.
		{name: "valid connection is reused and reset", setup: func(*fakeState) {}, want: counts{connects: 1, closes: 0, resets: 1}},
		// IsValid false: database/sql discards the connection after each use.
		{name: "invalid connection is discarded", setup: func(s *fakeState) { s.invalid.Store(true) }, want: counts{connects: 2, closes: 2, resets: 0}},
		// ResetSession returning ErrBadConn: the connection is discarded and
		// a new one is made.
		{name: "reset failure replaces the connection", setup: func(s *fakeState) { s.resetErr = driver.ErrBadConn }, want: counts{connects: 2, closes: 1, resets: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []counts
			for _, p := range openFullPair(t) {
				p.db.SetMaxOpenConns(1)
				p.st.set(tc.setup)
				ctx := context.Background()
				for i := range 2 {
					if _, err := p.db.ExecContext(ctx, fakeExec0); err != nil {
						t.Fatalf("%s: exec %d: %v", p.name, i, err)
					}
				}
				c := counts{p.st.Count("Connector.Connect"), p.st.Count("Conn.Close"), p.st.Count("Conn.ResetSession")}
				if p.st.validCalls.Load() == 0 {
					t.Errorf("%s: IsValid never called", p.name)
				}
				got = append(got, c)
			}
			if got[0] != tc.want {
				t.Fatalf("reference (fake directly) = %+v, the test expects %+v", got[0], tc.want)
			}
			if got[1] != got[0] {
				t.Errorf("through wtcache %+v, directly %+v", got[1], got[0])
			}
		})
	}
}

// TestBadConnRetriedAsDirectly checks that driver.ErrBadConn from the inner
// driver reaches database/sql unchanged, so that it retries on another
// connection exactly as it does with the inner driver alone.
func TestBadConnRetriedAsDirectly(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(s *fakeState)
		wantErr   error
		wantExecs int
	}{
		// database/sql tries twice with a pooled or new connection, then
		// once with a new one.
		{name: "always bad", setup: func(s *fakeState) { s.execErr = driver.ErrBadConn }, wantErr: driver.ErrBadConn, wantExecs: 3},
		{name: "bad once", setup: func(s *fakeState) { s.execErrs = []error{driver.ErrBadConn} }, wantExecs: 2},
		{name: "wrapped bad conn", setup: func(s *fakeState) { s.execErr = fmt.Errorf("fake: broken pipe: %w", driver.ErrBadConn) }, wantErr: driver.ErrBadConn, wantExecs: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			type outcome struct {
				err                     string
				execs, connects, closes int
			}
			var got []outcome
			for _, p := range openFullPair(t) {
				p.st.set(tc.setup)
				_, err := p.db.ExecContext(context.Background(), fakeExec0)
				if tc.wantErr == nil && err != nil {
					t.Fatalf("%s: %v", p.name, err)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("%s: error %v, want errors.Is %v", p.name, err, tc.wantErr)
				}
				got = append(got, outcome{errText(err), p.st.Count("Conn.ExecContext"), p.st.Count("Connector.Connect"), p.st.Count("Conn.Close")})
			}
			if got[0].execs != tc.wantExecs {
				t.Fatalf("reference: inner ExecContext called %d times, the test expects %d", got[0].execs, tc.wantExecs)
			}
			if got[1] != got[0] {
				t.Errorf("through wtcache %+v, directly %+v", got[1], got[0])
			}
		})
	}
}

// TestInnerErrorTypeSurvives checks errors.As on errors of every kind of
// call: the wrapper must not wrap or replace them.
func TestInnerErrorTypeSurvives(t *testing.T) {
	ctx := context.Background()
	db, st := openFakeWrapped(t, fullFakeName)
	commitErr := &fakeError{Code: "40001", Msg: "serialization failure"}
	st.set(func(s *fakeState) { s.commitErr = commitErr })

	tests := []struct {
		name     string
		run      func() error
		wantCode string
	}{
		{"exec", func() error { _, err := db.ExecContext(ctx, "SELECT fake_fail('e')"); return err }, "XX000"},
		{"query", func() error { _, err := db.QueryContext(ctx, "SELECT fake_fail('q')"); return err }, "XX000"},
		{"prepared exec", func() error {
			s, err := db.PrepareContext(ctx, "SELECT fake_fail('p')")
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.ExecContext(ctx)
			return err
		}, "XX000"},
		{"commit", func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			return tx.Commit()
		}, "40001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			var fe *fakeError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *fakeError", err, err)
			}
			if fe.Code != tc.wantCode {
				t.Errorf("code %q, want %q", fe.Code, tc.wantCode)
			}
		})
	}
}

// TestInnerConnReachesTheFakesConnection checks that (*sql.Conn).Raw with
// InnerConn hands out the very connection object the inner driver made.
func TestInnerConnReachesTheFakesConnection(t *testing.T) {
	for _, name := range []string{legacyFakeName, fullFakeName} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, st := openFakeWrapped(t, name)
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Raw(func(dc any) error {
				if _, ok := dc.(*conn); !ok {
					return fmt.Errorf("Raw gave %T, want wtcache's *conn", dc)
				}
				conns := st.Conns()
				if len(conns) != 1 {
					return fmt.Errorf("fake made %d connections, want 1", len(conns))
				}
				if got := InnerConn(dc); got != any(conns[0]) {
					return fmt.Errorf("InnerConn = %p (%T), want the fake's connection %p", got, got, conns[0])
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("not a wtcache connection", func(t *testing.T) {
		c := &legacyFakeConn{st: &fakeState{}}
		if got := InnerConn(c); got != any(c) {
			t.Errorf("InnerConn(%p) = %p, want its argument", c, got)
		}
	})
}

// TestInnerDSNHasNoCacheParameters checks what the inner driver receives:
// the DSN without wtcache's parameters, everything else byte for byte.
func TestInnerDSNHasNoCacheParameters(t *testing.T) {
	for _, name := range []string{legacyFakeName, fullFakeName} {
		t.Run(name, func(t *testing.T) {
			st, id := newFakeState(t)
			db, err := sql.Open(DriverName, fakeWrappedDSN(name, id))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.PingContext(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := fakeInnerDSN(id)
			dsns := st.DSNs()
			if len(dsns) == 0 {
				t.Fatal("the inner driver received no DSN")
			}
			for _, got := range dsns {
				if got != want {
					t.Errorf("inner DSN %q, want %q", got, want)
				}
				if strings.Contains(got, "cache_") {
					t.Errorf("inner DSN %q holds a cache_ parameter", got)
				}
			}
		})
	}
}

// TestConnectorCloseOnDBClose checks that db.Close closes the inner
// connector (database/sql calls the connector's Close, wtcache forwards it),
// once, and not before.
func TestConnectorCloseOnDBClose(t *testing.T) {
	db, st := openFakeWrapped(t, fullFakeName)
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := st.Count("Connector.Close"); n != 0 {
		t.Fatalf("inner connector closed %d times before db.Close", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := st.Count("Connector.Close"); n != 1 {
		t.Errorf("inner connector closed %d times by db.Close, want 1", n)
	}
}

// TestRowsForwardingUnit checks the rows wrapper directly, including
// HasNextResultSet, which database/sql only calls at the end of a set.
func TestRowsForwardingUnit(t *testing.T) {
	st := &fakeState{}
	full := wrapRows(&fullFakeRows{st: st, sets: [][][]driver.Value{{}, {}}}).(*rows)
	legacy := wrapRows(&legacyFakeRows{st: st}).(*rows)

	if !full.HasNextResultSet() || legacy.HasNextResultSet() {
		t.Errorf("HasNextResultSet: full %t (want true), legacy %t (want false)", full.HasNextResultSet(), legacy.HasNextResultSet())
	}
	if err := full.NextResultSet(); err != nil {
		t.Errorf("full NextResultSet: %v", err)
	}
	if err := full.NextResultSet(); err == nil {
		t.Error("full NextResultSet past the last set: nil error")
	}
	if err := legacy.NextResultSet(); err == nil {
		t.Error("legacy NextResultSet: nil error, want io.EOF")
	}
	if got := legacy.ColumnTypeScanType(0); got != reflect.TypeFor[any]() {
		t.Errorf("legacy ScanType = %v, want interface {}", got)
	}
	if got := full.ColumnTypeScanType(0); got != reflect.TypeFor[int64]() {
		t.Errorf("full ScanType = %v, want int64", got)
	}
}

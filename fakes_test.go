package wtcache

// Hand-written fake inner drivers for the unit tests. They need no network.
//
//   - "fakelegacy" implements only the base interfaces (driver.Driver,
//     driver.Conn, driver.Stmt, driver.Rows, driver.Tx), so that every
//     fallback of the wrapper is exercised.
//   - "fakefull" implements every optional interface database/sql consults
//     and records each call, so that forwarding can be proved call by call.
//
// Each test gets its own fakeState, selected by an "id=..." keyword in the
// inner DSN, so that tests never see each other's calls.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Names under which the fakes are registered with database/sql.
const (
	legacyFakeName = "fakelegacy"
	fullFakeName   = "fakefull"
)

// fakeRedisParam is a cache_redis value that builds a client without
// contacting anything: go-redis connects lazily and these tests never use it.
const fakeRedisParam = "cache_redis=redis://127.0.0.1:1/0"

func init() {
	registerFakeOnce(legacyFakeName, legacyFakeDriver{})
	registerFakeOnce(fullFakeName, fullFakeDriver{})
}

// registerFakeOnce registers d unless name is taken: sql.Register panics on
// a duplicate name.
func registerFakeOnce(name string, d driver.Driver) {
	if !slices.Contains(sql.Drivers(), name) {
		sql.Register(name, d)
	}
}

// fakeError is an inner driver's own error type, to check that it survives
// errors.As through the wrapper.
type fakeError struct {
	Code string
	Msg  string
}

func (e *fakeError) Error() string { return "fake: " + e.Code + ": " + e.Msg }

// fakeState is everything one test sees of a fake driver: the calls it
// received, the DSNs it was given, the connections it made, and the knobs
// that decide its answers.
type fakeState struct {
	mu        sync.Mutex
	calls     []string
	dsns      []string
	conns     []driver.Conn
	execErrs  []error // returned by the next ExecContext calls, one each
	execErr   error   // returned by every ExecContext call after those
	pingErr   error
	resetErr  error
	commitErr error

	invalid    atomic.Bool  // IsValid answers !invalid
	validCalls atomic.Int64 // IsValid is called too often to be logged
}

var (
	fakeStates  sync.Map // id -> *fakeState
	fakeCounter atomic.Int64
)

// newFakeState registers a fresh state and returns it with its id, which a
// DSN selects with "id=<id>".
func newFakeState(t testing.TB) (*fakeState, string) {
	t.Helper()
	id := fmt.Sprintf("t%d", fakeCounter.Add(1))
	st := &fakeState{}
	fakeStates.Store(id, st)
	t.Cleanup(func() { fakeStates.Delete(id) })
	return st, id
}

// fakeStateFor finds the state a DSN selects and records the DSN in it. A
// DSN without a registered id (for example the empty one wtcache uses to
// look a driver up by name) gets a throwaway state.
func fakeStateFor(dsn string) *fakeState {
	st := &fakeState{}
	for f := range strings.FieldsSeq(dsn) {
		if id, ok := strings.CutPrefix(f, "id="); ok {
			if v, ok := fakeStates.Load(id); ok {
				st = v.(*fakeState)
			}
		}
	}
	st.mu.Lock()
	st.dsns = append(st.dsns, dsn)
	st.mu.Unlock()
	return st
}

func (s *fakeState) record(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
}

func (s *fakeState) addConn(c driver.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, c)
}

// Calls returns a copy of the calls recorded so far.
func (s *fakeState) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// DSNs returns a copy of the DSNs the driver was given.
func (s *fakeState) DSNs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dsns)
}

// Conns returns the connections the driver made, in order.
func (s *fakeState) Conns() []driver.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.conns)
}

// Count returns how many recorded calls start with prefix.
func (s *fakeState) Count(prefix string) int {
	n := 0
	for _, c := range s.Calls() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (s *fakeState) set(f func(s *fakeState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *fakeState) nextExecErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.execErrs) > 0 {
		err := s.execErrs[0]
		s.execErrs = s.execErrs[1:]
		return err
	}
	return s.execErr
}

// The fake "engine", shared by both fakes. It looks only for markers in the
// statement text: fake_fail( fails with a *fakeError, fake_bad_prepare(
// cannot be prepared, and a text with two statements (a ';') returns two
// result sets. Every other statement returns rows when queried, and a
// result derived from its text and arguments when executed.
//
// The statements the tests send are all SELECTs without a FROM clause:
// wtcache passes such reads through untouched, so these tests keep checking
// the forwarding alone when wtcache's caching paths exist.

// Statements the tests send to the fakes.
const (
	fakeExec0  = "SELECT fake_exec()"
	fakeExec1  = "SELECT fake_exec(?)"
	fakeQuery1 = "SELECT fake_rows(?)"
)

func fakeFailure(query string) error {
	if strings.Contains(query, "fake_fail(") {
		return &fakeError{Code: "XX000", Msg: "failed: " + query}
	}
	return nil
}

func fakeNumInput(query string) int { return strings.Count(query, "?") }

type fakeResult struct{ lastID, affected int64 }

func (r fakeResult) LastInsertId() (int64, error) { return r.lastID, nil }
func (r fakeResult) RowsAffected() (int64, error) { return r.affected, nil }

func fakeExecResult(query string, nargs int) (driver.Result, error) {
	if err := fakeFailure(query); err != nil {
		return nil, err
	}
	return fakeResult{lastID: int64(len(query)), affected: int64(nargs)}, nil
}

// fakeResultSets returns the rows a query produces: each result set is a
// list of rows of (id int64, name string, price float64).
func fakeResultSets(query string) ([][][]driver.Value, error) {
	if err := fakeFailure(query); err != nil {
		return nil, err
	}
	first := [][]driver.Value{{int64(1), "one", 1.5}, {int64(2), "two", 2.25}}
	if strings.Contains(query, ";") {
		return [][][]driver.Value{first, {{int64(3), "three", 3.75}}}, nil
	}
	return [][][]driver.Value{first}, nil
}

// fakeArgs describes arguments with their Go types, so that a conversion
// (or its absence) shows in the recorded calls.
func fakeArgs(vals []driver.Value) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = fmt.Sprintf("%T(%v)", v, v)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func fakeNamedArgs(nvs []driver.NamedValue) string {
	parts := make([]string, len(nvs))
	for i, nv := range nvs {
		p := fmt.Sprintf("%T(%v)", nv.Value, nv.Value)
		if nv.Name != "" {
			p = nv.Name + "=" + p
		}
		parts[i] = p
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// ---------------------------------------------------------------------------
// fakelegacy: base interfaces only.

type legacyFakeDriver struct{}

func (legacyFakeDriver) Open(dsn string) (driver.Conn, error) {
	st := fakeStateFor(dsn)
	st.record("Driver.Open")
	c := &legacyFakeConn{st: st}
	st.addConn(c)
	return c, nil
}

type legacyFakeConn struct{ st *fakeState }

func (c *legacyFakeConn) Prepare(query string) (driver.Stmt, error) {
	c.st.record("Conn.Prepare %s", query)
	if strings.Contains(query, "fake_bad_prepare(") {
		return nil, &fakeError{Code: "42601", Msg: "cannot prepare"}
	}
	return &legacyFakeStmt{st: c.st, query: query}, nil
}

func (c *legacyFakeConn) Close() error {
	c.st.record("Conn.Close")
	return nil
}

func (c *legacyFakeConn) Begin() (driver.Tx, error) {
	c.st.record("Conn.Begin")
	return &legacyFakeTx{st: c.st}, nil
}

type legacyFakeStmt struct {
	st    *fakeState
	query string
}

func (s *legacyFakeStmt) Close() error {
	s.st.record("Stmt.Close")
	return nil
}

func (s *legacyFakeStmt) NumInput() int { return fakeNumInput(s.query) }

func (s *legacyFakeStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.st.record("Stmt.Exec %s", fakeArgs(args))
	return fakeExecResult(s.query, len(args))
}

func (s *legacyFakeStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.st.record("Stmt.Query %s", fakeArgs(args))
	sets, err := fakeResultSets(s.query)
	if err != nil {
		return nil, err
	}
	return &legacyFakeRows{st: s.st, rows: sets[0]}, nil
}

type legacyFakeRows struct {
	st   *fakeState
	rows [][]driver.Value
}

func (r *legacyFakeRows) Columns() []string { return []string{"id", "name", "price"} }

func (r *legacyFakeRows) Close() error {
	r.st.record("Rows.Close")
	return nil
}

func (r *legacyFakeRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	copy(dest, r.rows[0])
	r.rows = r.rows[1:]
	return nil
}

type legacyFakeTx struct{ st *fakeState }

func (t *legacyFakeTx) Commit() error {
	t.st.record("Tx.Commit")
	return nil
}

func (t *legacyFakeTx) Rollback() error {
	t.st.record("Tx.Rollback")
	return nil
}

// ---------------------------------------------------------------------------
// fakefull: every optional interface, every call recorded.

// Argument types that the full fake's NamedValueCheckers treat specially.
type (
	// checkedArg is converted by both checkers, each leaving its mark, so
	// that the value the driver receives tells which checker ran.
	checkedArg struct{ S string }
	// passThroughArg is accepted as is by both checkers: it must reach the
	// driver unconverted, although it is not a driver.Value.
	passThroughArg struct{ N int }
	// stmtSkipArg is refused by the statement's checker with driver.ErrSkip
	// (database/sql then applies its default converter, which rejects it)
	// and accepted by the connection's: the connection's checker must not
	// be consulted for a prepared statement.
	stmtSkipArg struct{}
)

func fullCheck(who string, nv *driver.NamedValue) error {
	switch v := nv.Value.(type) {
	case checkedArg:
		nv.Value = who + ":" + v.S
		return nil
	case passThroughArg:
		return nil
	case stmtSkipArg:
		if who == "stmt" {
			return driver.ErrSkip
		}
		return nil
	}
	return driver.ErrSkip
}

type fullFakeDriver struct{}

var (
	_ driver.Driver        = fullFakeDriver{}
	_ driver.DriverContext = fullFakeDriver{}
)

func (d fullFakeDriver) Open(dsn string) (driver.Conn, error) {
	c, _ := d.OpenConnector(dsn)
	return c.Connect(context.Background())
}

func (fullFakeDriver) OpenConnector(dsn string) (driver.Connector, error) {
	st := fakeStateFor(dsn)
	st.record("Driver.OpenConnector")
	return &fullFakeConnector{st: st}, nil
}

type fullFakeConnector struct{ st *fakeState }

var (
	_ driver.Connector = (*fullFakeConnector)(nil)
	_ io.Closer        = (*fullFakeConnector)(nil)
)

func (c *fullFakeConnector) Connect(context.Context) (driver.Conn, error) {
	c.st.record("Connector.Connect")
	cn := &fullFakeConn{st: c.st}
	c.st.addConn(cn)
	return cn, nil
}

func (c *fullFakeConnector) Driver() driver.Driver { return fullFakeDriver{} }

func (c *fullFakeConnector) Close() error {
	c.st.record("Connector.Close")
	return nil
}

type fullFakeConn struct{ st *fakeState }

var (
	_ driver.Conn               = (*fullFakeConn)(nil)
	_ driver.Pinger             = (*fullFakeConn)(nil)
	_ driver.ExecerContext      = (*fullFakeConn)(nil)
	_ driver.QueryerContext     = (*fullFakeConn)(nil)
	_ driver.ConnPrepareContext = (*fullFakeConn)(nil)
	_ driver.ConnBeginTx        = (*fullFakeConn)(nil)
	_ driver.SessionResetter    = (*fullFakeConn)(nil)
	_ driver.Validator          = (*fullFakeConn)(nil)
	_ driver.NamedValueChecker  = (*fullFakeConn)(nil)
)

func (c *fullFakeConn) Prepare(query string) (driver.Stmt, error) {
	c.st.record("Conn.Prepare %s", query) // never expected: PrepareContext exists
	return &fullFakeStmt{st: c.st, query: query}, nil
}

func (c *fullFakeConn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	c.st.record("Conn.PrepareContext %s", query)
	return &fullFakeStmt{st: c.st, query: query}, nil
}

func (c *fullFakeConn) Close() error {
	c.st.record("Conn.Close")
	return nil
}

func (c *fullFakeConn) Begin() (driver.Tx, error) {
	c.st.record("Conn.Begin") // never expected: BeginTx exists
	return &fullFakeTx{st: c.st}, nil
}

func (c *fullFakeConn) BeginTx(_ context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.st.record("Conn.BeginTx isolation=%d readonly=%t", opts.Isolation, opts.ReadOnly)
	return &fullFakeTx{st: c.st}, nil
}

func (c *fullFakeConn) ExecContext(_ context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.st.record("Conn.ExecContext %s %s", query, fakeNamedArgs(args))
	if err := c.st.nextExecErr(); err != nil {
		return nil, err
	}
	return fakeExecResult(query, len(args))
}

func (c *fullFakeConn) QueryContext(_ context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.st.record("Conn.QueryContext %s %s", query, fakeNamedArgs(args))
	sets, err := fakeResultSets(query)
	if err != nil {
		return nil, err
	}
	return &fullFakeRows{st: c.st, sets: sets}, nil
}

func (c *fullFakeConn) Ping(context.Context) error {
	c.st.record("Conn.Ping")
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	return c.st.pingErr
}

func (c *fullFakeConn) ResetSession(context.Context) error {
	c.st.record("Conn.ResetSession")
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	return c.st.resetErr
}

func (c *fullFakeConn) IsValid() bool {
	c.st.validCalls.Add(1)
	return !c.st.invalid.Load()
}

func (c *fullFakeConn) CheckNamedValue(nv *driver.NamedValue) error {
	c.st.record("Conn.CheckNamedValue %T", nv.Value)
	return fullCheck("conn", nv)
}

type fullFakeStmt struct {
	st    *fakeState
	query string
}

var (
	_ driver.Stmt              = (*fullFakeStmt)(nil)
	_ driver.StmtExecContext   = (*fullFakeStmt)(nil)
	_ driver.StmtQueryContext  = (*fullFakeStmt)(nil)
	_ driver.NamedValueChecker = (*fullFakeStmt)(nil)
)

func (s *fullFakeStmt) Close() error {
	s.st.record("Stmt.Close")
	return nil
}

func (s *fullFakeStmt) NumInput() int { return fakeNumInput(s.query) }

func (s *fullFakeStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.st.record("Stmt.Exec %s", fakeArgs(args)) // never expected
	return fakeExecResult(s.query, len(args))
}

func (s *fullFakeStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.st.record("Stmt.Query %s", fakeArgs(args)) // never expected
	sets, err := fakeResultSets(s.query)
	if err != nil {
		return nil, err
	}
	return &fullFakeRows{st: s.st, sets: sets}, nil
}

func (s *fullFakeStmt) ExecContext(_ context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.st.record("Stmt.ExecContext %s", fakeNamedArgs(args))
	if err := s.st.nextExecErr(); err != nil {
		return nil, err
	}
	return fakeExecResult(s.query, len(args))
}

func (s *fullFakeStmt) QueryContext(_ context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.st.record("Stmt.QueryContext %s", fakeNamedArgs(args))
	sets, err := fakeResultSets(s.query)
	if err != nil {
		return nil, err
	}
	return &fullFakeRows{st: s.st, sets: sets}, nil
}

func (s *fullFakeStmt) CheckNamedValue(nv *driver.NamedValue) error {
	s.st.record("Stmt.CheckNamedValue %T", nv.Value)
	return fullCheck("stmt", nv)
}

// fullFakeRows has distinctive metadata for each column, so that a wrapper
// that answered neutrally instead of forwarding would be noticed.
type fullFakeRows struct {
	st   *fakeState
	sets [][][]driver.Value
	set  int
	row  int
}

var (
	_ driver.RowsNextResultSet              = (*fullFakeRows)(nil)
	_ driver.RowsColumnTypeScanType         = (*fullFakeRows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*fullFakeRows)(nil)
	_ driver.RowsColumnTypeLength           = (*fullFakeRows)(nil)
	_ driver.RowsColumnTypeNullable         = (*fullFakeRows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*fullFakeRows)(nil)
)

func (r *fullFakeRows) Columns() []string { return []string{"id", "name", "price"} }

func (r *fullFakeRows) Close() error {
	r.st.record("Rows.Close")
	return nil
}

func (r *fullFakeRows) Next(dest []driver.Value) error {
	if r.row >= len(r.sets[r.set]) {
		return io.EOF
	}
	copy(dest, r.sets[r.set][r.row])
	r.row++
	return nil
}

func (r *fullFakeRows) HasNextResultSet() bool { return r.set+1 < len(r.sets) }

func (r *fullFakeRows) NextResultSet() error {
	r.st.record("Rows.NextResultSet")
	if !r.HasNextResultSet() {
		return io.EOF
	}
	r.set++
	r.row = 0
	return nil
}

func (r *fullFakeRows) ColumnTypeScanType(i int) reflect.Type {
	return [...]reflect.Type{reflect.TypeFor[int64](), reflect.TypeFor[string](), reflect.TypeFor[float64]()}[i]
}

func (r *fullFakeRows) ColumnTypeDatabaseTypeName(i int) string {
	return [...]string{"INT8", "VARCHAR", "NUMERIC"}[i]
}

func (r *fullFakeRows) ColumnTypeLength(i int) (int64, bool) {
	if i == 1 {
		return 255, true
	}
	return 0, false
}

func (r *fullFakeRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	return i != 0, true
}

func (r *fullFakeRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if i == 2 {
		return 10, 2, true
	}
	return 0, 0, false
}

type fullFakeTx struct{ st *fakeState }

func (t *fullFakeTx) Commit() error {
	t.st.record("Tx.Commit")
	t.st.mu.Lock()
	defer t.st.mu.Unlock()
	return t.st.commitErr
}

func (t *fullFakeTx) Rollback() error {
	t.st.record("Tx.Rollback")
	return nil
}

// ---------------------------------------------------------------------------
// Helpers to open a fake directly and through wtcache.

// fakeInnerDSN is the DSN the inner driver must receive for id.
func fakeInnerDSN(id string) string { return "somekey=v id=" + id }

// fakeWrappedDSN is fakeInnerDSN with wtcache's parameters interleaved, so
// that removing them must preserve what is around them.
func fakeWrappedDSN(driverName, id string) string {
	return "cache_driver=" + driverName + " somekey=v " + fakeRedisParam + " id=" + id
}

// openFakeDirect opens the fake driverName with a fresh state.
func openFakeDirect(t testing.TB, driverName string) (*sql.DB, *fakeState) {
	t.Helper()
	st, id := newFakeState(t)
	db, err := sql.Open(driverName, fakeInnerDSN(id))
	if err != nil {
		t.Fatalf("sql.Open(%q): %v", driverName, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, st
}

// openFakeWrapped opens the fake driverName through wtcache with a fresh
// state.
func openFakeWrapped(t testing.TB, driverName string) (*sql.DB, *fakeState) {
	t.Helper()
	st, id := newFakeState(t)
	db, err := sql.Open(DriverName, fakeWrappedDSN(driverName, id))
	if err != nil {
		t.Fatalf("sql.Open(wtcache, cache_driver=%s): %v", driverName, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, st
}

// errText is an error's message, or "" for nil, for comparisons.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestFakesImplementWhatTheyClaim guards the fakes themselves: the legacy
// fake must implement no optional interface (else the fallbacks would go
// untested) and the full fake all of them.
func TestFakesImplementWhatTheyClaim(t *testing.T) {
	st := &fakeState{}
	optional := []struct {
		name string
		is   func(any) bool
	}{
		{"DriverContext", func(v any) bool { _, ok := v.(driver.DriverContext); return ok }},
		{"Execer", func(v any) bool { _, ok := v.(driver.Execer); return ok }}, //nolint:staticcheck // checking absence
		{"ExecerContext", func(v any) bool { _, ok := v.(driver.ExecerContext); return ok }},
		{"Queryer", func(v any) bool { _, ok := v.(driver.Queryer); return ok }}, //nolint:staticcheck // checking absence
		{"QueryerContext", func(v any) bool { _, ok := v.(driver.QueryerContext); return ok }},
		{"ConnPrepareContext", func(v any) bool { _, ok := v.(driver.ConnPrepareContext); return ok }},
		{"ConnBeginTx", func(v any) bool { _, ok := v.(driver.ConnBeginTx); return ok }},
		{"Pinger", func(v any) bool { _, ok := v.(driver.Pinger); return ok }},
		{"SessionResetter", func(v any) bool { _, ok := v.(driver.SessionResetter); return ok }},
		{"Validator", func(v any) bool { _, ok := v.(driver.Validator); return ok }},
		{"NamedValueChecker", func(v any) bool { _, ok := v.(driver.NamedValueChecker); return ok }},
		{"ColumnConverter", func(v any) bool { _, ok := v.(driver.ColumnConverter); return ok }}, //nolint:staticcheck // checking absence
		{"StmtExecContext", func(v any) bool { _, ok := v.(driver.StmtExecContext); return ok }},
		{"StmtQueryContext", func(v any) bool { _, ok := v.(driver.StmtQueryContext); return ok }},
		{"RowsNextResultSet", func(v any) bool { _, ok := v.(driver.RowsNextResultSet); return ok }},
		{"RowsColumnTypeScanType", func(v any) bool { _, ok := v.(driver.RowsColumnTypeScanType); return ok }},
		{"RowsColumnTypeDatabaseTypeName", func(v any) bool { _, ok := v.(driver.RowsColumnTypeDatabaseTypeName); return ok }},
		{"RowsColumnTypeLength", func(v any) bool { _, ok := v.(driver.RowsColumnTypeLength); return ok }},
		{"RowsColumnTypeNullable", func(v any) bool { _, ok := v.(driver.RowsColumnTypeNullable); return ok }},
		{"RowsColumnTypePrecisionScale", func(v any) bool { _, ok := v.(driver.RowsColumnTypePrecisionScale); return ok }},
	}
	legacy := []any{legacyFakeDriver{}, &legacyFakeConn{st: st}, &legacyFakeStmt{st: st}, &legacyFakeRows{st: st}, &legacyFakeTx{st: st}}
	for _, v := range legacy {
		for _, o := range optional {
			if o.is(v) {
				t.Errorf("legacy fake %T implements %s; it must implement only the base interface", v, o.name)
			}
		}
	}
	for _, name := range []string{legacyFakeName, fullFakeName} {
		if !slices.Contains(sql.Drivers(), name) {
			t.Errorf("fake %q is not registered", name)
		}
	}
	// Registering again must not panic (the guard of registerFakeOnce).
	registerFakeOnce(legacyFakeName, legacyFakeDriver{})
	registerFakeOnce(fullFakeName, fullFakeDriver{})
}

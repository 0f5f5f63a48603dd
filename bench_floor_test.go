package wtcache_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"io"
	"time"
)

// memDriver is the floor of any lookup through database/sql: a driver that
// answers every query with one account row held in memory, doing no other
// work. A near hit cannot cost less than a query through it.
type memDriver struct{}

func (memDriver) Open(string) (driver.Conn, error) { return memConn{}, nil }

type memConn struct{}

func (memConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (memConn) Close() error                        { return nil }
func (memConn) Begin() (driver.Tx, error)           { return nil, driver.ErrSkip }

func (memConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return &memRows{}, nil
}

var memRow = []driver.Value{int64(3), "owner 3", "30", time.Unix(1700000000, 0)}

type memRows struct{ done bool }

func (*memRows) Columns() []string { return []string{"id", "owner", "balance", "updated_at"} }
func (*memRows) Close() error      { return nil }
func (r *memRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	copy(dest, memRow)
	return nil
}

// openMemDB returns a handle on memDriver with one connection.
func openMemDB() *sql.DB {
	db := sql.OpenDB(memConnector{})
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return db
}

type memConnector struct{}

func (memConnector) Connect(context.Context) (driver.Conn, error) { return memConn{}, nil }
func (memConnector) Driver() driver.Driver                        { return memDriver{} }

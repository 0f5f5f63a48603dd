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

// QueryContext answers one row, or with a key list as its one argument
// one row per key.
func (memConn) QueryContext(_ context.Context, _ string, args []driver.NamedValue) (driver.Rows, error) {
	n := 1
	if len(args) == 1 {
		if ks, ok := args[0].Value.([]int64); ok {
			n = len(ks)
		}
	}
	return &memRows{left: n}, nil
}

// CheckNamedValue takes every argument as it is (a key list among them).
func (memConn) CheckNamedValue(*driver.NamedValue) error { return nil }

var memRow = []driver.Value{int64(3), "owner 3", "30", time.Unix(1700000000, 0)}

type memRows struct{ left int }

func (*memRows) Columns() []string { return []string{"id", "owner", "balance", "updated_at"} }
func (*memRows) Close() error      { return nil }
func (r *memRows) Next(dest []driver.Value) error {
	if r.left == 0 {
		return io.EOF
	}
	r.left--
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

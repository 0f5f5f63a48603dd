package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// mockConnector adapts a sqlmock DSN to a driver.Connector, so that
// NewConnector can wrap it: every connection is sqlmock's, which answers
// only the statements the test expects.
type mockConnector struct {
	dsn string
	drv driver.Driver
}

func (m mockConnector) Connect(context.Context) (driver.Conn, error) {
	c, err := m.drv.Open(m.dsn)
	if err != nil {
		return nil, err
	}
	return mockIdleConn{c.(sqlmockConn)}, nil
}
func (m mockConnector) Driver() driver.Driver { return m.drv }

// sqlmockConn is what sqlmock's connections implement.
type sqlmockConn interface {
	driver.Conn
	driver.QueryerContext
	driver.ExecerContext
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.Pinger
}

// mockIdleConn reports the transaction status a server would: these tests
// open no transaction, so every statement leaves the session idle ('I').
// Without it wtcache serves nothing through a driver (statusKnown).
type mockIdleConn struct{ sqlmockConn }

func (mockIdleConn) wtcacheTxStatus() byte { return 'I' }

// TestDatabaseAskedOnceForTwoReads is the unit proof of the read path: the
// first lookup of a key asks the database exactly what the code needs (the
// session, the name's resolution, the three catalog queries, and one row
// query for the key); the second lookup of the same key, in any of its
// argument forms, is answered from Redis without a single statement
// reaching the database. sqlmock refuses any statement it does not expect.
func TestDatabaseAskedOnceForTwoReads(t *testing.T) {
	ctx := context.Background()
	s := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })

	dsn := fmt.Sprintf("rp-mock-%d", registerCounter.Add(1))
	mdb, mock, err := sqlmock.NewWithDSN(dsn, sqlmock.QueryMatcherOption(sqlmock.QueryMatcherRegexp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mdb.Close() })
	c, err := NewConnector(mockConnector{dsn: dsn, drv: mdb.Driver()}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })

	const oid = int64(16401)
	mock.ExpectQuery(`^SELECT pg_catalog\.current_database\(\)::pg_catalog\.text,\s+pg_catalog\.concat\(pg_catalog\.current_setting\('extra_float_digits'\)`).WithoutArgs().
		WillReturnRows(sqlmock.NewRows([]string{"current_database", "render", "builtin_types"}).AddRow("test", "1/hex", true))
	mock.ExpectQuery(`^SELECT coalesce\(pg_catalog\.to_regclass\(\$1\)::pg_catalog\.oid, 0\)::pg_catalog\.int8,\s+coalesce\(pg_catalog\.has_table_privilege\(pg_catalog\.to_regclass\(\$1\), 'SELECT'\), false\)$`).WithArgs(`"rp_mock"`).
		WillReturnRows(sqlmock.NewRows([]string{"oid", "can_select"}).AddRow(oid, true))
	mock.ExpectQuery(`FROM pg_catalog\.pg_class c JOIN pg_catalog\.pg_namespace n ON n.oid OPERATOR\(pg_catalog\.=\) c.relnamespace\s+WHERE c.oid OPERATOR\(pg_catalog\.=\) \$1$`).WithArgs(oid).
		WillReturnRows(sqlmock.NewRows([]string{"nspname", "relname", "relkind", "relpersistence", "relrowsecurity", "relhassubclass", "indkey", "usercode", "relfilenode", "xmin", "pkindex", "types", "user_equality"}).
			AddRow("public", "rp_mock", "r", "p", false, false, "1", false, oid, "1", oid+1, "|", false))
	mock.ExpectQuery(`FROM pg_catalog\.pg_attribute a\s.*WHERE a.attrelid OPERATOR\(pg_catalog\.=\) \$1 AND a.attnum OPERATOR\(pg_catalog\.>\) 0 AND NOT a.attisdropped\s+ORDER BY a.attnum$`).WithArgs(oid).
		WillReturnRows(sqlmock.NewRows([]string{"attnum", "attname", "atttypid", "typbasetype", "collisdeterministic", "render", "atttypmod", "xmin"}).
			AddRow(int64(1), "id", int64(20), int64(20), true, "", int64(-1), "1").
			AddRow(int64(2), "name", int64(25), int64(25), true, "", int64(-1), "1"))
	mock.ExpectQuery(`FROM pg_catalog\.pg_constraint con\s+WHERE con.confrelid OPERATOR\(pg_catalog\.=\) \$1 AND con.contype OPERATOR\(pg_catalog\.=\) 'f'`).WithArgs(oid).
		WillReturnRows(sqlmock.NewRows([]string{"conrelid", "ondelete", "onupdate", "refcols"}))
	mock.ExpectQuery(`^SELECT "id", "name" FROM "public"\."rp_mock" WHERE "id" OPERATOR\(pg_catalog\.=\) \$1::pg_catalog\.text::pg_catalog\.int8$`).
		WithArgs("5").
		WillReturnRows(sqlmock.NewRowsWithColumnDefinition(
			mock.NewColumn("id").OfType("INT8", int64(0)).Nullable(false),
			mock.NewColumn("name").OfType("TEXT", "").Nullable(true),
		).AddRow(int64(5), "ann"))

	type row struct {
		id   int64
		name string
	}
	read := func(arg any) (row, []*sql.ColumnType) {
		t.Helper()
		rows, err := db.QueryContext(ctx, "SELECT * FROM rp_mock WHERE id = $1", arg)
		if err != nil {
			t.Fatalf("lookup with %#v: %v", arg, err)
		}
		defer rows.Close()
		cts, err := rows.ColumnTypes()
		if err != nil {
			t.Fatal(err)
		}
		var r row
		if !rows.Next() {
			t.Fatalf("lookup with %#v: no row (%v)", arg, rows.Err())
		}
		if err := rows.Scan(&r.id, &r.name); err != nil {
			t.Fatal(err)
		}
		if rows.Next() {
			t.Fatalf("lookup with %#v: more than one row", arg)
		}
		return r, cts
	}
	want := row{5, "ann"}
	if got, _ := read(int64(5)); got != want {
		t.Fatalf("first read: %+v, want %+v", got, want)
	}
	Settle(c)
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatalf("the first read did not ask exactly the expected statements: %v", err)
	}
	stats := func() Stats { s, _ := StatsOf(c); return s }
	if s := stats(); s.Misses != 1 || s.Hits != 0 || s.Bypasses != 0 {
		t.Fatalf("after the first read: %+v, want one miss", s)
	}
	for i, arg := range []any{int64(5), int32(5), "5", rpID(5)} {
		got, cts := read(arg)
		if got != want {
			t.Fatalf("read %d: %+v, want %+v", i+2, got, want)
		}
		if len(cts) != 2 || cts[0].DatabaseTypeName() != "INT8" || cts[1].DatabaseTypeName() != "TEXT" {
			t.Fatalf("column types from the cache: %v", cts)
		}
		if n, ok := cts[1].Nullable(); !ok || !n {
			t.Fatalf("nullable of name from the cache: %v %v", n, ok)
		}
	}
	Settle(c)
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatal(err)
	}
	if s := stats(); s.Misses != 1 || s.Hits != 4 || s.Bypasses != 0 {
		t.Fatalf("after the cached reads: %+v, want 1 miss and 4 hits", s)
	}
}

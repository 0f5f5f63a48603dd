package wtcache_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/wtcache/wtcache"
)

// The differential test is the proof of transparency: every operation runs
// once through plain pgx and once through wtcache, each time on a freshly
// reset schema, and the transcripts must be identical: values with their Go
// types, Columns, ColumnTypes, rows affected, errors with SQLSTATE and
// message, and how errors classify under errors.Is.

// diffTypes is created once: an enum's OID is visible to the application
// (DatabaseTypeName), so it must be the same for both runs.
const diffTypes = `
DROP TABLE IF EXISTS wt_diff_child, wt_diff_parent, wt_diff_types CASCADE;
DROP TYPE IF EXISTS wt_diff_mood CASCADE;
DROP DOMAIN IF EXISTS wt_diff_posint CASCADE;
CREATE TYPE wt_diff_mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN wt_diff_posint AS integer CHECK (VALUE > 0);
`

// diffSchema resets the tables before every run of every operation.
const diffSchema = `
DROP TABLE IF EXISTS wt_diff_child, wt_diff_parent, wt_diff_types CASCADE;
CREATE TABLE wt_diff_parent (
	id bigint PRIMARY KEY,
	name text NOT NULL UNIQUE,
	balance numeric(12,2) NOT NULL DEFAULT 0
);
CREATE TABLE wt_diff_child (
	id serial PRIMARY KEY,
	parent_id bigint NOT NULL REFERENCES wt_diff_parent(id),
	note text
);
CREATE TABLE wt_diff_types (
	id integer PRIMARY KEY,
	c_int2 smallint, c_int4 integer, c_int8 bigint,
	c_num numeric(30,10), c_num_free numeric, c_real real, c_double double precision,
	c_text text, c_varchar varchar(20), c_char char(5), c_bool boolean, c_bytea bytea,
	c_uuid uuid, c_json json, c_jsonb jsonb, c_date date, c_time time, c_timetz timetz,
	c_ts timestamp, c_tstz timestamptz, c_interval interval, c_inet inet, c_cidr cidr,
	c_macaddr macaddr, c_int_arr integer[], c_text_arr text[], c_mood wt_diff_mood,
	c_posint wt_diff_posint
);
INSERT INTO wt_diff_parent VALUES (1, 'alice', 100.50), (2, 'bob', 20), (3, 'carol', 0);
INSERT INTO wt_diff_child (parent_id, note) VALUES (1, 'a1'), (1, 'a2'), (2, NULL);
INSERT INTO wt_diff_types VALUES
 (1, 1, 2, 3, 12345678901234567890.0123456789, 'NaN', 'Infinity', '-Infinity',
  'text', 'varchar', 'ch', true, '\xdeadbeef', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"a": [1, 2]}', '{"b": {"c": null}}', '2024-02-29', '13:14:15.123456', '13:14:15+05:30',
  '2024-02-29 13:14:15.5', '2024-02-29 13:14:15.5+01', '1 year 2 mons 3 days 04:05:06',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '{1,NULL,3}', '{"a","b c",NULL}', 'happy', 7),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
`

// transcript records everything the application can observe.
type transcript struct{ lines []string }

func (tr *transcript) add(format string, args ...any) {
	tr.lines = append(tr.lines, fmt.Sprintf(format, args...))
}

func (tr *transcript) err(where string, err error) {
	if err == nil {
		tr.add("%s: ok", where)
		return
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		tr.add("%s: pg error %s %s: %s (detail %q, constraint %q)", where, pgErr.Severity, pgErr.Code, pgErr.Message, pgErr.Detail, pgErr.ConstraintName)
	}
	tr.add("%s: error %T %q badconn=%v canceled=%v deadline=%v norows=%v txdone=%v", where, err, err.Error(),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, sql.ErrNoRows), errors.Is(err, sql.ErrTxDone))
}

func (tr *transcript) result(res sql.Result, err error) {
	tr.err("exec", err)
	if err != nil {
		return
	}
	n, err := res.RowsAffected()
	tr.add("rows affected %d", n)
	tr.err("rows affected", err)
	id, err := res.LastInsertId()
	tr.add("last insert id %d", id)
	tr.err("last insert id", err)
}

func (tr *transcript) rows(rows *sql.Rows, err error) {
	tr.err("query", err)
	if err != nil {
		return
	}
	defer rows.Close()
	for set := 0; ; set++ {
		cols, err := rows.Columns()
		tr.add("set %d columns %q", set, cols)
		tr.err("columns", err)
		types, err := rows.ColumnTypes()
		tr.err("column types", err)
		for _, ct := range types {
			length, hasLength := ct.Length()
			nullable, hasNullable := ct.Nullable()
			prec, scale, hasDecimal := ct.DecimalSize()
			tr.add("  column %s db=%s scan=%v length=%d,%v nullable=%v,%v decimal=%d,%d,%v", ct.Name(),
				ct.DatabaseTypeName(), ct.ScanType(), length, hasLength, nullable, hasNullable, prec, scale, hasDecimal)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			tr.err("scan", rows.Scan(ptrs...))
			var b strings.Builder
			for _, v := range vals {
				fmt.Fprintf(&b, " %T(%v)", v, v)
			}
			tr.add("  row%s", b.String())
		}
		tr.err("rows.Err", rows.Err())
		if !rows.NextResultSet() {
			tr.add("no next result set")
			tr.err("rows.Err after NextResultSet", rows.Err())
			break
		}
	}
	tr.err("rows.Close", rows.Close())
}

type diffOp struct {
	name string
	run  func(ctx context.Context, t *testing.T, db *sql.DB, tr *transcript)
}

func query(q string, args ...any) func(context.Context, *testing.T, *sql.DB, *transcript) {
	return func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
		tr.rows(db.QueryContext(ctx, q, args...))
	}
}

func exec(q string, args ...any) func(context.Context, *testing.T, *sql.DB, *transcript) {
	return func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
		tr.result(db.ExecContext(ctx, q, args...))
	}
}

// inTx runs steps in a transaction with opts, then commits or rolls back,
// then reads the parent table back outside the transaction.
func inTx(opts *sql.TxOptions, commit bool, steps ...func(ctx context.Context, tx *sql.Tx, tr *transcript)) func(context.Context, *testing.T, *sql.DB, *transcript) {
	return func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
		tx, err := db.BeginTx(ctx, opts)
		tr.err("begin", err)
		if err != nil {
			return
		}
		for _, s := range steps {
			s(ctx, tx, tr)
		}
		if commit {
			tr.err("commit", tx.Commit())
		} else {
			tr.err("rollback", tx.Rollback())
		}
		tr.err("second rollback", tx.Rollback())
		tr.rows(db.QueryContext(ctx, "SELECT id, name, balance FROM wt_diff_parent ORDER BY id"))
	}
}

func txExec(q string, args ...any) func(context.Context, *sql.Tx, *transcript) {
	return func(ctx context.Context, tx *sql.Tx, tr *transcript) { tr.result(tx.ExecContext(ctx, q, args...)) }
}

func txQuery(q string, args ...any) func(context.Context, *sql.Tx, *transcript) {
	return func(ctx context.Context, tx *sql.Tx, tr *transcript) { tr.rows(tx.QueryContext(ctx, q, args...)) }
}

func diffOps() []diffOp {
	ts := time.Date(2024, 2, 29, 13, 14, 15, 500000000, time.FixedZone("X", 3600))
	numeric := pgtype.Numeric{Int: big.NewInt(123456789), Exp: -4, Valid: true}
	return []diffOp{
		{"literals of every integer width", query("SELECT 1::int2, 2::int4, 3::int8, 4.5::float4, 6.25::float8")},
		{"common Go argument types", query("SELECT $1::int8, $2::float8, $3::bool, $4::text, $5::bytea, $6::timestamptz, $7::text",
			int64(42), 3.5, true, "héllo", []byte{0, 1, 255}, ts, nil)},
		{"narrow Go integer and float types", query("SELECT $1::int2, $2::int4, $3::int8, $4::float4, $5::numeric",
			int16(-7), int32(1<<30), uint32(4000000000), float32(1.5), "12.34")},
		{"pgx []string argument", query("SELECT $1::text[], cardinality($1::text[])", []string{"a", "b", ""})},
		{"pgx []int64 with ANY", query("SELECT id, name FROM wt_diff_parent WHERE id = ANY($1) ORDER BY id", []int64{1, 3, 99})},
		{"pgtype values as arguments", query("SELECT $1::numeric, $2::text, $3::int8", numeric, pgtype.Text{String: "t", Valid: true}, pgtype.Int8{})},
		{"pgx.NamedArgs", query("SELECT @a::int + @b::int AS sum, @c::text", pgx.NamedArgs{"a": 1, "b": 2, "c": "x"})},
		{"sql.Named arguments", query("SELECT $1::int", sql.Named("a", 1))},
		{"uuid as text and as bytes", query("SELECT $1::uuid, $2::uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
			[16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11})},
		{"json from a Go map", query("SELECT $1::jsonb", map[string]any{"k": []any{1.0, "v", nil}})},
		{"NULL in every position", query("SELECT NULL::int, NULL::text, NULL::bytea, NULL::timestamptz, NULL::numeric, NULL::bool")},
		{"numeric NaN and float infinities", query("SELECT 'NaN'::numeric, 'Infinity'::float8, '-Infinity'::float4, 'NaN'::float8, 1e-30::float8")},
		{"arrays with NULLs", query("SELECT ARRAY[1,NULL,3], ARRAY['a',NULL,'c d'], '{}'::int[], ARRAY[[1,2],[3,4]]")},
		{"ColumnTypes and values of the common types", query("SELECT * FROM wt_diff_types ORDER BY id")},
		{"ColumnTypes of a typed projection", query("SELECT c_num, c_varchar, c_char, c_int_arr, c_mood, c_posint FROM wt_diff_types WHERE id = $1", 1)},
		{"large text and bytea arguments", query("SELECT length($1::text), length($2::bytea)", strings.Repeat("x", 1<<20), make([]byte, 1<<19))},
		{"many rows", query("SELECT g, g::text, g % 7 = 0 FROM generate_series(1, 2000) g")},
		{"empty result", query("SELECT id FROM wt_diff_parent WHERE id < 0")},
		{"QueryRow with no rows", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			var id int64
			tr.err("queryrow", db.QueryRowContext(ctx, "SELECT id FROM wt_diff_parent WHERE id = $1", 404).Scan(&id))
		}},
		{"QueryRow scanned into typed destinations", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			var (
				id      int64
				name    string
				balance float64
				ts      time.Time
				raw     []byte
				ns      sql.NullString
			)
			err := db.QueryRowContext(ctx, "SELECT p.id, p.name, p.balance, t.c_tstz, t.c_bytea, t.c_text FROM wt_diff_parent p, wt_diff_types t WHERE p.id = 1 AND t.id = 1").
				Scan(&id, &name, &balance, &ts, &raw, &ns)
			tr.err("scan", err)
			tr.add("%d %s %v %v %x %v", id, name, balance, ts, raw, ns)
		}},
		{"INSERT with rows affected", exec("INSERT INTO wt_diff_parent (id, name) VALUES ($1, $2), ($3, $4)", 10, "dave", 11, "erin")},
		{"UPDATE many rows", exec("UPDATE wt_diff_parent SET balance = balance + $1 WHERE id <= $2", "1.25", 2)},
		{"DELETE", exec("DELETE FROM wt_diff_child WHERE parent_id = $1", 1)},
		{"INSERT ... RETURNING through Query", query("INSERT INTO wt_diff_child (parent_id, note) VALUES ($1, $2) RETURNING id, parent_id, note", 3, "c1")},
		{"INSERT ... ON CONFLICT DO UPDATE", exec("INSERT INTO wt_diff_parent (id, name, balance) VALUES (1, 'alice', 5) ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance")},
		{"unique violation", exec("INSERT INTO wt_diff_parent (id, name) VALUES ($1, $2)", 1, "dup")},
		{"foreign-key violation", exec("INSERT INTO wt_diff_child (parent_id) VALUES ($1)", 999)},
		{"not-null violation", exec("INSERT INTO wt_diff_parent (id) VALUES (50)")},
		{"check violation through a domain", exec("INSERT INTO wt_diff_types (id, c_posint) VALUES (9, -1)")},
		{"syntax error", query("SELEC 1")},
		{"undefined table", query("SELECT * FROM wt_diff_nowhere")},
		{"division by zero while rows stream", query("SELECT 10 / (3 - g) FROM generate_series(1, 5) g")},
		{"wrong argument count", query("SELECT $1::int, $2::int", 1)},
		{"argument of the wrong type", query("SELECT $1::int", "not a number")},
		{"multi-statement Exec", exec("UPDATE wt_diff_parent SET balance = 1 WHERE id = 1; UPDATE wt_diff_parent SET balance = 2 WHERE id IN (2, 3); DELETE FROM wt_diff_child WHERE note IS NULL")},
		{"multi-statement Exec failing half-way", exec("UPDATE wt_diff_parent SET balance = 7 WHERE id = 1; SELECT 1/0; UPDATE wt_diff_parent SET balance = 8 WHERE id = 2")},
		{"multi-statement Query", query("SELECT 1; SELECT 2")},
		{"NextResultSet on a single result", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			rows, err := db.QueryContext(ctx, "SELECT id FROM wt_diff_parent ORDER BY id")
			tr.err("query", err)
			if err != nil {
				return
			}
			for rows.Next() {
			}
			tr.add("next result set: %v", rows.NextResultSet())
			tr.err("err", rows.Err())
			tr.err("close", rows.Close())
		}},
		{"prepared query reused many times", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			st, err := db.PrepareContext(ctx, "SELECT id, name, balance FROM wt_diff_parent WHERE id = $1")
			tr.err("prepare", err)
			if err != nil {
				return
			}
			defer st.Close()
			for i := 0; i < 60; i++ {
				tr.rows(st.QueryContext(ctx, i%4))
			}
		}},
		{"prepared exec reused many times", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			st, err := db.PrepareContext(ctx, "UPDATE wt_diff_parent SET balance = balance + 1 WHERE id = $1")
			tr.err("prepare", err)
			if err != nil {
				return
			}
			for i := 0; i < 40; i++ {
				tr.result(st.ExecContext(ctx, i%3+1))
			}
			tr.err("close", st.Close())
			tr.rows(db.QueryContext(ctx, "SELECT id, balance FROM wt_diff_parent ORDER BY id"))
		}},
		{"prepare of invalid SQL", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			_, err := db.PrepareContext(ctx, "SELECT FROM WHERE")
			tr.err("prepare", err)
		}},
		{"transaction committed", inTx(nil, true,
			txExec("UPDATE wt_diff_parent SET balance = balance - 10 WHERE id = 1"),
			txExec("UPDATE wt_diff_parent SET balance = balance + 10 WHERE id = 2"))},
		{"transaction rolled back", inTx(nil, false,
			txExec("DELETE FROM wt_diff_child"),
			txExec("DELETE FROM wt_diff_parent"))},
		{"read uncommitted", inTx(&sql.TxOptions{Isolation: sql.LevelReadUncommitted}, true, txQuery("SHOW transaction_isolation"))},
		{"read committed", inTx(&sql.TxOptions{Isolation: sql.LevelReadCommitted}, true, txQuery("SHOW transaction_isolation"))},
		{"repeatable read", inTx(&sql.TxOptions{Isolation: sql.LevelRepeatableRead}, true, txQuery("SHOW transaction_isolation"))},
		{"serializable", inTx(&sql.TxOptions{Isolation: sql.LevelSerializable}, true, txQuery("SHOW transaction_isolation"))},
		{"unsupported isolation level", inTx(&sql.TxOptions{Isolation: sql.LevelLinearizable}, true)},
		{"read-only transaction refuses a write", inTx(&sql.TxOptions{ReadOnly: true}, true,
			txQuery("SHOW transaction_read_only"),
			txExec("UPDATE wt_diff_parent SET balance = 0"))},
		{"savepoints", inTx(nil, true,
			txExec("UPDATE wt_diff_parent SET balance = 1 WHERE id = 1"),
			txExec("SAVEPOINT s1"),
			txExec("UPDATE wt_diff_parent SET balance = 2 WHERE id = 1"),
			txExec("INSERT INTO wt_diff_parent (id, name) VALUES (20, 'zed')"),
			txExec("ROLLBACK TO SAVEPOINT s1"),
			txExec("RELEASE SAVEPOINT s1"),
			txQuery("SELECT balance FROM wt_diff_parent WHERE id = 1"))},
		{"statement after an error in a transaction", inTx(nil, true,
			txExec("INSERT INTO wt_diff_parent (id, name) VALUES (1, 'dup')"),
			txQuery("SELECT 1"))},
		{"prepared statement inside a transaction", inTx(nil, true, func(ctx context.Context, tx *sql.Tx, tr *transcript) {
			st, err := tx.PrepareContext(ctx, "INSERT INTO wt_diff_child (parent_id, note) VALUES ($1, $2)")
			tr.err("prepare", err)
			if err != nil {
				return
			}
			for i := 0; i < 5; i++ {
				tr.result(st.ExecContext(ctx, 2, fmt.Sprint("n", i)))
			}
		}, txQuery("SELECT count(*) FROM wt_diff_child"))},
		{"query cancelled by its context mid-flight", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
			defer cancel()
			tr.rows(db.QueryContext(cctx, "SELECT pg_sleep(5)"))
			tr.rows(db.QueryContext(ctx, "SELECT 'still usable'"))
		}},
		{"exec cancelled by its context mid-flight", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			cctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(150*time.Millisecond, cancel)
			tr.result(db.ExecContext(cctx, "SELECT pg_sleep(5)"))
		}},
		{"context cancelled before the statement", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			tr.result(db.ExecContext(cctx, "UPDATE wt_diff_parent SET balance = 0"))
			tr.rows(db.QueryContext(cctx, "SELECT 1"))
			_, err := db.BeginTx(cctx, nil)
			tr.err("begin", err)
		}},
		{"session settings on a pinned connection", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			c, err := db.Conn(ctx)
			tr.err("conn", err)
			if err != nil {
				return
			}
			defer c.Close()
			tr.result(c.ExecContext(ctx, "SET TIME ZONE 'America/Sao_Paulo'"))
			tr.rows(c.QueryContext(ctx, "SELECT c_tstz, c_timetz, c_ts FROM wt_diff_types WHERE id = 1"))
			tr.result(c.ExecContext(ctx, "RESET TIME ZONE"))
		}},
		{"ping", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			tr.err("ping", db.PingContext(ctx))
		}},
		{"connection terminated by the server", func(ctx context.Context, _ *testing.T, db *sql.DB, tr *transcript) {
			c, err := db.Conn(ctx)
			tr.err("conn", err)
			if err != nil {
				return
			}
			defer c.Close()
			var pid int
			tr.err("pid", c.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid))
			var ok bool
			tr.err("terminate", db.QueryRowContext(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ok))
			time.Sleep(50 * time.Millisecond)
			tr.rows(c.QueryContext(ctx, "SELECT 1"))
			tr.rows(db.QueryContext(ctx, "SELECT 'pool recovers'"))
		}},
	}
}

func TestDifferentialAgainstPgx(t *testing.T) {
	env := requireIntegration(t)
	plain := openDB(t, "pgx", env.DatabaseURL)
	wrapped := openDB(t, "wtcache", wtcacheDSN(t, env.DatabaseURL, env.RedisURL))
	ctx := context.Background()
	t.Cleanup(func() {
		_, _ = plain.ExecContext(ctx, "DROP TABLE IF EXISTS wt_diff_child, wt_diff_parent, wt_diff_types CASCADE; DROP TYPE IF EXISTS wt_diff_mood CASCADE; DROP DOMAIN IF EXISTS wt_diff_posint CASCADE")
	})

	if _, err := plain.ExecContext(ctx, diffTypes); err != nil {
		t.Fatalf("create types: %v", err)
	}
	ops := diffOps()
	if len(ops) < 40 {
		t.Fatalf("the differential test needs at least 40 operations, has %d", len(ops))
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			var got [2]transcript
			for i, db := range []*sql.DB{plain, wrapped} {
				if _, err := plain.ExecContext(ctx, diffSchema); err != nil {
					t.Fatalf("reset schema: %v", err)
				}
				op.run(ctx, t, db, &got[i])
				// Let the pool settle the same way for both (cancelled
				// connections are closed asynchronously).
				db.SetMaxIdleConns(0)
				db.SetMaxIdleConns(2)
			}
			if len(got[0].lines) == 0 {
				t.Fatal("the operation recorded nothing")
			}
			if !reflect.DeepEqual(got[0].lines, got[1].lines) {
				t.Errorf("wtcache differs from pgx:\n%s", diffLines(got[0].lines, got[1].lines))
			}
		})
	}
}

func diffLines(a, b []string) string {
	var out strings.Builder
	n := max(len(a), len(b))
	for i := 0; i < n; i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		mark := "  "
		if x != y {
			mark = "! "
		}
		fmt.Fprintf(&out, "%spgx:     %s\n%swtcache: %s\n", mark, x, mark, y)
	}
	return out.String()
}

// TestRawReachesPgx proves that (*sql.Conn).Raw hands out a connection from
// which pgx-specific features stay usable: CopyFrom through *stdlib.Conn.
func TestRawReachesPgx(t *testing.T) {
	env := requireIntegration(t)
	db := openDB(t, "wtcache", wtcacheDSN(t, env.DatabaseURL, env.RedisURL))
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS wt_raw_copy; CREATE TABLE wt_raw_copy (id int PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.ExecContext(ctx, "DROP TABLE IF EXISTS wt_raw_copy") })
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var copied int64
	err = c.Raw(func(driverConn any) error {
		sc, ok := wtcache.InnerConn(driverConn).(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("InnerConn gave %T, want *stdlib.Conn", wtcache.InnerConn(driverConn))
		}
		var err error
		copied, err = sc.Conn().CopyFrom(ctx, pgx.Identifier{"wt_raw_copy"}, []string{"id", "v"},
			pgx.CopyFromRows([][]any{{1, "a"}, {2, "b"}, {3, "c"}}))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := c.QueryRowContext(ctx, "SELECT count(*) FROM wt_raw_copy").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if copied != 3 || n != 3 {
		t.Fatalf("CopyFrom through Raw: copied %d, table has %d rows; want 3 and 3", copied, n)
	}
}

package wtcache_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache"
)

// openCached opens wtcache through the Go API and returns the connector too,
// so that tests can wait for fills and read the counters.
func openCached(t testing.TB, env integrationEnv, opts ...wtcache.Option) (*sql.DB, driver.Connector, *redis.Client) {
	t.Helper()
	cfg, err := pgx.ParseConfig(env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("lt-%s-%p", t.Name(), t)
	rdb := testRedis(t, env, prefix)
	opts = append([]wtcache.Option{wtcache.WithKeyPrefix(prefix)}, opts...)
	c, err := wtcache.NewConnector(stdlib.GetConnector(*cfg), rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db, c, rdb
}

// testRedis is a client of the test Redis. At cleanup, after what was
// opened later (a handle using it) is closed, it deletes the keys under
// prefix and closes.
func testRedis(t testing.TB, env integrationEnv, prefix string) *redis.Client {
	t.Helper()
	ropts, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropts)
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), "{"+prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
		_ = rdb.Close()
	})
	return rdb
}

const typeMatrixSchema = `
DROP TABLE IF EXISTS wt_types CASCADE;
DROP TYPE IF EXISTS wt_mood CASCADE;
DROP DOMAIN IF EXISTS wt_posint CASCADE;
CREATE TYPE wt_mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN wt_posint AS integer CHECK (VALUE > 0);
CREATE TABLE wt_types (
	id bigint PRIMARY KEY,
	c_int2 smallint, c_int4 integer, c_int8 bigint,
	c_num numeric(40,10), c_num_nan numeric, c_real real, c_double double precision,
	c_text text, c_varchar varchar(20), c_char char(5), c_bool boolean, c_bytea bytea,
	c_uuid uuid, c_json json, c_jsonb jsonb, c_date date, c_time time, c_timetz timetz,
	c_ts timestamp, c_tstz timestamptz, c_interval interval, c_inet inet, c_cidr cidr,
	c_macaddr macaddr, c_int_arr integer[], c_text_arr text[], c_mood wt_mood, c_posint wt_posint
);
INSERT INTO wt_types VALUES
 (1, -32768, 2147483647, -9223372036854775808, 123456789012345678901234567890.0123456789, 'NaN',
  'Infinity', 'NaN', 'text ✓', 'varchar', 'ch', true, '\x00deadbeef',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": {"c": null}}', '2024-02-29',
  '13:14:15.123456', '13:14:15+05:30', '2024-02-29 13:14:15.5', '2024-02-29 13:14:15.5+01',
  '1 year 2 mons 3 days 04:05:06', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
  '{1,NULL,3}', '{"a","b c",NULL}', 'happy', 7),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, 0, 0, -0.5, '-Infinity', '-Infinity', 'Infinity', '', '', '', false, '',
  '00000000-0000-0000-0000-000000000000', 'null', '[]', '0001-01-01', '00:00:00', '00:00:00-12',
  '1999-12-31 23:59:59.999999', '1970-01-01 00:00:00+00', '-1 days', '::1', '::/0', 'ff:ff:ff:ff:ff:ff',
  '{}', '{}', 'sad', 1);
`

// TestTypeMatrixHitEqualsPgx is the read path's proof of exactness: for
// every row of a table holding every common type (NULL in every column on
// one row), under a non-UTC session time zone, a wtcache miss and a
// wtcache hit give the same transcript as plain pgx: Columns, ColumnTypes
// and every value with its Go type.
func TestTypeMatrixHitEqualsPgx(t *testing.T) {
	env := requireIntegration(t)
	ctx := context.Background()
	plain := openDB(t, "pgx", env.DatabaseURL+"&timezone=America/Sao_Paulo")
	if _, err := plain.ExecContext(ctx, typeMatrixSchema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = plain.ExecContext(ctx, "DROP TABLE IF EXISTS wt_types") })
	env.DatabaseURL += "&timezone=America/Sao_Paulo"
	cached, conn, _ := openCached(t, env)

	queries := []string{
		"SELECT * FROM wt_types WHERE id = $1",
		`SELECT "wt_types".* FROM "wt_types" WHERE "wt_types"."id" = $1 LIMIT 1`,
		"SELECT c_tstz, c_num, c_bytea, id AS ident, c_mood, c_posint, c_char, c_varchar FROM wt_types t WHERE t.id = $1",
		"SELECT * FROM public.wt_types WHERE id IN ($1, 999)",
	}
	for _, q := range queries {
		for id := 1; id <= 3; id++ {
			t.Run(fmt.Sprintf("%s/%d", q, id), func(t *testing.T) {
				var want, miss, hit transcript
				want.rows(plain.QueryContext(ctx, q, id))
				h0, _, _ := wtcache.Counters(conn)
				miss.rows(cached.QueryContext(ctx, q, id))
				wtcache.Settle(conn)
				hit.rows(cached.QueryContext(ctx, q, id))
				h1, _, _ := wtcache.Counters(conn)
				if h1 == h0 {
					t.Fatalf("the second read was not served from Redis")
				}
				if !reflect.DeepEqual(want.lines, miss.lines) {
					t.Errorf("miss differs from pgx:\n%s", diffLines(want.lines, miss.lines))
				}
				if !reflect.DeepEqual(want.lines, hit.lines) {
					t.Errorf("hit differs from pgx:\n%s", diffLines(want.lines, hit.lines))
				}
			})
		}
	}
}

// TestScanIntoEveryGoType scans a hit into typed destinations, as
// applications do, and compares with pgx.
func TestScanIntoEveryGoType(t *testing.T) {
	env := requireIntegration(t)
	ctx := context.Background()
	plain := openDB(t, "pgx", env.DatabaseURL)
	if _, err := plain.ExecContext(ctx, typeMatrixSchema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = plain.ExecContext(ctx, "DROP TABLE IF EXISTS wt_types") })
	cached, conn, _ := openCached(t, env)
	scan := func(db *sql.DB) string {
		var (
			i2, i4, i8 sql.NullInt64
			num        sql.NullString
			fl         sql.NullFloat64
			txt        sql.NullString
			b          sql.NullBool
			by         []byte
			ts         sql.NullTime
			js         []byte
			mood       sql.NullString
		)
		err := db.QueryRowContext(ctx, "SELECT c_int2, c_int4, c_int8, c_num, c_double, c_text, c_bool, c_bytea, c_tstz, c_jsonb, c_mood FROM wt_types WHERE id = $1", 1).
			Scan(&i2, &i4, &i8, &num, &fl, &txt, &b, &by, &ts, &js, &mood)
		return fmt.Sprintf("%v %v %v %v %v %v %v %x %v %s %v %v", i2, i4, i8, num, fl, txt, b, by, ts, js, mood, err)
	}
	want := scan(plain)
	first := scan(cached)
	wtcache.Settle(conn)
	second := scan(cached)
	if first != want || second != want {
		t.Fatalf("scans differ:\n pgx  %s\n miss %s\n hit  %s", want, first, second)
	}
}

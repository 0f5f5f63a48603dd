package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/faultproxy"
	"github.com/wtcache/wtcache/internal/proto"
	"github.com/wtcache/wtcache/internal/recognize"
	"github.com/wtcache/wtcache/internal/rowcodec"
)

// Integration tests of the read path against real PostgreSQL and Redis:
// what is never cached, namespaces (roles, search_path, schema names),
// multi-key and composite lookups, filters, corrupt entries, TTLs, entry
// size, shared misses and the plan cache bound. Every table is named rp_*.

type rpQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func rpStats(c *connector) Stats { s, _ := StatsOf(c); return s }

// rpRender renders rows, one string per row, every value with its Go type.
func rpRender(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := []string{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		var b strings.Builder
		for i, v := range vals {
			fmt.Fprintf(&b, "%s=%T(%v) ", cols[i], v, v)
		}
		out = append(out, b.String())
	}
	return out, rows.Err()
}

func rpQuery(t testing.TB, q rpQuerier, query string, args ...any) []string {
	t.Helper()
	out, err := rpRender(q.QueryContext(context.Background(), query, args...))
	if err != nil {
		t.Fatalf("%s %v: %v", query, args, err)
	}
	return out
}

// rpSame compares results; unordered compares them as multisets.
func rpSame(t testing.TB, what string, want, got []string, ordered bool) {
	t.Helper()
	if !ordered {
		want, got = slices.Clone(want), slices.Clone(got)
		slices.Sort(want)
		slices.Sort(got)
	}
	if !slices.Equal(want, got) {
		t.Fatalf("%s:\n want %q\n got  %q", what, want, got)
	}
}

func rpSetup(t testing.TB, e itEnv, ddl, drop string) *sql.DB {
	t.Helper()
	p := e.plain(t)
	mustExec(t, p, drop)
	mustExec(t, p, ddl)
	t.Cleanup(func() { _, _ = p.ExecContext(context.Background(), drop) })
	return p
}

func rpPrefix(name string) string {
	return fmt.Sprintf("rp%d-%d-%s", time.Now().UnixNano()%1e9, prefixSeq.Add(1), name)
}

// rpRowKey is the Redis key of a row of public.<table> for the DSN's
// database and user.
func rpRowKey(t testing.TB, e itEnv, prefix, schema, table string, parts ...string) string {
	t.Helper()
	var db string
	if err := e.plain(t).QueryRowContext(context.Background(), "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	return rowKey(tableTag(prefix, db, recognize.Table{Schema: schema, Name: table}), parts)
}

// rpImage returns the row image stored for row key k (without the
// generation it was stored under), redis.Nil when there is none.
func rpImage(t testing.TB, e itEnv, k string) ([]byte, error) {
	t.Helper()
	stored, err := e.rdb.Get(context.Background(), proto.ImageKey(k)).Result()
	if err != nil {
		return nil, err
	}
	_, img, ok := strings.Cut(stored, " ")
	if !ok {
		return nil, fmt.Errorf("%q holds no generation", stored)
	}
	return []byte(img), nil
}

// rpTableKeys lists the Redis keys whose hash tag names table.
func rpTableKeys(t testing.TB, e itEnv, prefix, table string) []string {
	t.Helper()
	keys, err := e.rdb.Keys(context.Background(), "{"+prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if tag, _ := firstHashTag(k); strings.HasSuffix(tag, "."+table) {
			out = append(out, k)
		}
	}
	return out
}

// rpDSNAs is the test database URL with another user (trust auth).
func rpDSNAs(t testing.TB, dbURL, user string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}

// spyConnector wraps pgx's connector and shows the test every statement a
// connection sends to PostgreSQL through QueryContext, before it runs.
type spyConnector struct {
	inner   driver.Connector
	onQuery func(ctx context.Context, query string, args []driver.NamedValue)
	// afterQuery, if set, runs once the statement has run (its snapshot
	// taken), before its rows are handed back.
	afterQuery func(query string, args []driver.NamedValue)
}

func (s *spyConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := s.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &spyConn{Conn: c.(*stdlib.Conn), s: s}, nil
}

func (s *spyConnector) Driver() driver.Driver { return s.inner.Driver() }

type spyConn struct {
	*stdlib.Conn
	s *spyConnector
}

// wtcacheTxStatus reports pgx's transaction status, as wtcache reads it
// from a *stdlib.Conn.
func (c *spyConn) wtcacheTxStatus() byte { return c.Conn.Conn().PgConn().TxStatus() }

func (c *spyConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if f := c.s.onQuery; f != nil {
		f(ctx, query, args)
	}
	rows, err := c.Conn.QueryContext(ctx, query, args)
	if f := c.s.afterQuery; f != nil && err == nil {
		f(query, args)
	}
	return rows, err
}

// openSpy opens wtcache over a spyConnector.
func (e itEnv) openSpy(t testing.TB, prefix string, onQuery func(context.Context, string, []driver.NamedValue), opts ...Option) (*sql.DB, *connector) {
	t.Helper()
	return e.openSpyVia(t, nil, prefix, onQuery, opts...)
}

// openSpyVia is openSpy with the Redis client's options changed by
// redisOpts (when not nil).
func (e itEnv) openSpyVia(t testing.TB, redisOpts func(*redis.Options), prefix string, onQuery func(context.Context, string, []driver.NamedValue), opts ...Option) (*sql.DB, *connector) {
	t.Helper()
	cfg, err := pgx.ParseConfig(e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ropts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	if redisOpts != nil {
		redisOpts(ropts)
	}
	rdb := redis.NewClient(ropts)
	c, err := NewConnector(&spyConnector{inner: stdlib.GetConnector(*cfg), onQuery: onQuery}, rdb,
		append([]Option{WithKeyPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() {
		_ = db.Close()
		if keys, _ := e.rdb.Keys(context.Background(), "{"+prefix+":*").Result(); len(keys) > 0 {
			e.rdb.Del(context.Background(), keys...)
		}
		_ = rdb.Close()
	})
	return db, c.(*connector)
}

// missReads records the key arrays of the statements a miss sends.
type missReads struct {
	mu    sync.Mutex
	reads [][]string
}

func (m *missReads) hook(ctx context.Context, query string, args []driver.NamedValue) {
	if keys := missKeys(query, args); keys != nil {
		m.mu.Lock()
		m.reads = append(m.reads, keys)
		m.mu.Unlock()
	}
}

// missKeys returns the keys (of the last key column) a miss read asks
// for, or nil if query is not one: "... OPERATOR(pg_catalog.=) ANY($1::pg_catalog.text[]::pg_catalog.int8[])" for
// many keys, "... OPERATOR(pg_catalog.=) $1::pg_catalog.text::pg_catalog.int8" for one.
func missKeys(query string, args []driver.NamedValue) []string {
	if len(args) == 0 {
		return nil
	}
	switch a := args[len(args)-1].Value.(type) {
	case []string:
		if strings.Contains(query, "::pg_catalog.text[]::") {
			return slices.Clone(a)
		}
	case string:
		if strings.Contains(query, "::pg_catalog.text::") {
			return []string{a}
		}
	}
	return nil
}

func (m *missReads) take() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.reads
	m.reads = nil
	return r
}

// ---------------------------------------------------------------------------

const rpNeverSchema = `
CREATE TABLE rp_nc_base (id bigint PRIMARY KEY, v text NOT NULL);
CREATE VIEW rp_nc_view AS SELECT id, v FROM rp_nc_base;
CREATE TABLE rp_nc_nopk (id bigint NOT NULL, v text NOT NULL);
CREATE TABLE rp_nc_rls (id bigint PRIMARY KEY, v text NOT NULL);
ALTER TABLE rp_nc_rls ENABLE ROW LEVEL SECURITY;
CREATE TABLE rp_nc_part (id bigint PRIMARY KEY, v text NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE rp_nc_part_1 PARTITION OF rp_nc_part FOR VALUES FROM (0) TO (1000);
CREATE TABLE rp_nc_excl (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE rp_nc_other (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE rp_nc_shadow (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO rp_nc_base SELECT g, 'base-' || g FROM generate_series(1, 3) g;
INSERT INTO rp_nc_nopk SELECT g, 'nopk-' || g FROM generate_series(1, 3) g;
INSERT INTO rp_nc_rls SELECT g, 'rls-' || g FROM generate_series(1, 3) g;
INSERT INTO rp_nc_part SELECT g, 'part-' || g FROM generate_series(1, 3) g;
INSERT INTO rp_nc_excl SELECT g, 'excl-' || g FROM generate_series(1, 3) g;
INSERT INTO rp_nc_other SELECT g, 'other-' || g FROM generate_series(1, 3) g;
INSERT INTO rp_nc_shadow SELECT g, 'shadow-' || g FROM generate_series(1, 3) g;
`

const rpNeverDrop = `DROP VIEW IF EXISTS rp_nc_view; DROP TABLE IF EXISTS rp_nc_base, rp_nc_nopk, rp_nc_rls, rp_nc_part, rp_nc_excl, rp_nc_other, rp_nc_shadow CASCADE`

// TestRPNeverCachedTables: lookups on relations that must never be cached
// (a view, a table without a primary key, a table with row-level security,
// a temporary table, a partitioned table, an excluded table, a table not
// listed in cache_tables, a temporary table shadowing a cached one) return
// the right rows, count as bypasses, never as hits, and leave nothing in
// Redis. The cacheable control table proves that the test sees caching.
func TestRPNeverCachedTables(t *testing.T) {
	e := needServices(t)
	rpSetup(t, e, rpNeverSchema, rpNeverDrop)
	prefix := rpPrefix("nc")
	db, c := e.open(t, prefix,
		"cache_tables="+url.QueryEscape("rp_nc_base,rp_nc_view,rp_nc_nopk,rp_nc_rls,rp_nc_part,rp_nc_excl,rp_nc_tmp,rp_nc_shadow"),
		"cache_exclude=rp_nc_excl")
	ctx := context.Background()
	pinned, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	if _, err := pinned.ExecContext(ctx, "CREATE TEMP TABLE rp_nc_tmp (id bigint PRIMARY KEY, v text NOT NULL); INSERT INTO rp_nc_tmp SELECT g, 'tmp-' || g FROM generate_series(1, 3) g"); err != nil {
		t.Fatal(err)
	}

	// The control: rp_nc_base and rp_nc_shadow are served from Redis.
	for _, tb := range []string{"rp_nc_base", "rp_nc_shadow"} {
		for i := 0; i < 2; i++ {
			rpSame(t, tb, []string{"id=int64(2) v=string(" + strings.TrimPrefix(tb, "rp_nc_") + "-2) "},
				rpQuery(t, pinned, "SELECT id, v FROM "+tb+" WHERE id = $1", 2), true)
			c.settle()
		}
	}
	if s := rpStats(c); s.Hits != 2 || s.Bypasses != 0 {
		t.Fatalf("control tables: %+v, want 2 hits and no bypass", s)
	}
	// A temporary table that shadows a cached table, on that session only.
	if _, err := pinned.ExecContext(ctx, "CREATE TEMP TABLE rp_nc_shadow (id bigint PRIMARY KEY, v text NOT NULL); INSERT INTO rp_nc_shadow VALUES (2, 'temp-2')"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		table, want string
		q           rpQuerier
	}{
		{"rp_nc_view", "base-2", db},
		{"rp_nc_nopk", "nopk-2", db},
		{"rp_nc_rls", "rls-2", db},
		{"rp_nc_tmp", "tmp-2", pinned},
		{"rp_nc_shadow", "temp-2", pinned},
		{"rp_nc_part", "part-2", db},
		{"rp_nc_excl", "excl-2", db},
		{"rp_nc_other", "other-2", db},
	} {
		t.Run(tc.table, func(t *testing.T) {
			before := rpStats(c)
			for _, q := range []string{
				"SELECT id, v FROM " + tc.table + " WHERE id = $1",
				"SELECT * FROM " + tc.table + " WHERE id = $1",
				"SELECT id, v FROM " + tc.table + " WHERE id IN ($1, 99)",
			} {
				for i := 0; i < 2; i++ {
					rpSame(t, q, []string{"id=int64(2) v=string(" + tc.want + ") "}, rpQuery(t, tc.q, q, 2), true)
					c.settle()
				}
			}
			after := rpStats(c)
			if after.Hits != before.Hits || after.Misses != before.Misses {
				t.Fatalf("%s was cached: %+v -> %+v", tc.table, before, after)
			}
			if after.Bypasses != before.Bypasses+6 {
				t.Fatalf("bypasses %d -> %d, want +6", before.Bypasses, after.Bypasses)
			}
			if tc.table != "rp_nc_shadow" {
				if keys := rpTableKeys(t, e, prefix, tc.table); len(keys) > 0 {
					t.Fatalf("Redis holds keys of %s: %q", tc.table, keys)
				}
			}
		})
	}
	// Other sessions still see (and are served) the regular table.
	h := rpStats(c).Hits
	for i := 0; i < 2; i++ {
		rpSame(t, "rp_nc_shadow elsewhere", []string{"id=int64(2) v=string(shadow-2) "}, rpQuery(t, db, "SELECT id, v FROM rp_nc_shadow WHERE id = $1", 2), true)
		c.settle()
	}
	if rpStats(c).Hits == h {
		t.Fatal("the regular rp_nc_shadow is no longer served from Redis to other sessions")
	}
}

// ---------------------------------------------------------------------------

const rpRolesSchema = `
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rp_reader_a') THEN CREATE ROLE rp_reader_a LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rp_reader_b') THEN CREATE ROLE rp_reader_b LOGIN; END IF;
END $$;
CREATE TABLE rp_priv (id bigint PRIMARY KEY, a text NOT NULL, secret text NOT NULL);
INSERT INTO rp_priv SELECT g, 'a' || g, 'secret' || g FROM generate_series(1, 5) g;
CREATE TABLE rp_priv_scratch (id bigint PRIMARY KEY);
GRANT SELECT ON rp_priv TO rp_reader_a;
GRANT SELECT (id, a) ON rp_priv TO rp_reader_b;
GRANT SELECT, INSERT ON rp_priv_scratch TO rp_reader_b;
`

const rpRolesDrop = `DROP TABLE IF EXISTS rp_priv, rp_priv_scratch`

func rpPgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestRPRolesNeverShareEntries: no role is served what it may not read. A
// role with a column privilege on only some columns never gets the full row
// from the cache (entries are shared by roles, so it is never served at all),
// neither when it logs in nor after SET ROLE, nor after a transaction that
// ran SET LOCAL ROLE on a pooled connection: its SELECT * fails with the
// same error as plain pgx.
func TestRPRolesNeverShareEntries(t *testing.T) {
	e := needServices(t)
	rpSetup(t, e, rpRolesSchema, rpRolesDrop)
	ctx := context.Background()
	prefix := rpPrefix("roles")
	asA := itEnv{dbURL: rpDSNAs(t, e.dbURL, "rp_reader_a"), redisURL: e.redisURL, rdb: e.rdb}
	asB := itEnv{dbURL: rpDSNAs(t, e.dbURL, "rp_reader_b"), redisURL: e.redisURL, rdb: e.rdb}
	dbA, cA := asA.open(t, prefix)
	dbB, cB := asB.open(t, prefix)
	dbS, cS := e.open(t, prefix) // the superuser
	plainB := asB.plain(t)

	const star = "SELECT * FROM rp_priv WHERE id = $1"
	full := func(id int) []string {
		return []string{fmt.Sprintf("id=int64(%d) a=string(a%d) secret=string(secret%d) ", id, id, id)}
	}
	// B's SELECT * must fail as plain pgx fails.
	_, wantErr := rpRender(plainB.QueryContext(ctx, star, 1))
	if rpPgCode(wantErr) != "42501" {
		t.Fatalf("plain pgx as rp_reader_b: %v, want permission denied", wantErr)
	}
	checkDenied := func(t *testing.T, q rpQuerier, c *connector, id int) {
		t.Helper()
		h := rpStats(c).Hits
		got, err := rpRender(q.QueryContext(ctx, star, id))
		if err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("SELECT * as rp_reader_b: rows %q, error %v; want the error %v", got, err, wantErr)
		}
		if rpStats(c).Hits != h {
			t.Fatal("a denied lookup counted a hit")
		}
	}

	// A caches row 1 under its own role.
	for i := 0; i < 2; i++ {
		rpSame(t, "A", full(1), rpQuery(t, dbA, star, 1), true)
		cA.settle()
	}
	if rpStats(cA).Hits != 1 {
		t.Fatal("rp_reader_a was not served from Redis")
	}
	t.Run("login role", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			checkDenied(t, dbB, cB, 1)
			cB.settle()
			rpSame(t, "B's allowed columns", []string{"id=int64(1) a=string(a1) "}, rpQuery(t, dbB, "SELECT id, a FROM rp_priv WHERE id = $1", 1), true)
			cB.settle()
		}
		if s := rpStats(cB); s.Hits != 0 {
			t.Fatalf("rp_reader_b was served from Redis: %+v", s)
		}
	})
	t.Run("shared entries, privilege checked", func(t *testing.T) {
		// Roles share entries (a write by any role must reach them all);
		// a role without SELECT on the whole table is never served from
		// them.
		a := rpRowKey(t, asA, prefix, "public", "rp_priv", "1")
		if n, _ := e.rdb.Exists(ctx, proto.ImageKey(a)).Result(); n != 1 {
			t.Fatalf("the entry %q is missing", a)
		}
		if b := rpRowKey(t, asB, prefix, "public", "rp_priv", "1"); b != a {
			t.Fatalf("roles A and B have different keys %q and %q: a write by one would not reach the other", a, b)
		}
		checkDenied(t, dbB, cB, 1)
	})
	t.Run("SET ROLE", func(t *testing.T) {
		conn, err := dbS.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		rpSame(t, "superuser", full(2), rpQuery(t, conn, star, 2), true)
		cS.settle()
		if _, err := conn.ExecContext(ctx, "SET ROLE rp_reader_b"); err != nil {
			t.Fatal(err)
		}
		checkDenied(t, conn, cS, 2)
		if _, err := conn.ExecContext(ctx, "RESET ROLE"); err != nil {
			t.Fatal(err)
		}
		h := rpStats(cS).Hits
		rpSame(t, "superuser after RESET ROLE", full(2), rpQuery(t, conn, star, 2), true)
		if rpStats(cS).Hits != h+1 {
			t.Fatal("after RESET ROLE the superuser's entry is not used")
		}
	})
	// A transaction that ran SET LOCAL ROLE ends; the role is the login
	// role again. Whatever wtcache learnt of the session inside the
	// transaction must not outlive it: the superuser's next lookups must
	// not be filed under rp_reader_b's namespace, where B would find them.
	t.Run("SET LOCAL ROLE ends with the transaction", func(t *testing.T) {
		conn, err := dbS.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		rpSame(t, "superuser", full(3), rpQuery(t, conn, star, 3), true)
		for _, end := range []string{"commit", "rollback"} {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE rp_reader_b"); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO rp_priv_scratch VALUES ($1)", time.Now().UnixNano()); err != nil {
				t.Fatal(err)
			}
			if end == "commit" {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
			var who string
			if err := conn.QueryRowContext(ctx, "SELECT current_user").Scan(&who); err != nil || who != "postgres" {
				t.Fatalf("after %s: current_user %q %v", end, who, err)
			}
			for _, id := range []int{3, 4} {
				rpSame(t, "superuser after "+end, full(id), rpQuery(t, conn, star, id), true)
				cS.settle()
				checkDenied(t, dbB, cB, id)
			}
		}
	})
}

// ---------------------------------------------------------------------------

const rpSearchPathSchema = `
CREATE SCHEMA rp_sp_a;
CREATE SCHEMA rp_sp_b;
CREATE TABLE rp_sp_a.rp_t (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE rp_sp_b.rp_t (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO rp_sp_a.rp_t SELECT g, 'a' || g FROM generate_series(1, 5) g;
INSERT INTO rp_sp_b.rp_t SELECT g, 'b' || g FROM generate_series(1, 5) g;
`

const rpSearchPathDrop = `DROP SCHEMA IF EXISTS rp_sp_a, rp_sp_b CASCADE`

// TestRPSearchPath: SET search_path on a pinned connection switches which
// table an unqualified lookup reads; entries are filed under the schema of
// the table actually read, so the two tables never see each other's rows;
// and a search_path set only for a transaction (SET LOCAL) ends with it.
func TestRPSearchPath(t *testing.T) {
	e := needServices(t)
	rpSetup(t, e, rpSearchPathSchema, rpSearchPathDrop)
	ctx := context.Background()
	prefix := rpPrefix("sp")
	db, c := e.open(t, prefix)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const q = "SELECT id, v FROM rp_t WHERE id = $1"
	row := func(s string, id int) []string {
		return []string{fmt.Sprintf("id=int64(%d) v=string(%s%d) ", id, s, id)}
	}
	read := func(t *testing.T, on rpQuerier, query, schema string, id int, wantHit bool) {
		t.Helper()
		h := rpStats(c).Hits
		rpSame(t, fmt.Sprintf("%s (schema %s)", query, schema), row(schema, id), rpQuery(t, on, query, id), true)
		if hit := rpStats(c).Hits > h; hit != wantHit {
			t.Fatalf("%s id %d: hit %v, want %v", query, id, hit, wantHit)
		}
		c.settle()
	}
	set := func(t *testing.T, path string) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, "SET search_path = "+path); err != nil {
			t.Fatal(err)
		}
	}
	set(t, "rp_sp_a")
	read(t, conn, q, "a", 1, false)
	read(t, conn, q, "a", 1, true)
	set(t, "rp_sp_b")
	read(t, conn, q, "b", 1, false) // b's row is not a's entry
	read(t, conn, q, "b", 1, true)
	set(t, "rp_sp_a, rp_sp_b")
	read(t, conn, q, "a", 1, true)
	set(t, "rp_sp_b, rp_sp_a")
	read(t, conn, q, "b", 1, true)
	// Qualified names reach the same entries.
	read(t, db, "SELECT id, v FROM rp_sp_a.rp_t WHERE id = $1", "a", 1, true)
	read(t, db, `SELECT id, v FROM "rp_sp_b"."rp_t" WHERE id = $1`, "b", 1, true)
	// Another session with the default search_path has no rp_t at all.
	_, wantErr := rpRender(e.plain(t).QueryContext(ctx, q, 1))
	if _, err := rpRender(db.QueryContext(ctx, q, 1)); err == nil || wantErr == nil || err.Error() != wantErr.Error() {
		t.Fatalf("unqualified rp_t without search_path: %v, want %v", err, wantErr)
	}
	// The keys are filed under the schema-qualified names.
	for _, s := range []string{"rp_sp_a", "rp_sp_b"} {
		k := rpRowKey(t, e, prefix, s, "rp_t", "1")
		img, err := rpImage(t, e, k)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		r, err := rowcodec.Decode(img)
		if err != nil || r.Values[1] != s[len(s)-1:]+"1" {
			t.Fatalf("%s holds %v %v", k, r.Values, err)
		}
	}

	t.Run("SET LOCAL search_path ends with the transaction", func(t *testing.T) {
		set(t, "rp_sp_a")
		read(t, conn, q, "a", 2, false)
		for _, end := range []string{"commit", "rollback"} {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "SET LOCAL search_path = rp_sp_b"); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "UPDATE rp_t SET v = v WHERE id = $1", 5); err != nil {
				t.Fatal(err)
			}
			if end == "commit" {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
			var path string
			if err := conn.QueryRowContext(ctx, "SHOW search_path").Scan(&path); err != nil || path != "rp_sp_a" {
				t.Fatalf("search_path after %s: %q %v", end, path, err)
			}
			for _, id := range []int{2, 3} {
				rpSame(t, "after "+end, row("a", id), rpQuery(t, conn, q, id), true)
				c.settle()
			}
		}
	})
	t.Run("SET search_path rolled back", func(t *testing.T) {
		set(t, "rp_sp_a")
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "SET search_path = rp_sp_b"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE rp_t SET v = v WHERE id = $1", 5); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		rpSame(t, "after rollback", row("a", 4), rpQuery(t, conn, q, 4), true)
	})
}

const rpDotsSchema = `
CREATE SCHEMA "rp_dot.x";
CREATE SCHEMA rp_dot;
CREATE TABLE "rp_dot.x".y (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE rp_dot."x.y" (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO "rp_dot.x".y VALUES (1, 'schema rp_dot.x, table y');
INSERT INTO rp_dot."x.y" VALUES (1, 'schema rp_dot, table x.y');
`

// TestRPSeparatorsInNames: schema "rp_dot.x" with table y and schema rp_dot
// with table "x.y" are two tables; neither is ever served the other's row.
func TestRPSeparatorsInNames(t *testing.T) {
	e := needServices(t)
	rpSetup(t, e, rpDotsSchema, `DROP SCHEMA IF EXISTS "rp_dot.x", rp_dot CASCADE`)
	db, c := e.open(t, rpPrefix("dots"))
	qs := map[string]string{
		`SELECT v FROM "rp_dot.x".y WHERE id = $1`: "schema rp_dot.x, table y",
		`SELECT v FROM rp_dot."x.y" WHERE id = $1`: "schema rp_dot, table x.y",
	}
	for round := 0; round < 3; round++ {
		for q, want := range qs {
			rpSame(t, q, []string{"v=string(" + want + ") "}, rpQuery(t, db, q, 1), true)
			c.settle()
		}
	}
	if rpStats(c).Hits == 0 {
		t.Fatal("nothing was served from Redis")
	}
}

// ---------------------------------------------------------------------------

// TestRPMultiKeyLookups: IN lists and = ANY read only the keys Redis does
// not have, in one statement, and answer exactly as pgx does: ordering,
// LIMIT/OFFSET, duplicates, absent keys, NULLs.
func TestRPMultiKeyLookups(t *testing.T) {
	e := needServices(t)
	plain := rpSetup(t, e, `
CREATE TABLE rp_multi (id bigint PRIMARY KEY, v text NOT NULL, n int);
INSERT INTO rp_multi SELECT g, 'v' || g, CASE WHEN g % 2 = 0 THEN g END FROM generate_series(1, 20) g;`,
		`DROP TABLE IF EXISTS rp_multi`)
	ctx := context.Background()
	var spy missReads
	db, c := e.openSpy(t, rpPrefix("multi"), spy.hook)
	i64 := func(v int64) *int64 { return &v }

	type step struct {
		name     string
		query    string
		args     []any
		ordered  bool
		missKeys []string // the keys the one database read must ask for; nil: no read
		wantHits int64
		bypass   bool
	}
	steps := []step{
		{"warm 1 and 3", "SELECT * FROM rp_multi WHERE id IN ($1, $2)", []any{1, 3}, false, []string{"1", "3"}, 0, false},
		{"IN, one missing", "SELECT * FROM rp_multi WHERE id IN ($1, $2, $3)", []any{1, 2, 3}, false, []string{"2"}, 2, false},
		{"ANY, some missing, one absent", "SELECT * FROM rp_multi WHERE id = ANY($1)", []any{[]int64{2, 3, 4, 99}}, false, []string{"4", "99"}, 2, false},
		{"ANY ORDER BY id", "SELECT * FROM rp_multi WHERE id = ANY($1) ORDER BY id", []any{[]int64{5, 1, 4, 2}}, true, []string{"5"}, 3, false},
		{"ANY ORDER BY id ASC", "SELECT * FROM rp_multi WHERE id = ANY($1) ORDER BY id ASC", []any{[]int64{5, 1, 4, 2}}, true, nil, 4, false},
		{"ANY ORDER BY id DESC", "SELECT id, v FROM rp_multi WHERE id = ANY($1) ORDER BY id DESC", []any{[]int64{5, 1, 6, 4, 2}}, true, []string{"6"}, 4, false},
		{"IN ORDER BY id DESC LIMIT OFFSET", "SELECT * FROM rp_multi WHERE id IN ($1, $2, $3, $4, $5) ORDER BY id DESC LIMIT $6 OFFSET $7", []any{7, 1, 5, 3, 2, 2, 1}, true, []string{"7"}, 4, false},
		{"ANY ORDER BY LIMIT", "SELECT * FROM rp_multi WHERE id = ANY($1) ORDER BY id LIMIT $2", []any{[]int64{9, 8, 1}, 2}, true, []string{"9", "8"}, 1, false},
		{"OFFSET past the end", "SELECT * FROM rp_multi WHERE id = ANY($1) ORDER BY id OFFSET $2", []any{[]int64{1, 2}, 5}, true, nil, 2, false},
		{"LIMIT 0", "SELECT * FROM rp_multi WHERE id = ANY($1) ORDER BY id LIMIT $2", []any{[]int64{1, 2}, 0}, true, nil, 2, false},
		{"duplicates in IN", "SELECT * FROM rp_multi WHERE id IN ($1, $2, $3, $4)", []any{2, 2, 10, 10}, false, []string{"10"}, 1, false},
		{"duplicate parameter", "SELECT * FROM rp_multi WHERE id IN ($1, $1, $2)", []any{3, 11}, false, []string{"11"}, 1, false},
		{"duplicates in ANY", "SELECT * FROM rp_multi WHERE id = ANY($1) ORDER BY id DESC", []any{[]int64{12, 1, 12, 1}}, true, []string{"12"}, 1, false},
		{"no key exists", "SELECT * FROM rp_multi WHERE id IN ($1, $2)", []any{100, 101}, false, []string{"100", "101"}, 0, false},
		{"no key exists, again", "SELECT * FROM rp_multi WHERE id IN ($1, $2)", []any{100, 101}, false, []string{"100", "101"}, 0, false},
		{"NULL in the array", "SELECT * FROM rp_multi WHERE id = ANY($1)", []any{[]*int64{i64(1), nil, i64(13)}}, false, []string{"13"}, 1, false},
		{"only NULL in the array", "SELECT * FROM rp_multi WHERE id = ANY($1)", []any{[]*int64{nil}}, false, nil, 0, false},
		{"empty array", "SELECT * FROM rp_multi WHERE id = ANY($1)", []any{[]int64{}}, false, nil, 0, false},
		{"NULL in IN", "SELECT * FROM rp_multi WHERE id IN ($1, $2)", []any{1, nil}, false, nil, 0, true},
		{"literals", "SELECT * FROM rp_multi WHERE id IN (1, 2, 14)", nil, false, []string{"14"}, 2, false},
		{"IN with IS NULL filter", "SELECT id FROM rp_multi WHERE id IN ($1, $2, $3, $4) AND n IS NULL", []any{1, 2, 3, 4}, false, nil, 4, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			want, err := rpRender(plain.QueryContext(ctx, s.query, s.args...))
			if err != nil {
				t.Fatal(err)
			}
			before := rpStats(c)
			spy.take()
			got, err := rpRender(db.QueryContext(ctx, s.query, s.args...))
			if err != nil {
				t.Fatal(err)
			}
			after := rpStats(c)
			reads := spy.take()
			c.settle()
			rpSame(t, "result", want, got, s.ordered)
			if s.bypass {
				if after.Bypasses != before.Bypasses+1 {
					t.Fatalf("want a bypass: %+v -> %+v", before, after)
				}
				return
			}
			if after.Bypasses != before.Bypasses {
				t.Fatalf("bypassed: %+v -> %+v", before, after)
			}
			if h := after.Hits - before.Hits; h != s.wantHits {
				t.Fatalf("hits +%d, want +%d", h, s.wantHits)
			}
			if m := after.Misses - before.Misses; m != int64(len(s.missKeys)) {
				t.Fatalf("misses +%d, want +%d (%v)", m, len(s.missKeys), s.missKeys)
			}
			switch {
			case s.missKeys == nil && len(reads) != 0:
				t.Fatalf("read %v from PostgreSQL, want nothing", reads)
			case s.missKeys != nil && (len(reads) != 1 || !slices.Equal(reads[0], s.missKeys)):
				t.Fatalf("PostgreSQL was asked for %v, want one read of %v", reads, s.missKeys)
			}
		})
	}
}

// TestRPCompositeKey: a (tenant, id) key, by both columns in either order,
// and with an IN list on the second column.
func TestRPCompositeKey(t *testing.T) {
	e := needServices(t)
	plain := rpSetup(t, e, `
CREATE TABLE rp_comp (tenant_id text NOT NULL, id bigint NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO rp_comp SELECT t, g, t || '#' || g FROM unnest(ARRAY['acme', 'a:b', 'a', 'b']) t, generate_series(1, 5) g;`,
		`DROP TABLE IF EXISTS rp_comp`)
	ctx := context.Background()
	var spy missReads
	db, c := e.openSpy(t, rpPrefix("comp"), spy.hook)
	check := func(t *testing.T, query string, args []any, ordered bool, wantHits int64) {
		t.Helper()
		want, err := rpRender(plain.QueryContext(ctx, query, args...))
		if err != nil {
			t.Fatal(err)
		}
		before := rpStats(c)
		got, err := rpRender(db.QueryContext(ctx, query, args...))
		if err != nil {
			t.Fatal(err)
		}
		c.settle()
		rpSame(t, query, want, got, ordered)
		after := rpStats(c)
		if after.Bypasses != before.Bypasses || after.Hits-before.Hits != wantHits {
			t.Fatalf("%s %v: %+v -> %+v, want +%d hits and no bypass", query, args, before, after, wantHits)
		}
	}
	check(t, "SELECT * FROM rp_comp WHERE tenant_id = $1 AND id = $2", []any{"acme", 3}, true, 0)
	check(t, "SELECT * FROM rp_comp WHERE tenant_id = $1 AND id = $2", []any{"acme", 3}, true, 1)
	check(t, "SELECT * FROM rp_comp WHERE id = $1 AND tenant_id = $2", []any{3, "acme"}, true, 1)
	check(t, "SELECT v FROM rp_comp WHERE tenant_id = $1 AND id = $2", []any{"b", 3}, true, 0)
	check(t, "SELECT * FROM rp_comp WHERE tenant_id = $1 AND id IN ($2, $3, $4)", []any{"acme", 1, 3, 99}, false, 1)
	check(t, "SELECT * FROM rp_comp WHERE tenant_id = $1 AND id IN ($2, $3, $4) ORDER BY id DESC", []any{"acme", 1, 3, 5}, true, 2)
	check(t, "SELECT * FROM rp_comp WHERE id = ANY($1) AND tenant_id = $2 ORDER BY id", []any{[]int64{5, 2}, "acme"}, true, 1)
	// Tenants whose names contain the key separator stay apart.
	check(t, "SELECT * FROM rp_comp WHERE tenant_id = $1 AND id = $2", []any{"a:b", 1}, true, 0)
	check(t, "SELECT * FROM rp_comp WHERE tenant_id = $1 AND id = $2", []any{"a", 1}, true, 0)
	check(t, "SELECT * FROM rp_comp WHERE tenant_id = $1 AND id = $2", []any{"a:b", 1}, true, 1)
	check(t, "SELECT * FROM rp_comp WHERE tenant_id = $1 AND id = $2", []any{"a", 1}, true, 1)
	check(t, "SELECT * FROM rp_comp WHERE tenant_id = $1 AND id = $2", []any{"nobody", 1}, true, 0)
	// A tenant IN list with a fixed id.
	check(t, "SELECT * FROM rp_comp WHERE tenant_id IN ($1, $2) AND id = $3", []any{"acme", "b", 3}, false, 2)
	// The key as it reached PostgreSQL: one text array per column.
	spy.take()
	_ = rpQuery(t, db, "SELECT * FROM rp_comp WHERE tenant_id = $1 AND id IN ($2, $3)", "b", 4, 5)
	if r := spy.take(); len(r) != 1 || !slices.Equal(r[0], []string{"4", "5"}) {
		t.Fatalf("composite miss read %v", r)
	}
}

// TestRPSoftDeleteShape: GORM's First with soft delete. A soft-deleted row
// is returned neither from PostgreSQL nor from Redis.
func TestRPSoftDeleteShape(t *testing.T) {
	e := needServices(t)
	plain := rpSetup(t, e, `
CREATE TABLE rp_users (id bigint PRIMARY KEY, name text NOT NULL, deleted_at timestamptz);
INSERT INTO rp_users VALUES (1, 'ann', NULL), (2, 'bob', now()), (3, 'cid', NULL);`,
		`DROP TABLE IF EXISTS rp_users`)
	ctx := context.Background()
	db, c := e.open(t, rpPrefix("soft"))
	const first = `SELECT * FROM "rp_users" WHERE "rp_users"."id" = $1 AND "rp_users"."deleted_at" IS NULL ORDER BY "rp_users"."id" LIMIT $2`
	const softDelete = `UPDATE "rp_users" SET "deleted_at"=$1 WHERE "rp_users"."id" = $2 AND "rp_users"."deleted_at" IS NULL`
	count := func(t *testing.T, id int, want int) {
		t.Helper()
		wantRows, err := rpRender(plain.QueryContext(ctx, first, id, 1))
		if err != nil {
			t.Fatal(err)
		}
		if len(wantRows) != want {
			t.Fatalf("pgx: row %d: %q, want %d rows", id, wantRows, want)
		}
		got, err := rpRender(db.QueryContext(ctx, first, id, 1))
		if err != nil {
			t.Fatal(err)
		}
		rpSame(t, fmt.Sprintf("row %d", id), wantRows, got, true)
	}
	for _, id := range []int{1, 2, 3} {
		b := rpStats(c)
		count(t, id, map[int]int{1: 1, 2: 0, 3: 1}[id])
		c.settle()
		count(t, id, map[int]int{1: 1, 2: 0, 3: 1}[id])
		if a := rpStats(c); a.Hits != b.Hits+1 || a.Bypasses != b.Bypasses {
			t.Fatalf("row %d: the second First was not a hit: %+v -> %+v", id, b, a)
		}
	}
	res, err := db.ExecContext(ctx, softDelete, time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("soft delete affected %d rows", n)
	}
	count(t, 1, 0)
	c.settle()
	count(t, 1, 0)
	count(t, 3, 1)
	// Soft-deleted outside wtcache and invalidated: also gone.
	mustExec(t, plain, softDelete, time.Now(), 3)
	if err := Invalidate(ctx, db, "rp_users", int64(3)); err != nil {
		t.Fatal(err)
	}
	count(t, 3, 0)
	c.settle()
	count(t, 3, 0)
}

// ---------------------------------------------------------------------------

// TestRPCorruptEntries: a cached row replaced by garbage, by an image of
// another encoding version, by an image key of the wrong Redis type, or made
// stale by a schema change done outside wtcache, is never served: the read
// returns PostgreSQL's row, the entry is removed or replaced, and Corrupt
// counts the three corrupt cases (the schema change is a plain miss).
func TestRPCorruptEntries(t *testing.T) {
	e := needServices(t)
	plain := rpSetup(t, e, `
CREATE TABLE rp_corrupt (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO rp_corrupt SELECT g, 'v' || g FROM generate_series(1, 4) g;`,
		`DROP TABLE IF EXISTS rp_corrupt`)
	ctx := context.Background()
	prefix := rpPrefix("corrupt")
	db, c := e.open(t, prefix, "cache_schema_refresh=200ms")
	const q = "SELECT * FROM rp_corrupt WHERE id = $1"
	key := func(id int) string { return rpRowKey(t, e, prefix, "public", "rp_corrupt", fmt.Sprint(id)) }
	warmRow := func(t *testing.T, id int) {
		t.Helper()
		rpQuery(t, db, q, id)
		c.settle()
		h := rpStats(c).Hits
		rpQuery(t, db, q, id)
		if rpStats(c).Hits != h+1 {
			t.Fatalf("row %d not cached", id)
		}
	}
	// entryOK: the image key is gone, or holds an image that decodes.
	entryOK := func(t *testing.T, id int) {
		t.Helper()
		k := proto.ImageKey(key(id))
		typ, _ := e.rdb.Type(ctx, k).Result()
		switch typ {
		case "none":
		case "string":
			img, err := rpImage(t, e, key(id))
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if _, err := rowcodec.Decode(img); err != nil {
				t.Fatalf("%s still holds an undecodable image", k)
			}
		default:
			t.Fatalf("%s is still a %s", k, typ)
		}
	}
	// spoilImage replaces the image of k, keeping its generation, so that
	// the spoilt image is read as a hit and must fail to decode.
	spoilImage := func(t *testing.T, k string, spoil func(img []byte) []byte) {
		t.Helper()
		stored, err := e.rdb.Get(ctx, proto.ImageKey(k)).Result()
		if err != nil {
			t.Fatal(err)
		}
		gen, img, _ := strings.Cut(stored, " ")
		if _, err := rowcodec.Decode([]byte(img)); err != nil {
			t.Fatalf("the stored image does not decode before spoiling: %v", err)
		}
		e.rdb.Set(ctx, proto.ImageKey(k), gen+" "+string(spoil([]byte(img))), time.Minute)
	}
	for _, tc := range []struct {
		name    string
		id      int
		spoil   func(t *testing.T, key string)
		corrupt bool
		want    string
	}{
		{"garbage image", 1, func(t *testing.T, k string) {
			spoilImage(t, k, func([]byte) []byte { return []byte("\x00garbage") })
		}, true, "id=int64(1) v=string(v1) "},
		{"other encoding version", 2, func(t *testing.T, k string) {
			spoilImage(t, k, func(img []byte) []byte { img[1]++; return img })
		}, true, "id=int64(2) v=string(v2) "},
		{"image key of the wrong type", 3, func(t *testing.T, k string) {
			e.rdb.Del(ctx, proto.ImageKey(k))
			e.rdb.HSet(ctx, proto.ImageKey(k), "v", "not a string")
		}, true, "id=int64(3) v=string(v3) "},
		{"schema changed outside wtcache", 4, func(t *testing.T, k string) {
			mustExec(t, plain, "ALTER TABLE rp_corrupt ADD COLUMN extra text NOT NULL DEFAULT 'new'")
			time.Sleep(300 * time.Millisecond) // > cache_schema_refresh
		}, false, "id=int64(4) v=string(v4) extra=string(new) "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warmRow(t, tc.id)
			tc.spoil(t, key(tc.id))
			before := rpStats(c)
			rpSame(t, "read of the spoilt entry", []string{tc.want}, rpQuery(t, db, q, tc.id), true)
			c.settle() // a key of the wrong type is counted by the fill
			after := rpStats(c)
			if after.Hits != before.Hits || after.Misses != before.Misses+1 {
				t.Fatalf("the spoilt entry was not a miss: %+v -> %+v", before, after)
			}
			wantCorrupt := before.Corrupt
			if tc.corrupt {
				wantCorrupt++
			}
			if after.Corrupt != wantCorrupt {
				t.Fatalf("Corrupt %d -> %d, want %d", before.Corrupt, after.Corrupt, wantCorrupt)
			}
			entryOK(t, tc.id)
			// And the row is cached again, correctly.
			for i := 0; i < 3; i++ {
				rpSame(t, "read after repair", []string{tc.want}, rpQuery(t, db, q, tc.id), true)
				c.settle()
			}
			if rpStats(c).Hits < after.Hits+1 {
				t.Fatal("the row was not cached again")
			}
			if rpStats(c).Corrupt != after.Corrupt {
				t.Fatal("the repaired entry was counted corrupt again")
			}
		})
	}
}

// ---------------------------------------------------------------------------

// TestRPTTL: entries live cache_ttl ±10%, a table TTL applies to its table
// only, and entries filled one after another do not share an expiry.
func TestRPTTL(t *testing.T) {
	e := needServices(t)
	rpSetup(t, e, `
CREATE TABLE rp_ttl_long (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE rp_ttl_short (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO rp_ttl_long SELECT g, 'v' || g FROM generate_series(1, 60) g;
INSERT INTO rp_ttl_short SELECT g, 'v' || g FROM generate_series(1, 10) g;`,
		`DROP TABLE IF EXISTS rp_ttl_long, rp_ttl_short`)
	ctx := context.Background()
	prefix := rpPrefix("ttl")
	db, c := e.openWith(t, prefix, []Option{WithTableTTL("rp_ttl_short", 5*time.Second)}, "cache_ttl=30s")
	pttls := func(t *testing.T, table string, ids ...int) []time.Duration {
		t.Helper()
		var out []time.Duration
		for _, id := range ids {
			d, err := e.rdb.PTTL(ctx, proto.ImageKey(rpRowKey(t, e, prefix, "public", table, fmt.Sprint(id)))).Result()
			if err != nil || d <= 0 {
				t.Fatalf("%s row %d: PTTL %v %v", table, id, d, err)
			}
			out = append(out, d)
		}
		return out
	}
	start := time.Now()
	within := func(t *testing.T, ds []time.Duration, ttl time.Duration) {
		t.Helper()
		margin := time.Since(start) + 500*time.Millisecond // time spent filling and reading
		lo, hi := ttl-ttl/10-margin, ttl+ttl/10
		for i, d := range ds {
			if d < lo || d > hi {
				t.Fatalf("PTTL[%d] = %v, want within [%v, %v] (ttl %v ±10%%)", i, d, lo, hi, ttl)
			}
		}
	}
	var long []int
	for id := 1; id <= 50; id++ {
		rpQuery(t, db, "SELECT * FROM rp_ttl_long WHERE id = $1", id)
		long = append(long, id)
	}
	for id := 1; id <= 5; id++ {
		rpQuery(t, db, "SELECT * FROM rp_ttl_short WHERE id = $1", id)
	}
	rpQuery(t, db, "SELECT * FROM rp_ttl_long WHERE id = ANY($1)", []int64{51, 52, 53})
	c.settle()
	if time.Since(start) > time.Second {
		t.Logf("filling took %v", time.Since(start))
	}
	ls := pttls(t, "rp_ttl_long", long...)
	within(t, ls, 30*time.Second)
	within(t, pttls(t, "rp_ttl_long", 51, 52, 53), 30*time.Second)
	within(t, pttls(t, "rp_ttl_short", 1, 2, 3, 4, 5), 5*time.Second)
	// Jitter: 50 uniform draws over ±3s spread over far more than the
	// time the fills took.
	lo, hi := slices.Min(ls), slices.Max(ls)
	if spread := hi - lo; spread < time.Second+time.Since(start) {
		t.Fatalf("50 entries filled one after another expire within %v of each other: no jitter", spread)
	}
}

// TestRPMaxEntrySize: a row whose image exceeds cache_max_entry is
// returned correctly and never stored; smaller rows of the table are.
func TestRPMaxEntrySize(t *testing.T) {
	e := needServices(t)
	plain := rpSetup(t, e, `
CREATE TABLE rp_big (id bigint PRIMARY KEY, body text NOT NULL);
INSERT INTO rp_big VALUES (1, repeat('x', 1024)), (2, 'small');`,
		`DROP TABLE IF EXISTS rp_big`)
	ctx := context.Background()
	prefix := rpPrefix("big")
	db, c := e.open(t, prefix, "cache_max_entry=200")
	const q = "SELECT * FROM rp_big WHERE id = $1"
	for _, id := range []int{1, 2} {
		want, err := rpRender(plain.QueryContext(ctx, q, id))
		if err != nil {
			t.Fatal(err)
		}
		before := rpStats(c)
		for i := 0; i < 3; i++ {
			rpSame(t, fmt.Sprintf("row %d", id), want, rpQuery(t, db, q, id), true)
			c.settle()
		}
		after := rpStats(c)
		v, err := rpImage(t, e, rpRowKey(t, e, prefix, "public", "rp_big", fmt.Sprint(id)))
		switch id {
		case 1:
			if after.Hits != before.Hits || after.Misses != before.Misses+3 {
				t.Fatalf("the 1 KB row was served from Redis: %+v -> %+v", before, after)
			}
			if !errors.Is(err, redis.Nil) {
				t.Fatalf("the 1 KB row was stored (%d bytes, %v)", len(v), err)
			}
		case 2:
			if after.Hits != before.Hits+2 || err != nil {
				t.Fatalf("the small row was not cached: %+v -> %+v, %v", before, after, err)
			}
		}
	}
}

// TestRPSharedMiss: 20 readers on 20 connections ask for the same uncached
// key at once. The database reads are counted where they happen: a spy
// wrapped around pgx's connections sees every statement wtcache sends, and
// counts the miss reads (see missKeys) that ask for the key. Each such read
// is made slow (200ms), as a loaded database would, so that the readers
// overlap. A reader may share only a read that began after it started (a
// read that began earlier may predate a write the reader must see), so
// Redis is made slow too (50ms each way, through a proxy), as a loaded
// Redis would: every reader then starts before the first look returns, and
// all of them wait for one database read instead of making their own.
// Without the slow Redis the count depends on how far apart the goroutines
// start.
func TestRPSharedMiss(t *testing.T) {
	e := needServices(t)
	rpSetup(t, e, `
CREATE TABLE rp_flight (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO rp_flight SELECT g, 'v' || g FROM generate_series(1, 30) g;`,
		`DROP TABLE IF EXISTS rp_flight`)
	ctx := context.Background()
	const readers, key = 20, 7
	var reads atomic.Int64
	hook := func(ctx context.Context, query string, args []driver.NamedValue) {
		if len(args) != 1 {
			return
		}
		if a := missKeys(query, args); slices.Contains(a, fmt.Sprint(key)) {
			reads.Add(1)
			time.Sleep(200 * time.Millisecond)
		}
	}
	db, c, px := e.openSpySlowRedis(t, rpPrefix("flight"), hook, readers)
	db.SetMaxIdleConns(readers)
	conns := make([]*sql.Conn, readers)
	for i := range conns {
		var err error
		if conns[i], err = db.Conn(ctx); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
		// Resolve the session and the table first, on every connection.
		rpQuery(t, conns[i], "SELECT v FROM rp_flight WHERE id = $1", 20+i%10)
	}
	c.settle()
	warmRedisConns(t, c, readers)
	before := rpStats(c)
	px.SetLatency(50 * time.Millisecond)
	var start, done sync.WaitGroup
	start.Add(1)
	results := make([]string, readers)
	errs := make([]error, readers)
	for i := range conns {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = conns[i].QueryRowContext(ctx, "SELECT v FROM rp_flight WHERE id = $1", key).Scan(&results[i])
		}()
	}
	start.Done()
	done.Wait()
	c.settle()
	for i := range results {
		if errs[i] != nil || results[i] != fmt.Sprintf("v%d", key) {
			t.Fatalf("reader %d: %q %v", i, results[i], errs[i])
		}
	}
	after := rpStats(c)
	n := reads.Load()
	t.Logf("%d readers, %d database reads of the key; stats %+v -> %+v", readers, n, before, after)
	if n < 1 || n > 2 {
		t.Fatalf("%d database reads for %d concurrent readers: the miss was not shared", n, readers)
	}
	if m, h := after.Misses-before.Misses, after.Hits-before.Hits; m+h != readers || m < readers/2 {
		t.Fatalf("misses +%d, hits +%d: want one per reader, and overlapping misses", m, h)
	}
}

// openSpySlowRedis opens wtcache over a spyConnector with Redis behind a
// fault proxy (no latency until the caller sets one), with room for n
// Redis connections.
func (e itEnv) openSpySlowRedis(t *testing.T, prefix string, onQuery func(context.Context, string, []driver.NamedValue), n int) (*sql.DB, *connector, *faultproxy.Proxy) {
	t.Helper()
	ropts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	px, err := faultproxy.Start(ropts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	db, c := e.openSpyVia(t, func(o *redis.Options) { o.Addr, o.PoolSize = px.Addr(), 2*n }, prefix, onQuery)
	return db, c, px
}

// warmRedisConns makes n of the connector's Redis connections and sets
// them up while Redis is fast: one set up under a proxy's latency takes
// several slow round trips, and its reader's look would return late.
// Blocking commands sent at once hold one connection each.
func warmRedisConns(t *testing.T, c *connector, n int) {
	t.Helper()
	for try := 0; c.cfg.redis.(*redis.Client).PoolStats().IdleConns < uint32(n); try++ {
		if try == 5 {
			t.Fatalf("%d Redis connections ready, want %d", c.cfg.redis.(*redis.Client).PoolStats().IdleConns, n)
		}
		var warm sync.WaitGroup
		for range n {
			warm.Add(1)
			go func() {
				defer warm.Done()
				c.cfg.redis.Do(context.Background(), "blpop", "{rp-warm}:none", "0.1") // seconds, as Redis takes it
			}()
		}
		warm.Wait()
	}
}

// TestRPSharedMissLeaderPanics: when the database read that other readers
// wait for panics, the panic reaches its own caller, and the readers
// waiting for it are released and read the row themselves.
func TestRPSharedMissLeaderPanics(t *testing.T) {
	e := needServices(t)
	rpSetup(t, e, `
CREATE TABLE rp_flight_panic (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO rp_flight_panic SELECT g, 'v' || g FROM generate_series(1, 10) g;`,
		`DROP TABLE IF EXISTS rp_flight_panic`)
	const key, readers = 7, 2
	var reads atomic.Int64
	hook := func(ctx context.Context, query string, args []driver.NamedValue) {
		if slices.Contains(missKeys(query, args), fmt.Sprint(key)) && reads.Add(1) == 1 {
			time.Sleep(100 * time.Millisecond) // let the other reader join
			panic("database read exploded")
		}
	}
	db, c, px := e.openSpySlowRedis(t, rpPrefix("flightpanic"), hook, readers)
	db.SetMaxIdleConns(readers)
	const q = "SELECT v FROM rp_flight_panic WHERE id = $1"
	rpQuery(t, db, q, 1) // resolve the table on this handle
	c.settle()
	warmRedisConns(t, c, readers)
	px.SetLatency(50 * time.Millisecond) // both readers start before either look returns
	var start, done sync.WaitGroup
	start.Add(1)
	got := make([]string, readers)
	errs := make([]error, readers)
	panicked := make([]any, readers)
	for i := range readers {
		done.Add(1)
		go func() {
			defer done.Done()
			defer func() { panicked[i] = recover() }()
			start.Wait()
			errs[i] = db.QueryRowContext(context.Background(), q, key).Scan(&got[i])
		}()
	}
	start.Done()
	waited := make(chan struct{})
	go func() { done.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("a reader still waits for a database read that panicked")
	}
	var panics, answers int
	for i := range readers {
		switch {
		case panicked[i] != nil:
			panics++
		case errs[i] == nil && got[i] == fmt.Sprintf("v%d", key):
			answers++
		default:
			t.Fatalf("reader %d: %q %v", i, got[i], errs[i])
		}
	}
	if panics != 1 || answers != 1 || reads.Load() != 2 {
		t.Fatalf("%d panics, %d answers, %d database reads: want the leader's panic, and the joiner's own read", panics, answers, reads.Load())
	}
}

// TestRPSharedMissAndInsert: a reader whose miss shares another reader's
// database read must still see a row that a plain INSERT (which places no
// intent in Redis) committed and returned before it started: the leader's
// read is slowed, the INSERT commits and returns during it, then a second
// reader asks for the key.
func TestRPSharedMissAndInsert(t *testing.T) {
	e := needServices(t)
	plain := rpSetup(t, e, `CREATE TABLE rp_flight_ins (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO rp_flight_ins VALUES (1, 'v1');`, `DROP TABLE IF EXISTS rp_flight_ins`)
	ctx := context.Background()
	const key = 7
	leaderReading := make(chan struct{})
	var once sync.Once
	db, c := e.openSpy(t, rpPrefix("flightins"), nil)
	c.inner.(*spyConnector).afterQuery = func(query string, args []driver.NamedValue) {
		if slices.Contains(missKeys(query, args), fmt.Sprint(key)) {
			once.Do(func() {
				// The leader's read has run and found nothing; its result
				// arrives late, after the INSERT has returned.
				close(leaderReading)
				time.Sleep(500 * time.Millisecond)
			})
		}
	}
	db.SetMaxIdleConns(4)
	const q = "SELECT v FROM rp_flight_ins WHERE id = $1"
	rpQuery(t, db, q, 1) // resolve the table on this handle
	c.settle()
	var wg sync.WaitGroup
	wg.Add(1)
	var leaderErr error
	go func() {
		defer wg.Done()
		var v string
		leaderErr = db.QueryRowContext(ctx, q, key).Scan(&v)
	}()
	<-leaderReading
	mustExec(t, plain, fmt.Sprintf("INSERT INTO rp_flight_ins VALUES (%d, 'inserted')", key))
	var got string
	if err := db.QueryRowContext(ctx, q, key).Scan(&got); err != nil || got != "inserted" {
		t.Fatalf("a read that started after the INSERT returned: %q %v, want the inserted row", got, err)
	}
	wg.Wait()
	if leaderErr != nil && !errors.Is(leaderErr, sql.ErrNoRows) {
		t.Fatal(leaderErr)
	}
}

// TestRPSharedMissDuringWrite: a reader that looks while a write's intent
// is live, in another process, and whose database read began before that
// write committed, must not hand its answer to a reader that started after
// the commit and after another reader saw the new value: Redis shows the
// same state from the intent to its release, so equal observations in
// Redis do not make two reads equivalent. The writer is simulated: its
// intent is placed with the protocol's own script (a row intent, then a
// table intent), and its commit is a plain UPDATE made while the first
// reader's result is held back.
func TestRPSharedMissDuringWrite(t *testing.T) {
	e := needServices(t)
	plain := rpSetup(t, e, `CREATE TABLE rp_flight_w (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO rp_flight_w SELECT g, 'old' FROM generate_series(1, 10) g;`, `DROP TABLE IF EXISTS rp_flight_w`)
	ctx := context.Background()
	for _, tableWide := range []bool{false, true} {
		t.Run(map[bool]string{false: "row intent", true: "table intent"}[tableWide], func(t *testing.T) {
			key := 3
			if tableWide {
				key = 4
			}
			prefix := rpPrefix("flightw")
			db, c := e.openSpy(t, prefix, nil)
			db.SetMaxIdleConns(4)
			const q = "SELECT v FROM rp_flight_w WHERE id = $1"
			rpQuery(t, db, q, 1) // resolve the table, make its state in Redis
			c.settle()
			rk := rpRowKey(t, e, prefix, "public", "rp_flight_w", fmt.Sprint(key))
			meta := metaKey(rk[:strings.LastIndex(rk, ":r:")])
			if _, err := proto.Intent(ctx, e.rdb, meta, []string{rk}, proto.NewToken(), 30_000, tableWide); err != nil {
				t.Fatal(err)
			}
			held := make(chan struct{})
			var once sync.Once
			c.inner.(*spyConnector).afterQuery = func(query string, args []driver.NamedValue) {
				if slices.Contains(missKeys(query, args), fmt.Sprint(key)) {
					once.Do(func() {
						// The first reader's snapshot is taken (before the
						// commit below); its answer arrives late.
						close(held)
						time.Sleep(500 * time.Millisecond)
					})
				}
			}
			var wg sync.WaitGroup
			wg.Add(1)
			var first string
			var firstErr error
			go func() {
				defer wg.Done()
				firstErr = db.QueryRowContext(ctx, q, key).Scan(&first)
			}()
			<-held
			mustExec(t, plain, fmt.Sprintf("UPDATE rp_flight_w SET v = 'new' WHERE id = %d", key))
			var seen string
			if err := plain.QueryRowContext(ctx, q, key).Scan(&seen); err != nil || seen != "new" {
				t.Fatalf("plain read after the commit: %q %v", seen, err)
			}
			var got string
			if err := db.QueryRowContext(ctx, q, key).Scan(&got); err != nil || got != "new" {
				t.Fatalf("a read that started after the commit was seen: %q %v, want \"new\"", got, err)
			}
			wg.Wait()
			if firstErr != nil || first != "old" {
				t.Fatalf("first reader: %q %v, want \"old\" (its snapshot preceded the commit)", first, firstErr)
			}
		})
	}
}

// TestRPPlanCacheBound: a program that inlines literals (bun) sends a new
// statement text for every key; the plan cache stays within its bound and
// every answer is right.
func TestRPPlanCacheBound(t *testing.T) {
	e := needServices(t)
	const n = 20000
	rpSetup(t, e, fmt.Sprintf(`
CREATE TABLE rp_acc (id bigint PRIMARY KEY, owner text NOT NULL);
INSERT INTO rp_acc SELECT g, 'owner' || g FROM generate_series(1, %d) g;`, n),
		`DROP TABLE IF EXISTS rp_acc`)
	ctx := context.Background()
	db, c := e.open(t, rpPrefix("plans"))
	const workers = 8
	db.SetMaxIdleConns(workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	var maxLen atomic.Int64
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > n {
					return
				}
				var id int64
				var owner string
				q := fmt.Sprintf(`SELECT "a"."id", "a"."owner" FROM "rp_acc" AS "a" WHERE ("a"."id" = %d)`, i)
				if err := db.QueryRowContext(ctx, q).Scan(&id, &owner); err != nil || id != i || owner != fmt.Sprintf("owner%d", i) {
					errc <- fmt.Errorf("%s: %d %q %v", q, id, owner, err)
					return
				}
				for l := int64(c.plans.len()); ; {
					m := maxLen.Load()
					if l <= m || maxLen.CompareAndSwap(m, l) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	s := rpStats(c)
	t.Logf("plan cache: %d plans at the end, %d at most seen; stats %+v", c.plans.len(), maxLen.Load(), s)
	if l := c.plans.len(); l > defaultPlanCache || l == 0 {
		t.Fatalf("plan cache holds %d plans, bound %d", l, defaultPlanCache)
	}
	if maxLen.Load() > defaultPlanCache {
		t.Fatalf("plan cache grew to %d, bound %d", maxLen.Load(), defaultPlanCache)
	}
	// Every statement was recognized as a lookup: a miss, or (on a loaded
	// machine, when a poll of the database fence came late) a lookup that
	// went to PostgreSQL because the fence was not current.
	if s.Misses+s.BypassReasons[reasonNotCurrent] != n || s.Bypasses != s.BypassReasons[reasonNotCurrent] {
		t.Fatalf("stats %+v: every statement should have been a lookup miss", s)
	}
}

package wtcache

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestUserCodeReachedUnnamed: statements that run the application's code
// (code that writes another table, u) without naming it: through an
// operator in a view, a check, a default or an expression index; a
// domain's default or check under domains, arrays and composites; an
// assignment cast; an index's operator class (on a write by key too); a
// default operator class (on a read); PostgreSQL's functions that run a
// query given as text or read a relation named by a value. Each runs
// through a handle of its own, is checked to have run the code (u moved),
// and u then reads through wtcache as through pgx.
func TestUserCodeReachedUnnamed(t *testing.T) {
	e := scratchEnv(t, needServices(t), "wt_scratch_usercode")
	plain := e.plain(t)
	mustExec(t, plain, `CREATE TABLE u (id bigint PRIMARY KEY, n text); INSERT INTO u VALUES (1, 'u');
CREATE FUNCTION bump() RETURNS int VOLATILE LANGUAGE plpgsql AS $$BEGIN UPDATE public.u SET n = n || '!'; RETURN 1; END$$;
CREATE FUNCTION opf(a int, b int) RETURNS bool VOLATILE LANGUAGE plpgsql AS $$BEGIN PERFORM public.bump(); RETURN a OPERATOR(pg_catalog.=) b; END$$;
CREATE OPERATOR ==== (LEFTARG = int, RIGHTARG = int, FUNCTION = opf);
CREATE FUNCTION chk(a int) RETURNS bool VOLATILE LANGUAGE plpgsql AS $$BEGIN PERFORM public.bump(); RETURN true; END$$;
CREATE FUNCTION cmpf(a int, b int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$BEGIN PERFORM public.bump(); RETURN pg_catalog.btint4cmp(a, b); END$$;
CREATE OPERATOR CLASS myops2 FOR TYPE int4 USING btree AS
  OPERATOR 1 pg_catalog.<, OPERATOR 2 pg_catalog.<=, OPERATOR 3 pg_catalog.=, OPERATOR 4 pg_catalog.>=, OPERATOR 5 pg_catalog.>, FUNCTION 1 cmpf(int, int)`)
	const opclass = `CREATE OPERATOR CLASS myops FOR TYPE int4 USING btree AS
  OPERATOR 1 pg_catalog.<, OPERATOR 2 pg_catalog.<=, OPERATOR 3 pg_catalog.=, OPERATOR 4 pg_catalog.>=, OPERATOR 5 pg_catalog.>, FUNCTION 1 cmpf(int, int);
CREATE TABLE w (id bigint PRIMARY KEY, v int); CREATE INDEX ON w (v myops); INSERT INTO w VALUES (1, 1), (3, 3)`
	const jsonOpclass = `CREATE FUNCTION jcmp(a json, b json) RETURNS int VOLATILE LANGUAGE plpgsql AS $$BEGIN PERFORM public.bump(); RETURN pg_catalog.bttextcmp(a::text, b::text); END$$;
CREATE FUNCTION jlt(json, json) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT $1::text < $2::text';
CREATE FUNCTION jeq(json, json) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT $1::text = $2::text';
CREATE OPERATOR < (LEFTARG = json, RIGHTARG = json, FUNCTION = jlt);
CREATE OPERATOR = (LEFTARG = json, RIGHTARG = json, FUNCTION = jeq);
CREATE OPERATOR CLASS jops DEFAULT FOR TYPE json USING btree AS OPERATOR 1 <, OPERATOR 3 =, FUNCTION 1 jcmp(json, json);
CREATE TABLE j (id bigint PRIMARY KEY, v json); INSERT INTO j VALUES (1, '{"a":2}'), (2, '{"a":1}'), (3, '{"a":3}')`
	const jsonDrop = `DROP TABLE j; DROP OPERATOR FAMILY jops USING btree; DROP OPERATOR < (json, json), = (json, json); DROP FUNCTION jcmp, jlt, jeq`
	cases := []struct{ name, setup, q, teardown string }{
		{"view with an operator", `CREATE TABLE s (id bigint PRIMARY KEY, v int); INSERT INTO s VALUES (1, 1), (2, 2);
CREATE VIEW vw AS SELECT * FROM s WHERE v ==== 1`, "SELECT * FROM vw", "DROP VIEW vw; DROP TABLE s"},
		{"check with an operator", `CREATE TABLE w (id bigint PRIMARY KEY, v int CHECK (v ==== v))`, "INSERT INTO w VALUES (1, 1)", "DROP TABLE w"},
		{"default with an operator", `CREATE TABLE w (id bigint PRIMARY KEY, v bool DEFAULT (1 ==== 1))`, "INSERT INTO w (id) VALUES (1)", "DROP TABLE w"},
		{"expression index with an operator marked immutable", `CREATE FUNCTION opi(a int, b int) RETURNS bool IMMUTABLE LANGUAGE plpgsql AS $$BEGIN PERFORM public.bump(); RETURN a OPERATOR(pg_catalog.=) b; END$$;
CREATE OPERATOR ===== (LEFTARG = int, RIGHTARG = int, FUNCTION = opi);
CREATE TABLE w (id bigint PRIMARY KEY, v int); CREATE INDEX ON w ((v ===== 1))`,
			"INSERT INTO w VALUES (1, 1)", "DROP TABLE w; DROP OPERATOR ===== (int, int); DROP FUNCTION opi"},
		{"domain default", `CREATE DOMAIN dd AS int DEFAULT bump(); CREATE TABLE w (id bigint PRIMARY KEY, v dd)`,
			"INSERT INTO w (id) VALUES (1)", "DROP TABLE w; DROP DOMAIN dd"},
		{"domain check three domains down", `CREATE DOMAIN d1 AS int CHECK (chk(VALUE)); CREATE DOMAIN d2 AS d1; CREATE DOMAIN d3 AS d2;
CREATE TABLE w (id bigint PRIMARY KEY, v d3)`, "INSERT INTO w VALUES (1, 5)", "DROP TABLE w; DROP DOMAIN d3, d2, d1"},
		{"domain check in an array", `CREATE DOMAIN d1 AS int CHECK (chk(VALUE)); CREATE TABLE w (id bigint PRIMARY KEY, v d1[])`,
			"INSERT INTO w VALUES (1, '{5}')", "DROP TABLE w; DROP DOMAIN d1"},
		{"domain check in a composite", `CREATE DOMAIN d1 AS int CHECK (chk(VALUE)); CREATE TYPE cc AS (x d1);
CREATE TABLE w (id bigint PRIMARY KEY, v cc)`, "INSERT INTO w VALUES (1, '(5)')", "DROP TABLE w; DROP TYPE cc; DROP DOMAIN d1"},
		{"assignment cast", `CREATE TYPE wrap AS (x int);
CREATE FUNCTION towrap(a int) RETURNS wrap VOLATILE LANGUAGE plpgsql AS $$BEGIN PERFORM public.bump(); RETURN ROW(a)::wrap; END$$;
CREATE CAST (int AS wrap) WITH FUNCTION towrap(int) AS ASSIGNMENT;
CREATE TABLE w (id bigint PRIMARY KEY, v wrap)`, "INSERT INTO w VALUES (1, 5)", "DROP TABLE w; DROP CAST (int AS wrap); DROP FUNCTION towrap(int); DROP TYPE wrap"},
		{"index operator class, insert", opclass, "INSERT INTO w VALUES (2, 2)", "DROP TABLE w; DROP OPERATOR FAMILY myops USING btree"},
		{"index operator class, update by key", opclass, "UPDATE w SET v = 2 WHERE id = 1", "DROP TABLE w; DROP OPERATOR FAMILY myops USING btree"},
		{"default operator class, ORDER BY", jsonOpclass, "SELECT * FROM j ORDER BY v", jsonDrop},
		{"default operator class, DISTINCT", jsonOpclass, "SELECT DISTINCT v FROM j", jsonDrop},
		{"partition key with an operator class, range", `CREATE TABLE pt (id bigint, v int) PARTITION BY RANGE (v myops2);
CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (10); CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (10) TO (20)`,
			"INSERT INTO pt VALUES (1, 5)", "DROP TABLE pt"},
		{"partition key with an operator class, hash", `CREATE FUNCTION hashf(a int, s int8) RETURNS int8 VOLATILE LANGUAGE plpgsql AS $$BEGIN PERFORM public.bump(); RETURN pg_catalog.hashint4extended(a, s); END$$;
CREATE OPERATOR CLASS myhash FOR TYPE int4 USING hash AS OPERATOR 1 pg_catalog.=, FUNCTION 1 pg_catalog.hashint4(int4), FUNCTION 2 hashf(int, int8);
CREATE TABLE pt (id bigint, v int) PARTITION BY HASH (v myhash);
CREATE TABLE pt1 PARTITION OF pt FOR VALUES WITH (MODULUS 2, REMAINDER 0); CREATE TABLE pt2 PARTITION OF pt FOR VALUES WITH (MODULUS 2, REMAINDER 1)`,
			"INSERT INTO pt VALUES (1, 5)", "DROP TABLE pt; DROP OPERATOR FAMILY myhash USING hash; DROP FUNCTION hashf"},
		{"range type over an operator class", `CREATE TYPE myr AS RANGE (subtype = int4, subtype_opclass = myops2);
CREATE TABLE w (id bigint PRIMARY KEY, v myr); INSERT INTO w VALUES (1, NULL)`, "UPDATE w SET v = '[1,5)' WHERE id = 1", "DROP TABLE w; DROP TYPE myr"},
		{"foreign key checked through an index with an operator class", `CREATE TABLE pk (v int); CREATE UNIQUE INDEX ON pk (v myops2);
INSERT INTO pk SELECT g FROM generate_series(1, 3000) g; ANALYZE pk;
CREATE TABLE w (id bigint PRIMARY KEY, p int REFERENCES pk (v))`, "INSERT INTO w VALUES (1, 7)", "DROP TABLE w, pk"},
		{"parent delete checked through a child's index", `CREATE TABLE pk (id bigint PRIMARY KEY, v int UNIQUE);
CREATE TABLE ch (id bigint PRIMARY KEY, p int REFERENCES pk (v)); CREATE INDEX ON ch (p myops2);
INSERT INTO pk SELECT g, g FROM generate_series(1, 3000) g; INSERT INTO ch SELECT g, g FROM generate_series(2, 3000) g; ANALYZE pk, ch`,
			"DELETE FROM pk WHERE id = 1", "DROP TABLE ch, pk"},
		{"query_to_xml", "SELECT 1", "SELECT query_to_xml('SELECT public.' || 'bump()', true, true, '')", "SELECT 1"},
		{"ts_stat", "SELECT 1", "SELECT * FROM ts_stat('SELECT to_tsvector(public.' || 'bump()::text)')", "SELECT 1"},
		{"schema_to_xml", "CREATE SCHEMA hz; CREATE VIEW hz.vf AS SELECT public.bump()", "SELECT schema_to_xml('hz', true, true, '')", "DROP SCHEMA hz CASCADE"},
		{"table_to_xml", "CREATE SCHEMA hz; CREATE VIEW hz.vf AS SELECT public.bump()", "SELECT table_to_xml(('hz.v' || 'f')::regclass, true, true, '')", "DROP SCHEMA hz CASCADE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustExec(t, plain, tc.setup)
			defer mustExec(t, plain, tc.teardown)
			runsCode(t, e, plain, "usercode", tc.q)
		})
	}
}

// TestExtensionOperatorsKeepSession: an extension's = (citext's, hstore's:
// C functions, IMMUTABLE) does not make every statement that uses an =
// forget what the session knows (its names, privileges, settings), so that
// the next lookup asks PostgreSQL for them again. A volatile = of the
// application's does.
func TestExtensionOperatorsKeepSession(t *testing.T) {
	e := scratchEnv(t, needServices(t), "wt_scratch_extops")
	plain := e.plain(t)
	mustExec(t, plain, `CREATE EXTENSION citext; CREATE EXTENSION hstore;
CREATE TABLE t (id bigint PRIMARY KEY, n text); INSERT INTO t VALUES (1, 'a'), (2, 'b')`)
	db, c := e.open(t, rpPrefix("extops"), "cache_schema_refresh=20ms")
	ctx := context.Background()
	sc, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	ready := func() bool {
		var r bool
		_ = sc.Raw(func(dc any) error { r = dc.(*conn).sess.ready; return nil })
		return r
	}
	lookup := func(id int) {
		var n string
		if err := sc.QueryRowContext(ctx, "SELECT n FROM t WHERE id = $1", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		// and a statement that is not a lookup, with an =
		if err := sc.QueryRowContext(ctx, "SELECT count(*)::text FROM t WHERE n = $1", n).Scan(&n); err != nil {
			t.Fatal(err)
		}
		c.settle()
	}
	for round := 0; round < 3; round++ {
		lookup(1)
		lookup(2)
	}
	if !ready() {
		t.Fatal("a lookup with an extension's = on the database made the session forget what it knows")
	}
	if rpStats(c).Hits == 0 {
		t.Fatal("no hits")
	}
	mustExec(t, plain, `CREATE FUNCTION vne(a int8, b int8) RETURNS bool VOLATILE LANGUAGE plpgsql AS $$BEGIN RETURN a OPERATOR(pg_catalog.<>) b; END$$;
CREATE SCHEMA o; CREATE OPERATOR o.= (LEFTARG = int8, RIGHTARG = int8, FUNCTION = vne)`)
	time.Sleep(60 * time.Millisecond) // the catalog is read again
	lookup(1)
	if ready() {
		t.Fatal("a statement using an = the application made volatile kept the session's knowledge")
	}
}

// TestExtensionCodeNotWidened: an extension's own code is taken at its
// word: citext's min and max (aggregates over C functions), earthdistance's
// ll_to_earth (an IMMUTABLE SQL function, in a GiST index) and its earth
// domain (checked by an IMMUTABLE SQL function) make no statement
// database-wide: rows of other tables stay served.
func TestExtensionCodeNotWidened(t *testing.T) {
	e := scratchEnv(t, needServices(t), "wt_scratch_extcode")
	plain := e.plain(t)
	mustExec(t, plain, `CREATE EXTENSION citext; CREATE EXTENSION cube; CREATE EXTENSION earthdistance;
CREATE TABLE u (id bigint PRIMARY KEY, n text); INSERT INTO u VALUES (1, 'u');
CREATE TABLE c (id bigint PRIMARY KEY, n citext); INSERT INTO c VALUES (1, 'a'), (2, 'B');
CREATE TABLE g (id bigint PRIMARY KEY, lat float8, lon float8, e earth);
CREATE INDEX ON g USING gist (ll_to_earth(lat, lon)); INSERT INTO g VALUES (1, 1, 1, NULL), (2, 2, 2, NULL)`)
	db, c := e.open(t, rpPrefix("extcode"))
	for _, q := range []string{
		"SELECT max(n) FROM c",
		"SELECT min(n) FROM c",
		"UPDATE g SET lat = 3 WHERE id = 1",
		"SELECT count(*) FROM g WHERE e IS NULL",
	} {
		for i := 0; i < 2; i++ {
			if _, err := renderAgain(db, "SELECT * FROM u WHERE id = $1", 1); err != nil {
				t.Fatal(err)
			}
			c.settle()
		}
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		hits := rpStats(c).Hits
		if _, err := renderAgain(db, "SELECT * FROM u WHERE id = $1", 1); err != nil || rpStats(c).Hits != hits+1 {
			t.Fatalf("%s made the database's cache cold (%v)", q, err)
		}
	}
}

// runsCode checks that stmts, run in order on one connection of a new
// wtcache handle, run the application's code that writes row 1 of u (it
// moves), and that u then reads through wtcache as through pgx (plain):
// the statement that ran it was database-wide. u is served from Redis
// before, so a stale image would be read.
func runsCode(t *testing.T, e itEnv, plain *sql.DB, prefix string, stmts ...string) {
	t.Helper()
	q := stmts[len(stmts)-1]
	db, c := e.open(t, rpPrefix(prefix))
	readU := func() string {
		t.Helper()
		g, gerr := renderAgain(db, "SELECT * FROM u WHERE id = $1", 1)
		w, werr := renderAgain(plain, "SELECT * FROM u WHERE id = $1", 1)
		if g != w || (gerr == nil) != (werr == nil) {
			t.Fatalf("after %s:\nwtcache %s %v\npgx     %s %v", q, g, gerr, w, werr)
		}
		c.settle()
		return w
	}
	before := readU()
	readU()
	if rpStats(c).Hits == 0 {
		t.Fatal("u is not served")
	}
	ctx := context.Background()
	sc, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	for _, s := range stmts {
		rows, err := sc.QueryContext(ctx, s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		for rows.Next() {
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
	if readU() == before {
		t.Fatalf("%s did not run the application's code", q)
	}
}

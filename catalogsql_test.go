package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// catalogQueries are every catalog query wtcache sends on a session, as
// written and as sent, with arguments for a table oid.
func catalogQueries(oid int64) []struct {
	name, written, sent string
	args                []any
} {
	funcs := []string{"now", "lower", "pg_catalog.lower", "nextval", opPrefix + "=", opPrefix + "||", opPrefix + "<>", opPrefix + "~~"}
	return []struct {
		name, written, sent string
		args                []any
	}{
		{"resolve", resolveQuery, resolveSQL, []any{"public.wt_opshadow_t"}},
		{"session", sessionQuery, sessionSQL, nil},
		{"table", tableQuery, tableSQL, []any{oid}},
		{"columns", columnsQuery, columnsSQL, []any{oid}},
		{"cascades", cascadesQuery, cascadesSQL, []any{oid}},
		{"descendants", descendantsQuery, descendantsSQL, []any{oid}},
		{"hazards", readHazardsQuery, readHazardsSQL, nil},
		{"funcs", funcsQuery, funcsSQL, []any{funcs}},
		{"feed facts", feedFactsQuery, feedFactsSQL, []any{"wt_no_such_publication"}},
		{"heartbeat", `SELECT $1::pg_catalog.text, ` + roleFingerprint + `, ` + feedSetupOK, "", []any{"tok", "wt_no_such_publication"}},
	}
}

// TestCatalogSQLQualifiesEverything: what catalogSQL sends holds no
// operator outside OPERATOR(pg_catalog.…) and no IN or LIKE, for every
// catalog query; and what it cannot vouch for is refused.
func TestCatalogSQLQualifiesEverything(t *testing.T) {
	for _, q := range catalogQueries(1) {
		sent := q.sent
		if sent == "" {
			sent = catalogSQL(q.written)
		}
		toks, err := sqlTokens(sent)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		inOperator := false
		for i, tk := range toks {
			switch {
			case tk.kind == 'w' && strings.EqualFold(tk.text, "OPERATOR"):
				inOperator = true
			case inOperator && tk.text == ")":
				inOperator = false
			case tk.kind == 'o' && !inOperator:
				t.Errorf("%s: operator %s unqualified at token %d", q.name, tk.text, i)
			case tk.kind == 'w' && !inOperator && (strings.EqualFold(tk.text, "IN") || strings.EqualFold(tk.text, "LIKE")):
				t.Errorf("%s: %s left at token %d", q.name, tk.text, i)
			}
		}
		if q.written != "" && !strings.Contains(sent, "OPERATOR(pg_catalog.") && strings.ContainsAny(q.written, "=<>|") {
			t.Errorf("%s: nothing qualified", q.name)
		}
	}
	for in, want := range map[string]string{
		"a = b AND c <> 'x=y'":                 "a OPERATOR(pg_catalog.=) b AND c OPERATOR(pg_catalog.<>) 'x=y'",
		"x IN (1, 2)":                          "x OPERATOR(pg_catalog.=) ANY (ARRAY[1, 2])",
		"x NOT IN ('a', (SELECT 'b'))":         "x OPERATOR(pg_catalog.<>) ALL (ARRAY['a', (SELECT 'b')])",
		"x IN (SELECT y FROM t WHERE y >= -1)": "x OPERATOR(pg_catalog.=) ANY (SELECT y FROM t WHERE y OPERATOR(pg_catalog.>=) -1)",
		"n NOT LIKE 'pg\\_%'":                  "n OPERATOR(pg_catalog.!~~) 'pg\\_%'",
		`"a=" != f(b = c, d)`:                  `"a=" OPERATOR(pg_catalog.<>) f(b OPERATOR(pg_catalog.=) c, d)`,
		"CASE WHEN a = 1 THEN b = 2 END":       "CASE WHEN a OPERATOR(pg_catalog.=) 1 THEN b OPERATOR(pg_catalog.=) 2 END",
		"SELECT DISTINCT x":                    "SELECT DISTINCT x",
	} {
		if got, err := qualifyOperators(in); err != nil || got != want {
			t.Errorf("%s:\n got  %s %v\n want %s", in, got, err, want)
		}
	}
	for _, in := range []string{
		"a || b = c", "a = b = c", "a + b", "a BETWEEN 1 AND 2", "CASE a WHEN 1 THEN 2 END", "NULLIF(a, b)",
		"a IS DISTINCT FROM b", "t JOIN u USING (x)", "a ILIKE b", "a = b -- c", "f($$x$$)", "OPERATOR(public.=)",
		"a = 'x", "(a = b", "a = b)", "a ~ b",
	} {
		if got, err := qualifyOperators(in); err == nil {
			t.Errorf("%s: accepted as %s", in, got)
		}
	}
}

// TestCatalogReadsIgnoreSessionOperators: a session whose search_path lists
// a schema of its own operators before pg_catalog (every comparison
// operator and || that pg_catalog has, for the same argument types, with
// the opposite answer) gets the same answers from every catalog query as a
// plain session, and the same rows as pgx from lookups through wtcache.
// The shadow bites: the queries as written answer otherwise there.
func TestCatalogReadsIgnoreSessionOperators(t *testing.T) {
	e := needServices(t)
	plain := rpSetup(t, e, `DROP SCHEMA IF EXISTS wt_ops CASCADE; CREATE SCHEMA wt_ops;
CREATE TYPE wt_ops.mood AS ENUM ('a', 'b');
CREATE DOMAIN wt_ops.dm AS wt_ops.mood;
CREATE TYPE wt_ops.pair AS (x int, y wt_ops.dm[]);
CREATE TABLE wt_opshadow_p (id bigint PRIMARY KEY, n text);
CREATE TABLE wt_opshadow_t (id bigint, k text, v int DEFAULT 7, m wt_ops.dm, p wt_ops.pair, r int4range, ts timestamptz,
  p_id bigint REFERENCES wt_opshadow_p ON DELETE CASCADE, PRIMARY KEY (k, id));
CREATE TABLE wt_opshadow_c () INHERITS (wt_opshadow_t);
INSERT INTO wt_opshadow_p SELECT g, 'n' || g FROM generate_series(1, 5) g;
INSERT INTO wt_opshadow_t SELECT g, 'k' || g, g, 'a', format('(%s,{b})', g)::wt_ops.pair, int4range(g, g + 1), '2020-01-01', g FROM generate_series(1, 5) g;
DO $$
DECLARE o record; f text; n int := 0;
BEGIN
  FOR o IN SELECT op.oprname, pg_catalog.format_type(op.oprleft, NULL) l, pg_catalog.format_type(op.oprright, NULL) r,
                  pg_catalog.format_type(op.oprresult, NULL) res
           FROM pg_catalog.pg_operator op
           WHERE op.oprname IN ('=', '<>', '<', '<=', '>', '>=', '||', '~~', '!~~') AND op.oprleft <> 0 AND 'record'::regtype NOT IN (op.oprleft, op.oprright)
             AND op.oprnamespace = 'pg_catalog'::regnamespace
  LOOP
    n := n + 1;
    f := 'wt_ops.f' || n;
    IF o.res = 'boolean' THEN
      EXECUTE pg_catalog.format('CREATE FUNCTION %s(%s, %s) RETURNS boolean LANGUAGE sql IMMUTABLE AS %L',
        f, o.l, o.r, 'SELECT NOT ($1 OPERATOR(pg_catalog.' || o.oprname || ') $2)');
    ELSIF o.res = 'text' THEN
      EXECUTE pg_catalog.format('CREATE FUNCTION %s(%s, %s) RETURNS text LANGUAGE sql IMMUTABLE AS %L',
        f, o.l, o.r, 'SELECT ''@@''::text');
    ELSE
      CONTINUE;
    END IF;
    EXECUTE pg_catalog.format('CREATE OPERATOR wt_ops.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s)', o.oprname, o.l, o.r, f);
  END LOOP;
END $$`, "DROP TABLE IF EXISTS wt_opshadow_c, wt_opshadow_t, wt_opshadow_p; DROP SCHEMA IF EXISTS wt_ops CASCADE")
	ctx := context.Background()
	var oids []int64
	rows, err := plain.QueryContext(ctx, `SELECT c.oid::int8 FROM pg_class c WHERE c.relname IN ('wt_opshadow_t', 'wt_opshadow_p', 'wt_opshadow_c', 'pg_class')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var o int64
		if err := rows.Scan(&o); err != nil {
			t.Fatal(err)
		}
		oids = append(oids, o)
	}
	rows.Close()
	if len(oids) != 4 {
		t.Fatalf("%d tables", len(oids))
	}
	db, _ := e.open(t, rpPrefix("opshadow"))
	db.SetMaxOpenConns(1) // one session: the one shadowed
	// answers runs every catalog query on one session of db, as sent
	// (sent) or as written.
	answers := func(d *sql.DB, path string, sent bool, oids []int64, timeout string) map[string]string {
		t.Helper()
		sc, err := d.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		if _, err := sc.ExecContext(ctx, "SET search_path = "+path); err != nil {
			t.Fatal(err)
		}
		// Queries misread by a shadow join everything to everything: a
		// slow answer is a wrong one.
		if _, err := sc.ExecContext(ctx, "SET statement_timeout = '"+timeout+"'"); err != nil {
			t.Fatal(err)
		}
		defer sc.ExecContext(ctx, "RESET statement_timeout")
		out := map[string]string{}
		err = sc.Raw(func(dc any) error {
			c := dc.(*conn)
			for _, oid := range oids {
				for _, q := range catalogQueries(oid) {
					text := q.written
					if sent {
						text = q.sent
						if text == "" {
							text = catalogSQL(q.written)
						}
					}
					rs, err := c.innerQuery(ctx, text, q.args...)
					out[fmt.Sprintf("%s/%d", q.name, oid)] = fmt.Sprintf("%v %v", renderValues(rs), err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := answers(db, "public", false, oids, "60s")
	for k, v := range want {
		if strings.Contains(v, "ERROR") || strings.Contains(v, "@@") {
			t.Fatalf("plain session, %s: %s", k, v)
		}
	}
	const shadowed = "wt_ops, pg_catalog, public"
	got := answers(db, shadowed, true, oids, "10s")
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s under search_path %s:\n got  %s\n want %s", k, shadowed, got[k], v)
		}
	}
	// The shadow bites: as written, the queries answer otherwise.
	bitten := 0
	asWritten := answers(db, shadowed, false, oids[:1], "500ms")
	for k, v := range asWritten {
		if want[k] != v {
			bitten++
		}
	}
	if bitten < len(asWritten)*3/4 {
		t.Fatalf("the shadowing operators changed only %d of %d answers of the queries as written", bitten, len(asWritten))
	}
	// Lookups through wtcache on the shadowed session read what pgx reads
	// there (the session's = is not equality).
	plain.SetMaxOpenConns(1)
	for _, d := range []*sql.DB{db, plain} {
		if _, err := d.ExecContext(ctx, "SET search_path = "+shadowed+"; SET statement_timeout = '5s'"); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"SELECT * FROM wt_opshadow_p WHERE id = $1", "SELECT * FROM wt_opshadow_t WHERE k = 'k' || $1::text AND id = $1::int8"} {
		for round := 0; round < 2; round++ {
			for id := 1; id <= 3; id++ {
				g, gerr := renderAgain(db, q, id)
				w, werr := renderAgain(plain, q, id)
				if g != w || (gerr == nil) != (werr == nil) {
					t.Fatalf("%s, id %d, round %d:\nwtcache %s %v\npgx     %s %v", q, id, round, g, gerr, w, werr)
				}
			}
		}
	}
}

func renderValues(rows [][]driver.Value) string {
	var b strings.Builder
	for _, r := range rows {
		for _, v := range r {
			fmt.Fprintf(&b, "%T:%v|", v, v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestUserEqualityWritesWiden: while an = of the application's own may
// compare a table's key, a write by key through a session that uses it
// changes other rows than the key names; wtcache takes its reach to be the
// whole table (the operator runs PostgreSQL's own int8ne: nothing else
// widens the write). Once the operator is gone, every row read through wtcache is
// what pgx reads (without the widening, the rows that write changed are
// served from before it). Lookups meanwhile go to PostgreSQL whole.
func TestUserEqualityWritesWiden(t *testing.T) {
	e := needServices(t)
	const tb = "wt_usereq"
	plain := rpSetup(t, e, `CREATE TABLE `+tb+` (id bigint PRIMARY KEY, n text);
INSERT INTO `+tb+` SELECT g, 'n' || g FROM generate_series(1, 5) g;
CREATE TABLE `+tb+`_text (id text PRIMARY KEY, n text);
INSERT INTO `+tb+`_text SELECT g::text, 'n' || g FROM generate_series(1, 5) g;
CREATE SCHEMA wt_eqext; CREATE EXTENSION citext SCHEMA wt_eqext; CREATE EXTENSION hstore SCHEMA wt_eqext`,
		"DROP TABLE IF EXISTS "+tb+", "+tb+"_text; DROP SCHEMA IF EXISTS wt_eq CASCADE; DROP SCHEMA IF EXISTS wt_eqext CASCADE")
	const refresh = 20 * time.Millisecond
	db, c := e.open(t, rpPrefix("usereq"), "cache_schema_refresh="+refresh.String())
	ctx := context.Background()
	q := "SELECT * FROM " + tb + " WHERE id = $1"
	readAll := func(q string) {
		t.Helper()
		for id := 1; id <= 5; id++ {
			g, gerr := renderAgain(db, q, fmt.Sprint(id))
			w, werr := renderAgain(plain, q, fmt.Sprint(id))
			if g != w || (gerr == nil) != (werr == nil) {
				t.Fatalf("id %d:\nwtcache %s %v\npgx     %s %v", id, g, gerr, w, werr)
			}
		}
		c.settle()
	}
	// Extensions' = on their own types (citext's, hstore's) leave both
	// tables served.
	qText := "SELECT * FROM " + tb + "_text WHERE id = $1"
	for _, q := range []string{q, qText} {
		hits := rpStats(c).Hits
		readAll(q)
		readAll(q)
		if rpStats(c).Hits == hits {
			t.Fatalf("%s: no hits before the operator", q)
		}
	}
	mustExec(t, plain, `CREATE SCHEMA wt_eq;
CREATE OPERATOR wt_eq.= (LEFTARG = int8, RIGHTARG = int8, FUNCTION = pg_catalog.int8ne)`)
	time.Sleep(3 * refresh)
	sc, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.ExecContext(ctx, "SET search_path = wt_eq, pg_catalog, public"); err != nil {
		t.Fatal(err)
	}
	hits := rpStats(c).Hits
	for id := 1; id <= 2; id++ {
		var n int
		if err := sc.QueryRowContext(ctx, "SELECT count(*) FROM ("+q+") s", id).Scan(&n); err != nil || n != 4 {
			t.Fatalf("the session's = is not the shadow: %d rows, %v", n, err)
		}
		rows, err := sc.QueryContext(ctx, q, id)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for rows.Next() {
			got++
		}
		rows.Close()
		if got != 4 {
			t.Fatalf("lookup of %d on the shadowed session: %d rows, pgx reads 4", id, got)
		}
	}
	if _, err := sc.ExecContext(ctx, "UPDATE "+tb+" SET n = n || '!' WHERE id = $1", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.ExecContext(ctx, "RESET search_path"); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	if got := rpStats(c).Hits; got != hits {
		t.Fatalf("%d hits while the operator may compare the key", got-hits)
	}
	// A table whose key the operator cannot compare is served meanwhile.
	hits = rpStats(c).Hits
	readAll(qText)
	if rpStats(c).Hits == hits {
		t.Fatal("no hits on a text key while the operator takes int8")
	}
	mustExec(t, plain, "DROP SCHEMA wt_eq CASCADE")
	time.Sleep(3 * refresh)
	readAll(q)
	hits = rpStats(c).Hits
	readAll(q)
	if rpStats(c).Hits == hits {
		t.Fatal("no hits once the operator is gone")
	}
}

// scratchEnv is e on a database of its own, made for the test and dropped
// after it: for catalog changes no other test may see (an operator made in
// pg_catalog).
func scratchEnv(t *testing.T, e itEnv, name string) itEnv {
	t.Helper()
	admin := e.plain(t)
	mustExec(t, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	mustExec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u, err := url.Parse(e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	s := e
	s.dbURL = u.String()
	return s
}

// TestUserEqualityInPgCatalog: an = a superuser makes in pg_catalog itself
// (varchar = varchar, which PostgreSQL does not have: it becomes the exact
// match for a varchar key whatever the search_path) is not PostgreSQL's
// own either: the table is not served (each round a new statement text, so
// that pgx's statement cache, planned before the operator, is not what is
// compared).
func TestUserEqualityInPgCatalog(t *testing.T) {
	e := scratchEnv(t, needServices(t), "wt_scratch_pgcat")
	plain := e.plain(t)
	mustExec(t, plain, `CREATE TABLE v (id varchar PRIMARY KEY, n text); INSERT INTO v VALUES ('a', 'n1'), ('b', 'n2'), ('c', 'n3')`)
	const refresh = 20 * time.Millisecond
	db, c := e.open(t, rpPrefix("pgcat"), "cache_schema_refresh="+refresh.String())
	round := 0
	compare := func() {
		t.Helper()
		round++
		q := "SELECT * FROM v WHERE id = $1" + strings.Repeat(" ", round)
		g, gerr := renderAgain(db, q, "a")
		w, werr := renderAgain(plain, q, "a")
		if g != w || (gerr == nil) != (werr == nil) {
			t.Fatalf("round %d:\nwtcache %s %v\npgx     %s %v", round, g, gerr, w, werr)
		}
		c.settle()
	}
	compare()
	compare()
	if rpStats(c).Hits == 0 {
		t.Fatal("no hits before the operator")
	}
	mustExec(t, plain, `CREATE FUNCTION pg_catalog.wt_vne(varchar, varchar) RETURNS boolean LANGUAGE internal IMMUTABLE STRICT AS 'textne';
CREATE OPERATOR pg_catalog.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = pg_catalog.wt_vne)`)
	time.Sleep(3 * refresh)
	hits := rpStats(c).Hits
	for i := 0; i < 3; i++ {
		compare()
	}
	if got := rpStats(c).Hits; got != hits {
		t.Fatalf("%d hits while an = in pg_catalog compares the key", got-hits)
	}
}

// TestWriteCastUnderShadowedTypeName: a write by key whose value is cast
// to a type name the session's search_path gives another meaning ($1::int8
// with a domain int8 over numeric(20,-3) first: 1234 reaches row 1000) is
// not taken to reach the key it spells: every row reads as pgx reads it
// after it.
func TestWriteCastUnderShadowedTypeName(t *testing.T) {
	e := scratchEnv(t, needServices(t), "wt_scratch_casts")
	plain := e.plain(t)
	mustExec(t, plain, `CREATE TABLE t (id bigint PRIMARY KEY, n text); INSERT INTO t VALUES (1000, 'a'), (1234, 'b');
CREATE SCHEMA s; CREATE DOMAIN s.int8 AS numeric(20,-3)`)
	db, c := e.open(t, rpPrefix("casts"))
	readAll := func() {
		t.Helper()
		for _, id := range []int64{1000, 1234} {
			g, gerr := renderAgain(db, "SELECT * FROM t WHERE id = $1", id)
			w, werr := renderAgain(plain, "SELECT * FROM t WHERE id = $1", id)
			if g != w || (gerr == nil) != (werr == nil) {
				t.Fatalf("id %d:\nwtcache %s %v\npgx     %s %v", id, g, gerr, w, werr)
			}
		}
		c.settle()
	}
	readAll()
	readAll()
	if rpStats(c).Hits == 0 {
		t.Fatal("no hits")
	}
	ctx := context.Background()
	sc, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET search_path = s, pg_catalog, public", "UPDATE t SET n = n || '!' WHERE id = $1::int8", "RESET search_path"} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{int64(1234)}
		}
		if _, err := sc.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sc.Close()
	var n string
	if err := plain.QueryRow("SELECT n FROM t WHERE id = 1000").Scan(&n); err != nil || n != "a!" {
		t.Fatalf("the domain did not round the key: row 1000 is %q (%v)", n, err)
	}
	readAll()
}

// TestCatalogChangesSeenInsideSnapshots: a REPEATABLE READ or SERIALIZABLE
// transaction reads the catalog as it was at its first statement, but the
// server acts on the catalog as it is. A change made elsewhere after that
// statement (an = over the key's type, a trigger that writes another
// table, a cascading foreign key), then a write by key inside the
// transaction once the connector's knowledge has expired: every row of
// every table reads as pgx reads it afterwards, through the session that
// wrote and through another.
func TestCatalogChangesSeenInsideSnapshots(t *testing.T) {
	e := scratchEnv(t, needServices(t), "wt_scratch_snap")
	plain := e.plain(t)
	changes := []struct{ name, make, undo string }{
		{"operator", `CREATE SCHEMA o; CREATE OPERATOR o.= (LEFTARG = int8, RIGHTARG = int8, FUNCTION = pg_catalog.int8ne)`, `DROP SCHEMA o CASCADE`},
		{"trigger", `CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN UPDATE u SET n = n || '!'; RETURN NULL; END$$;
CREATE TRIGGER bump AFTER UPDATE ON t FOR EACH STATEMENT EXECUTE FUNCTION bump()`, `DROP TRIGGER bump ON t; DROP FUNCTION bump()`},
		{"cascade", `ALTER TABLE u ADD CONSTRAINT u_t FOREIGN KEY (t_id) REFERENCES t (id) ON DELETE CASCADE`, `ALTER TABLE u DROP CONSTRAINT u_t`},
	}
	for _, iso := range []string{"REPEATABLE READ", "SERIALIZABLE"} {
		for _, ch := range changes {
			t.Run(strings.ReplaceAll(iso, " ", "_")+"/"+ch.name, func(t *testing.T) {
				mustExec(t, plain, `DROP TABLE IF EXISTS u, t; CREATE TABLE t (id bigint PRIMARY KEY, n text); CREATE TABLE u (id bigint PRIMARY KEY, t_id bigint, n text);
INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 5) g; INSERT INTO u SELECT g, g, 'u' || g FROM generate_series(1, 5) g`)
				const refresh = 20 * time.Millisecond
				db, c := e.open(t, rpPrefix("snap"), "cache_schema_refresh="+refresh.String())
				readAll := func(d *sql.DB) {
					t.Helper()
					for _, tb := range []string{"t", "u"} {
						for id := 1; id <= 5; id++ {
							q := "SELECT * FROM " + tb + " WHERE id = $1"
							g, gerr := renderAgain(d, q, id)
							w, werr := renderAgain(plain, q, id)
							if g != w || (gerr == nil) != (werr == nil) {
								t.Fatalf("%s id %d:\nwtcache %s %v\npgx     %s %v", tb, id, g, gerr, w, werr)
							}
						}
					}
					c.settle()
				}
				readAll(db)
				readAll(db)
				if rpStats(c).Hits == 0 {
					t.Fatal("no hits before the change")
				}
				ctx := context.Background()
				sc, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer sc.Close()
				step := func(q string, args ...any) {
					t.Helper()
					if _, err := sc.ExecContext(ctx, q, args...); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				step("BEGIN ISOLATION LEVEL " + iso)
				step("SELECT count(*) FROM t") // the snapshot
				mustExec(t, plain, ch.make)
				time.Sleep(5 * refresh) // the connector's knowledge expires
				step("SET LOCAL search_path = o, pg_catalog, public")
				if ch.name == "cascade" {
					step("DELETE FROM t WHERE id = $1", 2)
				} else {
					step("UPDATE t SET n = n || '!' WHERE id = $1", 1)
				}
				step("COMMIT")
				mustExec(t, plain, ch.undo)
				time.Sleep(5 * refresh)
				readAll(db)
			})
		}
	}
}

// TestImpliedOperatorsAndAttributeCalls: SQL forms that make the server
// call an operator or a function whose name the text never spells as one
// (IN, NOT IN, IS [NOT] DISTINCT FROM, NULLIF, a simple CASE, [NOT]
// BETWEEN, [NOT] LIKE, ILIKE, SIMILAR TO, JOIN USING, NATURAL JOIN, and
// t.f / (t).f calling f(t)) run the application's volatile code (with its
// operators first on the session's search_path): each such statement is a
// database-wide write, and a row its code changed reads as pgx reads it.
// Each form runs through a handle of its own, and is checked to call the
// code (the row moves), so none passes by not calling it. The attribute
// forms run where no = of the application's exists (which would widen any
// text with an = by itself).
func TestImpliedOperatorsAndAttributeCalls(t *testing.T) {
	e := scratchEnv(t, needServices(t), "wt_scratch_implied")
	plain := e.plain(t)
	mustExec(t, plain, `CREATE TABLE t (id bigint PRIMARY KEY, n text); CREATE TABLE u (id bigint PRIMARY KEY, n text);
INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 5) g; INSERT INTO u VALUES (1, 'u');
CREATE FUNCTION public.touch(t) RETURNS text VOLATILE LANGUAGE plpgsql AS $$BEGIN UPDATE public.u SET n = n || '!'; RETURN 'x'; END$$`)
	ops := "CREATE SCHEMA o;"
	for i, op := range []string{"=", "<>", "<", "<=", ">", ">=", "~~", "!~~", "~~*", "!~~*", "~", "!~"} {
		ops += fmt.Sprintf(`
CREATE FUNCTION o.f%d(a text, b text) RETURNS bool VOLATILE LANGUAGE plpgsql AS $$BEGIN UPDATE public.u SET n = n || '!'; RETURN a OPERATOR(pg_catalog.%s) b; END$$;
CREATE OPERATOR o.%s (LEFTARG = text, RIGHTARG = text, FUNCTION = o.f%d);`, i, op, op, i)
	}
	check := func(t *testing.T, q string) {
		// (TO: an = in the SET would widen the SET itself.)
		runsCode(t, e, plain, "implied", "SET search_path TO o, pg_catalog, public", q)
	}
	t.Run("operators", func(t *testing.T) {
		mustExec(t, plain, ops)
		defer mustExec(t, plain, "DROP SCHEMA o CASCADE")
		for _, q := range []string{
			"SELECT count(*) FROM t WHERE n IN ('n1', 'n2')",
			"SELECT count(*) FROM t WHERE n NOT IN ('n1', 'n2')",
			"SELECT count(*) FROM t WHERE n IN (SELECT n FROM t LIMIT 2)",
			"SELECT count(*) FROM t WHERE n IS DISTINCT FROM 'n1'",
			"SELECT count(*) FROM t WHERE n IS NOT DISTINCT FROM 'n1'",
			"SELECT NULLIF(n, 'n1') FROM t",
			"SELECT CASE n WHEN 'n1' THEN 1 END FROM t",
			"SELECT count(*) FROM t WHERE n BETWEEN 'n1' AND 'n3'",
			"SELECT count(*) FROM t WHERE n NOT BETWEEN 'n1' AND 'n3'",
			"SELECT count(*) FROM t WHERE n LIKE 'n%'",
			"SELECT count(*) FROM t WHERE n NOT LIKE 'n%'",
			"SELECT count(*) FROM t WHERE n ILIKE 'N%'",
			"SELECT count(*) FROM t WHERE n SIMILAR TO 'n%'",
			"SELECT count(*) FROM t a JOIN (SELECT n FROM t) b USING (n)",
			"SELECT count(*) FROM (SELECT n FROM t) a NATURAL JOIN (SELECT n FROM t) b",
		} {
			t.Run(q, func(t *testing.T) { check(t, q) })
		}
	})
	t.Run("attributes", func(t *testing.T) {
		for _, q := range []string{
			"SELECT t.touch FROM t",
			"SELECT (t).touch FROM t",
			"SELECT x.touch FROM t x LIMIT 1",
			"UPDATE t SET n = t.touch",
		} {
			t.Run(q, func(t *testing.T) { check(t, q) })
		}
	})
}

// TestCatalogConnectionTroubleWidens: the catalog connection a snapshot
// transaction's write needs may not be had (the role's connection limit
// is the pool's) or may have been closed by the server while idle. The
// write then runs, as through pgx, reaching the whole database, and every
// row reads as pgx reads it.
func TestCatalogConnectionTroubleWidens(t *testing.T) {
	base := needServices(t)
	e := scratchEnv(t, base, "wt_scratch_catconn")
	admin := base.plain(t)
	mustExec(t, admin, "DROP ROLE IF EXISTS wt_catconn; CREATE ROLE wt_catconn LOGIN CONNECTION LIMIT 1")
	t.Cleanup(func() { _, _ = admin.Exec("DROP ROLE IF EXISTS wt_catconn") })
	plain := e.plain(t)
	mustExec(t, plain, `CREATE TABLE t (id bigint PRIMARY KEY, n text); INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 3) g;
GRANT ALL ON t TO wt_catconn`)
	const refresh = 20 * time.Millisecond
	for _, mode := range []string{"connection limit", "connection closed"} {
		t.Run(mode, func(t *testing.T) {
			e := e
			if mode == "connection limit" {
				u, _ := url.Parse(e.dbURL)
				u.User = url.User("wt_catconn")
				e.dbURL = u.String()
			}
			db, c := e.open(t, rpPrefix("catconn"), "cache_schema_refresh="+refresh.String())
			db.SetMaxOpenConns(1)
			readAll := func() {
				t.Helper()
				for id := 1; id <= 3; id++ {
					g, gerr := renderAgain(db, "SELECT * FROM t WHERE id = $1", id)
					w, werr := renderAgain(plain, "SELECT * FROM t WHERE id = $1", id)
					if g != w || (gerr == nil) != (werr == nil) {
						t.Fatalf("id %d:\nwtcache %s %v\npgx     %s %v", id, g, gerr, w, werr)
					}
				}
				c.settle()
			}
			write := func(id int) {
				t.Helper()
				time.Sleep(3 * refresh) // the table's description expires
				tx, err := db.BeginTx(context.Background(), &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec("UPDATE t SET n = n || '!' WHERE id = $1", id); err != nil {
					_ = tx.Rollback()
					t.Fatalf("the write pgx runs failed: %v", err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			readAll()
			readAll()
			write(1)
			readAll()
			if mode == "connection closed" {
				// The catalog connection ends (every session of the
				// database but the pool's one and plain's).
				var app int
				if err := db.QueryRow("SELECT pg_backend_pid()").Scan(&app); err != nil {
					t.Fatal(err)
				}
				var n int
				if err := plain.QueryRow("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), $1)", app).Scan(&n); err != nil || n != 1 {
					t.Fatalf("%d sessions ended (%v), want the catalog connection", n, err)
				}
			}
			hits := rpStats(c).Hits
			write(2)
			if mode == "connection closed" {
				// A new catalog connection was made: the write was not
				// widened, and row 3 is still served.
				if _, err := renderAgain(db, "SELECT * FROM t WHERE id = $1", 3); err != nil || rpStats(c).Hits != hits+1 {
					t.Fatalf("row 3 not served after a write to row 2 (%v): the write was widened", err)
				}
			}
			readAll()
		})
	}
}

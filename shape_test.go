package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// renderWithTypes renders a result with everything database/sql tells of
// its columns (columnTypesText) and its rows as rpRender does.
func renderWithTypes(rows *sql.Rows, err error) (string, error) {
	if err != nil {
		return "", err
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return "", err
	}
	out, err := rpRender(rows, nil)
	return columnTypesText(cts) + " : " + strings.Join(out, "; "), err
}

// renderAgain is renderWithTypes of a query, asked a second time when the
// first answer is pgx's "cached plan must not change result type": pgx's
// statement cache meeting a schema change once, which wtcache passes on
// only when it asks PostgreSQL.
func renderAgain(d *sql.DB, q string, args ...any) (string, error) {
	out, err := renderWithTypes(d.QueryContext(context.Background(), q, args...))
	if err != nil && strings.Contains(err.Error(), "SQLSTATE 0A000") {
		out, err = renderWithTypes(d.QueryContext(context.Background(), q, args...))
	}
	return out, err
}

// TestSchemaChangesElsewhereAsPgx: a schema change made through another
// handle (psql, a migration), one that moves no column's name or type OID,
// makes the images from before it misses once wtcache has read the catalog
// again (cache_schema_refresh): every key read through wtcache then
// answers what pgx answers, rows and column types. The changes: type
// modifiers (varchar(n), numeric(p,s), timestamp(p)); rewrites USING an
// expression; TRUNCATE and new rows; VACUUM FULL; a column dropped and
// added again under its name and type; an enum label renamed; a
// composite's attribute added and dropped; a type changed and changed back
// while a handle with an old catalog filled rows; the table renamed away,
// written through wtcache under its other name and renamed back; row-level
// security turned on, a write through wtcache, and off again.
func TestSchemaChangesElsewhereAsPgx(t *testing.T) {
	e := needServices(t)
	const tb = "wt_shape"
	const create = `DROP TYPE IF EXISTS wt_shape_mood CASCADE; DROP TYPE IF EXISTS wt_shape_pt CASCADE; DROP TYPE IF EXISTS wt_shape_deep CASCADE; DROP TYPE IF EXISTS wt_shape_pt2 CASCADE;
CREATE TYPE wt_shape_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE wt_shape_pt AS (x int, y numeric);
CREATE TYPE wt_shape_deep AS ENUM ('sad', 'ok', 'happy'); CREATE DOMAIN wt_shape_d1 AS wt_shape_deep; CREATE DOMAIN wt_shape_d2 AS wt_shape_d1;
CREATE TYPE wt_shape_mr AS RANGE (subtype = wt_shape_deep);
CREATE TYPE wt_shape_pt2 AS (x int, y numeric); CREATE DOMAIN wt_shape_p1 AS wt_shape_pt2; CREATE DOMAIN wt_shape_p2 AS wt_shape_p1;
DROP TYPE IF EXISTS wt_shape_bt CASCADE; CREATE TYPE wt_shape_bt;
CREATE FUNCTION wt_shape_bt_in(cstring) RETURNS wt_shape_bt LANGUAGE internal IMMUTABLE STRICT AS 'textin';
CREATE FUNCTION wt_shape_bt_out(wt_shape_bt) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'textout';
CREATE TYPE wt_shape_bt (INPUT = wt_shape_bt_in, OUTPUT = wt_shape_bt_out, LIKE = text);
CREATE TABLE ` + tb + ` (id bigint PRIMARY KEY, w varchar(10), v numeric(10,2), ts timestamp(6), n int, mood wt_shape_mood, pt wt_shape_pt,
  dd wt_shape_d2, da wt_shape_d1[], mr wt_shape_mr, mm wt_shape_mr_multirange, pd wt_shape_p2, pa wt_shape_p1[], bt wt_shape_bt);
INSERT INTO ` + tb + ` SELECT g, 'w' || g, g + 0.25, TIMESTAMP '2024-01-02 03:04:05.123456' + g * INTERVAL '1 hour', g,
  (ARRAY['sad', 'ok', 'happy']::wt_shape_mood[])[1 + g % 3], ROW(g, g + 0.5)::wt_shape_pt,
  'ok', ARRAY['ok', 'sad']::wt_shape_d1[], wt_shape_mr('sad', 'ok'), wt_shape_mr_multirange(wt_shape_mr('ok', 'happy')),
  ROW(g, 1)::wt_shape_pt2, ARRAY[ROW(g, 2)::wt_shape_pt2]::wt_shape_p1[], 'abc' FROM generate_series(1, 6) g`
	for _, near := range []bool{false, true} {
		t.Run(fmt.Sprintf("near=%v", near), func(t *testing.T) {
			schemaChangesElsewhere(t, e, tb, create, near)
		})
	}
}

func schemaChangesElsewhere(t *testing.T, e itEnv, tb, create string, near bool) {
	plain := rpSetup(t, e, create, "DROP TABLE IF EXISTS "+tb+"; DROP TABLE IF EXISTS "+tb+"_away; DROP TYPE IF EXISTS wt_shape_mood CASCADE; DROP TYPE IF EXISTS wt_shape_pt CASCADE; DROP TYPE IF EXISTS wt_shape_deep CASCADE; DROP TYPE IF EXISTS wt_shape_pt2 CASCADE; DROP TYPE IF EXISTS wt_shape_bt CASCADE")
	const refresh = 100 * time.Millisecond
	extra := []string{"cache_schema_refresh=" + refresh.String()}
	if near {
		extra = append(extra, "cache_local=on", "cache_local_tables="+tb)
	}
	prefix := rpPrefix("shape")
	db, c := e.open(t, prefix, extra...)
	// A second process's handle that reads the catalog seldom: its fills
	// and writes carry what it knew.
	old, oc := e.open(t, prefix, "cache_schema_refresh=1h")
	readAll := func(d *sql.DB) {
		for id := 1; id <= 6; id++ {
			if _, err := renderAgain(d, "SELECT * FROM "+tb+" WHERE id = $1", id); err != nil {
				t.Fatal(err)
			}
		}
	}
	ddl := func(q string) func() { return func() { mustExec(t, plain, q) } }
	changes := []struct {
		name string
		do   func()
	}{
		{"varchar(20)", ddl(`ALTER TABLE ` + tb + ` ALTER COLUMN w TYPE varchar(20)`)},
		{"numeric(12,4)", ddl(`ALTER TABLE ` + tb + ` ALTER COLUMN v TYPE numeric(12,4)`)},
		{"timestamp(0)", ddl(`ALTER TABLE ` + tb + ` ALTER COLUMN ts TYPE timestamp(0)`)},
		{"USING n * 2", ddl(`ALTER TABLE ` + tb + ` ALTER COLUMN n TYPE int USING n * 2`)},
		{"TRUNCATE, new rows", ddl(`TRUNCATE ` + tb + `; INSERT INTO ` + tb + ` SELECT g, 'x' || g, g + 0.5, TIMESTAMP '2025-01-01', -g, 'ok', ROW(-g, 0)::wt_shape_pt,
			'sad', ARRAY['ok']::wt_shape_d1[], wt_shape_mr('ok', 'happy'), wt_shape_mr_multirange(wt_shape_mr('ok', 'happy')), ROW(g, 3)::wt_shape_pt2, ARRAY[ROW(g, 4)::wt_shape_pt2]::wt_shape_p1[], 'def' FROM generate_series(1, 6) g`)},
		{"VACUUM FULL", ddl(`VACUUM FULL ` + tb)},
		{"varchar(5) USING", ddl(`ALTER TABLE ` + tb + ` ALTER COLUMN w TYPE varchar(5) USING substr(w, 1, 1)`)},
		{"numeric USING", ddl(`ALTER TABLE ` + tb + ` ALTER COLUMN v TYPE numeric USING v * 10`)},
		{"drop and add n", ddl(`ALTER TABLE ` + tb + ` DROP COLUMN n; ALTER TABLE ` + tb + ` ADD COLUMN n int DEFAULT 7`)},
		{"enum label renamed", ddl(`ALTER TYPE wt_shape_mood RENAME VALUE 'ok' TO 'fine'`)},
		{"enum label renamed, under domains, arrays and ranges", ddl(`ALTER TYPE wt_shape_deep RENAME VALUE 'ok' TO 'fine'`)},
		{"composite attribute added, under domains and arrays", ddl(`ALTER TYPE wt_shape_pt2 ADD ATTRIBUTE z int CASCADE`)},
		{"composite attribute added", ddl(`ALTER TYPE wt_shape_pt ADD ATTRIBUTE z int CASCADE`)},
		{"a base type's output function replaced", ddl(`CREATE OR REPLACE FUNCTION wt_shape_bt_out(wt_shape_bt) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'byteaout'`)},
		{"composite attribute dropped", ddl(`ALTER TYPE wt_shape_pt DROP ATTRIBUTE x CASCADE`)},
		{"text and back, filled by an old catalog", func() {
			readAll(old) // its catalog: w varchar(5)
			oc.settle()
			mustExec(t, plain, `ALTER TABLE `+tb+` ALTER COLUMN w TYPE text`)
			time.Sleep(2 * refresh)
			readAll(db) // misses under the new catalog, filled
			c.settle()
			mustExec(t, plain, `UPDATE `+tb+` SET n = n + 1`) // outside: the next fills read new rows
			readAll(old)                                      // misses (another shape), filled under the old one
			oc.settle()
			mustExec(t, plain, `ALTER TABLE `+tb+` ALTER COLUMN w TYPE varchar(5)`)
		}},
		{"renamed away, written, renamed back", func() {
			readAll(db)
			c.settle()
			mustExec(t, plain, `ALTER TABLE `+tb+` RENAME TO `+tb+`_away`)
			time.Sleep(2 * refresh)
			if _, err := db.Exec(`UPDATE ` + tb + `_away SET w = 'moved' WHERE id = 1`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`DELETE FROM ` + tb + `_away WHERE id = 2`); err != nil {
				t.Fatal(err)
			}
			mustExec(t, plain, `ALTER TABLE `+tb+`_away RENAME TO `+tb)
		}},
		{"primary key dropped, written, made again", func() {
			readAll(db)
			c.settle()
			mustExec(t, plain, `ALTER TABLE `+tb+` REPLICA IDENTITY FULL; ALTER TABLE `+tb+` DROP CONSTRAINT `+tb+`_pkey`)
			time.Sleep(2 * refresh)
			if _, err := db.Exec(`UPDATE ` + tb + ` SET w = 'nopk' WHERE id = 4`); err != nil {
				t.Fatal(err)
			}
			mustExec(t, plain, `ALTER TABLE `+tb+` ADD PRIMARY KEY (id)`)
		}},
		{"row-level security on, written, off", func() {
			readAll(db)
			c.settle()
			mustExec(t, plain, `ALTER TABLE `+tb+` ENABLE ROW LEVEL SECURITY`)
			time.Sleep(2 * refresh)
			if _, err := db.Exec(`UPDATE ` + tb + ` SET w = 'rls' WHERE id = 3`); err != nil {
				t.Fatal(err)
			}
			mustExec(t, plain, `ALTER TABLE `+tb+` DISABLE ROW LEVEL SECURITY`)
		}},
	}
	compare := func(step string) {
		t.Helper()
		for id := 1; id <= 6; id++ {
			q := "SELECT * FROM " + tb + " WHERE id = $1"
			for round := 0; round < 2; round++ { // a miss or a hit, then a hit
				got, gerr := renderAgain(db, q, id)
				want, werr := renderAgain(plain, q, id)
				if got != want || (gerr == nil) != (werr == nil) {
					t.Fatalf("%s, id %d, round %d:\nwtcache %s %v\npgx     %s %v", step, id, round, got, gerr, want, werr)
				}
				c.settle()
			}
		}
	}
	compare("before any change")
	for _, ch := range changes {
		ch.do()
		time.Sleep(2 * refresh) // the catalog is read again within refresh
		compare(ch.name)
	}
}

// TestCatalogNamesShadowedBySession: wtcache reads the catalog on the
// application's own connection, so a session whose temporary tables carry
// the names of every catalog relation wtcache reads (each holding every
// row twice) and whose search_path puts a schema of look-alike functions
// before pg_catalog changes nothing wtcache serves: every name in its
// catalog queries is qualified.
func TestCatalogNamesShadowedBySession(t *testing.T) {
	e := needServices(t)
	const tb = "wt_shadowed"
	plain := rpSetup(t, e, `CREATE TABLE `+tb+` (id bigint PRIMARY KEY, v int, w text, r int4range);
INSERT INTO `+tb+` SELECT g, g * 10, 'w' || g, int4range(g, g + 2) FROM generate_series(1, 5) g;
DROP SCHEMA IF EXISTS wt_shadow CASCADE; CREATE SCHEMA wt_shadow;
CREATE FUNCTION wt_shadow.array_to_string(anyarray, text) RETURNS text LANGUAGE sql AS 'SELECT ''1 2 3''';
CREATE FUNCTION wt_shadow.quote_ident(text) RETURNS text LANGUAGE sql AS 'SELECT ''x''';
CREATE FUNCTION wt_shadow.string_agg(text, text) RETURNS text LANGUAGE sql AS 'SELECT ''x''';
CREATE FUNCTION wt_shadow.coalesce(text, text) RETURNS text LANGUAGE sql AS 'SELECT ''x''';
CREATE FUNCTION wt_shadow.current_database() RETURNS name LANGUAGE sql AS 'SELECT ''nowhere''::name';`,
		"DROP TABLE IF EXISTS "+tb+"; DROP SCHEMA IF EXISTS wt_shadow CASCADE")
	db, _ := e.open(t, rpPrefix("shadow"))
	db.SetMaxOpenConns(1) // one session: the one shadowed
	ctx := context.Background()
	// The catalog relations wtcache's queries name.
	seen := map[string]bool{}
	for _, q := range []string{sessionQuery, tableQuery, columnsQuery, cascadesQuery, descendantsQuery, readHazardsQuery, funcsQuery} {
		for _, m := range regexp.MustCompile(`pg_catalog\.(pg_[a-z_]+)\b`).FindAllStringSubmatch(q, -1) {
			seen[m[1]] = true
		}
	}
	var names []string
	for n := range seen {
		var rel bool
		if err := plain.QueryRowContext(ctx, `SELECT pg_catalog.to_regclass('pg_catalog.' || $1) IS NOT NULL`, n).Scan(&rel); err != nil {
			t.Fatal(err)
		}
		if rel {
			names = append(names, n)
		}
	}
	if len(names) < 10 {
		t.Fatalf("only %d catalog relations found in the queries: %v", len(names), names)
	}
	for _, n := range names {
		// Every row twice: a join on the shadow gives each column twice.
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE TEMP TABLE %s AS SELECT * FROM pg_catalog.%[1]s; INSERT INTO pg_temp.%[1]s SELECT * FROM pg_catalog.%[1]s`, n)); err != nil {
			t.Logf("%s not shadowed: %v", n, err)
		}
	}
	// Rows that name the table's own column types, twice, where a join
	// on the shadow would find them (pg_range by the range type).
	if _, err := db.ExecContext(ctx, `INSERT INTO pg_temp.pg_range (rngtypid, rngsubtype, rngmultitypid, rngcollation, rngsubopc, rngcanonical, rngsubdiff)
		SELECT t, t, t, 0, 0, 0, 0 FROM (VALUES ('int4'::regtype::oid), ('int8'::regtype::oid), ('text'::regtype::oid)) v(t), generate_series(1, 2)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "SET search_path = wt_shadow, pg_catalog, public"); err != nil {
		t.Fatal(err)
	}
	q := "SELECT * FROM " + tb + " WHERE id = $1"
	for round := 0; round < 2; round++ {
		for id := 1; id <= 5; id++ {
			got, gerr := renderAgain(db, q, id)
			want, werr := renderAgain(plain, q, id)
			if got != want || (gerr == nil) != (werr == nil) {
				t.Fatalf("round %d, id %d:\nwtcache %s %v\npgx     %s %v", round, id, got, gerr, want, werr)
			}
		}
	}
}

// TestCatalogNameColumnsPassThrough: a column that holds catalog names (the
// reg* types and aclitem, at any depth: under a domain, in an array; a
// user base type whose output is regclass's) reads differently
// by the session's search_path and after a rename made anywhere, neither
// of which the server reports: such a table is never served, and every
// session reads what pgx reads.
func TestCatalogNameColumnsPassThrough(t *testing.T) {
	e := needServices(t)
	plain := rpSetup(t, e, `DROP SCHEMA IF EXISTS wt_regs CASCADE; CREATE SCHEMA wt_regs;
CREATE TABLE wt_regs.target (x int);
CREATE DOMAIN wt_regs.d1 AS regclass; CREATE DOMAIN wt_regs.d2 AS wt_regs.d1;
CREATE TABLE wt_regs.t (id bigint PRIMARY KEY, c regclass, ty regtype[], dd wt_regs.d2, r regrole);
INSERT INTO wt_regs.t VALUES (1, 'wt_regs.target', ARRAY['int4'::regtype], 'wt_regs.target', 'postgres');
CREATE TABLE wt_regs.a (id bigint PRIMARY KEY, acl aclitem[]);
INSERT INTO wt_regs.a VALUES (1, ARRAY[pg_catalog.makeaclitem('postgres'::regrole, 'postgres'::regrole, 'SELECT', false)]);
CREATE TYPE wt_regs.rc;
CREATE FUNCTION wt_regs.rc_in(cstring) RETURNS wt_regs.rc LANGUAGE internal IMMUTABLE STRICT AS 'regclassin';
CREATE FUNCTION wt_regs.rc_out(wt_regs.rc) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'regclassout';
CREATE TYPE wt_regs.rc (INPUT = wt_regs.rc_in, OUTPUT = wt_regs.rc_out, LIKE = regclass);
CREATE TABLE wt_regs.b (id bigint PRIMARY KEY, v wt_regs.rc);
INSERT INTO wt_regs.b VALUES (1, 'wt_regs.target')`,
		"DROP SCHEMA IF EXISTS wt_regs CASCADE")
	db, c := e.open(t, rpPrefix("regs"))
	db.SetMaxOpenConns(1)
	plain.SetMaxOpenConns(1)
	for _, path := range []string{"public", "wt_regs, public"} {
		for _, d := range []*sql.DB{db, plain} {
			if _, err := d.Exec("SET search_path = " + path); err != nil {
				t.Fatal(err)
			}
		}
		for _, tb := range []string{"t", "a", "b"} {
			q := "SELECT * FROM wt_regs." + tb + " WHERE id = $1"
			for round := 0; round < 2; round++ {
				got, gerr := renderAgain(db, q, 1)
				want, werr := renderAgain(plain, q, 1)
				if got != want || (gerr == nil) != (werr == nil) {
					t.Fatalf("%s, search_path %s, round %d:\nwtcache %s %v\npgx     %s %v", tb, path, round, got, gerr, want, werr)
				}
				c.settle()
			}
		}
	}
	if s := rpStats(c); s.Hits != 0 {
		t.Fatalf("%d hits on a table of catalog names", s.Hits)
	}
}

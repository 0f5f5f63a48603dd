package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"
)

// renderWithTypes renders a result with everything database/sql tells of its
// columns (name, database type,
// length, precision and scale, nullability, scan type) and every value as
// scanned into an any.
func renderWithTypes(rows *sql.Rows, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, ct := range cts {
		l, lok := ct.Length()
		p, s, dok := ct.DecimalSize()
		n, nok := ct.Nullable()
		fmt.Fprintf(&b, "[%s %s %d/%v %d,%d/%v %v/%v %v]", ct.Name(), ct.DatabaseTypeName(), l, lok, p, s, dok, n, nok, ct.ScanType())
	}
	for rows.Next() {
		vals := make([]any, len(cts))
		ptrs := make([]any, len(cts))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		for _, v := range vals {
			if t, ok := v.(time.Time); ok {
				v = t.UTC().Format(time.RFC3339Nano)
			}
			fmt.Fprintf(&b, " %T(%v)", v, v)
		}
		b.WriteString(";")
	}
	return b.String(), rows.Err()
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
	const create = `DROP TYPE IF EXISTS wt_shape_mood CASCADE; DROP TYPE IF EXISTS wt_shape_pt CASCADE;
CREATE TYPE wt_shape_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE wt_shape_pt AS (x int, y numeric);
CREATE TABLE ` + tb + ` (id bigint PRIMARY KEY, w varchar(10), v numeric(10,2), ts timestamp(6), n int, mood wt_shape_mood, pt wt_shape_pt);
INSERT INTO ` + tb + ` SELECT g, 'w' || g, g + 0.25, TIMESTAMP '2024-01-02 03:04:05.123456' + g * INTERVAL '1 hour', g,
  (ARRAY['sad', 'ok', 'happy']::wt_shape_mood[])[1 + g % 3], ROW(g, g + 0.5)::wt_shape_pt FROM generate_series(1, 6) g`
	for _, near := range []bool{false, true} {
		t.Run(fmt.Sprintf("near=%v", near), func(t *testing.T) {
			schemaChangesElsewhere(t, e, tb, create, near)
		})
	}
}

func schemaChangesElsewhere(t *testing.T, e itEnv, tb, create string, near bool) {
	plain := rpSetup(t, e, create, "DROP TABLE IF EXISTS "+tb+"; DROP TABLE IF EXISTS "+tb+"_away; DROP TYPE IF EXISTS wt_shape_mood; DROP TYPE IF EXISTS wt_shape_pt")
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
		{"TRUNCATE, new rows", ddl(`TRUNCATE ` + tb + `; INSERT INTO ` + tb + ` SELECT g, 'x' || g, g + 0.5, TIMESTAMP '2025-01-01', -g, 'ok', ROW(-g, 0)::wt_shape_pt FROM generate_series(1, 6) g`)},
		{"VACUUM FULL", ddl(`VACUUM FULL ` + tb)},
		{"varchar(5) USING", ddl(`ALTER TABLE ` + tb + ` ALTER COLUMN w TYPE varchar(5) USING substr(w, 1, 1)`)},
		{"numeric USING", ddl(`ALTER TABLE ` + tb + ` ALTER COLUMN v TYPE numeric USING v * 10`)},
		{"drop and add n", ddl(`ALTER TABLE ` + tb + ` DROP COLUMN n; ALTER TABLE ` + tb + ` ADD COLUMN n int DEFAULT 7`)},
		{"enum label renamed", ddl(`ALTER TYPE wt_shape_mood RENAME VALUE 'ok' TO 'fine'`)},
		{"composite attribute added", ddl(`ALTER TYPE wt_shape_pt ADD ATTRIBUTE z int CASCADE`)},
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

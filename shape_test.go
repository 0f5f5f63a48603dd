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
// handle (psql, a migration), one that moves no column's name or type OID
// (a type modifier: varchar(n), numeric(p,s), timestamp(p); a rewrite
// USING an expression; TRUNCATE and new rows; VACUUM FULL), makes the
// images from before it misses once wtcache has read the catalog again
// (cache_schema_refresh): every key read through wtcache then answers what
// pgx answers, rows and column types.
func TestSchemaChangesElsewhereAsPgx(t *testing.T) {
	e := needServices(t)
	const tb = "wt_shape"
	const create = `CREATE TABLE ` + tb + ` (id bigint PRIMARY KEY, w varchar(10), v numeric(10,2), ts timestamp(6), n int);
INSERT INTO ` + tb + ` SELECT g, 'w' || g, g + 0.25, TIMESTAMP '2024-01-02 03:04:05.123456' + g * INTERVAL '1 hour', g FROM generate_series(1, 6) g`
	for _, near := range []bool{false, true} {
		t.Run(fmt.Sprintf("near=%v", near), func(t *testing.T) {
			schemaChangesElsewhere(t, e, tb, create, near)
		})
	}
}

func schemaChangesElsewhere(t *testing.T, e itEnv, tb, create string, near bool) {
	plain := rpSetup(t, e, create, "DROP TABLE IF EXISTS "+tb)
	const refresh = 100 * time.Millisecond
	extra := []string{"cache_schema_refresh=" + refresh.String()}
	if near {
		extra = append(extra, "cache_local=on", "cache_local_tables="+tb)
	}
	db, c := e.open(t, rpPrefix("shape"), extra...)
	changes := []string{
		`ALTER TABLE ` + tb + ` ALTER COLUMN w TYPE varchar(20)`,
		`ALTER TABLE ` + tb + ` ALTER COLUMN v TYPE numeric(12,4)`,
		`ALTER TABLE ` + tb + ` ALTER COLUMN ts TYPE timestamp(0)`,
		`ALTER TABLE ` + tb + ` ALTER COLUMN n TYPE int USING n * 2`,
		`TRUNCATE ` + tb + `; INSERT INTO ` + tb + ` SELECT g, 'x' || g, g + 0.5, TIMESTAMP '2025-01-01', -g FROM generate_series(1, 6) g`,
		`VACUUM FULL ` + tb,
		`ALTER TABLE ` + tb + ` ALTER COLUMN w TYPE varchar(5) USING substr(w, 1, 1)`,
		`ALTER TABLE ` + tb + ` ALTER COLUMN v TYPE numeric USING v * 10`,
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
	for _, ddl := range changes {
		mustExec(t, plain, ddl)
		time.Sleep(2 * refresh) // the catalog is read again within refresh
		compare(ddl)
	}
}

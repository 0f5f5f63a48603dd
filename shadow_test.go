package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
)

// TestShadowedTypeNames: a schema on the search_path before pg_catalog
// holds domains named like the built-in types (text, int8, oid, uuid,
// regclass, ...), as an application's own types may be. Everything wtcache
// asks the catalog, every statement it builds and every cast it serves
// must mean what PostgreSQL means in that session: each lookup (with and
// without casts, in the select list and on the key) and each write is
// compared with plain pgx on the same search_path, twice, so that hits are
// compared too.
func TestShadowedTypeNames(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	sch := fmt.Sprintf("wt_shadow_%d", os.Getpid())
	long := sch + "_accounts_long"
	other := sch + "_accounts_longx"
	var ddl strings.Builder
	fmt.Fprintf(&ddl, "DROP SCHEMA IF EXISTS %[1]s CASCADE; CREATE SCHEMA %[1]s;", sch)
	// Domains over types that truncate, narrow or change the meaning.
	for _, d := range []string{"text AS varchar(6)", "int8 AS numeric(4,1)", "oid AS int2", "int4 AS numeric(3,1)",
		"uuid AS varchar(8)", "bool AS int2", "varchar AS char(2)", "float8 AS int2", "regclass AS varchar(3)", "int2 AS numeric(2,1)"} {
		fmt.Fprintf(&ddl, "CREATE DOMAIN %s.%s;", sch, d)
	}
	fmt.Fprintf(&ddl, `DROP TABLE IF EXISTS public.%[1]s, public.%[2]s;
		CREATE TABLE public.%[1]s (id bigint PRIMARY KEY, v text, u uuid, f boolean);
		CREATE TABLE public.%[2]s (id bigint PRIMARY KEY, v text, u uuid, f boolean);
		INSERT INTO public.%[1]s VALUES (5, 'long table five', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true), (7, 'seven', NULL, false), (5000000000, 'big key', NULL, NULL);
		INSERT INTO public.%[2]s VALUES (5, 'other table five', NULL, NULL)`, long, other)
	mustExec(t, p, ddl.String())
	t.Cleanup(func() {
		mustExec(t, p, fmt.Sprintf("DROP TABLE IF EXISTS public.%s, public.%s; DROP SCHEMA IF EXISTS %s CASCADE", long, other, sch))
	})
	path := "search_path=" + url.QueryEscape(sch+",pg_catalog,public")
	plain, err := sql.Open("pgx", e.dbURL+"&"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	db, c := e.open(t, fmt.Sprintf("shadow%d", os.Getpid()), path)

	type step struct {
		q     string
		args  []any
		write bool
	}
	var steps []step
	look := func(q string, args ...any) { steps = append(steps, step{q: q, args: args}) }
	write := func(q string, args ...any) { steps = append(steps, step{q: q, args: args, write: true}) }
	for _, tb := range []string{long, other} {
		look(`SELECT * FROM `+tb+` WHERE id = $1`, 5)
		look(`SELECT id, v FROM `+tb+` WHERE id IN ($1, $2)`, 5, 7)
		look(`SELECT * FROM `+tb+` WHERE id = $1`, int64(5000000000)) // a key longer than the text domain
		look(`SELECT id, v FROM `+tb+` WHERE id IN ($1, $2)`, 5, int64(5000000000))
		look(`SELECT * FROM `+tb+` WHERE id = $1::bigint`, 5)
		look(`SELECT * FROM `+tb+` WHERE id = $1::int8`, 5)
		look(`SELECT * FROM ` + tb + ` WHERE id = 5::pg_catalog.int8`)
		look(`SELECT * FROM `+tb+` WHERE id = ANY($1::int8[])`, []int64{5, 7})
		look(`SELECT id::int8, v::text, u::uuid, f::bool FROM `+tb+` WHERE id = $1`, 5)
		look(`SELECT id::bigint, v::pg_catalog.text, f::boolean FROM `+tb+` WHERE id = $1`, 5)
	}
	write(`UPDATE `+long+` SET v = $1 WHERE id = $2`, "updated long", 5)
	write(`UPDATE `+other+` SET v = v || '!' WHERE id = $1`, 5)
	write(`INSERT INTO `+long+` VALUES ($1, 'eleven', NULL, true)`, 11)
	write(`DELETE FROM `+long+` WHERE id = $1`, 7)

	for round := 0; round < 2; round++ {
		for _, s := range steps {
			if s.write {
				if round > 0 {
					continue
				}
				if _, err := db.ExecContext(ctx, s.q, s.args...); err != nil {
					t.Fatalf("%s: %v", s.q, err)
				}
				continue
			}
			for pass := 0; pass < 2; pass++ { // the second may be a hit
				want, werr := renderTyped(plain.QueryContext(ctx, s.q, s.args...))
				got, gerr := renderTyped(db.QueryContext(ctx, s.q, s.args...))
				c.settle()
				if fmt.Sprint(gerr) != fmt.Sprint(werr) || strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s %v (round %d, pass %d):\nthrough wtcache %q %v\nplain pgx       %q %v", s.q, s.args, round, pass, got, gerr, want, werr)
				}
			}
		}
	}
	if rpStats(c).Hits == 0 {
		t.Errorf("no lookup was served from Redis: the test proves nothing of the hit path")
	}
}

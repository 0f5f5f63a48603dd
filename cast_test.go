package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestCastLookups: a key compared with a parameter or constant cast to a
// type ($1::bigint, '...'::uuid, ANY($1::int8[])). Every cast form and
// argument (in range for the cast type or not, of another family, with a
// type modifier) is answered through wtcache exactly as plain pgx answers
// it, first as a miss and then again; casts that keep the comparison are
// served from Redis, the others pass through.
func TestCastLookups(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	tb := func(s string) string { return fmt.Sprintf("cast_%s_%d", s, os.Getpid()) }
	mustExec(t, p, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s, %[2]s, %[3]s, %[4]s;
		CREATE TABLE %[1]s (id bigint PRIMARY KEY, v text); INSERT INTO %[1]s VALUES (5, 'five'), (70000, 'big'), (5000000000, 'huge');
		CREATE TABLE %[2]s (id int PRIMARY KEY, v text); INSERT INTO %[2]s VALUES (5, 'five');
		CREATE TABLE %[3]s (id text PRIMARY KEY, v text); INSERT INTO %[3]s VALUES ('ab', 'x'), ('abc', 'y');
		CREATE TABLE %[4]s (id uuid PRIMARY KEY, v text); INSERT INTO %[4]s VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'u')`,
		tb("i8"), tb("i4"), tb("tx"), tb("uu")))
	t.Cleanup(func() {
		mustExec(t, p, fmt.Sprintf(`DROP TABLE %s, %s, %s, %s`, tb("i8"), tb("i4"), tb("tx"), tb("uu")))
	})
	db, c := e.open(t, "")
	type probe struct {
		q     string
		args  []any
		serve bool // expected to be served from Redis the second time
	}
	var probes []probe
	add := func(serve bool, q string, args ...any) { probes = append(probes, probe{q, args, serve}) }
	for _, cast := range []string{"bigint", "int8", "pg_catalog.int8", "integer", "int4", "int", "smallint", "int2"} {
		for _, k := range []int64{5, 70000, 5000000000} {
			fits := map[string]bool{"smallint": k < 1<<15, "int2": k < 1<<15, "integer": k < 1<<31, "int4": k < 1<<31, "int": k < 1<<31}
			ok, narrow := fits[cast]
			add(!narrow || ok, `SELECT * FROM `+tb("i8")+` WHERE id = $1::`+cast, k)
			add(!narrow || ok, fmt.Sprintf(`SELECT * FROM %s WHERE id = %d::%s`, tb("i8"), k, cast))
		}
	}
	add(true, `SELECT * FROM `+tb("i8")+` WHERE $1::bigint = id`, 5)
	add(true, `SELECT * FROM `+tb("i8")+` WHERE id IN ($1::bigint, $2::int8)`, 5, 70000)
	add(true, `SELECT * FROM `+tb("i8")+` WHERE id = ANY($1::bigint[])`, []int64{5, 70000})
	add(false, `SELECT * FROM `+tb("i8")+` WHERE id = ANY($1::int2[])`, []int64{5, 70000})
	add(false, `SELECT * FROM `+tb("i8")+` WHERE id = $1::numeric`, 5)
	add(false, `SELECT * FROM `+tb("i8")+` WHERE id = $1::text::bigint`, "5")
	add(false, `SELECT * FROM `+tb("i8")+` WHERE id = $1::double precision`, 5)
	add(true, `SELECT * FROM `+tb("i4")+` WHERE id = $1::integer`, 5)
	add(true, `SELECT * FROM `+tb("i4")+` WHERE id = $1::bigint`, 5)
	add(true, `SELECT * FROM `+tb("tx")+` WHERE id = $1::text`, "ab")
	add(true, `SELECT * FROM `+tb("tx")+` WHERE id = $1::varchar`, "ab")
	add(true, `SELECT * FROM `+tb("tx")+` WHERE id = $1::character varying`, "abc")
	add(false, `SELECT * FROM `+tb("tx")+` WHERE id = $1::varchar(2)`, "abc")
	add(false, `SELECT * FROM `+tb("tx")+` WHERE id = $1::char(3)`, "abc")
	add(true, `SELECT * FROM `+tb("uu")+` WHERE id = $1::uuid`, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	add(true, `SELECT * FROM `+tb("uu")+` WHERE id = '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'::uuid`)
	add(false, `SELECT * FROM `+tb("uu")+` WHERE id = $1::text::uuid`, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	// Casts in the select list: to the column's own type, served; to
	// another, passed through (select_list_cast).
	add(true, `SELECT v::text FROM `+tb("i8")+` WHERE id = $1`, 5)
	add(true, `SELECT id::bigint, v FROM `+tb("i8")+` WHERE id = $1`, 5)
	add(true, `SELECT id::pg_catalog.int8 AS k FROM `+tb("i8")+` WHERE id IN ($1, $2) ORDER BY id DESC`, 5, 70000)
	add(true, `SELECT id::uuid, v::text AS w FROM `+tb("uu")+` WHERE id = $1`, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	add(true, `SELECT id::int, v FROM `+tb("i4")+` WHERE id = $1`, 5)
	add(false, `SELECT id::text FROM `+tb("i8")+` WHERE id = $1`, 5)
	add(false, `SELECT id::int4 FROM `+tb("i8")+` WHERE id = $1`, 5)
	add(false, `SELECT id::numeric, v FROM `+tb("i8")+` WHERE id = $1`, 5)
	add(false, `SELECT id::bigint FROM `+tb("i4")+` WHERE id = $1`, 5)
	add(false, `SELECT id::text FROM `+tb("uu")+` WHERE id = $1`, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	add(false, `SELECT v::varchar FROM `+tb("tx")+` WHERE id = $1`, "ab")
	add(false, `SELECT v::varchar(1) FROM `+tb("tx")+` WHERE id = $1`, "ab")
	add(false, `SELECT v::char(1) FROM `+tb("tx")+` WHERE id = $1`, "ab")
	add(false, `SELECT v::bytea FROM `+tb("tx")+` WHERE id = $1`, "ab")
	add(false, `SELECT * FROM `+tb("i8")+` WHERE id = $1::bigint[]`, 5)

	for _, pr := range probes {
		want, werr := renderTyped(p.QueryContext(ctx, pr.q, pr.args...))
		for round := range 2 {
			before := rpStats(c).Hits
			got, gerr := renderTyped(db.QueryContext(ctx, pr.q, pr.args...))
			c.settle()
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%s %v (round %d):\nthrough wtcache %v %v\nplain pgx       %v %v", pr.q, pr.args, round, got, gerr, want, werr)
			}
			hit := rpStats(c).Hits > before
			if round == 1 && hit != pr.serve {
				t.Errorf("%s %v: served from Redis %v, want %v", pr.q, pr.args, hit, pr.serve)
			}
		}
	}
	if n := rpStats(c).BypassReasons[reasonSelectCast]; n < 2*7 {
		t.Errorf("%d bypasses for %s; want one for each read of the 7 select lists cast to another type without a type modifier (with one, the text is no lookup)", n, reasonSelectCast)
	}
}

// renderTyped is rpRender with the columns' database types first: a hit
// must report the types pgx reports.
func renderTyped(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return nil, err
	}
	var head strings.Builder
	for _, ct := range cts {
		fmt.Fprintf(&head, "%s:%s ", ct.Name(), ct.DatabaseTypeName())
	}
	out, err := rpRender(rows, nil)
	return append([]string{head.String()}, out...), err
}

package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// TestHiddenCodeGenerator: user code that writes a cached row runs in
// every way PostgreSQL offers without the text naming a write: a function
// in the select list, in FROM, in a join, in WHERE, in a CTE, under
// EXPLAIN ANALYZE; one named like an unreserved keyword; a STABLE
// function calling a VOLATILE one; an operator; an aggregate; a view and a
// view over it; a cast to a domain whose CHECK calls it; a column DEFAULT;
// a CHECK constraint; an index expression; DO and CALL. Each runs through
// handle A, in autocommit or in a transaction that commits or rolls back,
// through Exec or Query, in random order; after each, handle B (its cache
// warm) must read the cached rows exactly as plain pgx does.
func TestHiddenCodeGenerator(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	s := fmt.Sprintf("hid_%d_%d", os.Getpid(), prefixSeq.Add(1))
	acct := s + ".acct"
	w := func(name, vol string, row int) string {
		return fmt.Sprintf(`CREATE FUNCTION %s.%s RETURNS int LANGUAGE plpgsql %s AS $$
			BEGIN UPDATE %s SET v = v + 1 WHERE id = %d; RETURN 1; END $$;`, s, name, vol, acct, row)
	}
	ddl := fmt.Sprintf(`DROP SCHEMA IF EXISTS %[1]s CASCADE; CREATE SCHEMA %[1]s;
		CREATE TABLE %[2]s (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO %[2]s SELECT g, 0 FROM generate_series(1, 8) g;`, s, acct) +
		w("wr(k int DEFAULT 0)", "VOLATILE", 1) +
		w(`"key"(k int)`, "VOLATILE", 2) +
		w("inner_w()", "VOLATILE", 3) +
		fmt.Sprintf(`CREATE FUNCTION %[1]s.st() RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN %[1]s.inner_w(); END $$;
		CREATE FUNCTION %[1]s.opf(a int, b int) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN UPDATE %[2]s SET v = v + 1 WHERE id = 4; RETURN a = b; END $$;
		CREATE OPERATOR %[1]s.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = %[1]s.opf);
		CREATE FUNCTION %[1]s.sf(s int, x int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN UPDATE %[2]s SET v = v + 1 WHERE id = 5; RETURN coalesce(s, 0) + x; END $$;
		CREATE AGGREGATE %[1]s.agg(int) (SFUNC = %[1]s.sf, STYPE = int);
		CREATE VIEW %[1]s.v1 AS SELECT %[1]s.wr(6) AS x;
		CREATE VIEW %[1]s.v2 AS SELECT * FROM %[1]s.v1;
		CREATE FUNCTION %[1]s.chk(k int) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN UPDATE %[2]s SET v = v + 1 WHERE id = 7; RETURN true; END $$;
		CREATE DOMAIN %[1]s.dom AS int CHECK (%[1]s.chk(VALUE));
		CREATE TABLE %[1]s.log (id serial PRIMARY KEY, x int DEFAULT %[1]s.wr(8));
		CREATE TABLE %[1]s.checked (id int PRIMARY KEY, x int CHECK (%[1]s.chk(x)));
		CREATE FUNCTION %[1]s.imm(k int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM %[1]s.inner_w(); RETURN k; END $$;
		CREATE TABLE %[1]s.indexed (id int PRIMARY KEY, x int); CREATE INDEX ON %[1]s.indexed (%[1]s.imm(x));
		CREATE PROCEDURE %[1]s.pr() LANGUAGE plpgsql AS $$ BEGIN UPDATE %[2]s SET v = v + 1 WHERE id = 6; END $$;`, s, acct)
	mustExec(t, p, ddl)
	t.Cleanup(func() { mustExec(t, p, `DROP SCHEMA IF EXISTS `+s+` CASCADE`) })

	n := 0
	ways := []struct {
		name string
		sql  func() string
	}{
		{"select list", func() string { return "SELECT " + s + ".wr()" }},
		{"FROM", func() string { return "SELECT * FROM " + s + ".wr()" }},
		{"FROM with an alias", func() string { return "SELECT x FROM " + s + ".wr() x" }},
		{"JOIN", func() string { return "SELECT 1 FROM " + acct + " JOIN " + s + ".wr() w ON true LIMIT 1" }},
		{"WHERE", func() string { return "SELECT * FROM " + acct + " WHERE id = " + s + ".wr()" }},
		{"CTE", func() string { return "WITH x AS (SELECT " + s + ".wr()) SELECT * FROM x" }},
		{"EXPLAIN ANALYZE", func() string { return "EXPLAIN ANALYZE SELECT " + s + ".wr()" }},
		{"a keyword's name", func() string { return "SELECT " + s + ".key(1)" }},
		{"STABLE calling VOLATILE", func() string { return "SELECT " + s + ".st()" }},
		{"operator", func() string { return "SELECT 1 OPERATOR(" + s + ".===) 2" }},
		{"aggregate", func() string { return "SELECT " + s + ".agg(g) FROM generate_series(1, 2) g" }},
		{"view", func() string { return "SELECT * FROM " + s + ".v1" }},
		{"view over a view", func() string { return "SELECT * FROM " + s + ".v2" }},
		{"domain cast", func() string { return "SELECT 5::" + s + ".dom" }},
		{"column DEFAULT", func() string { return "INSERT INTO " + s + ".log DEFAULT VALUES" }},
		{"CHECK constraint", func() string {
			n++
			return fmt.Sprintf("INSERT INTO %s.checked VALUES (%d, 1)", s, n)
		}},
		{"index expression", func() string {
			n++
			return fmt.Sprintf("INSERT INTO %s.indexed VALUES (%d, 1)", s, n)
		}},
		{"DO", func() string { return "DO $$BEGIN PERFORM " + s + ".wr(); END$$" }},
		{"CALL", func() string { return "CALL " + s + ".pr()" }},
	}
	prefix := fmt.Sprintf("hid%d-%d", os.Getpid(), prefixSeq.Add(1))
	dbA, _ := e.open(t, prefix)
	dbB, cB := e.open(t, prefix)
	read := func(db *sql.DB, id int) string {
		var v int64
		if err := db.QueryRowContext(ctx, `SELECT v FROM `+acct+` WHERE id = $1`, id).Scan(&v); err != nil {
			return err.Error()
		}
		return fmt.Sprint(v)
	}
	// warm reads every row until all of them are hits (after a
	// database-wide write the handles serve again once their next poll of
	// the fence has seen it end).
	warm := func() {
		for range 200 {
			before := rpStats(cB).Hits
			for id := 1; id <= 8; id++ {
				read(dbB, id)
			}
			cB.settle()
			if rpStats(cB).Hits-before == 8 {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatal("the rows never became hits: the check would prove nothing")
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 9))
	order := rng.Perm(len(ways))
	order = append(order, rng.Perm(len(ways))...)
	for _, wi := range order {
		way := ways[wi]
		q := way.sql()
		mode := []string{"autocommit", "committed transaction", "rolled-back transaction"}[rng.IntN(3)]
		viaQuery := rng.IntN(2) == 0
		warm()
		run := func(x interface {
			ExecContext(context.Context, string, ...any) (sql.Result, error)
			QueryContext(context.Context, string, ...any) (*sql.Rows, error)
		}) error {
			if viaQuery {
				rows, err := x.QueryContext(ctx, q)
				if err != nil {
					return err
				}
				for rows.Next() {
				}
				return rows.Close()
			}
			_, err := x.ExecContext(ctx, q)
			return err
		}
		var err error
		switch mode {
		case "autocommit":
			err = run(dbA)
		default:
			tx, terr := dbA.BeginTx(ctx, nil)
			if terr != nil {
				t.Fatal(terr)
			}
			err = run(tx)
			if mode == "committed transaction" {
				if cerr := tx.Commit(); err == nil {
					err = cerr
				}
			} else {
				_ = tx.Rollback()
			}
		}
		if err != nil && !(way.name == "CALL" && mode != "autocommit") {
			t.Fatalf("%s (%s): %s: %v", way.name, mode, q, err)
		}
		cB.settle()
		for id := 1; id <= 8; id++ {
			if got, want := read(dbB, id), read(p, id); got != want {
				t.Fatalf("seed %d: user code by %s (%s, via Query %v): %s\nanother handle reads id %d = %s, PostgreSQL %s",
					seed, way.name, mode, viaQuery, q, id, got, want)
			}
		}
	}
	var sum int64
	if err := p.QueryRow(`SELECT sum(v) FROM ` + acct).Scan(&sum); err != nil || sum == 0 {
		t.Fatalf("the writers wrote nothing (%v): the check proves nothing", err)
	}
	if rpStats(cB).Hits == 0 {
		t.Fatal("no read was a hit: the check proves nothing")
	}
	t.Logf("seed %d: %d ways, twice each; rows moved by %d in all", seed, len(ways), sum)
}

// TestFunctionCreatedElsewhere: what the catalog said of a name called
// (nothing: no such function) is asked again within cache_schema_refresh,
// so a writing function created outside wtcache afterwards is seen.
func TestFunctionCreatedElsewhere(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	table, fn := fmt.Sprintf("late_%d", os.Getpid()), fmt.Sprintf("late_fn_%d", os.Getpid())
	mustExec(t, p, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s; DROP FUNCTION IF EXISTS %[2]s();
		CREATE TABLE %[1]s (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO %[1]s VALUES (1, 0)`, table, fn))
	t.Cleanup(func() {
		mustExec(t, p, fmt.Sprintf(`DROP TABLE IF EXISTS %s; DROP FUNCTION IF EXISTS %s()`, table, fn))
	})
	const refresh = 300 * time.Millisecond
	prefix := fmt.Sprintf("late%d-%d", os.Getpid(), prefixSeq.Add(1))
	dbA, _ := e.open(t, prefix, "cache_schema_refresh="+refresh.String())
	dbB, cB := e.open(t, prefix)
	if _, err := dbA.ExecContext(ctx, `SELECT `+fn+`()`); err == nil {
		t.Fatal("the function exists already")
	}
	mustExec(t, p, fmt.Sprintf(`CREATE FUNCTION %s() RETURNS int LANGUAGE sql AS 'UPDATE %s SET v = v + 1 WHERE id = 1 RETURNING 1'`, fn, table))
	time.Sleep(refresh + 50*time.Millisecond)
	read := func(db *sql.DB) (v int64) {
		if err := db.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for range 50 {
		before := rpStats(cB).Hits
		read(dbB)
		cB.settle()
		if rpStats(cB).Hits > before {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := dbA.ExecContext(ctx, `SELECT `+fn+`()`); err != nil {
		t.Fatal(err)
	}
	if got, want := read(dbB), read(p); got != want {
		t.Fatalf("after a function created elsewhere wrote the row, another handle reads %d, PostgreSQL %d", got, want)
	}
}

package wtcache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The reach of a write comes from the catalog, not the text: generated
// schemas with triggers (BEFORE and AFTER, row and statement, writing the
// same table or others), rules, nested views (some with INSTEAD OF
// triggers), foreign keys with every action (self-references included),
// partitions and inheritance, and volatile functions that write. Random
// statements run through one wtcache handle, in autocommit and in
// transactions; after every statement another handle sharing the Redis
// (its cache warm) must read every row of every table exactly as plain pgx
// does.

type reachSchema struct {
	tables []string // ordinary tables, each (id bigint PRIMARY KEY, v bigint, ref bigint)
	views  []string // updatable views over them, some nested
	funcs  []string // volatile functions f(k bigint) that write
	parted string   // a partitioned table (its leaves are cached)
	inh    string   // an inheritance parent (not cached; its child is)
	ddl    []string
	drop   []string
	notes  []string
}

func genReachSchema(rng *rand.Rand, prefix string) *reachSchema {
	s := &reachSchema{}
	n := 3 + rng.IntN(3)
	for i := range n {
		t := fmt.Sprintf("%s_t%d", prefix, i)
		s.tables = append(s.tables, t)
		s.ddl = append(s.ddl, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, v bigint NOT NULL DEFAULT 0, ref bigint);
			INSERT INTO %s (id, v) SELECT g, g FROM generate_series(1, 5) g`, t, t))
	}
	pick := func() string { return s.tables[rng.IntN(len(s.tables))] }
	// Foreign keys, self-references included, with every action.
	actions := []string{"CASCADE", "SET NULL", "NO ACTION", "RESTRICT", "SET DEFAULT"}
	for i := range 1 + rng.IntN(3) {
		from, to := pick(), pick()
		del, upd := actions[rng.IntN(len(actions))], actions[rng.IntN(len(actions))]
		s.ddl = append(s.ddl, fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT fk%d FOREIGN KEY (ref) REFERENCES %s(id) ON DELETE %s ON UPDATE %s`, from, i, to, del, upd))
		s.notes = append(s.notes, fmt.Sprintf("fk %s.ref -> %s ON DELETE %s ON UPDATE %s", from, to, del, upd))
	}
	// Always one child reached by a cascade whose own trigger writes
	// another table (a foreign-key action fires the child's triggers).
	if len(s.tables) >= 3 {
		parent, child, other := s.tables[0], s.tables[len(s.tables)-1], s.tables[1]
		s.ddl = append(s.ddl, fmt.Sprintf(`ALTER TABLE %[2]s ADD CONSTRAINT fkc FOREIGN KEY (ref) REFERENCES %[1]s(id) ON DELETE CASCADE ON UPDATE CASCADE;
			UPDATE %[2]s SET ref = id;
			CREATE FUNCTION %[4]s_ctrg() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN UPDATE %[3]s SET v = v + 10000 WHERE id = 2; RETURN NULL; END $$;
			CREATE TRIGGER ctrg AFTER UPDATE OR DELETE ON %[2]s FOR EACH ROW EXECUTE FUNCTION %[4]s_ctrg()`, parent, child, other, prefix))
		s.drop = append(s.drop, fmt.Sprintf("DROP FUNCTION IF EXISTS %s_ctrg() CASCADE", prefix))
		s.notes = append(s.notes, fmt.Sprintf("fk %s.ref -> %s ON DELETE/UPDATE CASCADE; its trigger writes %s", child, parent, other))
	}
	// Triggers writing the same table or another.
	for i := range rng.IntN(3) {
		on, target := pick(), pick()
		when := []string{"BEFORE", "AFTER"}[rng.IntN(2)]
		level := []string{"ROW", "STATEMENT"}[rng.IntN(2)]
		event := []string{"UPDATE", "INSERT", "DELETE", "INSERT OR UPDATE OR DELETE"}[rng.IntN(4)]
		fn := fmt.Sprintf("%s_trg%d", prefix, i)
		ret := "NEW"
		if level == "STATEMENT" || event != "UPDATE" && event != "INSERT" {
			ret = "NULL"
		}
		if when == "BEFORE" && level == "ROW" && ret == "NULL" {
			ret = "COALESCE(NEW, OLD)"
		}
		s.ddl = append(s.ddl, fmt.Sprintf(`CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
			  IF pg_trigger_depth() < 3 THEN UPDATE %s SET v = v + 1000 WHERE id = 1; END IF;
			  RETURN %s;
			END $$;
			CREATE TRIGGER trg%d %s %s ON %s FOR EACH %s EXECUTE FUNCTION %s()`, fn, target, ret, i, when, event, on, level, fn))
		s.drop = append(s.drop, fmt.Sprintf("DROP FUNCTION IF EXISTS %s() CASCADE", fn))
		s.notes = append(s.notes, fmt.Sprintf("trigger %s %s %s on %s writes %s", when, level, event, on, target))
	}
	// A rule.
	if rng.IntN(2) == 0 && len(s.tables) > 1 {
		on := s.tables[0]
		target := s.tables[1+rng.IntN(len(s.tables)-1)]
		s.ddl = append(s.ddl, fmt.Sprintf(`CREATE RULE r_also AS ON UPDATE TO %s DO ALSO UPDATE %s SET v = v + 100 WHERE id = 2`, on, target))
		s.notes = append(s.notes, fmt.Sprintf("rule on %s writes %s", on, target))
	}
	// Views, nested, one with an INSTEAD OF trigger.
	for i := range 1 + rng.IntN(2) {
		base := pick()
		v := fmt.Sprintf("%s_v%d", prefix, i)
		s.ddl = append(s.ddl, fmt.Sprintf(`CREATE VIEW %s AS SELECT * FROM %s`, v, base))
		s.views = append(s.views, v)
		w := v + "w"
		s.ddl = append(s.ddl, fmt.Sprintf(`CREATE VIEW %s AS SELECT * FROM %s WHERE id > 0`, w, v))
		s.views = append(s.views, w)
		s.drop = append(s.drop, fmt.Sprintf("DROP VIEW IF EXISTS %s, %s CASCADE", w, v))
		if rng.IntN(2) == 0 {
			target := pick()
			fn := fmt.Sprintf("%s_iot%d", prefix, i)
			s.ddl = append(s.ddl, fmt.Sprintf(`CREATE VIEW %si AS SELECT * FROM %s;
				CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN UPDATE %s SET v = NEW.v WHERE id = NEW.id; RETURN NEW; END $$;
				CREATE TRIGGER iot INSTEAD OF UPDATE ON %si FOR EACH ROW EXECUTE FUNCTION %s()`, v, base, fn, target, v, fn))
			s.views = append(s.views, v+"i")
			s.drop = append(s.drop, fmt.Sprintf("DROP VIEW IF EXISTS %si CASCADE; DROP FUNCTION IF EXISTS %s() CASCADE", v, fn))
			s.notes = append(s.notes, fmt.Sprintf("view %si over %s, INSTEAD OF writes %s", v, base, target))
		}
	}
	// Volatile functions that write.
	for i := range 1 + rng.IntN(2) {
		target := pick()
		fn := fmt.Sprintf("%s_f%d", prefix, i)
		s.ddl = append(s.ddl, fmt.Sprintf(`CREATE FUNCTION %s(k bigint) RETURNS bigint LANGUAGE sql AS
			'UPDATE %s SET v = v + 7 WHERE id = k RETURNING v'`, fn, target))
		s.funcs = append(s.funcs, fn)
		s.drop = append(s.drop, fmt.Sprintf("DROP FUNCTION IF EXISTS %s(bigint) CASCADE", fn))
		s.notes = append(s.notes, fmt.Sprintf("function %s writes %s", fn, target))
	}
	// A partitioned table and an inheritance parent.
	s.parted = prefix + "_p"
	s.ddl = append(s.ddl, fmt.Sprintf(`CREATE TABLE %[1]s (id bigint, v bigint NOT NULL DEFAULT 0, ref bigint, PRIMARY KEY (id)) PARTITION BY RANGE (id);
		CREATE TABLE %[1]s_a PARTITION OF %[1]s FOR VALUES FROM (1) TO (4);
		CREATE TABLE %[1]s_b PARTITION OF %[1]s FOR VALUES FROM (4) TO (100);
		INSERT INTO %[1]s (id, v) SELECT g, g FROM generate_series(1, 5) g`, s.parted))
	s.inh = prefix + "_h"
	s.ddl = append(s.ddl, fmt.Sprintf(`CREATE TABLE %[1]s (id bigint PRIMARY KEY, v bigint NOT NULL DEFAULT 0, ref bigint);
		CREATE TABLE %[1]s_c (PRIMARY KEY (id)) INHERITS (%[1]s);
		INSERT INTO %[1]s_c (id, v) SELECT g, g FROM generate_series(1, 5) g`, s.inh))
	var all []string
	all = append(all, s.tables...)
	all = append(all, s.parted, s.inh+"_c", s.inh)
	s.drop = append(s.drop, "DROP TABLE IF EXISTS "+strings.Join(all, ", ")+" CASCADE")
	return s
}

// cached are the tables whose rows another handle may read from Redis.
func (s *reachSchema) cached() []string {
	return append(append([]string(nil), s.tables...), s.parted+"_a", s.parted+"_b", s.inh+"_c")
}

func (s *reachSchema) statement(rng *rand.Rand, n *int64) string {
	*n++
	k := 1 + rng.IntN(5)
	any := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	switch rng.IntN(10) {
	case 0, 1:
		return fmt.Sprintf("UPDATE %s SET v = %d WHERE id = %d", any(s.tables), *n, k)
	case 2:
		return fmt.Sprintf("UPDATE %s SET v = %d WHERE id = %d", any(s.views), *n, k)
	case 3:
		return fmt.Sprintf("DELETE FROM %s WHERE id = %d", any(s.tables), k)
	case 4:
		return fmt.Sprintf("INSERT INTO %s (id, v) VALUES (%d, %d) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v", any(s.tables), k, *n)
	case 5:
		return fmt.Sprintf("SELECT %s(%d)", any(s.funcs), k)
	case 6:
		return fmt.Sprintf("UPDATE %s SET v = %d WHERE id = %d", s.parted, *n, k)
	case 7:
		return fmt.Sprintf("UPDATE %s SET v = %d WHERE id = %d", s.inh, *n, k)
	case 8:
		return fmt.Sprintf("UPDATE %s SET ref = %d WHERE id = %d", any(s.tables), 1+rng.IntN(5), k)
	default:
		return fmt.Sprintf("UPDATE %s SET id = %d WHERE id = %d", any(s.tables), 10+rng.IntN(3), k)
	}
}

func TestReachGenerator(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	seed := uint64(os.Getpid())
	schemas := 4
	if testing.Short() {
		schemas = 2
	}
	for si := range schemas {
		rng := rand.New(rand.NewPCG(seed, uint64(si)))
		name := fmt.Sprintf("rg%d_%d", os.Getpid()%10000, si)
		s := genReachSchema(rng, name)
		t.Run(name, func(t *testing.T) {
			for _, d := range s.drop {
				_, _ = p.Exec(d)
			}
			for _, d := range s.ddl {
				mustExec(t, p, d)
			}
			t.Cleanup(func() {
				for _, d := range s.drop {
					_, _ = p.Exec(d)
				}
			})
			prefix := fmt.Sprintf("reach%d-%d", os.Getpid(), prefixSeq.Add(1))
			dbA, _ := e.open(t, prefix, "lock_timeout=500")
			dbB, cB := e.open(t, prefix)
			read := func(db *sql.DB, table string, id int) string {
				var v, ref sql.NullInt64
				err := db.QueryRowContext(ctx, `SELECT v, ref FROM `+table+` WHERE id = $1`, id).Scan(&v, &ref)
				if err == sql.ErrNoRows {
					return "-"
				}
				if err != nil {
					return "error " + err.Error()
				}
				return fmt.Sprintf("%v/%v", v, ref)
			}
			var history []string
			check := func() {
				t.Helper()
				cB.settle()
				// The audit: every entry a reader could be served equals
				// its row.
				if rep, err := Audit(ctx, dbB, AuditOptions{Recheck: time.Millisecond}); err != nil || len(rep.Diffs) > 0 {
					t.Fatalf("seed %d schema %d: audit after\n  %s\n%+v %v", seed, si, strings.Join(history, "\n  "), rep, err)
				}
				for _, table := range s.cached() {
					for id := 1; id <= 12; id++ {
						if got, want := read(dbB, table, id), read(p, table, id); got != want {
							t.Fatalf("seed %d schema %d:\n  %s\nafter\n  %s\nanother handle reads %s id %d = %s, PostgreSQL %s",
								seed, si, strings.Join(s.notes, "\n  "), strings.Join(history, "\n  "), table, id, got, want)
						}
					}
				}
			}
			check() // warm the other handle's cache
			check()
			var n int64
			for range 25 {
				if rng.IntN(4) == 0 {
					// A transaction of a few statements.
					tx, err := dbA.BeginTx(ctx, nil)
					if err != nil {
						t.Fatal(err)
					}
					var stmts []string
					for range 1 + rng.IntN(3) {
						q := s.statement(rng, &n)
						_, err := tx.ExecContext(ctx, q)
						stmts = append(stmts, fmt.Sprintf("%s -> %v", q, err))
						if err != nil {
							break
						}
					}
					end := "COMMIT"
					if rng.IntN(3) == 0 {
						end = "ROLLBACK"
						err = tx.Rollback()
					} else {
						err = tx.Commit()
					}
					history = append(history, fmt.Sprintf("BEGIN; %s; %s -> %v", strings.Join(stmts, "; "), end, err))
				} else {
					q := s.statement(rng, &n)
					_, err := dbA.ExecContext(ctx, q)
					history = append(history, fmt.Sprintf("%s -> %v", q, err))
				}
				check()
			}
			t.Logf("%d statements over %s; hits on the checking handle %d", len(history), strings.Join(s.notes, "; "), rpStats(cB).Hits)
			if rpStats(cB).Hits == 0 {
				t.Error("no read was served from Redis: the check proves nothing")
			}
		})
	}
}

// TestLeadingDriverArgs: pgx takes leading arguments of its option types
// (a QueryExecMode, result formats, NamedArgs) for itself; a write binds its
// key to the arguments the statement's $n take, whatever precedes them.
func TestLeadingDriverArgs(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	table := fmt.Sprintf("lead_args_%d", os.Getpid())
	mustExec(t, p, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO `+table+` SELECT g, 0 FROM generate_series(0, 9) g`)
	t.Cleanup(func() { mustExec(t, p, `DROP TABLE IF EXISTS `+table) })
	prefix := fmt.Sprintf("lead%d-%d", os.Getpid(), prefixSeq.Add(1))
	dbA, _ := e.open(t, prefix)
	dbB, cB := e.open(t, prefix)
	leads := []struct {
		name string
		args []any
	}{
		{"none", nil},
		{"exec mode simple", []any{pgx.QueryExecModeSimpleProtocol}},
		{"exec mode exec", []any{pgx.QueryExecModeExec}},
		{"exec mode describe", []any{pgx.QueryExecModeDescribeExec}},
		{"exec mode cache describe", []any{pgx.QueryExecModeCacheDescribe}},
		{"result formats", []any{pgx.QueryResultFormats{pgx.BinaryFormatCode}}},
		{"mode and formats", []any{pgx.QueryExecModeExec, pgx.QueryResultFormats{pgx.TextFormatCode}}},
	}
	for i, lead := range leads {
		t.Run(lead.name, func(t *testing.T) {
			// Key 1 and value i+100: with the key bound to the option, the
			// intent would land on another row.
			for range 2 {
				var v int64
				_ = dbB.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, 1).Scan(&v)
				cB.settle()
			}
			args := append(append([]any(nil), lead.args...), int64(i+100), int64(1))
			if _, err := dbA.ExecContext(ctx, `UPDATE `+table+` SET v = $1 WHERE id = $2`, args...); err != nil {
				t.Fatal(err)
			}
			var got, want int64
			if err := dbB.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, 1).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if err := p.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, 1).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("after the UPDATE with leading %v, another handle reads %d, PostgreSQL %d", lead.args, got, want)
			}
		})
	}
	t.Run("named args", func(t *testing.T) {
		for range 2 {
			var v int64
			_ = dbB.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, 2).Scan(&v)
			cB.settle()
		}
		if _, err := dbA.ExecContext(ctx, `UPDATE `+table+` SET v = @v WHERE id = @id`, pgx.NamedArgs{"v": int64(77), "id": int64(2)}); err != nil {
			t.Fatal(err)
		}
		var got int64
		if err := dbB.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, 2).Scan(&got); err != nil || got != 77 {
			t.Fatalf("after an UPDATE with NamedArgs another handle reads %d (%v), want 77", got, err)
		}
	})
}

// TestSessionChangeInString: SET search_path in the same string as a
// write moves where the write's names resolve; the write reaches whatever
// the new path names.
func TestSessionChangeInString(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	sa, sb := fmt.Sprintf("pth_a_%d", os.Getpid()), fmt.Sprintf("pth_b_%d", os.Getpid())
	mustExec(t, p, fmt.Sprintf(`DROP SCHEMA IF EXISTS %[1]s CASCADE; DROP SCHEMA IF EXISTS %[2]s CASCADE;
		CREATE SCHEMA %[1]s; CREATE SCHEMA %[2]s;
		CREATE TABLE %[1]s.acct (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO %[1]s.acct VALUES (1, 0);
		CREATE TABLE %[2]s.acct (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO %[2]s.acct VALUES (1, 0);`, sa, sb))
	t.Cleanup(func() {
		mustExec(t, p, fmt.Sprintf(`DROP SCHEMA IF EXISTS %s CASCADE; DROP SCHEMA IF EXISTS %s CASCADE`, sa, sb))
	})
	prefix := fmt.Sprintf("pth%d-%d", os.Getpid(), prefixSeq.Add(1))
	dbA, _ := e.open(t, prefix, "search_path="+sa)
	dbB, cB := e.open(t, prefix)
	readB := func() int64 {
		var v int64
		if err := dbB.QueryRowContext(ctx, `SELECT v FROM `+sb+`.acct WHERE id = $1`, 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	readB()
	cB.settle()
	readB()
	conn, err := dbA.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET search_path = `+sb+`; UPDATE acct SET v = 5 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if got := readB(); got != 5 {
		t.Fatalf("after SET search_path and an UPDATE in one string, another handle reads %s.acct = %d, want 5", sb, got)
	}
}

// TestRenderingSettings: values the server renders as text (intervals,
// arrays and ranges of dates and timestamps) under the session's TimeZone,
// DateStyle and IntervalStyle: a session reads, through the cache, what
// plain pgx reads with its own settings, whatever session filled the entry;
// values decoded by the driver (a timestamptz, a date) keep sharing it.
func TestRenderingSettings(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	table := fmt.Sprintf("render_%d", os.Getpid())
	mustExec(t, p, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (id bigint PRIMARY KEY,
		iv interval, ds date[], ts timestamptz[], rg tstzrange, t timestamptz, d date, fa float8[], f4 float4[], ba bytea[], pt point, ci circle);
		INSERT INTO `+table+` VALUES (1, '1 day 2 hours', ARRAY['2024-01-02'::date], ARRAY['2024-01-02 03:04:05+00'::timestamptz],
		  tstzrange('2024-01-02 03:04:05+00', '2024-01-03 03:04:05+00'), '2024-01-02 03:04:05+00', '2024-01-02',
		  ARRAY[0.1, 1/3::float8], ARRAY[0.1::float4], ARRAY['\x0102'::bytea], point(0.1, 1/3::float8), circle(point(0.1, 0.2), 1/3::float8))`)
	plainOnly := fmt.Sprintf("render_plain_%d", os.Getpid())
	mustExec(t, p, `DROP TABLE IF EXISTS `+plainOnly+`; CREATE TABLE `+plainOnly+` (id bigint PRIMARY KEY, t timestamptz, d date);
		INSERT INTO `+plainOnly+` VALUES (1, '2024-01-02 03:04:05+00', '2024-01-02')`)
	// Only values whose text depends on settings the server does not
	// report (extra_float_digits, bytea_output).
	floats := fmt.Sprintf("render_floats_%d", os.Getpid())
	mustExec(t, p, `DROP TABLE IF EXISTS `+floats+`; CREATE TABLE `+floats+` (id bigint PRIMARY KEY, fa float8[], ba bytea[], pt point);
		INSERT INTO `+floats+` VALUES (1, ARRAY[0.1, 1/3::float8], ARRAY['\x0102'::bytea], point(0.1, 1/3::float8))`)
	t.Cleanup(func() { mustExec(t, p, `DROP TABLE IF EXISTS `+table+`, `+plainOnly+`, `+floats) })
	settings := []string{
		"TimeZone=UTC&DateStyle=ISO,%20MDY&IntervalStyle=postgres",
		"TimeZone=Asia/Tokyo&DateStyle=German,%20DMY&IntervalStyle=sql_standard",
		"TimeZone=America/New_York&DateStyle=SQL,%20MDY&IntervalStyle=iso_8601",
		"TimeZone=UTC&DateStyle=Postgres,%20DMY&IntervalStyle=postgres_verbose",
		// Settings the server does not report: read with the session.
		"TimeZone=UTC&DateStyle=ISO,%20MDY&IntervalStyle=postgres&extra_float_digits=-3&bytea_output=escape",
		"TimeZone=UTC&DateStyle=ISO,%20MDY&IntervalStyle=postgres&extra_float_digits=0",
	}
	prefix := fmt.Sprintf("render%d-%d", os.Getpid(), prefixSeq.Add(1))
	row := func(db *sql.DB, tbl string) string {
		rows, err := db.QueryContext(ctx, `SELECT * FROM `+tbl+` WHERE id = $1`, 1)
		if err != nil {
			t.Fatal(err)
		}
		out, err := rpRender(rows, nil)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "\n")
	}
	var handles []*sql.DB
	var conns []*connector
	var plains []*sql.DB
	for _, s := range settings {
		db, c := e.open(t, prefix, s)
		handles, conns = append(handles, db), append(conns, c)
		u := e.dbURL + "&" + s
		if !strings.Contains(e.dbURL, "?") {
			u = e.dbURL + "?" + s
		}
		pl, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pl.Close() })
		plains = append(plains, pl)
	}
	hits := int64(0)
	for round := range 3 {
		for i := range settings {
			for _, tbl := range []string{table, plainOnly, floats} {
				before := rpStats(conns[i]).Hits
				if got, want := row(handles[i], tbl), row(plains[i], tbl); got != want {
					t.Fatalf("round %d, session %q, %s: through the cache\n%s\nplain pgx\n%s", round, settings[i], tbl, got, want)
				}
				conns[i].settle()
				hits += rpStats(conns[i]).Hits - before
			}
		}
	}
	if hits == 0 {
		t.Error("no read was served from Redis: the check proves nothing")
	}
}

// TestPrivilegesElsewhere: privilege and security changes made outside
// wtcache, without the change feed, reach a pooled connection within
// cache_schema_refresh; made through another wtcache handle (any process),
// before the statement returns. From then on PostgreSQL answers the role.
func TestPrivilegesElsewhere(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	table := fmt.Sprintf("priv_%d", os.Getpid())
	role, grp := fmt.Sprintf("wtc_priv_%d", os.Getpid()), fmt.Sprintf("wtc_privg_%d", os.Getpid())
	setup := fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s; DROP ROLE IF EXISTS %[2]s; DROP ROLE IF EXISTS %[3]s;
		CREATE ROLE %[3]s; CREATE ROLE %[2]s LOGIN IN ROLE %[3]s;
		CREATE TABLE %[1]s (id bigint PRIMARY KEY, v bigint NOT NULL); INSERT INTO %[1]s VALUES (1, 1), (2, 2);
		GRANT SELECT ON %[1]s TO %[3]s`, table, role, grp)
	t.Cleanup(func() {
		_, _ = p.Exec(fmt.Sprintf(`DROP TABLE IF EXISTS %s; DROP ROLE IF EXISTS %s; DROP ROLE IF EXISTS %s`, table, role, grp))
	})
	const refresh = 300 * time.Millisecond
	changes := []struct {
		name, sql string
		gone      func(err error) bool
	}{
		{"REVOKE", `REVOKE SELECT ON ` + table + ` FROM ` + grp, isPermissionDenied},
		{"role membership", `REVOKE ` + grp + ` FROM ` + role, isPermissionDenied},
		{"row-level security", `ALTER TABLE ` + table + ` ENABLE ROW LEVEL SECURITY`, func(err error) bool { return errors.Is(err, sql.ErrNoRows) }},
		{"owner", `ALTER TABLE ` + table + ` OWNER TO ` + grp + `; REVOKE SELECT ON ` + table + ` FROM ` + grp, isPermissionDenied},
	}
	for _, via := range []string{"plain pgx", "another wtcache handle"} {
		for _, ch := range changes {
			t.Run(via+"/"+ch.name, func(t *testing.T) {
				mustExec(t, p, setup)
				prefix := fmt.Sprintf("priv%d-%d", os.Getpid(), prefixSeq.Add(1))
				u, _ := url.Parse(e.dbURL)
				u.User = url.User(role)
				env := itEnv{dbURL: u.String(), redisURL: e.redisURL, rdb: e.rdb}
				db, c := env.open(t, prefix, "cache_schema_refresh="+refresh.String())
				db.SetMaxOpenConns(1) // one pooled connection, kept
				read := func() error {
					var v int64
					return db.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, 1).Scan(&v)
				}
				for range 3 {
					if err := read(); err != nil {
						t.Fatal(err)
					}
					c.settle()
				}
				if rpStats(c).Hits == 0 {
					t.Fatal("never served from Redis")
				}
				bound := refresh + 200*time.Millisecond
				if via == "plain pgx" {
					mustExec(t, p, ch.sql)
				} else {
					other, _ := e.open(t, prefix)
					if _, err := other.ExecContext(ctx, ch.sql); err != nil {
						t.Fatal(err)
					}
					bound = 0 // before the statement returned
				}
				// took: from the change's return to the start of the first
				// read that saw it (a read that begins after the change and
				// reloads the catalog may itself take milliseconds; it is
				// when it began that the bound is about).
				start := time.Now()
				var took time.Duration
				for {
					began := time.Since(start)
					err := read()
					if ch.gone(err) {
						took = began
						break
					}
					if time.Since(start) > bound+2*time.Second {
						t.Fatalf("the change has not reached the connection after %v: %v", time.Since(start), err)
					}
					time.Sleep(5 * time.Millisecond)
				}
				t.Logf("seen after %v (bound %v)", took.Round(time.Millisecond), bound)
				if took > bound+50*time.Millisecond {
					t.Errorf("%s via %s reached the connection after %v, want within %v", ch.name, via, took, bound)
				}
			})
		}
	}
}

// TestStringsNotStandard: with standard_conforming_strings off the server
// reads a backslash in a plain string as an escape, so a text the lexer
// (which follows the SQL standard) takes for one string may hold
// statements. Generated texts of string literals in every form, writes and
// comments run on a session that turned the setting off; after each,
// another handle with a warm cache reads every row exactly as plain pgx.
func TestStringsNotStandard(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	table := fmt.Sprintf("scs_%d", os.Getpid())
	mustExec(t, p, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (id bigint PRIMARY KEY, v bigint NOT NULL);
		INSERT INTO `+table+` SELECT g, 0 FROM generate_series(1, 4) g`)
	t.Cleanup(func() { mustExec(t, p, `DROP TABLE IF EXISTS `+table) })
	prefix := fmt.Sprintf("scs%d-%d", os.Getpid(), prefixSeq.Add(1))
	dbA, _ := e.open(t, prefix)
	dbB, cB := e.open(t, prefix)
	conn, err := dbA.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	read := func(db *sql.DB, id int) string {
		var v int64
		if err := db.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, id).Scan(&v); err != nil {
			return err.Error()
		}
		return fmt.Sprint(v)
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 3))
	literals := []string{`'x\''`, `'\'`, `E'\''`, `'a\\'`, `'plain'`, `'it''s'`, `$$\'$$`, `U&'\0041'`}
	n := 0
	hidden := 0
	for i := range 120 {
		setting := []string{"off", "on"}[rng.IntN(4)/3] // mostly off
		if _, err := conn.ExecContext(ctx, "SET standard_conforming_strings = "+setting); err != nil {
			t.Fatal(err)
		}
		// A literal, maybe a second, a write, and a tail that may close
		// what the first literal left open under one reading or the other.
		var b strings.Builder
		b.WriteString("SELECT ")
		for j := range 1 + rng.IntN(2) {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(literals[rng.IntN(len(literals))])
			b.WriteString(" AS c")
		}
		n++
		fmt.Fprintf(&b, "; UPDATE %s SET v = %d WHERE id = %d", table, n, 1+rng.IntN(4))
		b.WriteString([]string{"; -- '", " -- '\n", "", "; SELECT 'y'", "; SELECT '\\'", " -- ' \n;SELECT 1"}[rng.IntN(6)])
		q := b.String()
		before := read(p, 1) + read(p, 2) + read(p, 3) + read(p, 4)
		_, err := conn.ExecContext(ctx, q)
		after := read(p, 1) + read(p, 2) + read(p, 3) + read(p, 4)
		if before != after {
			hidden++
		}
		cB.settle()
		for id := 1; id <= 4; id++ {
			if id%2 == 0 {
				// A second read of a row is a hit unless something moved.
				read(dbB, id)
				cB.settle()
			}
			if got, want := read(dbB, id), read(p, id); got != want {
				t.Fatalf("seed %d, text %d under standard_conforming_strings=%s:\n  %s\n-> %v\nanother handle reads id %d = %s, PostgreSQL %s", seed, i, setting, q, err, id, got, want)
			}
		}
	}
	if _, err := conn.ExecContext(ctx, "SET standard_conforming_strings = on"); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d: 120 texts, %d changed rows, hits on the reading handle %d", seed, hidden, rpStats(cB).Hits)
	if hidden == 0 || rpStats(cB).Hits == 0 {
		t.Error("no text changed a row, or no read was a hit: the check proves nothing")
	}
}

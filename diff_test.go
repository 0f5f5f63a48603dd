package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDifferentialWorkload: a randomized workload through several handles
// of different roles and session settings, each a pinned connection through
// wtcache paired with a pinned connection of plain pgx opened with the same
// user and settings. Steps are writes (autocommit, transactions in text
// and through database/sql with savepoints, failing statements, ROLLBACK,
// COMMIT AND CHAIN, multi-statement strings), session changes applied to
// both sides of a pair (SET and RESET of the rendering settings and the
// search path, set_config through a function, SET ROLE, DISCARD ALL) and
// catalog changes through an administrator's wtcache handle (GRANT, REVOKE,
// role membership, row-level security and its policies, a column's type).
// After every step every handle reads rows through both sides and must get
// the same rows, column types and errors, and the audit of every
// administrator handle (one per rendering) finds no entry that differs
// from PostgreSQL.
//
// WTCACHE_DIFF_LONG=1 runs many more steps and seeds ("make diff-long");
// WTCACHE_DIFF_SEED replays one seed.
func TestDifferentialWorkload(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	seeds, steps := 2, 60
	if os.Getenv("WTCACHE_DIFF_LONG") != "" {
		seeds, steps = 8, 600
	}
	base := uint64(time.Now().UnixNano())
	if s := os.Getenv("WTCACHE_DIFF_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		base, seeds = v, 1
	}
	for i := range seeds {
		seed := base + uint64(i)
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			runDifferentialWorkload(t, e, p, ctx, seed, steps)
		})
	}
}

type dwSide struct {
	name  string
	admin bool // connects as the superuser
	user  string
	w, p  *sql.Conn
	wdb   *sql.DB
	c     *connector
}

func runDifferentialWorkload(t *testing.T, e itEnv, p *sql.DB, ctx context.Context, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	id := fmt.Sprintf("%d_%d", os.Getpid(), prefixSeq.Add(1))
	sa, sb := "dwa_"+id, "dwb_"+id
	r1, r2 := "dwr1_"+id, "dwr2_"+id
	drop := fmt.Sprintf(`DROP SCHEMA IF EXISTS %[1]s CASCADE; DROP SCHEMA IF EXISTS %[2]s CASCADE;
		DROP ROLE IF EXISTS %[3]s; DROP ROLE IF EXISTS %[4]s`, sa, sb, r1, r2)
	_, _ = p.Exec(drop)
	t.Cleanup(func() {
		// Connections of the roles must be gone before the roles.
		time.Sleep(10 * time.Millisecond)
		if _, err := p.Exec(drop); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	acct := func(s string) string {
		return fmt.Sprintf(`CREATE TABLE %[1]s.acct (id bigint PRIMARY KEY, owner text NOT NULL, bal numeric(12,2) NOT NULL,
			t timestamptz, d date, iv interval, ds date[], rg tstzrange, tags text[], j jsonb);
			INSERT INTO %[1]s.acct SELECT g, 'o' || g, g * 10.5, '2024-01-02 03:04:05+00'::timestamptz + g * interval '1 hour',
			  '2024-01-02'::date + g, g * interval '1 day 2 hours', ARRAY['2024-03-04'::date + g],
			  tstzrange('2024-01-02 03:04:05+00', '2024-01-03 03:04:05+00'), ARRAY['x' || g], jsonb_build_object('k', g)
			FROM generate_series(1, 6) g`, s)
	}
	mustExec(t, p, fmt.Sprintf(`CREATE ROLE %[3]s LOGIN; CREATE ROLE %[4]s LOGIN;
		CREATE SCHEMA %[1]s; CREATE SCHEMA %[2]s;
		GRANT USAGE ON SCHEMA %[1]s, %[2]s TO %[3]s, %[4]s`, sa, sb, r1, r2))
	mustExec(t, p, acct(sa))
	mustExec(t, p, acct(sb))
	mustExec(t, p, fmt.Sprintf(`CREATE TABLE %[1]s.s (id bigint PRIMARY KEY, owner text NOT NULL, v bigint NOT NULL);
		INSERT INTO %[1]s.s SELECT g, CASE g %% 3 WHEN 0 THEN '%[2]s' WHEN 1 THEN '%[3]s' ELSE 'nobody' END, g FROM generate_series(1, 6) g;
		CREATE POLICY own ON %[1]s.s USING (owner = current_user);
		CREATE FUNCTION %[1]s.setpath(p text) RETURNS text LANGUAGE sql AS 'SELECT set_config(''search_path'', p, false)';
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %[1]s TO %[2]s;
		GRANT SELECT, UPDATE ON %[1]s.s TO %[3]s;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %[4]s TO %[2]s, %[3]s`, sa, r1, r2, sb))

	prefix := "diff" + id
	specs := []struct {
		name, user, settings string
	}{
		{"admin-utc", "", "TimeZone=UTC&DateStyle=ISO,%20MDY&IntervalStyle=postgres&search_path=" + sa},
		{"admin-tokyo", "", "TimeZone=Asia/Tokyo&DateStyle=German,%20DMY&IntervalStyle=sql_standard&search_path=" + sb},
		{"r1-newyork", r1, "TimeZone=America/New_York&DateStyle=SQL,%20MDY&IntervalStyle=iso_8601&search_path=" + sa},
		{"r2-utc", r2, "TimeZone=UTC&DateStyle=Postgres,%20DMY&IntervalStyle=postgres_verbose&search_path=" + sa},
		{"r2-berlin", r2, "TimeZone=Europe/Berlin&DateStyle=ISO,%20DMY&IntervalStyle=postgres&search_path=" + sb + "," + sa},
	}
	var sides []*dwSide
	for _, sp := range specs {
		u, _ := url.Parse(e.dbURL)
		if sp.user != "" {
			u.User = url.User(sp.user)
		}
		env := itEnv{dbURL: u.String(), redisURL: e.redisURL, rdb: e.rdb}
		wdb, c := env.open(t, prefix, sp.settings)
		plainURL := u.String() + "&" + sp.settings
		if !strings.Contains(u.String(), "?") {
			plainURL = u.String() + "?" + sp.settings
		}
		pdb, err := sql.Open("pgx", plainURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pdb.Close() })
		s := &dwSide{name: sp.name, admin: sp.user == "", user: sp.user, wdb: wdb, c: c}
		if s.w, err = wdb.Conn(ctx); err != nil {
			t.Fatal(err)
		}
		if s.p, err = pdb.Conn(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.w.Close(); _ = s.p.Close() })
		sides = append(sides, s)
	}

	var history []string
	fail := func(format string, args ...any) {
		t.Helper()
		h := history
		if len(h) > 40 {
			h = h[len(h)-40:]
		}
		t.Fatalf("seed %d (WTCACHE_DIFF_SEED=%d replays it), after\n  %s\n%s", seed, seed, strings.Join(h, "\n  "), fmt.Sprintf(format, args...))
	}
	render := func(c *sql.Conn, q string, args ...any) string {
		out, err := rpRender(c.QueryContext(ctx, q, args...))
		if err != nil && pgxStatementCacheError(err) {
			// pgx's own statement cache after DISCARD ALL or a column
			// type change: pgx drops the statement and the next call
			// prepares it again. Either side may meet it (wtcache on a
			// miss, when a hit did not answer first).
			out, err = rpRender(c.QueryContext(ctx, q, args...))
		}
		if err != nil {
			return "error: " + err.Error()
		}
		return strings.Join(out, "\n")
	}
	reads := []string{
		`SELECT * FROM acct WHERE id = $1`,
		`SELECT id, bal, t, iv, ds, rg FROM ` + sb + `.acct WHERE id = $1`,
		`SELECT * FROM ` + sa + `.acct WHERE id = $1`,
		`SELECT owner, v FROM ` + sa + `.s WHERE id = $1`,
		`SELECT * FROM ` + sa + `.s WHERE id = $1`,
	}
	check := func() {
		t.Helper()
		for _, s := range sides {
			s.c.settle()
		}
		for _, s := range sides {
			for _, q := range reads {
				for _, k := range []int{1 + rng.IntN(7), 1 + rng.IntN(7)} {
					got, want := render(s.w, q, k), render(s.p, q, k)
					if got != want {
						fail("%s reads %s with $1=%d\nthrough wtcache:\n%s\nplain pgx:\n%s", s.name, q, k, got, want)
					}
				}
			}
		}
		for _, s := range sides {
			s.c.settle()
		}
		for _, s := range sides {
			if !s.admin {
				continue
			}
			rep, err := Audit(ctx, s.wdb, AuditOptions{Recheck: time.Millisecond})
			if err != nil || len(rep.Diffs) > 0 {
				fail("audit through %s: %+v %v", s.name, rep, err)
			}
		}
	}

	// Writes, run through one side's wtcache connection only (both sides
	// read the same database).
	n := 0
	write := func(s *dwSide) string {
		n++
		k := 1 + rng.IntN(7)
		tbl := []string{"acct", sa + ".acct", sb + ".acct"}[rng.IntN(3)]
		switch rng.IntN(8) {
		case 7:
			// With standard_conforming_strings off the UPDATE runs; with it
			// on, the whole rest is one string.
			return fmt.Sprintf(`SELECT 'x\'' AS note; UPDATE %s SET bal = bal + %d WHERE id = %d; -- '`, tbl, n, k)
		case 0, 1:
			return fmt.Sprintf(`UPDATE %s SET bal = bal + %d.25, t = t + interval '%d minutes', iv = iv + interval '%d seconds',
				ds = ds || ('2025-01-01'::date + %d), rg = tstzrange(lower(rg), upper(rg) + interval '%d hours'), j = j || '{"n": %d}'
				WHERE id = %d`, tbl, n, n, n, n, n, n, k)
		case 2:
			return fmt.Sprintf(`INSERT INTO %s (id, owner, bal, t, d) VALUES (%d, 'o%d', %d, '2024-06-07 08:09:10+00', '2024-06-07')
				ON CONFLICT (id) DO UPDATE SET bal = EXCLUDED.bal, owner = EXCLUDED.owner`, tbl, k, n, n)
		case 3:
			return fmt.Sprintf(`DELETE FROM %s WHERE id = %d`, tbl, k)
		case 4:
			owner := []string{r1, r2, "nobody"}[rng.IntN(3)]
			return fmt.Sprintf(`UPDATE %s.s SET v = v + %d, owner = '%s' WHERE id = %d`, sa, n, owner, k)
		case 5:
			return fmt.Sprintf(`INSERT INTO %s.s (id, owner, v) VALUES (%d, '%s', %d) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v`, sa, k, r2, n)
		default:
			return fmt.Sprintf(`UPDATE %s SET bal = bal - 1 WHERE id = %d; UPDATE %s SET bal = bal + 1 WHERE id = %d`, tbl, k, tbl, 1+rng.IntN(7))
		}
	}
	exec := func(s *dwSide, q string) {
		_, err := s.w.ExecContext(ctx, q)
		history = append(history, fmt.Sprintf("[%s] %s -> %v", s.name, oneLine(q), err))
	}
	// Session changes, applied to both sides of a pair; the errors must
	// match too.
	session := func(s *dwSide) string {
		switch rng.IntN(12) {
		case 11:
			return "SET standard_conforming_strings = " + []string{"off", "on"}[rng.IntN(2)]
		case 0:
			return "SET TimeZone = '" + []string{"UTC", "Asia/Kolkata", "America/Los_Angeles", "Pacific/Chatham"}[rng.IntN(4)] + "'"
		case 1:
			return "SET DateStyle = '" + []string{"ISO, MDY", "SQL, DMY", "German", "Postgres, YMD"}[rng.IntN(4)] + "'"
		case 2:
			return "SET IntervalStyle = " + []string{"postgres", "sql_standard", "iso_8601", "postgres_verbose"}[rng.IntN(4)]
		case 3:
			return "SET search_path = " + []string{sa, sb, sb + ", " + sa, "public"}[rng.IntN(4)]
		case 4:
			return fmt.Sprintf("SELECT %s.setpath('%s')", sa, []string{sa, sb}[rng.IntN(2)])
		case 5:
			return "RESET search_path"
		case 6:
			return "RESET ALL"
		case 7:
			return "SET ROLE " + []string{r1, r2}[rng.IntN(2)]
		case 8:
			return "RESET ROLE"
		case 9:
			return "DISCARD ALL"
		default:
			return "SET LOCAL TimeZone = 'Asia/Tokyo'" // outside a transaction: a warning, no change
		}
	}
	// Catalog changes, through an administrator's wtcache connection.
	var catalog1 func() string
	catalog1 = func() string {
		switch rng.IntN(8) {
		case 0:
			return fmt.Sprintf("GRANT SELECT ON %s.acct TO %s", sa, r2)
		case 1:
			return fmt.Sprintf("REVOKE SELECT ON %s.acct FROM %s", sa, r2)
		case 2:
			return fmt.Sprintf("ALTER TABLE %s.s ENABLE ROW LEVEL SECURITY", sa)
		case 3:
			return fmt.Sprintf("ALTER TABLE %s.s DISABLE ROW LEVEL SECURITY", sa)
		case 4:
			return fmt.Sprintf("DROP POLICY IF EXISTS own ON %[1]s.s; CREATE POLICY own ON %[1]s.s USING (owner = current_user OR v > %d)", sa, rng.IntN(200))
		case 5:
			return fmt.Sprintf("GRANT %s TO %s", r2, r1)
		case 6:
			return fmt.Sprintf("REVOKE %s FROM %s", r2, r1)
		default:
			return fmt.Sprintf("ALTER TABLE %s.acct ALTER COLUMN bal TYPE numeric(%d,%d)", []string{sa, sb}[rng.IntN(2)], 12+rng.IntN(3), 2+rng.IntN(2))
		}
	}
	catalog := func() string {
		if rng.IntN(3) == 0 {
			// Through DO: the text names no catalog change.
			return "DO $$BEGIN " + catalog1() + "; END$$"
		}
		return catalog1()
	}

	check()
	check() // warm
	for range steps {
		s := sides[rng.IntN(len(sides))]
		switch r := rng.IntN(20); {
		case r < 7:
			exec(s, write(s))
		case r < 10:
			// A transaction in text on the pinned connection.
			exec(s, []string{"BEGIN", "START TRANSACTION ISOLATION LEVEL REPEATABLE READ", "BEGIN; " + write(s)}[rng.IntN(3)])
			for range 1 + rng.IntN(3) {
				switch rng.IntN(6) {
				case 0:
					exec(s, "SAVEPOINT sp")
				case 1:
					exec(s, "ROLLBACK TO SAVEPOINT sp")
				case 2:
					exec(s, "SELECT 1/0")
				case 3:
					exec(s, "SET LOCAL search_path = "+sb)
				default:
					exec(s, write(s))
				}
			}
			switch rng.IntN(5) {
			case 0:
				exec(s, "ROLLBACK")
			case 1:
				exec(s, "COMMIT AND CHAIN")
				exec(s, write(s))
				exec(s, []string{"COMMIT", "ROLLBACK"}[rng.IntN(2)])
			case 2:
				exec(s, "ROLLBACK AND CHAIN")
				exec(s, write(s))
				exec(s, "COMMIT")
			case 3:
				exec(s, write(s)+"; COMMIT")
			default:
				exec(s, "COMMIT")
			}
			exec(s, "ROLLBACK") // whatever happened, the connection is idle again
		case r < 12:
			// A transaction through database/sql.
			tx, err := s.w.BeginTx(ctx, nil)
			if err != nil {
				fail("%s: BeginTx: %v", s.name, err)
			}
			var parts []string
			for range 1 + rng.IntN(3) {
				q := write(s)
				if rng.IntN(5) == 0 {
					q = "SELECT 1/0"
				}
				_, err := tx.ExecContext(ctx, q)
				parts = append(parts, fmt.Sprintf("%s -> %v", oneLine(q), err))
			}
			var end string
			if rng.IntN(3) == 0 {
				end, err = "Rollback", tx.Rollback()
			} else {
				end, err = "Commit", tx.Commit()
			}
			history = append(history, fmt.Sprintf("[%s] Tx{%s} %s -> %v", s.name, strings.Join(parts, "; "), end, err))
		case r < 17:
			q := session(s)
			_, errW := s.w.ExecContext(ctx, q)
			_, errP := s.p.ExecContext(ctx, q)
			history = append(history, fmt.Sprintf("[%s, both sides] %s -> %v", s.name, q, errW))
			if fmt.Sprint(errW) != fmt.Sprint(errP) {
				fail("%s: %s: through wtcache %v, plain pgx %v", s.name, q, errW, errP)
			}
		default:
			var admin *dwSide
			for _, a := range sides {
				if a.admin && (admin == nil || rng.IntN(2) == 0) {
					admin = a
				}
			}
			// On a pooled connection of its own: the pinned ones carry
			// session state mirrored on their plain twins.
			q := catalog()
			_, err := admin.wdb.ExecContext(ctx, q)
			history = append(history, fmt.Sprintf("[%s, pooled] %s -> %v", admin.name, q, err))
		}
		check()
	}
	var hits int64
	for _, s := range sides {
		hits += rpStats(s.c).Hits
	}
	t.Logf("seed %d: %d steps, %d statements, %d hits", seed, steps, len(history), hits)
	if hits == 0 {
		t.Error("no read was served from Redis: the comparison proves nothing")
	}
}

// pgxStatementCacheError reports the errors PostgreSQL gives a statement
// pgx prepared and cached before DISCARD ALL or a change of its result
// type; pgx forgets the statement on them.
func pgxStatementCacheError(err error) bool {
	m := err.Error()
	return strings.Contains(m, "SQLSTATE 26000") || strings.Contains(m, "cached plan must not change result type")
}

func oneLine(q string) string {
	return strings.Join(strings.Fields(q), " ")
}

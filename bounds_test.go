package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Resources driven by input stay bounded: the plan cache in bytes, the
// names a connection resolves, the attribute sets counted, and the reach
// of a write through foreign keys (cycles, self-references, long chains).

// TestPlanCacheBoundedInBytes: distinct large statements do not grow the
// heap by their total size.
func TestPlanCacheBoundedInBytes(t *testing.T) {
	pc := &planCache{max: defaultPlanCache}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	const n, size = 300, 1 << 20
	pad := strings.Repeat("x", size)
	for i := range n {
		pc.get(fmt.Sprintf("SELECT '%s' AS pad, %d", pad, i))
	}
	for i := range 5000 {
		pc.get(fmt.Sprintf("SELECT * FROM t WHERE id = %d -- %s", i, pad[:4000]))
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d statements of 1 MiB and 5000 of 4 KiB: heap grew %d KiB, the cache holds %d plans in %d KiB", n, grew>>10, pc.len(), pc.bytes>>10)
	if pc.bytes > defaultPlanBytes {
		t.Errorf("the plan cache holds %d bytes, over its bound %d", pc.bytes, defaultPlanBytes)
	}
	if grew > 2*defaultPlanBytes {
		t.Errorf("the heap grew by %d MiB", grew>>20)
	}
}

// TestSessionNamesBounded: a connection that names many tables keeps at
// most maxSessionNames resolutions.
func TestSessionNamesBounded(t *testing.T) {
	e := needServices(t)
	db, _ := e.open(t, "")
	ctx := context.Background()
	sc, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	for i := range maxSessionNames + 200 {
		// Names that do not exist resolve to nothing, and are kept too.
		_ = sc.QueryRowContext(ctx, fmt.Sprintf("SELECT * FROM nonexistent_%d WHERE id = $1", i), 1).Scan()
	}
	err = sc.Raw(func(dc any) error {
		c := dc.(*conn)
		if n := len(c.sess.resolved); n > maxSessionNames {
			return fmt.Errorf("%d names resolved, bound %d", n, maxSessionNames)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpCountsBounded: statements naming many distinct tables do not grow
// the counted attribute sets without bound.
func TestOpCountsBounded(t *testing.T) {
	c, err := (&wtDriver{}).openConnector("host=db cache_redis=redis://r")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range maxOpCounts + 1000 {
		c.tel.countOp(context.Background(), fmt.Sprintf("t%d", i), "SELECT", "bypass", reasonNotLookup)
	}
	n := 0
	c.tel.opCounts.Range(func(any, any) bool { n++; return true })
	if n > maxOpCounts+1 {
		t.Fatalf("%d attribute sets counted, bound %d", n, maxOpCounts)
	}
}

// TestCascadeClosure generates foreign-key graphs (self-references,
// cycles, chains up to a thousand tables, ON DELETE CASCADE and SET NULL)
// and deletes from tables that are not cached: the write finishes in
// bounded time, and every cached table it reaches is invalidated (another
// handle reads PostgreSQL's rows).
func TestCascadeClosure(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 2))
	for _, shape := range []struct {
		name  string
		n     int
		cycle bool
		self  bool
	}{
		{"self-reference", 1, false, true},
		{"cycle of 3", 3, true, false},
		{"chain of 50 with self-references", 50, false, true},
		{"cycle of 1000", 1000, true, true},
	} {
		t.Run(shape.name, func(t *testing.T) {
			prefix := fmt.Sprintf("fkc_%d", rng.IntN(1e6))
			var ddl strings.Builder
			name := func(i int) string { return fmt.Sprintf("%s_%d", prefix, i) }
			for i := range shape.n {
				fmt.Fprintf(&ddl, "CREATE TABLE %s (id bigint PRIMARY KEY, parent bigint, v bigint NOT NULL DEFAULT 0);\n", name(i))
			}
			action := func() string {
				if rng.IntN(2) == 0 {
					return "CASCADE"
				}
				return "SET NULL"
			}
			for i := range shape.n {
				if i > 0 {
					fmt.Fprintf(&ddl, "ALTER TABLE %s ADD FOREIGN KEY (parent) REFERENCES %s(id) ON DELETE CASCADE;\n", name(i), name(i-1))
				}
				if shape.self {
					fmt.Fprintf(&ddl, "ALTER TABLE %s ADD COLUMN up bigint REFERENCES %s(id) ON DELETE %s;\n", name(i), name(i), action())
				}
			}
			if shape.cycle && shape.n > 1 {
				fmt.Fprintf(&ddl, "ALTER TABLE %s ADD COLUMN back bigint REFERENCES %s(id) ON DELETE SET NULL;\n", name(0), name(shape.n-1))
			}
			for i := range shape.n {
				fmt.Fprintf(&ddl, "INSERT INTO %s (id, parent) VALUES (1, %s);\n", name(i), map[bool]string{true: "NULL", false: "1"}[i == 0])
			}
			mustExec(t, p, ddl.String())
			t.Cleanup(func() {
				for i := 0; i < shape.n; i += 100 {
					var drop strings.Builder
					for j := i; j < min(i+100, shape.n); j++ {
						fmt.Fprintf(&drop, "DROP TABLE IF EXISTS %s CASCADE;", name(j))
					}
					mustExec(t, p, drop.String())
				}
			})
			last := name(shape.n - 1)
			// Only the last table is cached: the write starts at a table
			// that is not.
			kp := fmt.Sprintf("fkc%d-%d", os.Getpid(), prefixSeq.Add(1))
			dbA, _ := e.open(t, kp, "cache_tables="+last)
			dbB, cB := e.open(t, kp, "cache_tables="+last)
			var v int64
			for range 3 {
				_ = dbB.QueryRowContext(ctx, `SELECT v FROM `+last+` WHERE id = $1`, 1).Scan(&v)
				cB.settle()
			}
			if rpStats(cB).Hits == 0 {
				t.Fatal("the row was never served from Redis: the check would prove nothing")
			}
			start := time.Now()
			if _, err := dbA.ExecContext(ctx, `DELETE FROM `+name(0)+` WHERE id = 1`); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			t.Logf("%d tables: the DELETE took %v", shape.n, took.Round(time.Millisecond))
			if took > 30*time.Second {
				t.Errorf("the write took %v", took)
			}
			err := dbB.QueryRowContext(ctx, `SELECT v FROM `+last+` WHERE id = $1`, 1).Scan(&v)
			var want int64
			werr := p.QueryRowContext(ctx, `SELECT v FROM `+last+` WHERE id = $1`, 1).Scan(&want)
			if (err == nil) != (werr == nil) || v != want {
				t.Errorf("after the cascade, another handle reads (%d, %v), PostgreSQL (%d, %v)", v, err, want, werr)
			}
		})
	}
}

// TestSelfCascadeByKey: a DELETE by key on a cached table whose foreign key
// to itself cascades removes other rows of the same table: they are
// invalidated too, not only the key named.
func TestSelfCascadeByKey(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	for _, action := range []string{"CASCADE", "SET NULL"} {
		t.Run(action, func(t *testing.T) {
			table := fmt.Sprintf("selfcas_%d", os.Getpid())
			mustExec(t, p, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (id bigint PRIMARY KEY, parent bigint REFERENCES `+table+`(id) ON DELETE `+action+` ON UPDATE `+action+`, v bigint NOT NULL DEFAULT 0);
				INSERT INTO `+table+` VALUES (1, NULL, 1), (2, 1, 2), (3, 2, 3)`)
			t.Cleanup(func() { mustExec(t, p, `DROP TABLE IF EXISTS `+table) })
			prefix := fmt.Sprintf("selfcas%d-%d", os.Getpid(), prefixSeq.Add(1))
			dbA, _ := e.open(t, prefix)
			dbB, cB := e.open(t, prefix)
			read := func(db *sql.DB, id int) string {
				var parent sql.NullInt64
				var v int64
				err := db.QueryRowContext(ctx, `SELECT parent, v FROM `+table+` WHERE id = $1`, id).Scan(&parent, &v)
				return fmt.Sprint(parent, v, err)
			}
			for range 2 {
				for id := 1; id <= 3; id++ {
					read(dbB, id)
				}
				cB.settle()
			}
			if _, err := dbA.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = $1`, 1); err != nil {
				t.Fatal(err)
			}
			for id := 1; id <= 3; id++ {
				if got, want := read(dbB, id), read(p, id); got != want {
					t.Errorf("row %d after the DELETE: another handle reads %s, PostgreSQL %s", id, got, want)
				}
			}
		})
	}
}

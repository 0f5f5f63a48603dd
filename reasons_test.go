package wtcache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// TestReasonsAndDBStats: an application that opened wtcache with sql.Open
// reads its counters with DBStats; every bypass and every miss has a
// reason, in Stats, in the wtcache.operations metric and on the span.
func TestReasonsAndDBStats(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	big, nopk := fmt.Sprintf("rs_big_%d", os.Getpid()), fmt.Sprintf("rs_nopk_%d", os.Getpid())
	mustExec(t, p, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s, %[2]s;
		CREATE TABLE %[1]s (id bigint PRIMARY KEY, note text NOT NULL); INSERT INTO %[1]s VALUES (1, repeat('x', 300)), (2, 'small');
		CREATE TABLE %[2]s (id bigint, v bigint); INSERT INTO %[2]s VALUES (1, 1)`, big, nopk))
	t.Cleanup(func() { mustExec(t, p, `DROP TABLE IF EXISTS `+big+`, `+nopk) })

	// sql.Open, as an application adopting wtcache does.
	dsn := e.dbURL + "&cache_redis=" + url.QueryEscape(e.redisURL) + fmt.Sprintf("&cache_prefix=rs%d-%d&cache_max_entry=200", os.Getpid(), prefixSeq.Add(1))
	db, err := sql.Open("wtcache", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	read := func(q string, args ...any) {
		t.Helper()
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	settle := func() {
		// Fills run after the call returns (batched, within a few
		// milliseconds): let them land.
		time.Sleep(100 * time.Millisecond)
	}
	for range 3 {
		read(`SELECT * FROM `+big+` WHERE id = $1`, 1) // over cache_max_entry: never stored
		read(`SELECT * FROM `+big+` WHERE id = $1`, 2)
		settle()
	}
	read(`SELECT * FROM `+nopk+` WHERE id = $1`, 1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.QueryContext(ctx, `SELECT * FROM `+big+` WHERE id = $1`, 2); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback()

	s, err := DBStats(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", s)
	if s.Hits == 0 {
		t.Error("no hit counted for the small row")
	}
	if s.MissReasons[missTooLarge] < 2 {
		t.Errorf("misses of a row over cache_max_entry: %v, want entry_too_large at least twice", s.MissReasons)
	}
	if s.MissReasons[missAbsent] < 2 {
		t.Errorf("first misses: %v, want not_in_cache", s.MissReasons)
	}
	for _, r := range []string{reasonNotCacheable, reasonInTx} {
		if s.BypassReasons[r] == 0 {
			t.Errorf("bypass reasons %v: want %s", s.BypassReasons, r)
		}
	}
	var total int64
	for _, n := range s.BypassReasons {
		total += n
	}
	if total != s.Bypasses {
		t.Errorf("bypass reasons add up to %d, Bypasses %d", total, s.Bypasses)
	}
	total = 0
	for _, n := range s.MissReasons {
		total += n
	}
	if total != s.Misses {
		t.Errorf("miss reasons add up to %d, Misses %d", total, s.Misses)
	}
	if _, err := DBStats(ctx, p); !errors.Is(err, ErrNotWtcache) {
		t.Errorf("DBStats of a plain pgx handle: %v, want ErrNotWtcache", err)
	}

	// The metric and the span carry the reason too.
	rig := newRig()
	db2, c2 := e.openWith(t, "", append(rig.opts, WithMaxEntrySize(200)))
	for range 2 {
		read2 := func(q string, args ...any) {
			rows, err := db2.QueryContext(ctx, q, args...)
			if err != nil {
				t.Fatal(err)
			}
			_ = rows.Close()
			c2.settle()
		}
		read2(`SELECT * FROM `+big+` WHERE id = $1`, 1)
		read2(`SELECT * FROM `+nopk+` WHERE id = $1`, 1)
	}
	if n := rig.counter(t, "wtcache.operations", map[string]string{"wtcache.outcome": "miss", "wtcache.miss.reason": missTooLarge}); n != 1 {
		t.Errorf("wtcache.operations{outcome=miss, miss.reason=entry_too_large} = %d, want 1", n)
	}
	if n := rig.counter(t, "wtcache.operations", map[string]string{"wtcache.outcome": "bypass", "wtcache.bypass.reason": reasonNotCacheable, "db.collection.name": nopk}); n != 2 {
		t.Errorf("wtcache.operations{outcome=bypass, reason=table_not_cacheable, table} = %d, want 2", n)
	}
	var detail string
	for _, sp := range rig.rec.Ended() {
		if sp.Name() != "SELECT "+nopk {
			continue
		}
		for _, kv := range sp.Attributes() {
			if kv.Key == attrBypassDetail {
				detail = kv.Value.Emit()
			}
			if kv.Key == attribute.Key("db.collection.name") && kv.Value.Emit() != nopk {
				t.Errorf("span of a bypass names table %q", kv.Value.Emit())
			}
		}
	}
	if !strings.Contains(detail, "no primary key") {
		t.Errorf("span of a bypass of a table without a key: detail %q", detail)
	}
}

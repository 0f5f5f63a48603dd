package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/recognize"
)

// TestManyKeysReadVersionsOnlyForMisses: a lookup of many keys reads the
// images alone while its statement's lookups hit, reads the misses'
// versions in a second MGET before the database when some miss, and reads
// images and versions together while its statement's lookups miss; the
// rows are PostgreSQL's each time.
func TestManyKeysReadVersionsOnlyForMisses(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c := e.open(t, "")
	var mgets []int // keys of each MGET the handle sends
	var mu sync.Mutex
	c.cfg.redis.AddHook(mgetHook{func(n int) { mu.Lock(); mgets = append(mgets, n); mu.Unlock() }})
	ids := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	const q = "SELECT id, balance FROM wt_accounts WHERE id = ANY($1)"
	read := func(step string, want []int) {
		t.Helper()
		c.settle()
		mu.Lock()
		mgets = nil
		mu.Unlock()
		rows, err := db.Query(q, ids)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var id, b int64
			if err := rows.Scan(&id, &b); err != nil {
				t.Fatal(err)
			}
			if b != 100 {
				t.Fatalf("%s: row %d balance %d", step, id, b)
			}
			n++
		}
		rows.Close()
		if n != len(ids) {
			t.Fatalf("%s: %d rows", step, n)
		}
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(mgets) != fmt.Sprint(want) {
			t.Fatalf("%s: MGETs of %v keys, want %v", step, mgets, want)
		}
	}
	read("first read, all misses", []int{11, 10})
	read("then it misses (the statement's last lookup missed)", []int{21})
	read("all hits", []int{11})
	e.rdb.Del(context.Background(), strings.Replace(rowKeyOf(t, c, db, 4), ":r:", ":v:", 1))
	read("one miss", []int{11, 1})
	read("after a miss", []int{21})
	read("hits again", []int{11})
}

// mgetHook reports the number of keys of every MGET sent.
type mgetHook struct{ seen func(n int) }

func (h mgetHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h mgetHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "mget" {
			h.seen(len(cmd.Args()) - 1)
		}
		return next(ctx, cmd)
	}
}
func (h mgetHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// rowKeyOf is the row key of wt_accounts' row id under c.
func rowKeyOf(t *testing.T, c *connector, db *sql.DB, id int) string {
	t.Helper()
	var database string
	if err := db.QueryRow("SELECT current_database()").Scan(&database); err != nil {
		t.Fatal(err)
	}
	return rowKey(tableTag(c.cfg.prefix, database, recognize.Table{Schema: "public", Name: "wt_accounts"}), []string{strconv.Itoa(id)})
}

package wtcache

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wtcache/wtcache/internal/rowcodec"
)

// FuzzCorruptEntry: whatever bytes stand in Redis as a row's image (under
// the right generation, so that the lookup takes them for a hit), the
// lookup never fails and returns PostgreSQL's row, unless the bytes are
// themselves a well-formed image of that very key in the table's current
// shape (a forged entry, which only authenticated entries could refuse).
// Malformed, truncated, wrong-key, wrong-shape and old-encoding images are
// counted misses.
func FuzzCorruptEntry(f *testing.F) {
	e := needServices(f)
	p := e.plain(f)
	table := fmt.Sprintf("wt_fuzz_%d", time.Now().UnixNano()%1e9)
	mustExec(f, p, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL)`, table))
	f.Cleanup(func() { mustExec(f, p, "DROP TABLE IF EXISTS "+table) })
	mustExec(f, p, fmt.Sprintf(`INSERT INTO %s VALUES (1, 'owner 1', 100), (2, 'owner 2', 200)`, table))
	db, c := e.open(f, "")
	ctx := context.Background()
	q := "SELECT id, owner, balance FROM " + table + " WHERE id = $1"
	read := func(t testing.TB) (int64, string, int64) {
		var id, bal int64
		var owner string
		if err := db.QueryRowContext(ctx, q, 1).Scan(&id, &owner, &bal); err != nil {
			t.Fatalf("lookup failed: %v", err)
		}
		return id, owner, bal
	}
	read(f)
	var x int64
	var o string
	if err := db.QueryRowContext(ctx, q, 2).Scan(&x, &o, &x); err != nil {
		f.Fatal(err)
	}
	c.settle()
	keys, _ := e.rdb.Keys(ctx, "{"+c.cfg.prefix+":*"+table+"}:v:1").Result()
	if len(keys) != 1 {
		f.Fatalf("no image key: %v", keys)
	}
	valid, _ := e.rdb.Get(ctx, keys[0]).Result()
	gen, img, _ := strings.Cut(valid, " ")
	f.Add([]byte(img))
	f.Add([]byte(img[:len(img)/2]))           // truncated
	f.Add([]byte{'W', 0})                     // another encoding version
	f.Add(append([]byte{'W', 2}, img[2:]...)) // a newer one
	f.Add([]byte("not an image at all"))
	other, _ := e.rdb.Get(ctx, strings.Replace(keys[0], ":v:1", ":v:2", 1)).Result()
	if _, img2, ok := strings.Cut(other, " "); ok {
		f.Add([]byte(img2)) // another row's image: the wrong key
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c.settle() // the last iteration's fill must not land over this entry
		if err := e.rdb.Set(ctx, keys[0], gen+" "+string(b), time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		hits := c.hits.Load()
		id, owner, bal := read(t)
		if id == 1 && owner == "owner 1" && bal == 100 {
			if string(b) != img && c.hits.Load() > hits {
				// Served from Redis: only a well-formed image of key 1.
				row, err := rowcodec.Decode(b)
				if err != nil || len(row.Values) != 3 || !reflect.DeepEqual(row.Values[0], int64(1)) {
					t.Fatalf("served from an image that is not one of key 1: %q", b)
				}
			}
			return
		}
		// Another answer than PostgreSQL's: only from a well-formed image
		// of key 1 in the table's shape (a forgery).
		row, err := rowcodec.Decode(b)
		if err != nil || len(row.Values) != 3 || !reflect.DeepEqual(row.Values[0], int64(1)) {
			t.Fatalf("wrong data (%d %q %d) from the entry %q", id, owner, bal, b)
		}
	})
}

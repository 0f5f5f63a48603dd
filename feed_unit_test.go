package wtcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/jackc/pglogrepl"
)

// Unit tests of the change feed that need no server.

func TestFeedParams(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want string // "" = accepted
	}{
		{"host=db cache_redis=redis://r cache_feed=on", ""},
		{"host=db cache_redis=redis://r cache_feed=off", ""},
		{"host=db cache_redis=redis://r cache_feed=yes", `"yes" is neither on nor off`},
		{"host=db cache_redis=redis://r cache_feed_max_lag=250ms", ""},
		{"host=db cache_redis=redis://r cache_feed_max_lag=5ms", "below the least"},
		{"host=db cache_redis=redis://r cache_feed_max_lag=soon", "not a Go duration"},
		{"host=db cache_redis=redis://r cache_feed_publication=mine", ""},
		{`host=db cache_redis=redis://r cache_feed_publication=a'b`, "not a plain publication name"},
	} {
		c, err := (&wtDriver{}).openConnector(tc.dsn)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.dsn, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidParameter)):
			t.Errorf("%s: %v, want ErrInvalidParameter saying %q", tc.dsn, err, tc.want)
		}
		if err == nil {
			_ = c.Close()
		}
	}
	c, err := (&wtDriver{}).openConnector("host=db cache_redis=redis://r")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.cfg.feed || c.cfg.feedMaxLag != DefaultFeedMaxLag || c.cfg.feedPublication != DefaultFeedPublication {
		t.Errorf("defaults: feed %v, max lag %v, publication %q", c.cfg.feed, c.cfg.feedMaxLag, c.cfg.feedPublication)
	}
}

func TestFeedStatusRoundTrip(t *testing.T) {
	s := feedStatus("e1", "c1", 3*time.Millisecond, time.Second, 1234)
	e, c, lag, until, ok := parseFeedStatus(s)
	if !ok || e != "e1" || c != "c1" || lag != time.Second || until != 1234 {
		t.Fatalf("%q: %q %q %v %d %v", s, e, c, lag, until, ok)
	}
	for _, bad := range []string{"", "e1", "e1 c1", "e1 c1 3", "e1 c1 3 x 1", "e1 c1 3 0 1", " c1 3 1000 1", "e1 c1 3 1000", "e1 c1 3 1000 x"} {
		if _, _, _, _, ok := parseFeedStatus(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	var nilView *feedView
	now := time.Now()
	for _, tc := range []struct {
		v    *feedView
		want bool
	}{
		{nilView, false},
		{&feedView{}, false},
		{&feedView{epoch: "e", freshUntil: now.Add(time.Second)}, true},
		{&feedView{epoch: "e", freshUntil: now.Add(-1)}, false},
		{&feedView{epoch: "", freshUntil: now.Add(time.Second)}, false},
	} {
		if got := tc.v.fresh(now); got != tc.want {
			t.Errorf("%+v fresh: %v, want %v", tc.v, got, tc.want)
		}
	}
}

// TestFollowerKeys: the rows a change names are found from the stream's
// tuples (key columns mapped by name, values normalised as a reader's
// argument would be); a change whose key cannot be read from the tuple
// (NULL in an old-key tuple of another replica identity, an unchanged
// TOASTed key, a missing tuple, too many rows) moves the table's
// generation instead.
func TestFollowerKeys(t *testing.T) {
	idCol := &columnInfo{name: "id", keyKind: keyInt, intBits: 64}
	uCol := &columnInfo{name: "u", keyKind: keyUUID}
	rel := &feedRel{
		msg: &pglogrepl.RelationMessage{ReplicaIdentity: 'd', Columns: []*pglogrepl.RelationMessageColumn{{Name: "v"}, {Name: "u"}, {Name: "id"}}},
		tag: "{p:db:public.t}", pk: []int{2, 1}, cols: []*columnInfo{idCol, uCol}, keep: true,
	}
	text := func(s string) *pglogrepl.TupleDataColumn {
		return &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeText, Data: []byte(s)}
	}
	null := &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeNull}
	toast := &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeToast}
	tuple := func(cols ...*pglogrepl.TupleDataColumn) *pglogrepl.TupleData {
		return &pglogrepl.TupleData{Columns: cols}
	}
	const u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
	for _, tc := range []struct {
		name   string
		tuples []*pglogrepl.TupleData
		keys   []string
		bump   bool
	}{
		{"one row", []*pglogrepl.TupleData{tuple(text("x"), text(u), text("42"))}, []string{rowKey(rel.tag, []string{"42", u})}, false},
		{"old and new key", []*pglogrepl.TupleData{tuple(text("x"), text(u), text("42")), tuple(null, text(u), text("41"))},
			[]string{rowKey(rel.tag, []string{"41", u}), rowKey(rel.tag, []string{"42", u})}, false},
		{"NULL key column", []*pglogrepl.TupleData{tuple(text("x"), null, text("42"))}, nil, true},
		{"unchanged TOASTed key", []*pglogrepl.TupleData{tuple(text("x"), toast, text("42"))}, nil, true},
		{"no tuple", []*pglogrepl.TupleData{nil}, nil, true},
		{"short tuple", []*pglogrepl.TupleData{tuple(text("x"))}, nil, true},
		{"value that does not normalise", []*pglogrepl.TupleData{tuple(text("x"), text("not-a-uuid"), text("42"))}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &follower{rels: map[uint32]*feedRel{7: rel}}
			f.tx = &feedTx{keys: map[uint32]map[string]struct{}{}, bump: map[uint32]bool{}}
			for _, tup := range tc.tuples {
				f.change(7, tup)
			}
			var got []string
			for k := range f.tx.keys[7] {
				got = append(got, k)
			}
			if f.tx.bump[7] != tc.bump || fmt.Sprint(sortStrings(got)) != fmt.Sprint(sortStrings(tc.keys)) {
				t.Fatalf("keys %v, bump %v; want %v, %v", got, f.tx.bump[7], tc.keys, tc.bump)
			}
		})
	}
	t.Run("too many rows", func(t *testing.T) {
		f := &follower{rels: map[uint32]*feedRel{7: rel}}
		f.tx = &feedTx{keys: map[uint32]map[string]struct{}{}, bump: map[uint32]bool{}}
		for i := range maxKeysPerTable + 1 {
			f.change(7, tuple(text("x"), text(u), text(fmt.Sprint(i))))
		}
		if !f.tx.bump[7] || len(f.tx.keys[7]) != 0 {
			t.Fatalf("after %d rows: bump %v, %d keys", maxKeysPerTable+1, f.tx.bump[7], len(f.tx.keys[7]))
		}
	})
	for _, id := range []uint8{'i', 'n'} {
		t.Run(fmt.Sprintf("replica identity %c", id), func(t *testing.T) {
			// USING INDEX or NOTHING: an UPDATE's old key is not the
			// primary key's, or not there at all.
			other := *rel
			msg := *rel.msg
			msg.ReplicaIdentity = id
			other.msg = &msg
			f := &follower{rels: map[uint32]*feedRel{7: &other}}
			f.tx = &feedTx{keys: map[uint32]map[string]struct{}{}, bump: map[uint32]bool{}}
			f.change(7, tuple(text("x"), text(u), text("42")))
			if !f.tx.bump[7] {
				t.Fatal("a change under another replica identity did not move the generation")
			}
		})
	}
	t.Run("relation of no interest", func(t *testing.T) {
		f := &follower{rels: map[uint32]*feedRel{8: {msg: rel.msg, keep: false}}}
		f.tx = &feedTx{keys: map[uint32]map[string]struct{}{}, bump: map[uint32]bool{}}
		f.change(8, tuple(text("x"), text(u), text("1")))
		if len(f.tx.keys) != 0 || len(f.tx.bump) != 0 {
			t.Fatal("a table without a primary key recorded a change")
		}
	})
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestFeedCheckMessages: what the first connection says for each way a
// server or role cannot give the feed (sqlmock plays the server).
func TestFeedCheckMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  []any // wal_level, database, user, replication, puballtables, trigger
		want string
	}{
		{"wal_level", []any{"replica", "db", "app", true, true, true}, "wal_level is replica"},
		{"role", []any{"logical", "db", "app", false, true, true}, `role "app" has neither the REPLICATION attribute`},
		{"publication", []any{"logical", "db", "app", true, nil, true}, `no publication "wtcache"`},
		{"not every change", []any{"logical", "db", "app", true, false, true}, "does not give every change"},
		{"event trigger", []any{"logical", "db", "app", true, true, false}, "no event trigger wtcache_ddl enabled ALWAYS"},
		{"all there", []any{"logical", "db", "app", true, true, true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := fmt.Sprintf("feed-mock-%d", registerCounter.Add(1))
			mdb, mock, err := sqlmock.NewWithDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer mdb.Close()
			mock.ExpectQuery(`SELECT pg_catalog\.current_setting\('wal_level'\)`).WithArgs("wtcache").
				WillReturnRows(sqlmock.NewRows([]string{"a", "b", "c", "d", "e", "f"}).AddRow(toValues(tc.row)...))
			dc, err := mdb.Driver().Open(dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer dc.Close()
			_, err = feedFacts(context.Background(), &conn{inner: dc}, "wtcache")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrFeedUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want ErrFeedUnavailable saying %q", err, tc.want)
			}
		})
	}
}

func toValues(row []any) []driver.Value {
	out := make([]driver.Value, len(row))
	for i, v := range row {
		out[i] = v
	}
	return out
}

func TestParseSnapshot(t *testing.T) {
	xmin, xmax, running, ok := parseSnapshot("4294967300:4294967310:4294967302,4294967305")
	if !ok || xmin != 4 || xmax != 14 || len(running) != 2 || running[0] != 6 || running[1] != 9 {
		t.Fatalf("%d %d %v %v", xmin, xmax, running, ok)
	}
	if _, _, r, ok := parseSnapshot("10:12:"); !ok || len(r) != 0 {
		t.Fatalf("no running: %v %v", r, ok)
	}
	for _, bad := range []string{"", "1:2", "a:2:", "1:b:", "1:2:x"} {
		if _, _, _, ok := parseSnapshot(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

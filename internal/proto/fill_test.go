package proto

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func peek(t *testing.T, rdb redis.UniversalClient, keys ...string) PeekResult {
	t.Helper()
	r, err := Peek(context.Background(), rdb, meta, keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// hits renders a Peek: the image of each hit, "-" for a miss.
func hits(r PeekResult) []string {
	out := make([]string, len(r.Rows))
	for i, x := range r.Rows {
		out[i] = "-"
		if x.Hit {
			out[i] = x.Image
		}
	}
	return out
}

// fill fills keys with images under what p saw.
func fill(t *testing.T, rdb redis.UniversalClient, p PeekResult, keys []string, images ...string) int {
	t.Helper()
	vs := make([]string, len(keys))
	imgs := make([][]byte, len(keys))
	for i := range keys {
		vs[i] = p.Rows[i].Version
		if images[i] != "" {
			imgs[i] = []byte(images[i])
		}
	}
	n, err := Fill(context.Background(), rdb, meta, keys, p.Gen, p.Seq, vs, 60000, imgs)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// warm makes the table's meta hash exist (the first fill of a table only
// creates it) and caches images for keys.
func warm(t *testing.T, rdb redis.UniversalClient, keys []string, images ...string) {
	t.Helper()
	fill(t, rdb, peek(t, rdb, keys...), keys, images...)
	if n := fill(t, rdb, peek(t, rdb, keys...), keys, images...); n != len(keys) {
		t.Fatalf("warm: stored %d of %d", n, len(keys))
	}
}

type writer struct {
	token, gen string
}

func (w *writer) intent(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	g, err := Intent(context.Background(), rdb, meta, []string{k1}, w.token, 30000, false)
	if err != nil {
		t.Fatal(err)
	}
	w.gen = g
}

func (w *writer) release(t *testing.T, rdb redis.UniversalClient, img string) {
	t.Helper()
	var imgs [][]byte
	if img != "" {
		imgs = [][]byte{[]byte(img)}
	}
	if _, err := Release(context.Background(), rdb, meta, []string{k1}, w.token, w.gen, 60000, false, false, imgs); err != nil {
		t.Fatal(err)
	}
}

func TestMissFillHit(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		keys := []string{k1, k2}
		p := peek(t, rdb, keys...)
		if p.Gen != "" || hits(p)[0] != "-" {
			t.Fatalf("empty Redis: %+v", p)
		}
		// The first fill of a table makes its meta hash and stores nothing:
		// it cannot know what the generation was when the reader looked.
		if n := fill(t, rdb, p, keys, "img1", ""); n != 0 {
			t.Fatalf("first fill stored %d", n)
		}
		p = peek(t, rdb, keys...)
		if p.Gen == "" || p.Incarnation == "" {
			t.Fatalf("meta not made: %+v", p)
		}
		if n := fill(t, rdb, p, keys, "img1", ""); n != 1 {
			t.Fatalf("fill stored %d, want 1 (k2 has no row)", n)
		}
		if got := hits(peek(t, rdb, keys...)); got[0] != "img1" || got[1] != "-" {
			t.Fatalf("after fill: %v, want img1 -", got)
		}
	})
}

// The stale-set race that the fill's conditions exist for: a reader looks,
// reads the old row, a write commits and is released, and the reader's
// fill arrives last. Every ordering of the write against the reader's look
// and fill must leave either nothing or the new row, whether the row was
// written before (it has a version) or not (the table's sequence decides).
func TestWriteDefeatsSlowFill(t *testing.T) {
	type step func(t *testing.T, rdb redis.UniversalClient, w *writer)
	intent := func(t *testing.T, rdb redis.UniversalClient, w *writer) { w.intent(t, rdb) }
	release := func(t *testing.T, rdb redis.UniversalClient, w *writer) { w.release(t, rdb, "new") }
	for _, tc := range []struct {
		name          string
		before, after []step // around the reader's look; the fill comes last
	}{
		{"write between look and fill", nil, []step{intent, release}},
		{"intent before look, release before fill", []step{intent}, []step{release}},
		{"intent after look, still live at fill", nil, []step{intent}},
		{"intent before look, still live at fill", []step{intent}, nil},
	} {
		for _, written := range []bool{false, true} {
			name := tc.name
			if written {
				name += ", row written before"
			}
			t.Run(name, func(t *testing.T) {
				forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
					warm(t, rdb, []string{k2}, "other")
					if written {
						w0 := &writer{token: "w0"}
						w0.intent(t, rdb)
						w0.release(t, rdb, "")
					}
					w := &writer{token: "w1"}
					for _, f := range tc.before {
						f(t, rdb, w)
					}
					p := peek(t, rdb, k1)
					for _, f := range tc.after {
						f(t, rdb, w)
					}
					if n := fill(t, rdb, p, []string{k1}, "old"); n != 0 {
						t.Fatal("a fill that may have missed a write stored its row")
					}
					if got := hits(peek(t, rdb, k1))[0]; got != "-" && got != "new" {
						t.Fatalf("after the race: %q", got)
					}
				})
			})
		}
	}
}

// A row key that vanishes (eviction) after a write, where the reader saw
// no key at all: the table's sequence still tells the fill that a write
// happened.
func TestFillAfterEvictedWriteRefused(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		warm(t, rdb, []string{k2}, "other")
		p := peek(t, rdb, k1)
		if p.Rows[0].Version != "" {
			t.Fatalf("fresh row has a version: %+v", p.Rows[0])
		}
		w := &writer{token: "w1"}
		w.intent(t, rdb)
		w.release(t, rdb, "new")
		rdb.Del(ctx, k1, ImageKey(k1), VersionKey(k1)) // evicted
		if n := fill(t, rdb, p, []string{k1}, "old"); n != 0 {
			t.Fatal("fill stored over an evicted write")
		}
		// A reader that looks after the write fills.
		if n := fill(t, rdb, peek(t, rdb, k1), []string{k1}, "new"); n != 1 {
			t.Fatal("a fresh fill was refused")
		}
	})
}

// A live intent whose row lost its version key (evicted, or deleted by
// hand) before a reader looked: the reader sees no version and an
// unchanged sequence at its fill, but the intent is still live, so the fill
// (in a batch of rows without intents, which takes the one-command path
// otherwise) is refused.
func TestFillRefusedWhileIntentLiveWithoutVersion(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		warm(t, rdb, []string{k2}, "other")
		w := &writer{token: "w1"}
		w.intent(t, rdb)
		rdb.Del(ctx, VersionKey(k1)) // evicted while the intent is live
		rdb.Del(ctx, ImageKey(k2))
		p := peek(t, rdb, k1, k2)
		if p.Rows[0].Version != "" || p.Rows[0].Hit || p.Rows[1].Hit {
			t.Fatalf("peek: %+v", p.Rows)
		}
		fill(t, rdb, p, []string{k1, k2}, "old", "other")
		if got := hits(peek(t, rdb, k1))[0]; got != "-" {
			t.Fatalf("a fill stored %q while the row's intent was live", got)
		}
		w.release(t, rdb, "new")
		if got := hits(peek(t, rdb, k1))[0]; got != "new" {
			t.Fatalf("after the release: %q, want the writer's image", got)
		}
	})
}

// Two writers on one row: neither stores its image; the row stays a miss
// until a reader fills it.
func TestContendedWritersStoreNothing(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		warm(t, rdb, []string{k1}, "zero")
		g1, err1 := Intent(ctx, rdb, meta, []string{k1}, "w1", 30000, false)
		g2, err2 := Intent(ctx, rdb, meta, []string{k1}, "w2", 30000, false)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if n, err := Release(ctx, rdb, meta, []string{k1}, "w2", g2, 60000, false, false, [][]byte{[]byte("two")}); n != 0 || err != nil {
			t.Fatalf("w2 stored while w1 was live (%d, %v)", n, err)
		}
		if n, err := Release(ctx, rdb, meta, []string{k1}, "w1", g1, 60000, false, false, [][]byte{[]byte("one")}); n != 0 || err != nil {
			t.Fatalf("w1 stored on a contended row (%d, %v)", n, err)
		}
		p := peek(t, rdb, k1)
		if hits(p)[0] != "-" {
			t.Fatalf("after contended writes: %v, want a miss", hits(p))
		}
		if n := fill(t, rdb, p, []string{k1}, "db"); n != 1 {
			t.Fatal("fill after contended writes refused")
		}
	})
}

// A table-wide intent retires every image when it is placed; no fill
// stores while it is live; its release moves the generation again.
func TestTableWideIntentAndGeneration(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		warm(t, rdb, []string{k1}, "v")
		before := peek(t, rdb, k2)
		gen, err := Intent(ctx, rdb, meta, nil, "tw", 30000, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := hits(peek(t, rdb, k1))[0]; got != "-" {
			t.Fatalf("during table intent: %q, want a miss", got)
		}
		if n := fill(t, rdb, before, []string{k2}, "old"); n != 0 {
			t.Fatal("a fill that looked before the table intent stored")
		}
		during := peek(t, rdb, k2)
		if n := fill(t, rdb, during, []string{k2}, "old"); n != 0 {
			t.Fatal("a fill stored during a live table intent")
		}
		if _, err := Release(ctx, rdb, meta, nil, "tw", gen, 0, true, true, nil); err != nil {
			t.Fatal(err)
		}
		if n := fill(t, rdb, during, []string{k2}, "old"); n != 0 {
			t.Fatal("a fill that looked during the table intent stored after it")
		}
		after := peek(t, rdb, k1)
		if after.Gen == before.Gen || hits(after)[0] != "-" {
			t.Fatalf("after the table-wide write: gen %q (before %q), %v", after.Gen, before.Gen, hits(after))
		}
	})
}

// A writer that dies holding a table intent: once the intent's deadline
// passes, the generation moves (the write may have committed), so nothing
// stale survives, and fills work again.
func TestDeadTableIntentMovesGeneration(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, advance func(time.Duration)) {
		ctx := context.Background()
		warm(t, rdb, []string{k1}, "v")
		if _, err := Intent(ctx, rdb, meta, nil, "dead", 200, true); err != nil {
			t.Fatal(err)
		}
		during := peek(t, rdb, k1) // while the (crashed) writer's intent is live
		advance(400 * time.Millisecond)
		if n := fill(t, rdb, during, []string{k1}, "old"); n != 0 {
			t.Fatal("a fill that looked during a table intent stored after the intent died")
		}
		p := peek(t, rdb, k1)
		if hits(p)[0] != "-" || p.Gen == during.Gen {
			t.Fatalf("after a dead table intent: %v, gen %q (during %q)", hits(p), p.Gen, during.Gen)
		}
		if n := fill(t, rdb, p, []string{k1}, "db"); n != 1 {
			t.Fatal("fills stay refused after a dead table intent was cleared")
		}
	})
}

// A dead row intent (writer crashed, maybe after committing): a reader that
// looked while it was there may not fill; once it is gone, fills work.
func TestDeadRowIntent(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, advance func(time.Duration)) {
		ctx := context.Background()
		// The row was cached (its key lives for the TTL, longer than the
		// intent): only the intent dies.
		warm(t, rdb, []string{k1}, "cached")
		if _, err := Intent(ctx, rdb, meta, []string{k1}, "dead", 200, false); err != nil {
			t.Fatal(err)
		}
		p := peek(t, rdb, k1)
		advance(400 * time.Millisecond)
		if n := fill(t, rdb, p, []string{k1}, "old"); n != 0 {
			t.Fatal("fill stored although a write intent was live when the reader looked")
		}
		// The fill that removed the dead intent set a new version, from the
		// table's sequence, which must have moved with it (or the next
		// intent would give the same value again).
		q := peek(t, rdb, k1)
		if v := q.Rows[0].Version; atoi(t, v) <= atoi(t, p.Rows[0].Version) || atoi(t, q.Seq) < atoi(t, v) {
			t.Fatalf("after the dead intent was removed: version %q, sequence %s (before: %q)", v, q.Seq, p.Rows[0].Version)
		}
		if n := fill(t, rdb, q, []string{k1}, "db"); n != 1 {
			t.Fatal("fill refused after the dead intent was removed")
		}
	})
}

// Keys of the wrong type never answer a hit and are replaced: an image
// key by the next fill, a version key or intent hash by the fill that finds
// it (which then refuses, being unable to compare), the table's state by
// InitMeta.
func TestWrongTypes(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		warm(t, rdb, []string{k2}, "other")
		for _, bad := range []string{ImageKey(k1), VersionKey(k1), k1} {
			rdb.Del(ctx, ImageKey(k1), VersionKey(k1), k1)
			if bad == k1 {
				rdb.Set(ctx, bad, "garbage", 0)
			} else {
				rdb.HSet(ctx, bad, "x", "garbage")
			}
			p := peek(t, rdb, k1, k2)
			if p.Rows[0].Hit || hits(p)[1] != "other" {
				t.Fatalf("%s of the wrong type: %+v", bad, p.Rows)
			}
			fill(t, rdb, p, []string{k1}, "x")
			if n := fill(t, rdb, peek(t, rdb, k1), []string{k1}, "x"); n != 1 {
				t.Fatalf("%s of the wrong type: no fill after it was replaced", bad)
			}
			if got := hits(peek(t, rdb, k1))[0]; got != "x" {
				t.Fatalf("%s of the wrong type: then %q", bad, got)
			}
		}
		rdb.Del(ctx, StateKey(meta))
		rdb.HSet(ctx, StateKey(meta), "x", "garbage")
		p := peek(t, rdb, k1)
		if p.Gen != "" || p.Rows[0].Hit {
			t.Fatalf("corrupt table state: %+v", p)
		}
		warm(t, rdb, []string{k1}, "y")
	})
}

// Peek answers a hit only for a valid image: never during a row intent or
// a live table intent (placed after the image was stored), nor for a key
// of another type.
func TestPeekHitsOnlyValidImages(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, advance func(time.Duration)) {
		ctx := context.Background()
		keys := []string{k1, k2}
		warm(t, rdb, keys, "a1", "a2")
		if got := hits(peek(t, rdb, keys...)); got[0] != "a1" || got[1] != "a2" {
			t.Fatalf("after fill: %v, want a1 a2", got)
		}
		// A row intent hides the row until its release stores the new image.
		w := &writer{token: "w1"}
		w.intent(t, rdb)
		if got := hits(peek(t, rdb, keys...)); got[0] != "-" || got[1] != "a2" {
			t.Fatalf("during a row intent: %v, want - a2", got)
		}
		w.release(t, rdb, "b1")
		if got := hits(peek(t, rdb, k1)); got[0] != "b1" {
			t.Fatalf("after the release: %v, want b1", got)
		}
		// A live table intent hides every image stored before it.
		tgen, err := Intent(ctx, rdb, meta, nil, "tw", 30000, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := hits(peek(t, rdb, keys...)); got[0] != "-" || got[1] != "-" {
			t.Fatalf("during a table intent: %v, want no hit", got)
		}
		if _, err := Release(ctx, rdb, meta, nil, "tw", tgen, 0, true, true, nil); err != nil {
			t.Fatal(err)
		}
		if got := hits(peek(t, rdb, keys...)); got[0] != "-" || got[1] != "-" {
			t.Fatalf("after a table-wide write: %v, want no hit", got)
		}
		// A table intent whose writer died: still no hit after its deadline.
		warm(t, rdb, []string{k1}, "c1")
		if _, err := Intent(ctx, rdb, meta, nil, "dead", 200, true); err != nil {
			t.Fatal(err)
		}
		advance(400 * time.Millisecond)
		if got := hits(peek(t, rdb, k1)); got[0] != "-" {
			t.Fatalf("after a dead table intent: %v, want no hit", got)
		}
	})
}

// The first reader of a table makes its meta hash before it reads the
// database, and its fill stores; a write between that and the fill still
// defeats it.
func TestInitMetaThenFill(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		p := peek(t, rdb, k1)
		if p.Gen != "" {
			t.Fatal("meta exists")
		}
		if err := InitMeta(ctx, rdb, meta, &p); err != nil || p.Gen == "" || p.Incarnation == "" {
			t.Fatalf("InitMeta: %+v %v", p, err)
		}
		q := p
		w := &writer{token: "w1"}
		w.intent(t, rdb)
		w.release(t, rdb, "")
		if n := fill(t, rdb, q, []string{k1}, "old"); n != 0 {
			t.Fatal("fill stored over a write after InitMeta")
		}
		p = peek(t, rdb, k1)
		if n := fill(t, rdb, p, []string{k1}, "new"); n != 1 {
			t.Fatal("fill after InitMeta refused")
		}
	})
}

// A version that expires between a reader's look and its fill, and a write
// that sets it again: versions are never reused, so the fill cannot mistake
// the written row for the one it saw.
func TestVersionNeverReused(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		warm(t, rdb, []string{k2}, "other")
		w0 := &writer{token: "w0"}
		w0.intent(t, rdb)
		w0.release(t, rdb, "")
		p := peek(t, rdb, k1)
		if p.Rows[0].Version == "" {
			t.Fatal("a written row has no version")
		}
		rdb.Del(ctx, VersionKey(k1)) // expires, or is evicted
		w := &writer{token: "w1"}
		w.intent(t, rdb)
		w.release(t, rdb, "new")
		if n := fill(t, rdb, p, []string{k1}, "old"); n != 0 {
			t.Fatal("a stale fill stored after the version was set again")
		}
		if got := hits(peek(t, rdb, k1))[0]; got != "new" {
			t.Fatalf("after the race: %q, want new", got)
		}
	})
}

// A reader that looked while an intent was live never fills, even when the
// intent's hash is gone by the time the fill arrives (expired, evicted):
// the writer may have committed after the reader's database read.
func TestFillAfterLookDuringIntent(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		warm(t, rdb, []string{k2}, "other")
		w0 := &writer{token: "w0"}
		w0.intent(t, rdb)
		w0.release(t, rdb, "") // the version lives as long as a row
		if _, err := Intent(ctx, rdb, meta, []string{k1}, "crashed", 30000, false); err != nil {
			t.Fatal(err)
		}
		p := peek(t, rdb, k1)
		rdb.Del(ctx, k1) // the intent hash expires or is evicted
		if n := fill(t, rdb, p, []string{k1}, "old"); n != 0 {
			t.Fatal("a fill that looked during an intent stored once the intent hash was gone")
		}
		// The mark without its intent is cleared: later readers fill.
		if n := fill(t, rdb, peek(t, rdb, k1), []string{k1}, "db"); n != 1 {
			t.Fatal("fills stay refused after the intent hash was gone")
		}
	})
}

// Releases of writes whose intent Redis lost (FLUSHALL, a restart).
func TestReleaseAfterLostIntent(t *testing.T) {
	ctx := context.Background()
	lose := func(rdb redis.UniversalClient) {
		rdb.Del(ctx, meta, StateKey(meta), k1, ImageKey(k1), VersionKey(k1), k2, ImageKey(k2), VersionKey(k2))
	}
	t.Run("a row filled meanwhile is removed", func(t *testing.T) {
		forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
			warm(t, rdb, []string{k1}, "old")
			w := &writer{token: "w"}
			w.intent(t, rdb)
			lose(rdb)
			warm(t, rdb, []string{k1}, "old") // a reader fills the row as it was
			w.release(t, rdb, "new")
			if got := hits(peek(t, rdb, k1))[0]; got == "old" {
				t.Fatal("the old row survived the release of a write whose intent was lost")
			}
		})
	})
	t.Run("a later write is not overwritten", func(t *testing.T) {
		forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
			warm(t, rdb, []string{k1}, "old")
			w := &writer{token: "w"}
			w.intent(t, rdb)
			lose(rdb)
			w2 := &writer{token: "w2"}
			w2.intent(t, rdb)
			w2.release(t, rdb, "w2")
			w.release(t, rdb, "w")
			if got := hits(peek(t, rdb, k1))[0]; got == "w" {
				t.Fatal("a write whose intent was lost stored its image over a later write's")
			}
		})
	})
	t.Run("its intent evicted, a later write released in between", func(t *testing.T) {
		forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
			warm(t, rdb, []string{k1}, "old")
			w := &writer{token: "w"}
			w.intent(t, rdb)
			rdb.HDel(ctx, k1, "i:w") // only the intent is lost; the table's state remains
			w2 := &writer{token: "w2"}
			w2.intent(t, rdb)
			w2.release(t, rdb, "w2")
			w.release(t, rdb, "w")
			if got := hits(peek(t, rdb, k1))[0]; got == "w" {
				t.Fatal("a write whose intent was lost stored its image over a later write's")
			}
		})
	})
	t.Run("a table-wide write in between", func(t *testing.T) {
		forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
			warm(t, rdb, []string{k1}, "old")
			w := &writer{token: "w"}
			w.intent(t, rdb)
			g, err := Intent(ctx, rdb, meta, nil, "tw", 30000, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Release(ctx, rdb, meta, nil, "tw", g, 0, true, true, nil); err != nil {
				t.Fatal(err)
			}
			w.release(t, rdb, "w")
			if got := hits(peek(t, rdb, k1))[0]; got == "w" {
				t.Fatal("a row write stored its image after a table-wide write that began after it")
			}
		})
	})
	t.Run("its intent lost while another is live", func(t *testing.T) {
		forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
			warm(t, rdb, []string{k1}, "old")
			a := &writer{token: "a"}
			a.intent(t, rdb)
			rdb.HDel(ctx, k1, "i:a") // evicted with its hash
			b := &writer{token: "b"}
			b.intent(t, rdb)
			a.release(t, rdb, "a") // a committed after b
			b.release(t, rdb, "b")
			if got := hits(peek(t, rdb, k1))[0]; got == "b" {
				t.Fatal("b stored its image although a, whose intent was lost, may have committed after it")
			}
		})
	})
}

// Keys of the wrong type found by a fill are counted.
func TestFillCountsWrongTypes(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		warm(t, rdb, []string{k2}, "other")
		rdb.HSet(ctx, ImageKey(k1), "x", "y")
		rdb.HSet(ctx, VersionKey(k1), "x", "y")
		p := peek(t, rdb, k1)
		job := &FillJob{Meta: meta, Keys: []string{k1}, Gen: p.Gen, Seq: p.Seq, Versions: []string{p.Rows[0].Version}, TTLMs: 60000, Images: [][]byte{[]byte("x")}}
		FillMany(ctx, rdb, []*FillJob{job})
		if job.Err != nil || job.Corrupt != 2 {
			t.Fatalf("fill: corrupt %d, err %v; want 2 keys of the wrong type", job.Corrupt, job.Err)
		}
	})
}

// A script that sets several versions writes the table's sequence once, at
// its end: the sequence must still end at the last version it gave, or the
// next script would give the same values again. Versions of one intent are
// distinct, and the next script's are new.
func TestSequenceWrittenOnceCoversEveryVersion(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		keys := []string{k1, k2}
		warm(t, rdb, keys, "a", "b")
		before := peek(t, rdb, keys...).Seq
		if _, err := Intent(ctx, rdb, meta, keys, "w", 30000, false); err != nil {
			t.Fatal(err)
		}
		p := peek(t, rdb, keys...)
		v1, v2 := strings.TrimSuffix(p.Rows[0].Version, "*"), strings.TrimSuffix(p.Rows[1].Version, "*")
		if atoi(t, v1) == atoi(t, v2) || atoi(t, v1) <= atoi(t, before) || atoi(t, v2) <= atoi(t, before) {
			t.Fatalf("versions %q %q from sequence %q: not distinct and new", v1, v2, before)
		}
		if last := max(atoi(t, v1), atoi(t, v2)); atoi(t, p.Seq) != last {
			t.Fatalf("sequence %s after an intent that gave versions %s and %s", p.Seq, v1, v2)
		}
		if _, err := Release(ctx, rdb, meta, keys, "w", p.Gen, 60000, false, false, nil); err != nil {
			t.Fatal(err)
		}
		q := peek(t, rdb, keys...)
		for i, r := range q.Rows {
			if atoi(t, r.Version) <= atoi(t, p.Seq) {
				t.Fatalf("row %d: version %q after the release, not above %s", i, r.Version, p.Seq)
			}
		}
		if last := max(atoi(t, q.Rows[0].Version), atoi(t, q.Rows[1].Version)); atoi(t, q.Seq) != last {
			t.Fatalf("sequence %s after a release that gave versions %v", q.Seq, q.Rows)
		}
	})
}

// An intent on a row nobody else is writing sets the intent hash's and the
// version's TTLs outright (intent lifetime plus grace); with another
// writer's intent live it only extends them, so the other writer's longer
// lifetime is kept. A release sets the version's TTL to the entry TTL.
func TestIntentTTLs(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		ttl := func(k string) time.Duration {
			t.Helper()
			d, err := rdb.PTTL(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		warm(t, rdb, []string{k2}, "other")
		if _, err := Intent(ctx, rdb, meta, []string{k1}, "long", 600_000, false); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{k1, VersionKey(k1)} {
			if d := ttl(k); d < 600*time.Second || d > 611*time.Second {
				t.Fatalf("%s: TTL %v after a fresh intent of 600s, want 600s + grace", k, d)
			}
		}
		// A second writer with a short lifetime must not shorten them.
		gen, err := Intent(ctx, rdb, meta, []string{k1}, "short", 1000, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{k1, VersionKey(k1)} {
			if d := ttl(k); d < 590*time.Second {
				t.Fatalf("%s: TTL %v after a short intent beside a long one", k, d)
			}
		}
		// The short writer's release leaves the long one live: the version
		// keeps its TTL.
		if _, err := Release(ctx, rdb, meta, []string{k1}, "short", gen, 60000, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if d := ttl(VersionKey(k1)); d < 590*time.Second {
			t.Fatalf("version TTL %v after a release beside a live intent", d)
		}
		if _, err := Release(ctx, rdb, meta, []string{k1}, "long", gen, 60000, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if d := ttl(VersionKey(k1)); d < 55*time.Second || d > 60*time.Second {
			t.Fatalf("version TTL %v after the last release, want the entry TTL (60s)", d)
		}
		if n, _ := rdb.Exists(ctx, k1).Result(); n != 0 {
			t.Fatalf("intent hash left after the last release: %v", rdb.HGetAll(ctx, k1).Val())
		}
	})
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	s, _, _ = strings.Cut(strings.TrimSuffix(s, "*"), ".") // "<s>.<inc>"
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("version %q: %v", s, err)
	}
	return n
}

// The table's state (T:g) is lost while a row's version survives (an
// allkeys eviction policy, a manual DEL). The new incarnation's sequence
// starts at the server's clock, and the old one may have run ahead of it
// (one step per version, many per millisecond), so the new incarnation can
// give a value the old one gave. A reader that saw the surviving version
// must not have its fill accepted after a write set that same value again.
// (miniredis only: its clock can be stopped, which makes the collision
// certain; on a real server it depends on the write rate.)
func TestVersionFromAnotherIncarnation(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	mr.SetTime(time.Now())
	warm(t, rdb, []string{k1}, "v1")
	old := &writer{token: "old"}
	old.intent(t, rdb)
	old.release(t, rdb, "v1")
	surviving := peek(t, rdb, k1).Rows[0].Version
	// Two versions were given from the sequence that started at the
	// (stopped) clock: the state is lost, the version survives.
	rdb.Del(ctx, StateKey(meta))
	p := peek(t, rdb, k1)
	if p.Gen == "" {
		var err error
		if err = InitMeta(ctx, rdb, meta, &p); err != nil {
			t.Fatal(err)
		}
	}
	if p.Rows[0].Version != surviving {
		t.Fatalf("setup: the version did not survive: %q vs %q", p.Rows[0].Version, surviving)
	}
	// The reader read "v1" from the database; a write commits "v2".
	w := &writer{token: "new"}
	w.intent(t, rdb)
	w.release(t, rdb, "")
	if n := fill(t, rdb, p, []string{k1}, "v1"); n != 0 {
		t.Fatalf("a fill from before the write stored: the new incarnation gave the version %q again", peek(t, rdb, k1).Rows[0].Version)
	}
}

// FillMany runs the jobs of one table that saw the same state as one
// script call, and decides each row as its own call would: a job that
// looked before a write the others did not see is not merged with them,
// and stays refused.
func TestFillManyMergesOnlySameState(t *testing.T) {
	const k3 = "{test:proto}:r:3"
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		t.Cleanup(func() { rdb.Del(context.Background(), k3, ImageKey(k3), VersionKey(k3)) })
		var calls int
		rdb.AddHook(countScripts{&calls})
		warm(t, rdb, []string{k3}, "other")
		rdb.Del(ctx, ImageKey(k3))
		early := peek(t, rdb, k1) // k1 has no version: its fill compares the sequence
		w := &writer{token: "w"}
		w.intent(t, rdb)
		w.release(t, rdb, "new")
		rdb.Del(ctx, ImageKey(k1), VersionKey(k1)) // the write's traces evicted
		late1, late2 := peek(t, rdb, k2), peek(t, rdb, k3)
		job := func(p PeekResult, k, img string) *FillJob {
			return &FillJob{Meta: meta, Keys: []string{k}, Gen: p.Gen, Seq: p.Seq, Versions: []string{p.Rows[0].Version}, TTLMs: 60000, Images: [][]byte{[]byte(img)}}
		}
		jobs := []*FillJob{job(late1, k2, "b"), job(early, k1, "stale"), job(late2, k3, "c")}
		calls = 0
		FillMany(ctx, rdb, jobs)
		if calls != 2 {
			t.Fatalf("%d script calls, want 2 (the two jobs that saw the same state merged)", calls)
		}
		if jobs[0].Err != nil || jobs[1].Err != nil || jobs[0].Stored != 2 || jobs[1].Stored != 0 || jobs[2].Stored != 0 {
			t.Fatalf("stored %d %d %d, errors %v %v %v", jobs[0].Stored, jobs[1].Stored, jobs[2].Stored, jobs[0].Err, jobs[1].Err, jobs[2].Err)
		}
		if got := hits(peek(t, rdb, k1, k2, k3)); got[0] != "-" || got[1] != "b" || got[2] != "c" {
			t.Fatalf("after the fills: %q", got)
		}
	})
}

// countScripts counts the scripts sent, alone or in a pipeline.
type countScripts struct{ n *int }

func (h countScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" || cmd.Name() == "eval" {
			*h.n++
		}
		return next(ctx, cmd)
	}
}
func (h countScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if cmd.Name() == "evalsha" || cmd.Name() == "eval" {
				*h.n++
			}
		}
		return next(ctx, cmds)
	}
}

// PeekImagesInto and ReadVersions of every row read what one PeekInto
// reads, in every state a row goes through (cached, written, under an
// intent, its keys of the wrong type); PeekImagesInto alone reads no
// version.
func TestPeekImagesThenVersionsIsPeek(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		keys := []string{k1, k2}
		same := func(step string) {
			t.Helper()
			var one, split PeekResult
			one.Rows, split.Rows = make([]PeekRow, 2), make([]PeekRow, 2)
			if err := PeekInto(ctx, rdb, StateKey(meta), keys, &one); err != nil {
				t.Fatal(err)
			}
			if err := PeekImagesInto(ctx, rdb, StateKey(meta), keys, &split); err != nil {
				t.Fatal(err)
			}
			if split.VersionsRead || split.Rows[0].Version != "" || split.Rows[1].Version != "" {
				t.Fatalf("%s: the images alone read versions: %+v", step, split)
			}
			if err := ReadVersions(ctx, rdb, keys, []int{0, 1}, &split); err != nil {
				t.Fatal(err)
			}
			split.VersionsRead = true
			if fmt.Sprint(one) != fmt.Sprint(split) {
				t.Fatalf("%s:\none read   %+v\ntwo reads %+v", step, one, split)
			}
		}
		same("nothing")
		warm(t, rdb, keys, "a", "b")
		same("cached")
		w := &writer{token: "w"}
		w.intent(t, rdb)
		same("under an intent")
		w.release(t, rdb, "new")
		same("written")
		rdb.Del(ctx, ImageKey(k2))
		rdb.HSet(ctx, ImageKey(k2), "x", "y")
		rdb.HSet(ctx, VersionKey(k1), "x", "y")
		same("keys of the wrong type")
	})
}

package proto

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The change feed's operations: Forget (a committed row change read from
// PostgreSQL's log) and the generation bump.

func forget(t *testing.T, rdb redis.UniversalClient, xid string, keys ...string) int {
	t.Helper()
	n, err := Forget(context.Background(), rdb, meta, keys, xid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestForgetInvalidates: the image goes, and a fill whose reader looked
// before the change was applied cannot store (its database read may
// predate the change); a reader that looks after fills again.
func TestForgetInvalidates(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		keys := []string{k1, k2}
		warm(t, rdb, keys, "old1", "old2")
		before := peek(t, rdb, keys...) // a reader that looked before
		if n := forget(t, rdb, "77", k1); n != 1 {
			t.Fatalf("forget invalidated %d, want 1", n)
		}
		if got := hits(peek(t, rdb, keys...)); got[0] != "-" || got[1] != "old2" {
			t.Fatalf("after forget: %v, want - old2", got)
		}
		// The slow reader's miss of k1 (pretend it missed: fill as if).
		stale := peek(t, rdb, k1)
		stale.Rows[0].Version = before.Rows[0].Version
		if n := fill(t, rdb, stale, []string{k1}, "stale"); n != 0 {
			t.Fatal("a fill whose reader looked before the change stored its row")
		}
		if n := fill(t, rdb, peek(t, rdb, k1), []string{k1}, "new1"); n != 1 {
			t.Fatal("a reader that looked after the change could not fill")
		}
	})
}

// TestForgetKeepsTheEcho: the image a write's own release stored, tagged
// with its transaction, survives that transaction's echo; any other
// transaction's change invalidates it, and an untagged image is always
// invalidated.
func TestForgetKeepsTheEcho(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		warm(t, rdb, []string{k1}, "old")
		w := &writer{token: "w1"}
		w.intent(t, rdb)
		if n, err := ReleaseTagged(context.Background(), rdb, meta, []string{k1}, w.token, w.gen, 60000, false, false, [][]byte{[]byte("mine")}, "100", ""); n != 1 || err != nil {
			t.Fatalf("release: %d %v", n, err)
		}
		if n := forget(t, rdb, "100", k1); n != 0 {
			t.Fatalf("the write's own echo invalidated %d rows", n)
		}
		if got := hits(peek(t, rdb, k1)); got[0] != "mine" {
			t.Fatalf("after the echo: %v, want mine", got)
		}
		if n := forget(t, rdb, "101", k1); n != 1 {
			t.Fatalf("another transaction's change invalidated %d rows, want 1", n)
		}
		if got := hits(peek(t, rdb, k1)); got[0] != "-" {
			t.Fatalf("after another transaction's change: %v, want a miss", got)
		}
		// A filled image carries no tag: the echo of any transaction goes.
		warm(t, rdb, []string{k1}, "filled")
		if n := forget(t, rdb, "100", k1); n != 1 {
			t.Fatalf("an untagged image survived a change (%d)", n)
		}
		// Unknown xid: never an echo.
		w2 := &writer{token: "w2"}
		w2.intent(t, rdb)
		if _, err := ReleaseTagged(context.Background(), rdb, meta, []string{k1}, w2.token, w2.gen, 60000, false, false, [][]byte{[]byte("mine2")}, "200", ""); err != nil {
			t.Fatal(err)
		}
		if n := forget(t, rdb, "", k1); n != 1 {
			t.Fatal("a change of unknown transaction kept the image")
		}
	})
}

// TestForgetDuringIntent: a change read from the log while a write's
// intent is live makes the release store nothing (an outside write that
// committed between the writer's commit and its release: the writer's
// image may be older), unless the change is the writer's own commit (its
// echo came before its release), or the writer does not know its
// transaction.
func TestForgetDuringIntent(t *testing.T) {
	for _, tc := range []struct {
		name          string
		seen, release string // the change's xid, the release's
		stored        int
	}{
		{"another transaction", "300", "299", 0},
		{"its own transaction", "300", "300", 1},
		{"its own, and another after", "300,301", "300", 0},
		{"release without a transaction", "300", "", 0},
		{"change of unknown transaction", "", "300", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
				warm(t, rdb, []string{k1}, "old")
				w := &writer{token: "w1"}
				w.intent(t, rdb)
				for _, x := range strings.Split(tc.seen, ",") {
					if n := forget(t, rdb, x, k1); n != 1 {
						t.Fatalf("forget during an intent: %d", n)
					}
				}
				if got := hits(peek(t, rdb, k1)); got[0] != "-" {
					t.Fatalf("during the intent: %v, want a miss", got)
				}
				n, err := ReleaseTagged(context.Background(), rdb, meta, []string{k1}, w.token, w.gen, 60000, false, false, [][]byte{[]byte("mine")}, tc.release, "")
				if n != tc.stored || err != nil {
					t.Fatalf("the release stored %d (%v), want %d", n, err, tc.stored)
				}
				want := "-"
				if tc.stored == 1 {
					want = "mine"
				}
				if got := hits(peek(t, rdb, k1)); got[0] != want {
					t.Fatalf("after the release: %v, want %s", got, want)
				}
				// The markers go with the release: the next write is clean.
				w2 := &writer{token: "w2"}
				w2.intent(t, rdb)
				if n, _ := ReleaseTagged(context.Background(), rdb, meta, []string{k1}, w2.token, w2.gen, 60000, false, false, [][]byte{[]byte("next")}, "400", ""); n != 1 {
					t.Fatal("a marker outlived its release")
				}
			})
		})
	}
}

// TestForgetWithoutState: a table nothing of which is cached is left
// alone, its state not made; a bump likewise.
func TestForgetWithoutState(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		if n := forget(t, rdb, "1", k1); n != 0 {
			t.Fatalf("forget on an uncached table: %d", n)
		}
		ctx := context.Background()
		pipe := rdb.Pipeline()
		cmd := BumpCmd(ctx, pipe, meta)
		if _, err := pipe.Exec(ctx); err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
			t.Fatal(err)
		}
		_ = cmd
		if n := rdb.Exists(ctx, StateKey(meta), meta, ImageKey(k1), VersionKey(k1)).Val(); n != 0 {
			t.Fatalf("%d keys made for a table nothing of which is cached", n)
		}
	})
}

// TestBump: every image of the table becomes a miss, and a reader that
// looked before cannot fill.
func TestBump(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		if err := LoadScripts(ctx, rdb); err != nil {
			t.Fatal(err)
		}
		keys := []string{k1, k2}
		warm(t, rdb, keys, "a", "b")
		before := peek(t, rdb, keys...)
		pipe := rdb.Pipeline()
		cmd := BumpCmd(ctx, pipe, meta)
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := cmd.Int(); n != 1 {
			t.Fatalf("bump: %d", n)
		}
		if got := hits(peek(t, rdb, keys...)); got[0] != "-" || got[1] != "-" {
			t.Fatalf("after a bump: %v", got)
		}
		if n := fill(t, rdb, before, keys, "a", "b"); n != 0 {
			t.Fatal("a fill whose reader looked before the bump stored")
		}
	})
}

// TestEpochTags: an image is a hit only for a reader that knows the feed
// epoch it was stored under (fills and releases alike); untagged images
// are hits only without an epoch.
func TestEpochTags(t *testing.T) {
	forEach(t, func(t *testing.T, rdb redis.UniversalClient, _ func(time.Duration)) {
		ctx := context.Background()
		peekAt := func(epoch string) string {
			res := PeekResult{Epoch: epoch, Rows: make([]PeekRow, 1)}
			if err := PeekInto(ctx, rdb, StateKey(meta), []string{k1}, &res); err != nil {
				t.Fatal(err)
			}
			return hits(res)[0]
		}
		warm(t, rdb, []string{k1}, "plain")
		if peekAt("") != "plain" || peekAt("E1") != "-" {
			t.Fatalf("untagged image: %q without epoch, %q with E1", peekAt(""), peekAt("E1"))
		}
		// A fill under E1.
		p := PeekResult{Epoch: "E1", Rows: make([]PeekRow, 1)}
		if err := PeekInto(ctx, rdb, StateKey(meta), []string{k1}, &p); err != nil {
			t.Fatal(err)
		}
		j := &FillJob{Meta: meta, Keys: []string{k1}, Gen: p.Gen, Seq: p.Seq, Versions: []string{p.Rows[0].Version},
			TTLMs: 60000, Epoch: "E1", Images: [][]byte{[]byte("e1")}}
		FillMany(ctx, rdb, []*FillJob{j})
		if j.Err != nil || j.Stored != 1 {
			t.Fatalf("fill under E1: %d %v", j.Stored, j.Err)
		}
		if peekAt("E1") != "e1" || peekAt("E2") != "-" || peekAt("") != "-" {
			t.Fatalf("image under E1: %q %q %q", peekAt("E1"), peekAt("E2"), peekAt(""))
		}
		// A release under E2.
		w := &writer{token: "w"}
		w.intent(t, rdb)
		if n, err := ReleaseTagged(ctx, rdb, meta, []string{k1}, w.token, w.gen, 60000, false, false, [][]byte{[]byte("e2")}, "", "E2"); n != 1 || err != nil {
			t.Fatalf("release under E2: %d %v", n, err)
		}
		if peekAt("E2") != "e2" || peekAt("E1") != "-" {
			t.Fatalf("image released under E2: %q %q", peekAt("E2"), peekAt("E1"))
		}
		// A prefix or an epoch that merely starts the same is no match.
		if peekAt("E") != "-" || peekAt("E22") != "-" {
			t.Fatal("an epoch matched by prefix")
		}
	})
}

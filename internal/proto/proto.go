// Package proto holds wtcache's Redis protocol: the Lua scripts that keep
// every cached row consistent with PostgreSQL (versioned fills, intents for
// writes, per-table generations for table-wide invalidation) and thin Go
// wrappers around them. See scripts.go for the data layout.
package proto

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// NewToken returns a fresh random token for a lease, a writer or a
// generation.
func NewToken() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}

// ErrProtocol reports a reply the scripts never give.
var ErrProtocol = errors.New("wtcache: unexpected reply from Redis")

func args(fixed ...any) []any { return fixed }

// Fill stores the images read from the database after a miss, for the
// keys a Peek reported as misses: gen and seq are the Peek's Gen and Seq,
// versions[i] its Rows[i].Version. An image is stored only if nothing moved
// since that Peek (see scripts.go); an empty image stores nothing. It
// returns how many images were stored.
func Fill(ctx context.Context, rdb redis.Scripter, meta string, keys []string, gen, seq string, versions []string, ttlMs int64, images [][]byte) (int, error) {
	if len(images) != len(keys) || len(versions) != len(keys) {
		return 0, fmt.Errorf("wtcache: fill: %d keys, %d versions, %d images", len(keys), len(versions), len(images))
	}
	ks := append([]string{meta}, keys...)
	av := args(gen, seq, NewToken(), ttlMs)
	for i, img := range images {
		av = append(av, versions[i], img)
	}
	return fillScript.Run(ctx, rdb, ks, av...).Int()
}

// FillJob is one Fill, for FillMany.
type FillJob struct {
	Meta     string
	Keys     []string
	Gen, Seq string
	Versions []string
	TTLMs    int64
	Images   [][]byte
	Stored   int   // set by FillMany
	Err      error // set by FillMany
}

// FillMany runs the fills of jobs in one pipelined round trip (each is the
// same script as Fill, so each is atomic on its own). A job that finds the
// script missing from Redis (a restart) is retried alone.
func FillMany(ctx context.Context, rdb redis.UniversalClient, jobs []*FillJob) {
	pipe := rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(jobs))
	for i, j := range jobs {
		ks := append([]string{j.Meta}, j.Keys...)
		av := args(j.Gen, j.Seq, NewToken(), j.TTLMs)
		for k, img := range j.Images {
			av = append(av, j.Versions[k], img)
		}
		cmds[i] = fillScript.EvalSha(ctx, pipe, ks, av...)
	}
	_, _ = pipe.Exec(ctx)
	for i, j := range jobs {
		n, err := cmds[i].Int()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			n, err = Fill(ctx, rdb, j.Meta, j.Keys, j.Gen, j.Seq, j.Versions, j.TTLMs, j.Images)
		}
		j.Stored, j.Err = n, err
	}
}

// InitMeta makes the table's meta hash if it is missing (or corrupt) and
// sets res's Gen, Incarnation and Seq from it: a Peek that found no meta
// hash calls it before reading the database, so that its fill can store.
// The rows' versions stay as the Peek saw them, which only makes the fill
// stricter.
func InitMeta(ctx context.Context, rdb redis.Scripter, meta string, res *PeekResult) error {
	v, err := metaScript.Run(ctx, rdb, []string{meta}, NewToken()).StringSlice()
	if err != nil {
		return err
	}
	if len(v) != 3 {
		return ErrProtocol
	}
	res.Gen, res.Incarnation, res.Seq = v[0], v[1], v[2]
	return nil
}

// Intent places write intents: one per row key, or one table-wide intent
// when tableWide is set (keys is then ignored). It returns the table's
// generation, which Release needs.
func Intent(ctx context.Context, rdb redis.Scripter, meta string, keys []string, token string, lifetimeMs int64, tableWide bool) (string, error) {
	ks := []string{meta}
	if !tableWide {
		ks = append(ks, keys...)
	}
	return intentScript.Run(ctx, rdb, ks, token, lifetimeMs, NewToken(), boolArg(tableWide)).Text()
}

// Release removes the intents of a finished write. With tableWide and
// bump, the table's generation moves on, so that every cached row of the
// table becomes a miss. For rows, images[i] (may be nil) is stored for
// keys[i] only when it is safe. It returns how many images were stored.
func Release(ctx context.Context, rdb redis.Scripter, meta string, keys []string, token, gen string, ttlMs int64, tableWide, bump bool, images [][]byte) (int, error) {
	ks := []string{meta}
	av := args(token, gen, NewToken(), ttlMs, boolArg(tableWide), boolArg(bump))
	if !tableWide {
		if images != nil && len(images) != len(keys) {
			return 0, fmt.Errorf("wtcache: release: %d keys, %d images", len(keys), len(images))
		}
		ks = append(ks, keys...)
		for i := range keys {
			var img []byte
			if images != nil {
				img = images[i]
			}
			av = append(av, img)
		}
	}
	return releaseScript.Run(ctx, rdb, ks, av...).Int()
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Discard removes an undecodable image from key, unless it changed since.
func Discard(ctx context.Context, rdb redis.Scripter, key string, image []byte) error {
	return discardScript.Run(ctx, rdb, []string{key}, image).Err()
}

// NaiveMirror stores images after a write without any intent: the broken
// variant used to show that the consistency checker catches a wrong
// protocol. Never used outside tests.
func NaiveMirror(ctx context.Context, rdb redis.Scripter, meta string, keys []string, ttlMs int64, images [][]byte) error {
	av := args(ttlMs)
	for i := range keys {
		var img []byte
		if images != nil {
			img = images[i]
		}
		av = append(av, img)
	}
	return naiveMirrorScript.Run(ctx, rdb, append([]string{meta}, keys...), av...).Err()
}

// PeekResult is what one Peek saw.
type PeekResult struct {
	Gen, Incarnation, Seq string // of the table's meta hash ("" when absent)
	Rows                  []PeekRow
}

// PeekRow is what one Peek saw of one row.
type PeekRow struct {
	Hit     bool   // Image is a valid hit
	Image   string // with Hit
	Version string // the row's n, for Fill
	Corrupt bool   // the key holds something other than a hash
}

// Peek reads rows of one table without a script, in one pipelined round
// trip (HMGET of the meta hash's gen, inc and s; HMGET of each row's v, g
// and n). A row whose g is the table's current gen is a valid hit: by the
// invariants at the top of scripts.go, it has no intent and no table
// intent is live. For the others, what Peek saw is what Fill needs.
//
// A hit from Peek is linearizable although the two hashes are read at
// slightly different instants: a table intent placed after the meta read
// belongs to a write that overlaps this read, and a row write that
// completed before the row read left either its intent or its own image
// there.
func Peek(ctx context.Context, rdb redis.UniversalClient, meta string, keys []string) (PeekResult, error) {
	res := PeekResult{Rows: make([]PeekRow, len(keys))}
	err := PeekInto(ctx, rdb, meta, keys, &res)
	return res, err
}

// PeekInto is Peek writing into res, whose Rows has len(keys) elements.
func PeekInto(ctx context.Context, rdb redis.UniversalClient, meta string, keys []string, res *PeekResult) error {
	// Do with constant field names costs fewer allocations than HMGet.
	pipe := rdb.Pipeline()
	mc := pipe.Do(ctx, "hmget", meta, "gen", "inc", "s")
	var one [1]*redis.Cmd
	vals := one[:0]
	if len(keys) > 1 {
		vals = make([]*redis.Cmd, 0, len(keys))
	}
	for _, k := range keys {
		vals = append(vals, pipe.Do(ctx, "hmget", k, "v", "g", "n"))
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) && !isWrongType(err) {
		// A key of another type answers WRONGTYPE: that row is corrupt,
		// the others are answered.
		return err
	}
	m, merr := mc.Slice()
	if merr != nil || len(m) != 3 {
		if isWrongType(merr) {
			return nil // a corrupt meta hash: nothing is a hit; scripts clean it up
		}
		return ErrProtocol
	}
	res.Gen, _ = m[0].(string)
	res.Incarnation, _ = m[1].(string)
	res.Seq, _ = m[2].(string)
	for i := range keys {
		r := &res.Rows[i]
		vg, err := vals[i].Slice()
		if err != nil {
			r.Corrupt = isWrongType(err)
			continue
		}
		if len(vg) != 3 {
			return ErrProtocol
		}
		r.Version, _ = vg[2].(string)
		v, ok1 := vg[0].(string)
		g, ok2 := vg[1].(string)
		if ok1 && ok2 && v != "" && res.Gen != "" && g == res.Gen {
			r.Hit, r.Image = true, v
		}
	}
	return nil
}

func isWrongType(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")
}

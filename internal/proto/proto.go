// Package proto holds wtcache's Redis protocol: the Lua scripts that keep
// every cached row consistent with PostgreSQL (leases for fills, intents for
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

// Outcome of reading one row.
type Outcome byte

const (
	Hit        Outcome = 'H' // the image is valid
	Leased     Outcome = 'M' // miss; the caller holds the fill lease
	LeasedElse Outcome = 'O' // miss; another reader holds the lease
	Locked     Outcome = 'L' // miss during a write: read the database, never fill
)

// RowResult is the outcome for one key.
type RowResult struct {
	Outcome Outcome
	Image   []byte // with Hit
	Owner   string // with LeasedElse: the lease holder's token
	Corrupt bool   // the key held something that was not a row hash; it was deleted
}

// ReadResult is the outcome of one Read.
type ReadResult struct {
	Gen         string
	Incarnation string // of the table's meta hash
	Rows        []RowResult
}

// NewToken returns a fresh random token for a lease, a writer or a
// generation.
func NewToken() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}

// ErrProtocol reports a reply the scripts never give.
var ErrProtocol = errors.New("wtcache: unexpected reply from Redis")

func args(fixed ...any) []any { return fixed }

// Read looks up rows of one table and takes the fill lease for the misses
// it can fill. keys are the row keys; meta is the table's meta key.
func Read(ctx context.Context, rdb redis.Scripter, meta string, keys []string, token string, leaseMs int64) (ReadResult, error) {
	ks := make([]string, 0, len(keys)+1)
	ks = append(append(ks, meta), keys...)
	res, err := readScript.Run(ctx, rdb, ks, token, leaseMs, NewToken()).Slice()
	if err != nil {
		return ReadResult{}, err
	}
	if len(res) != 1+2*len(keys) {
		return ReadResult{}, ErrProtocol
	}
	gi, _ := res[0].(string)
	gen, inc, _ := strings.Cut(gi, "/")
	out := ReadResult{Gen: gen, Incarnation: inc, Rows: make([]RowResult, len(keys))}
	for i := range keys {
		o, _ := res[1+2*i].(string)
		x, _ := res[2+2*i].(string)
		if len(o) != 1 {
			return ReadResult{}, ErrProtocol
		}
		r := RowResult{Outcome: Outcome(o[0]), Corrupt: x == "corrupt"}
		switch r.Outcome {
		case Hit:
			r.Image = []byte(x)
		case LeasedElse:
			r.Owner = x
		case Leased, Locked:
		default:
			return ReadResult{}, ErrProtocol
		}
		out.Rows[i] = r
	}
	return out, nil
}

// Fill stores the images read from the database for keys leased with
// token under generation gen. An empty image stores nothing (and releases
// the lease). It returns how many images were stored.
func Fill(ctx context.Context, rdb redis.Scripter, meta string, keys []string, token, gen string, ttlMs int64, images [][]byte) (int, error) {
	if len(images) != len(keys) {
		return 0, fmt.Errorf("wtcache: fill: %d keys, %d images", len(keys), len(images))
	}
	ks := append([]string{meta}, keys...)
	av := args(token, gen, NewToken(), ttlMs)
	for _, img := range images {
		av = append(av, img)
	}
	n, err := fillScript.Run(ctx, rdb, ks, av...).Int()
	return n, err
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

// Peek reads rows of one table without a script, in one pipelined round
// trip of two commands per table (HMGET of the meta hash's gen and inc,
// HMGET of each row's v and g), and returns the images that are certainly
// valid hits, and the incarnation of the table's meta hash. An image is a
// valid hit when its g is the table's current gen: by the invariants at the
// top of scripts.go, such a row has no intent, lease or contention mark and
// no table intent is live. nil for every other key: the caller then runs
// Read for those.
//
// A hit from Peek is linearizable like a hit from Read although the two
// hashes are read at slightly different instants: a table intent placed
// after the meta read belongs to a write that overlaps this read, and a
// row write that completed before the row read left either its intent or
// its own image there.
func Peek(ctx context.Context, rdb redis.UniversalClient, meta string, keys []string) ([][]byte, string, error) {
	out := make([][]byte, len(keys))
	inc, err := PeekInto(ctx, rdb, meta, keys, out)
	return out, inc, err
}

// PeekInto is Peek writing the images into out (len(out) == len(keys)).
func PeekInto(ctx context.Context, rdb redis.UniversalClient, meta string, keys []string, out [][]byte) (string, error) {
	pipe := rdb.Pipeline()
	gen := pipe.HMGet(ctx, meta, "gen", "inc")
	var one [1]*redis.SliceCmd
	vals := one[:0]
	if len(keys) > 1 {
		vals = make([]*redis.SliceCmd, 0, len(keys))
	}
	for _, k := range keys {
		vals = append(vals, pipe.HMGet(ctx, k, "v", "g"))
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		// A key of another type answers WRONGTYPE: not a hit; Read
		// cleans it up.
		if !isWrongType(err) {
			return "", err
		}
	}
	gi, gerr := gen.Result()
	if gerr != nil || len(gi) != 2 {
		return "", nil
	}
	g, _ := gi[0].(string)
	inc, _ := gi[1].(string)
	if g == "" || inc == "" {
		return inc, nil
	}
	for i := range keys {
		vg, err := vals[i].Result()
		if err != nil || len(vg) != 2 {
			continue
		}
		v, ok1 := vg[0].(string)
		rg, ok2 := vg[1].(string)
		if ok1 && ok2 && v != "" && rg == g {
			out[i] = []byte(v)
		}
	}
	return inc, nil
}

func isWrongType(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")
}

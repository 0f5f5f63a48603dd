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

// NewToken returns a fresh random token for a writer or a
// generation.
func NewToken() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}

// ErrProtocol reports a reply the scripts never give.
var ErrProtocol = errors.New("wtcache: unexpected reply from Redis")

func args(fixed ...any) []any { return fixed }

// Keys. meta is a table's intent hash, T:t (see scripts.go); row keys are
// T:r:K. The other keys of a table and of a row are derived from those.

// StateKey returns T:g for the table whose intent hash is meta (T:t).
func StateKey(meta string) string { return meta[:len(meta)-1] + "g" }

// ImageKey and VersionKey return T:v:K and T:n:K for the row key T:r:K.
func ImageKey(rowKey string) string   { return sibling(rowKey, "v") }
func VersionKey(rowKey string) string { return sibling(rowKey, "n") }

func sibling(rowKey, kind string) string {
	// The hash tag's closing brace is the first one: braces inside names
	// are escaped.
	i := strings.IndexByte(rowKey, '}')
	if i < 0 || len(rowKey) < i+3 || rowKey[i+1] != ':' {
		return rowKey + ":" + kind // not a row key of ours; unused
	}
	return rowKey[:i+2] + kind + rowKey[i+3:]
}

// appendSibling appends sibling(rowKey, kind) to dst.
func appendSibling(dst []byte, rowKey string, kind byte) []byte {
	i := strings.IndexByte(rowKey, '}')
	if i < 0 || len(rowKey) < i+3 || rowKey[i+1] != ':' {
		dst = append(dst, rowKey...)
		return append(dst, ':', kind)
	}
	dst = append(dst, rowKey[:i+2]...)
	dst = append(dst, kind)
	return append(dst, rowKey[i+3:]...)
}

// keyArg is a key in a command's arguments that go-redis writes without a
// conversion (encoding.BinaryMarshaler) and names as text (fmt.Stringer,
// for a cluster's slot and for hooks).
type keyArg []byte

func (k *keyArg) MarshalBinary() ([]byte, error) { return *k, nil }
func (k *keyArg) String() string                 { return string(*k) }

// scriptKeys lays out KEYS for a script: T:t, T:g, then T:r:K, T:v:K,
// T:n:K per row.
func scriptKeys(meta string, rowKeys []string) []string {
	ks := make([]string, 0, 2+3*len(rowKeys))
	ks = append(ks, meta, StateKey(meta))
	for _, k := range rowKeys {
		ks = append(ks, k, ImageKey(k), VersionKey(k))
	}
	return ks
}

// Fill stores the images read from the database after a miss, for the
// keys a Peek reported as misses: gen and seq are the Peek's Gen and Seq,
// versions[i] its Rows[i].Version. An image is stored only if nothing moved
// since that Peek (see scripts.go); an empty image stores nothing. It
// returns how many images were stored.
func Fill(ctx context.Context, rdb redis.Scripter, meta string, keys []string, gen, seq string, versions []string, ttlMs int64, images [][]byte) (int, error) {
	if len(images) != len(keys) || len(versions) != len(keys) {
		return 0, fmt.Errorf("wtcache: fill: %d keys, %d versions, %d images", len(keys), len(versions), len(images))
	}
	j := &FillJob{Meta: meta, Keys: keys, Gen: gen, Seq: seq, Versions: versions, TTLMs: ttlMs, Images: images}
	stored, _, err := fillResult(fillScript.Run(ctx, rdb, scriptKeys(meta, keys), j.args()...))
	return stored, err
}

// args lays out ARGV for the fill script: each image after its tag.
func (j *FillJob) args() []any {
	av := args(j.Gen, j.Seq, NewToken(), j.TTLMs, j.Epoch)
	tag := j.Gen + " "
	if j.Epoch != "" {
		tag = j.Gen + "/" + j.Epoch + " "
	}
	size := 0
	for _, img := range j.Images {
		if len(img) > 0 {
			size += len(tag) + len(img)
		}
	}
	buf := make([]byte, 0, size) // one allocation for the batch
	for k, img := range j.Images {
		var v []byte
		if len(img) > 0 {
			at := len(buf)
			buf = append(append(buf, tag...), img...)
			v = buf[at:len(buf):len(buf)]
		}
		av = append(av, j.Versions[k], v)
	}
	return av
}

func fillResult(c *redis.Cmd) (stored, corrupt int, err error) {
	v, err := c.Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(v) != 2 {
		return 0, 0, ErrProtocol
	}
	return int(v[0]), int(v[1]), nil
}

// FillJob is one Fill, for FillMany.
type FillJob struct {
	Meta     string
	Keys     []string
	Gen, Seq string
	Versions []string
	TTLMs    int64
	Epoch    string // the change feed's epoch the reader knew ("" without a feed)
	Images   [][]byte
	Stored   int   // set by FillMany
	Corrupt  int   // keys of the wrong type found and removed; set by FillMany
	Err      error // set by FillMany
}

// FillMany runs the fills of jobs in one pipelined round trip. Jobs of one
// table that saw the same state (the same gen, sequence, epoch) and store
// with the same TTL run as one script call, up to maxMergedRows rows: the
// conditions are per row, given what the table looked like, so a merged
// call decides each row as its own job's call would, and a call's fixed
// cost in Redis is paid once. Counts of a merged call go to its first job
// (the others get zero); every job gets its call's error. A call that finds
// the script missing from Redis (a restart) is retried alone.
func FillMany(ctx context.Context, rdb redis.UniversalClient, jobs []*FillJob) {
	calls := mergeFills(jobs)
	pipe := rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = fillScript.EvalSha(ctx, pipe, scriptKeys(c.job.Meta, c.job.Keys), c.job.args()...)
	}
	_, _ = pipe.Exec(ctx)
	for i, c := range calls {
		j := c.job
		n, bad, err := fillResult(cmds[i])
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			n, bad, err = fillResult(fillScript.Run(ctx, rdb, scriptKeys(j.Meta, j.Keys), j.args()...))
		}
		for k, m := range c.members {
			m.Stored, m.Corrupt, m.Err = 0, 0, err
			if k == 0 {
				m.Stored, m.Corrupt = n, bad
			}
		}
	}
}

// maxMergedRows bounds the rows of a merged fill call.
const maxMergedRows = 1000

// fillCall is one script call of FillMany: job, made of members.
type fillCall struct {
	job     *FillJob
	members []*FillJob
	whole   bool // a version and an image per key: it can take others
}

// mergeFills groups jobs into calls (FillMany), in order of first appearance.
func mergeFills(jobs []*FillJob) []*fillCall {
	type state struct {
		meta, gen, seq, epoch string
		ttl                   int64
	}
	var calls []*fillCall
	open := make(map[state]*fillCall)
	for _, j := range jobs {
		s := state{j.Meta, j.Gen, j.Seq, j.Epoch, j.TTLMs}
		c := open[s]
		whole := len(j.Versions) == len(j.Keys) && len(j.Images) == len(j.Keys)
		if c != nil && (!whole || !c.whole || len(c.job.Keys)+len(j.Keys) > maxMergedRows) {
			c = nil
		}
		if c == nil {
			c = &fillCall{job: j, members: []*FillJob{j}, whole: whole}
			calls = append(calls, c)
			open[s] = c
			continue
		}
		if len(c.members) == 1 {
			// A merged job of its own: the members' slices stay theirs.
			first := c.job
			c.job = &FillJob{Meta: first.Meta, Gen: first.Gen, Seq: first.Seq, TTLMs: first.TTLMs, Epoch: first.Epoch,
				Keys: append([]string(nil), first.Keys...), Versions: append([]string(nil), first.Versions...),
				Images: append([][]byte(nil), first.Images...)}
		}
		c.job.Keys = append(c.job.Keys, j.Keys...)
		c.job.Versions = append(c.job.Versions, j.Versions...)
		c.job.Images = append(c.job.Images, j.Images...)
		c.members = append(c.members, j)
	}
	return calls
}

// InitMeta makes the table's state if it is missing (or corrupt) and sets
// res's Gen, Incarnation and Seq from it: a Peek that found none calls it
// before reading the database, so that its fill can store. The rows'
// versions stay as the Peek saw them, which only makes the fill stricter.
func InitMeta(ctx context.Context, rdb redis.Scripter, meta string, res *PeekResult) error {
	v, err := metaScript.Run(ctx, rdb, scriptKeys(meta, nil), NewToken()).StringSlice()
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
	if tableWide {
		keys = nil
	}
	return intentScript.Run(ctx, rdb, scriptKeys(meta, keys), token, lifetimeMs, NewToken(), boolArg(tableWide)).Text()
}

// Release removes the intents of a finished write. With tableWide and
// bump, the table's generation moves on, so that every cached row of the
// table becomes a miss. For rows, images[i] (may be nil) is stored for
// keys[i] only when it is safe. It returns how many images were stored.
func Release(ctx context.Context, rdb redis.Scripter, meta string, keys []string, token, gen string, ttlMs int64, tableWide, bump bool, images [][]byte) (int, error) {
	return ReleaseTagged(ctx, rdb, meta, keys, token, gen, ttlMs, tableWide, bump, images, "", "")
}

// ReleaseTagged is Release recording, beside every image it stores, the
// PostgreSQL transaction that wrote it (xid, its 32-bit id; "" for none):
// when the change feed later reads that transaction's commit for the row
// (its echo), it keeps the image instead of invalidating it (see Forget).
//
// epoch is the change feed's stream epoch the writer knew when it placed
// its intents ("" without a feed): the images are stored under it, and a
// reader that knows another epoch takes them as misses (see PeekResult).
func ReleaseTagged(ctx context.Context, rdb redis.Scripter, meta string, keys []string, token, gen string, ttlMs int64, tableWide, bump bool, images [][]byte, xid, epoch string) (int, error) {
	av := args(token, gen, NewToken(), ttlMs, boolArg(tableWide), boolArg(bump), xid, epoch)
	if tableWide {
		keys = nil
	} else {
		if images != nil && len(images) != len(keys) {
			return 0, fmt.Errorf("wtcache: release: %d keys, %d images", len(keys), len(images))
		}
		for i := range keys {
			var img []byte
			if images != nil {
				img = images[i]
			}
			av = append(av, img)
		}
	}
	return releaseScript.Run(ctx, rdb, scriptKeys(meta, keys), av...).Int()
}

// Forget applies a change that PostgreSQL's log shows committed by
// transaction xid (its 32-bit id) to the rows keys of one table: each loses
// its image and gets a new version, so that no fill that looked before can
// store, unless the image is the one xid's own release stored (the echo of
// a write made through wtcache, which stays). A row with a live intent is
// marked contended, so that its writer's release stores nothing: the
// writer's image may be older than this change. A table that has no state
// in Redis (nothing of it cached) is left alone. It returns how many rows
// were invalidated.
func Forget(ctx context.Context, rdb redis.Scripter, meta string, keys []string, xid string) (int, error) {
	return forgetScript.Run(ctx, rdb, scriptKeys(meta, keys), xid, NewToken()).Int()
}

// ForgetCmd queues a Forget on a pipeline; its result is the command's Int.
func ForgetCmd(ctx context.Context, pipe redis.Pipeliner, meta string, keys []string, xid string) *redis.Cmd {
	return forgetScript.EvalSha(ctx, pipe, scriptKeys(meta, keys), xid, NewToken())
}

// BumpCmd queues a move of a table's generation on a pipeline: every image
// of the table becomes a miss and no fill that looked before can store. A
// table without state in Redis is left alone.
func BumpCmd(ctx context.Context, pipe redis.Pipeliner, meta string) *redis.Cmd {
	return bumpScript.EvalSha(ctx, pipe, scriptKeys(meta, nil), NewToken())
}

// LoadScripts loads the scripts the EvalSha helpers need (after a Redis
// restart, for example).
func LoadScripts(ctx context.Context, rdb redis.Scripter) error {
	for _, s := range []*redis.Script{forgetScript, bumpScript, fillScript} {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
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
	return naiveMirrorScript.Run(ctx, rdb, scriptKeys(meta, keys), av...).Err()
}

// PeekResult is what one Peek saw.
type PeekResult struct {
	// Epoch is set by the caller: the change feed's stream epoch that a
	// hit's image must have been stored under ("" without a feed). Images
	// stored under another epoch (or none) are misses: the feed may have
	// missed changes to them between its streams.
	Epoch string

	Gen, Incarnation, Seq string // the table's state ("" when absent)
	Rows                  []PeekRow
	// VersionsRead: the rows' versions were read (PeekInto, or
	// ReadVersions after PeekImagesInto); a fill needs them.
	VersionsRead bool
}

// PeekRow is what one Peek saw of one row.
type PeekRow struct {
	Hit     bool   // Image is a valid hit
	Image   string // with Hit
	Version string // the row's n, for Fill
}

// Peek reads rows of one table in one command, MGET of the table's state
// and each row's image and version. A row whose image carries the table's
// current gen is a valid hit: by the invariants at the top of scripts.go,
// it has no live intent and no table intent is live. For the others, what
// Peek saw is what Fill needs. A key of another type reads as absent.
//
// A hit is linearizable: a table intent placed after the read belongs to a
// write that overlaps it, and a row write that completed before the read
// deleted the image with its intent and left either nothing or its own
// image.
func Peek(ctx context.Context, rdb redis.UniversalClient, meta string, keys []string) (PeekResult, error) {
	res := PeekResult{Rows: make([]PeekRow, len(keys))}
	err := PeekInto(ctx, rdb, StateKey(meta), keys, &res)
	return res, err
}

// PeekInto is Peek writing into res, whose Rows has len(keys) elements;
// state is the table's StateKey.
func PeekInto(ctx context.Context, rdb redis.UniversalClient, state string, keys []string, res *PeekResult) error {
	return peekInto(ctx, rdb, state, keys, res, true)
}

// PeekImagesInto is PeekInto without the versions: an MGET of the state
// and the images only, about half the keys and reply of a Peek of many
// rows, all hits. Rows' Versions stay empty and VersionsRead false: before
// reading the database for the misses, a caller that will fill them reads
// their versions with ReadVersions.
func PeekImagesInto(ctx context.Context, rdb redis.UniversalClient, state string, keys []string, res *PeekResult) error {
	return peekInto(ctx, rdb, state, keys, res, false)
}

// ReadVersions reads the versions of the rows idx of a PeekImagesInto (one
// MGET) into res. What a fill compares is then what Redis held when this
// read ran, which is still before the caller reads the database: the
// state (gen, sequence) from the Peek and the versions from here, each
// read before the database was, refuse a fill whose read may have missed a
// write exactly as one Peek's do (a write that placed its intent after
// either read moved what that read saw; one whose intent was live then is
// seen marked; one released before it committed before the database
// read).
func ReadVersions(ctx context.Context, rdb redis.UniversalClient, keys []string, idx []int, res *PeekResult) error {
	sel := make([]string, len(idx))
	for k, i := range idx {
		sel[k] = keys[i]
	}
	vals, err := mgetRows(ctx, rdb, "", sel, "n")
	if err != nil {
		return err
	}
	for k, i := range idx {
		res.Rows[i].Version = vals[k]
	}
	return nil
}

func peekInto(ctx context.Context, rdb redis.UniversalClient, state string, keys []string, res *PeekResult, versions bool) error {
	kinds := "v"
	if versions {
		kinds = "vn"
	}
	vals, err := mgetRows(ctx, rdb, state, keys, kinds)
	if err != nil {
		return err
	}
	res.VersionsRead = versions
	res.readState(vals[0])
	for i := range keys {
		r := vals[1+len(kinds)*i:]
		res.Rows[i].Version = ""
		if versions {
			res.Rows[i].Version = r[1]
		}
		res.readImage(i, r[0])
	}
	return nil
}

// mgetRows reads, in one MGET, first (unless "") and then, for each row key
// in keys, its sibling key of each kind in kinds ('v' image, 'n' version),
// in that order. Every key is built in one buffer and passed as a pointer
// (no allocation to put it in the arguments): N rows cost a few
// allocations here, not one or two per key. The reply is read as strings,
// not boxed values: a key that is absent (or of another type) reads as "",
// which no state, image or version is.
func mgetRows(ctx context.Context, rdb redis.UniversalClient, first string, keys []string, kinds string) ([]string, error) {
	n, want := 0, len(kinds)*len(keys)
	for _, k := range keys {
		n += len(kinds) * (len(k) + 2)
	}
	buf := make([]byte, 0, n)
	args := make([]keyArg, 0, want)
	for _, k := range keys {
		for j := 0; j < len(kinds); j++ {
			at := len(buf)
			buf = appendSibling(buf, k, kinds[j])
			args = append(args, keyArg(buf[at:len(buf):len(buf)]))
		}
	}
	a := make([]any, 0, 2+want)
	a = append(a, "mget")
	if first != "" {
		a = append(a, first)
		want++
	}
	for i := range args {
		a = append(a, &args[i])
	}
	cmd := redis.NewStringSliceCmd(ctx, a...)
	_ = rdb.Process(ctx, cmd) // the command does not outlive the call
	vals, err := cmd.Result()
	if err == nil && len(vals) != want {
		err = ErrProtocol
	}
	return vals, err
}

// readState sets the table's state from T:g's value ("" when absent).
func (res *PeekResult) readState(g string) {
	if g == "" {
		return
	}
	gen, rest, ok1 := strings.Cut(g, " ")
	inc, seq, ok2 := strings.Cut(rest, " ")
	if ok1 && ok2 {
		res.Gen, res.Incarnation, res.Seq = gen, inc, seq
	}
}

// readImage sets row i from its image key's value v: a hit when it was
// stored under the table's current gen (and the caller's epoch).
func (res *PeekResult) readImage(i int, v string) {
	if v == "" {
		return
	}
	gen, img, ok := strings.Cut(v, " ")
	if ok && res.Gen != "" && genMatches(gen, res.Gen, res.Epoch) {
		res.Rows[i].Hit, res.Rows[i].Image = true, img
	}
}

// genMatches reports whether an image's stored generation part is gen under
// epoch: "gen" without an epoch, "gen/epoch" with one.
func genMatches(stored, gen, epoch string) bool {
	if epoch == "" {
		return stored == gen
	}
	return len(stored) == len(gen)+1+len(epoch) && stored[:len(gen)] == gen &&
		stored[len(gen)] == '/' && stored[len(gen)+1:] == epoch
}

// DBState is the database's state as a poll saw it.
type DBState struct {
	Epoch, Catalog string
	Locked         bool  // a database-wide write intent is live
	Count          int64 // moves at every poll; going back means Redis lost writes
}

// DBPoll reads the state of the database whose hash is key, making it when
// it is missing, and removing dead database-wide intents (which moves the
// epoch).
func DBPoll(ctx context.Context, rdb redis.Scripter, key string) (DBState, error) {
	v, err := dbPollScript.Run(ctx, rdb, []string{key}, NewToken()).Slice()
	if err != nil {
		return DBState{}, err
	}
	if len(v) != 4 {
		return DBState{}, ErrProtocol
	}
	e, _ := v[0].(string)
	c, _ := v[1].(string)
	l, _ := v[2].(int64)
	n, _ := v[3].(int64)
	if e == "" || c == "" {
		return DBState{}, ErrProtocol
	}
	return DBState{Epoch: e, Catalog: c, Locked: l == 1, Count: n}, nil
}

// DBLock places a database-wide write intent for lifetimeMs.
func DBLock(ctx context.Context, rdb redis.Scripter, key, token string, lifetimeMs int64) error {
	return dbLockScript.Run(ctx, rdb, []string{key}, token, lifetimeMs, NewToken()).Err()
}

// DBRelease ends a database-wide write intent and moves the epoch (and,
// with catalog, the catalog token).
func DBRelease(ctx context.Context, rdb redis.Scripter, key, token string, catalog bool) error {
	return dbReleaseScript.Run(ctx, rdb, []string{key}, token, NewToken(), boolArg(catalog), NewToken()).Err()
}

// CheckAccess sends every command wtcache uses, from Go and from its
// scripts, touching only keys under the hash tag tag: a missing ACL
// permission, a wrong password or an unreachable server is an error.
func CheckAccess(ctx context.Context, rdb redis.UniversalClient, tag string) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return err
	}
	if err := rdb.MGet(ctx, tag+":a", tag+":b").Err(); err != nil {
		return err
	}
	if err := rdb.Scan(ctx, 0, tag+":*", 1).Err(); err != nil {
		return err
	}
	if err := LoadScripts(ctx, rdb); err != nil {
		return err
	}
	return checkScript.Run(ctx, rdb, []string{tag + ":s", tag + ":h"}).Err()
}

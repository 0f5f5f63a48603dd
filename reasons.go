package wtcache

import (
	"sync"
	"sync/atomic"
)

// Why a lookup went to PostgreSQL whole (a bypass), or why a key of a
// lookup was read from PostgreSQL (a miss). Both sets are bounded: they
// are metric attributes and Stats keys.
const (
	reasonNotCacheable = "table_not_cacheable" // the span's wtcache.bypass.detail says why
	reasonDirty        = "table_dirty"
	reasonShape        = "not_a_key_lookup"
	reasonSelectCast   = "select_list_cast" // a cast in the select list to another type (balance::text)
	reasonArguments    = "arguments"
	reasonCatalog      = "catalog_error"
	reasonNoMetadata   = "no_column_metadata"
	reasonDBError      = "database_error"
	reasonInTx         = "in_transaction"
	reasonNotLookup    = "not_a_lookup" // a statement of another shape: not counted in Stats
	reasonPrivileges   = "no_select_privilege"
	reasonCacheDown    = "cache_unavailable"
	reasonOpaque       = "text_not_readable"    // standard_conforming_strings off and a backslash in a string
	reasonNotCurrent   = "cache_not_current"    // a database-wide write under way or just ended, or no recent poll of the fence
	reasonDriver       = "driver_not_supported" // the inner driver does not report the transaction status (not pgx)
	reasonUserOperator = "user_operator"        // an = not PostgreSQL's own may compare the table's key

	// outcomeNearHit is the outcome of a lookup the near cache answered
	// whole (cache_local).
	outcomeNearHit = "near_hit"

	missAbsent      = "not_in_cache"          // no entry: never read, expired, or invalidated by a write
	missTooLarge    = "entry_too_large"       // the row's image exceeds cache_max_entry: never stored
	missStaleSchema = "schema_changed"        // the entry was stored before a change of the table's columns
	missCorrupt     = "corrupt_entry"         // the entry does not decode
	missUnauthentic = "unauthenticated_entry" // with cache_key: the entry is not sealed by this key for this row
	missNotFresh    = "cache_not_serving"     // the feed's view too old, the table in quarantine
	missCacheError  = "cache_error"           // Redis answered with an error
)

var bypassReasons = [...]string{reasonNotCacheable, reasonDirty, reasonShape, reasonArguments, reasonCatalog,
	reasonNoMetadata, reasonDBError, reasonInTx, reasonPrivileges, reasonCacheDown, reasonOpaque, reasonNotCurrent, reasonDriver, reasonSelectCast, reasonUserOperator}

var missReasons = [...]string{missAbsent, missTooLarge, missStaleSchema, missCorrupt, missUnauthentic, missNotFresh, missCacheError}

// reasonCounts counts lookups by reason, without a lock.
type reasonCounts struct {
	bypass [len(bypassReasons)]atomic.Int64
	miss   [len(missReasons)]atomic.Int64
}

func (r *reasonCounts) addBypass(reason string) {
	for i, s := range bypassReasons {
		if s == reason {
			r.bypass[i].Add(1)
			return
		}
	}
}

func (r *reasonCounts) addMiss(reason string, n int64) {
	for i, s := range missReasons {
		if s == reason {
			r.miss[i].Add(n)
			return
		}
	}
}

func (r *reasonCounts) snapshot() (bypass, miss map[string]int64) {
	bypass, miss = map[string]int64{}, map[string]int64{}
	for i := range r.bypass {
		if n := r.bypass[i].Load(); n > 0 {
			bypass[bypassReasons[i]] = n
		}
	}
	for i := range r.miss {
		if n := r.miss[i].Load(); n > 0 {
			miss[missReasons[i]] = n
		}
	}
	return bypass, miss
}

// tooLarge remembers, bounded, the rows whose images exceeded
// cache_max_entry, so that their misses say so.
type tooLarge struct {
	n    atomic.Int32
	mu   sync.Mutex
	keys map[string]struct{}
}

const maxTooLarge = 4096

func (t *tooLarge) add(key string) {
	t.mu.Lock()
	if t.keys == nil || len(t.keys) >= maxTooLarge {
		t.keys = make(map[string]struct{})
	}
	t.keys[key] = struct{}{}
	t.n.Store(int32(len(t.keys)))
	t.mu.Unlock()
}

func (t *tooLarge) remove(key string) {
	if t.n.Load() == 0 {
		return
	}
	t.mu.Lock()
	delete(t.keys, key)
	t.n.Store(int32(len(t.keys)))
	t.mu.Unlock()
}

func (t *tooLarge) has(key string) bool {
	if t.n.Load() == 0 {
		return false
	}
	t.mu.Lock()
	_, ok := t.keys[key]
	t.mu.Unlock()
	return ok
}

package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
)

// Stats are counters of one connector since it was made.
type Stats struct {
	Hits            int64 // rows served from Redis
	Misses          int64 // rows of lookups read from PostgreSQL
	Bypasses        int64 // lookups that went to PostgreSQL whole (table not cacheable, unsupported argument, ...)
	Corrupt         int64 // entries rejected as corrupt, of the wrong type or from another encoding
	ReleaseFailures int64 // write intents that could not be released and were left to expire
	DirtyTables     int64 // tables this handle does not serve from Redis until it has invalidated them
	CacheDown       bool  // Redis is known unreachable now: lookups go to PostgreSQL, a probe runs in the background
	CacheOutages    int64 // times Redis was found unreachable (the circuit breaker opened)
	// BypassReasons counts Bypasses by reason (table_not_cacheable,
	// in_transaction, arguments, cache_unavailable, ...; see the README).
	BypassReasons map[string]int64
	// MissReasons counts Misses by reason (not_in_cache, entry_too_large,
	// schema_changed, corrupt_entry, cache_not_current, cache_error).
	MissReasons map[string]int64
	// Near is what the near cache did (cache_local=on; zero otherwise).
	// Its hits are counted in Hits too.
	Near NearStats
}

// StatsOf returns the counters of a connector made by [NewConnector]. ok is
// false for any other connector.
func StatsOf(c driver.Connector) (s Stats, ok bool) {
	cn, ok := c.(*connector)
	if !ok {
		return Stats{}, false
	}
	by, miss := cn.reasons.snapshot()
	var near NearStats
	if n := cn.nearNow(); n != nil {
		near = n.stats()
	}
	return Stats{
		Near:            near,
		BypassReasons:   by,
		MissReasons:     miss,
		Hits:            cn.hits.Load(),
		Misses:          cn.misses.Load(),
		Bypasses:        cn.bypasses.Load(),
		Corrupt:         cn.corrupt.Load(),
		ReleaseFailures: cn.releaseFailures.Load(),
		DirtyTables:     int64(cn.dirtyN.Load()),
		CacheDown:       cn.brk.down.Load(),
		CacheOutages:    cn.brk.trips.Load(),
	}, true
}

// DBStats returns the counters of the wtcache handle db, however it was
// opened (sql.Open("wtcache", dsn), OpenDB, or sql.OpenDB of a connector
// from NewConnector). It holds one of db's connections for a moment (and
// opens one if none is idle); it fails with ErrNotWtcache when db is not a
// wtcache handle.
func DBStats(ctx context.Context, db *sql.DB) (Stats, error) {
	var s Stats
	err := withConn(ctx, db, func(c *conn) error {
		s, _ = StatsOf(c.c)
		return nil
	})
	return s, err
}

package wtcache

import "database/sql/driver"

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
}

// StatsOf returns the counters of a connector made by [NewConnector]. ok is
// false for any other connector.
func StatsOf(c driver.Connector) (s Stats, ok bool) {
	cn, ok := c.(*connector)
	if !ok {
		return Stats{}, false
	}
	return Stats{
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

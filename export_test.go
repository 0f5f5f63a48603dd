package wtcache

import "database/sql/driver"

// Test hooks for the external test package.

// Settle waits for the background fills and releases of c.
func Settle(c driver.Connector) { c.(*connector).settle() }

// Counters returns c's hit, miss and bypass counters.
func Counters(c driver.Connector) (hits, misses, bypasses int64) {
	cn := c.(*connector)
	return cn.hits.Load(), cn.misses.Load(), cn.bypasses.Load()
}

// BreakProtocol makes c mirror writes without intents: the naive
// write-through that the consistency checker must catch.
func BreakProtocol(c driver.Connector) { c.(*connector).brokenNoIntents.Store(true) }

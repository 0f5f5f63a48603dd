package wtcache

import (
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/wtcache/wtcache/internal/recognize"
)

// Option configures a wtcache connector or driver. Options set the
// program's defaults; a parameter in the DSN overrides the matching option.
type Option func(*config)

// config is the complete configuration of one connector. Its zero value,
// after defaults(), is the safe choice.
type config struct {
	// redis is the client every connection of the connector shares.
	redis redis.UniversalClient
	// ownRedis is true when wtcache built the client (from cache_redis) and
	// must close it with the connector.
	ownRedis bool
	// redisAddr is the redacted description of the Redis server, for
	// messages and spans.
	redisAddr string
	// redisSecret is the Redis password of a client built from
	// cache_redis, removed from every message.
	redisSecret string
	logger      *slog.Logger

	ttl      time.Duration
	tableTTL map[recognize.Table]time.Duration
	tables   []recognize.Table // empty: every table that qualifies
	exclude  []recognize.Table
	trusted  []recognize.Table // triggers and rules change nothing cached
	prefix   string
	timeout  time.Duration // per Redis operation
	// redisInsecure allows skip_verify in cache_redis (TLS without
	// checking the server's certificate): cache_redis_insecure=true.
	redisInsecure bool
	// redisSec: the cache_redis_* parameters that complete cache_redis.
	redisSec redisSecurity
	// check: cache_check=on, every command tried at the first connection.
	check          bool
	schemaRefresh  time.Duration
	intentLifetime time.Duration
	maxEntry       int
	failure        FailurePolicy
	planCache      int

	// The near cache (cache_local): off unless local is set.
	local         bool
	localTables   []recognize.Table // {Name: "*"}: every cached table
	localSize     int64
	localMaxStale time.Duration
	localAddr     string // tests: where the tracking connection dials

	// Entry keys (cache_key, entrykey.go): seal is built from the rest.
	entryMode    EntryMode
	entryModeSet bool
	entryKey     string
	entryKeyOld  string
	entryKeyFile string
	entryKeySet  bool // cache_key or cache_key_old in the DSN
	seal         *sealer

	feed            bool
	feedMaxLag      time.Duration
	feedPublication string

	tp          trace.TracerProvider
	mp          metric.MeterProvider
	queryText   bool
	noStepSpans bool
}

// WithRedis gives a driver registered with [Register] a Redis client to use
// for every DSN it opens, so that those DSNs need no cache_redis parameter.
// A cache_redis parameter in a DSN still takes precedence. The caller keeps
// ownership of the client: wtcache never closes it. Default: none, the Redis
// client is built from the DSN's cache_redis.
func WithRedis(client redis.UniversalClient) Option {
	return func(c *config) {
		c.redis = client
		c.ownRedis = false
	}
}

// WithTTL sets how long a cached row lives in Redis (cache_ttl), with ±10%
// jitter. Default: DefaultTTL (10 minutes).
func WithTTL(ttl time.Duration) Option {
	return func(c *config) {
		if ttl > 0 {
			c.ttl = ttl
		}
	}
}

// WithTableTTL sets the TTL of one table's rows; table is "name" (any
// schema) or "schema.name". Default: the connector's TTL.
func WithTableTTL(table string, ttl time.Duration) Option {
	return func(c *config) {
		ts, err := parseTableList(table)
		if err != nil || len(ts) != 1 || ttl <= 0 {
			return
		}
		if c.tableTTL == nil {
			c.tableTTL = map[recognize.Table]time.Duration{}
		}
		c.tableTTL[ts[0]] = ttl
	}
}

// WithTables restricts caching to the named tables (cache_tables), each
// "name" or "schema.name". Default: every table that qualifies (an ordinary
// table with a primary key of a supported type, without row-level
// security).
func WithTables(tables ...string) Option {
	return func(c *config) {
		ts, err := parseTableList(strings.Join(tables, ","))
		if err == nil {
			c.tables = ts
		}
	}
}

// WithExclude never caches the named tables (cache_exclude). Default: none.
func WithExclude(tables ...string) Option {
	return func(c *config) {
		ts, err := parseTableList(strings.Join(tables, ","))
		if err == nil {
			c.exclude = ts
		}
	}
}

// WithTrustedTriggers names tables whose triggers and rules change nothing
// that wtcache caches (cache_trust_triggers): an audit trigger that writes a
// log table, say. A write to a table with triggers or rules otherwise
// reaches the whole database (wtcache cannot know what they write), which
// retires every cached row. wtcache takes your word: a trusted trigger that
// changes a cached table leaves its rows stale until their TTL. Default:
// none.
func WithTrustedTriggers(tables ...string) Option {
	return func(c *config) {
		ts, err := parseTableList(strings.Join(tables, ","))
		if err == nil {
			c.trusted = ts
		}
	}
}

// WithKeyPrefix sets the first component of every Redis key
// (cache_prefix). Default: DefaultPrefix ("wtc").
func WithKeyPrefix(prefix string) Option {
	return func(c *config) {
		if prefix != "" {
			c.prefix = prefix
		}
	}
}

// WithRedisTimeout bounds every Redis operation (cache_timeout). Default:
// DefaultRedisTimeout (500ms).
func WithRedisTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithFailurePolicy chooses what a write does when Redis cannot be reached
// (cache_failure). Default: FailClosed.
func WithFailurePolicy(p FailurePolicy) Option {
	return func(c *config) { c.failure = p }
}

// WithSchemaRefresh sets how old what a process knows of the catalog may
// grow before it is read again (cache_schema_refresh): a table's columns
// and keys, and what a session's names resolve to and its role may read.
// It bounds how long a change made outside wtcache (DDL, GRANT, REVOKE,
// row-level security) takes to be seen without the change feed; DDL, GRANT
// and REVOKE sent through wtcache reach every process before they return.
// Default: DefaultSchemaRefresh (2s).
func WithSchemaRefresh(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.schemaRefresh = d
		}
	}
}

// WithMaxEntrySize sets the largest row image, in bytes, that is stored in
// Redis (cache_max_entry); larger rows are always read from PostgreSQL.
// Default: DefaultMaxEntrySize (64 KiB).
func WithMaxEntrySize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxEntry = n
		}
	}
}

// LocalCache configures the near cache (cache_local=on): rows of Tables
// kept in the process's memory in front of Redis, coherent through Redis's
// client-side caching (see the README). Tables must be named: a near hit
// may be up to MaxStale older than a write committed by another process
// ("*" names every cached table). Size is in bytes (0: DefaultLocalSize);
// MaxStale 0 is DefaultLocalMaxStale.
type LocalCache struct {
	Tables   []string
	Size     int64
	MaxStale time.Duration
}

// WithLocalCache turns the near cache on (cache_local=on with
// cache_local_tables, cache_local_size and cache_local_max_stale).
func WithLocalCache(l LocalCache) Option {
	return func(c *config) {
		c.local = true
		c.localTables = nil
		for _, t := range l.Tables {
			if t == "*" {
				c.localTables = append(c.localTables, recognize.Table{Name: "*"})
				continue
			}
			if ts, err := parseTableList(t); err == nil {
				c.localTables = append(c.localTables, ts...)
			}
		}
		if l.Size > 0 {
			c.localSize = l.Size
		}
		if l.MaxStale > 0 {
			c.localMaxStale = l.MaxStale
		}
	}
}

// WithRedisCheck makes the first connection of a handle try every Redis
// command wtcache uses (cache_check=on): a wrong password, a missing ACL
// permission or an unreachable Redis fails it with ErrCacheUnavailable
// instead of surfacing at the first write. Default: off.
func WithRedisCheck(on bool) Option {
	return func(c *config) { c.check = on }
}

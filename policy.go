package wtcache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/wtcache/wtcache/internal/recognize"
)

// Policy: what is cached and for how long, and what happens when Redis
// cannot be reached.

// FailurePolicy chooses what a write to a cached table does when Redis
// cannot be reached to place its intents.
type FailurePolicy uint8

const (
	// FailClosed refuses the write before it touches the database, with an
	// error wrapping ErrCacheUnavailable: Redis is a mandatory gateway and
	// no reader anywhere can see a stale row. The default.
	FailClosed FailurePolicy = iota
	// FallBack lets the write go to the database. This handle then stops
	// serving the tables it could not invalidate until it has invalidated
	// them (automatically, once Redis answers again); other handles may
	// serve the old rows until their TTL expires.
	FallBack
)

func (p FailurePolicy) String() string {
	if p == FallBack {
		return "fallback"
	}
	return "fail"
}

// ErrCacheUnavailable is wrapped by the error of a write refused under
// FailClosed because Redis could not be reached. The write did not run.
var ErrCacheUnavailable = errors.New("wtcache: cache unavailable, write refused before it reached the database")

// Defaults.
const (
	DefaultTTL            = 10 * time.Minute
	DefaultPrefix         = "wtc"
	DefaultRedisTimeout   = 500 * time.Millisecond
	DefaultSchemaRefresh  = 2 * time.Second
	DefaultMaxEntrySize   = 64 << 10
	DefaultIntentLifetime = 30 * time.Second
	defaultPlanCache      = 4096

	// DefaultLocalSize bounds the near cache's memory (cache_local_size).
	DefaultLocalSize = 64 << 20
	// DefaultLocalMaxStale is how much older than a write committed by
	// another process a near hit may be (cache_local_max_stale).
	DefaultLocalMaxStale = 5 * time.Millisecond
)

func defaultConfig() config {
	return config{
		ttl:            DefaultTTL,
		prefix:         DefaultPrefix,
		timeout:        DefaultRedisTimeout,
		schemaRefresh:  DefaultSchemaRefresh,
		maxEntry:       DefaultMaxEntrySize,
		intentLifetime: DefaultIntentLifetime,
		planCache:      defaultPlanCache,

		localSize:     DefaultLocalSize,
		localMaxStale: DefaultLocalMaxStale,

		feedMaxLag:      DefaultFeedMaxLag,
		feedPublication: DefaultFeedPublication,
	}
}

// tableSelected reports whether the configuration allows caching t.
func (c *config) tableSelected(t recognize.Table) bool {
	match := func(list []recognize.Table) bool {
		for _, x := range list {
			if x.Name == t.Name && (x.Schema == "" || x.Schema == t.Schema) {
				return true
			}
		}
		return false
	}
	if match(c.exclude) {
		return false
	}
	return len(c.tables) == 0 || match(c.tables)
}

// localSelected reports whether t's rows go to the near cache.
func (c *config) localSelected(t recognize.Table) bool {
	if !c.local {
		return false
	}
	for _, x := range c.localTables {
		if x.Name == "*" && x.Schema == "" || x.Name == t.Name && (x.Schema == "" || x.Schema == t.Schema) {
			return true
		}
	}
	return false
}

// checkLocal refuses a near cache configuration that cannot work.
func (c *config) checkLocal() error {
	if !c.local {
		return nil
	}
	if len(c.localTables) == 0 {
		return fmt.Errorf("%w: cache_local=on needs cache_local_tables: the tables whose rows may be served up to cache_local_max_stale (%v) older than a write committed by another process (\"*\" for every cached table)", ErrInvalidParameter, c.localMaxStale)
	}
	return nil
}

// triggersTrusted reports whether the user said t's triggers and rules
// change nothing cached.
func (c *config) triggersTrusted(t recognize.Table) bool {
	for _, x := range c.trusted {
		if x.Name == t.Name && (x.Schema == "" || x.Schema == t.Schema) {
			return true
		}
	}
	return false
}

// ttlFor returns the TTL of an entry of t, with ±10% jitter so that entries
// filled together do not expire together.
func (c *config) ttlFor(t recognize.Table) time.Duration {
	ttl := c.ttl
	if v, ok := c.tableTTL[t]; ok {
		ttl = v // "schema.name" wins over "name"
	} else if v, ok := c.tableTTL[recognize.Table{Name: t.Name}]; ok {
		ttl = v
	}
	jitter := time.Duration(rand.Int64N(int64(ttl)/5+1)) - ttl/10
	return ttl + jitter
}

// parseTableList parses "a, s.b, \"Mixed\".c" into folded names.
func parseTableList(v string) ([]recognize.Table, error) {
	var out []recognize.Table
	for _, part := range splitUnquoted(v, ',') {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var schema, name string
		switch names := splitUnquoted(part, '.'); len(names) {
		case 1:
			name = part
		case 2:
			schema, name = names[0], names[1]
		default:
			return nil, fmt.Errorf("%q is neither name nor schema.name", part)
		}
		t := recognize.Table{Schema: foldIdent(schema), Name: foldIdent(name)}
		if t.Name == "" {
			return nil, fmt.Errorf("empty table name in %q", part)
		}
		out = append(out, t)
	}
	return out, nil
}

// splitUnquoted splits s at every sep outside double quotes.
func splitUnquoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// foldIdent folds an identifier as PostgreSQL does: quoted kept, unquoted
// lower-cased.
func foldIdent(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return strings.ToLower(s)
}

// parseBytes parses a size: a number of bytes, or one with a KiB, MiB or
// GiB suffix.
func parseBytes(v string) (int64, error) {
	num, mul := strings.TrimSpace(v), int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(num, suffix) {
			num, mul = strings.TrimSpace(strings.TrimSuffix(num, suffix)), m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mul {
		return 0, fmt.Errorf("%q is not a positive size (bytes, or with KiB, MiB or GiB)", v)
	}
	return n * mul, nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a Go duration (e.g. 5m, 1h30m, 500ms)", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive", v)
	}
	return d, nil
}

func init() {
	params["cache_redis_insecure"] = func(c *config, v string) (err error) {
		c.redisInsecure, err = strconv.ParseBool(v)
		return err
	}
	for name, field := range map[string]func(c *config) *string{
		"cache_redis_ca":            func(c *config) *string { return &c.redisSec.ca },
		"cache_redis_cert":          func(c *config) *string { return &c.redisSec.cert },
		"cache_redis_key":           func(c *config) *string { return &c.redisSec.key },
		"cache_redis_servername":    func(c *config) *string { return &c.redisSec.serverName },
		"cache_redis_password_file": func(c *config) *string { return &c.redisSec.passwordFile },
		"cache_redis_password_env":  func(c *config) *string { return &c.redisSec.passwordEnv },
	} {
		params[name] = func(c *config, v string) error {
			if v == "" {
				return errors.New("empty")
			}
			*field(c) = v
			return nil
		}
	}
	params["cache_check"] = func(c *config, v string) error {
		switch strings.ToLower(v) {
		case "on", "true", "1":
			c.check = true
		case "off", "false", "0":
			c.check = false
		default:
			return fmt.Errorf("%q is neither on nor off", v)
		}
		return nil
	}
	params["cache_local"] = func(c *config, v string) error {
		switch strings.ToLower(v) {
		case "on", "true", "1":
			c.local = true
		case "off", "false", "0":
			c.local = false
		default:
			return fmt.Errorf("%q is neither on nor off", v)
		}
		return nil
	}
	params["cache_local_tables"] = func(c *config, v string) (err error) {
		if strings.TrimSpace(v) == "*" {
			c.localTables = []recognize.Table{{Name: "*"}}
			return nil
		}
		c.localTables, err = parseTableList(v)
		return err
	}
	params["cache_local_size"] = func(c *config, v string) (err error) {
		c.localSize, err = parseBytes(v)
		return err
	}
	params["cache_local_max_stale"] = func(c *config, v string) (err error) {
		c.localMaxStale, err = parseDuration(v)
		return err
	}
	params["cache_ttl"] = func(c *config, v string) (err error) {
		c.ttl, err = parseDuration(v)
		return err
	}
	params["cache_timeout"] = func(c *config, v string) (err error) {
		c.timeout, err = parseDuration(v)
		return err
	}
	params["cache_schema_refresh"] = func(c *config, v string) (err error) {
		c.schemaRefresh, err = parseDuration(v)
		return err
	}
	params["cache_intent_lifetime"] = func(c *config, v string) (err error) {
		c.intentLifetime, err = parseDuration(v)
		return err
	}
	params["cache_tables"] = func(c *config, v string) (err error) {
		c.tables, err = parseTableList(v)
		return err
	}
	params["cache_trust_triggers"] = func(c *config, v string) (err error) {
		c.trusted, err = parseTableList(v)
		return err
	}
	params["cache_exclude"] = func(c *config, v string) (err error) {
		c.exclude, err = parseTableList(v)
		return err
	}
	params["cache_prefix"] = func(c *config, v string) error {
		if v == "" {
			return errors.New("empty")
		}
		c.prefix = v
		return nil
	}
	params["cache_max_entry"] = func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive number of bytes", v)
		}
		c.maxEntry = n
		return nil
	}
	params["cache_failure"] = func(c *config, v string) error {
		switch v {
		case "fail":
			c.failure = FailClosed
		case "fallback":
			c.failure = FallBack
		default:
			return fmt.Errorf("%q is neither fail nor fallback", v)
		}
		return nil
	}
}

package wtcache

import (
	"github.com/redis/go-redis/v9"
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
}

func defaultConfig() config {
	return config{}
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

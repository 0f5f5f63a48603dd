package wtcache

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wtcache/wtcache/internal/proto"
)

// aclCommands are every Redis command wtcache sends, from Go or from its
// Lua scripts (a script's commands are checked against the user's ACL
// too), including those only rare paths use (a dead writer's cleanup, a
// corrupt key's removal, the change feed's lease). TestACLCoversEveryCommand
// keeps the list complete.
var aclCommands = []string{
	// reads and the hit path
	"mget", "get", "scan",
	// the scripts (intents, releases, fills, the fences, the feed's lease)
	"evalsha", "eval", "script|load",
	"set", "del", "exists", "type", "time", "pttl", "pexpire",
	"hget", "hset", "hdel", "hgetall", "hincrby",
	// connections: the breaker's probe, the near cache's heartbeat and
	// tracking, go-redis's handshake (it also sends CLIENT SETINFO on
	// Redis 7.2 and later and ignores a refusal)
	"ping", "hello", "select", "client|tracking",
}

// RedisACL returns the ACL rules a Redis user of wtcache needs with key
// prefix prefix (cache_prefix; "" for the default), to append to
// ACL SETUSER name on >password: its keys only, no channels, and only
// the commands wtcache sends.
func RedisACL(prefix string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	var b strings.Builder
	b.WriteString("resetkeys ~")
	b.WriteString(aclKeyPattern(prefix))
	b.WriteString(" resetchannels -@all")
	for _, c := range aclCommands {
		b.WriteString(" +")
		b.WriteString(c)
	}
	return b.String()
}

// aclKeyPattern is the glob of every key under prefix: {prefix:... with
// the glob's special characters escaped.
func aclKeyPattern(prefix string) string {
	var b strings.Builder
	b.WriteByte('{')
	escapeKeyPart(&b, prefix)
	b.WriteByte(':')
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(b.String()) + "*"
}

// ErrCacheCheck is returned by the first connection of a handle opened
// with cache_check=on when Redis cannot be used: unreachable, a wrong
// password, or a permission missing from the user's ACL (see RedisACL).
var ErrCacheCheck = errors.New("wtcache: cache_check: Redis refused or failed a command wtcache needs")

// checkRedis runs, with cache_check=on, at a connector's first
// connection: every command wtcache may send, on a scratch key of its
// namespace, so that a wrong password, a missing permission or an
// unreachable server fails the connection instead of the first write.
func (c *connector) checkRedis(ctx context.Context) error {
	rctx, cancel := c.redisCtx(ctx)
	defer cancel()
	var b strings.Builder
	b.WriteByte('{')
	escapeKeyPart(&b, c.cfg.prefix)
	b.WriteString(":check}")
	err := proto.CheckAccess(rctx, c.cfg.redis, b.String())
	if err != nil {
		c.redisErr(ctx, err)
		return fmt.Errorf("%w: %s: %s", ErrCacheCheck, c.redisName(), c.redact(err.Error()))
	}
	return nil
}
